//! # trelay-relayd
//!
//! The `trelayd` daemon: receives LTTng 2.13 control and data connections, merges data packets
//! with their index messages, writes the trace layout lttng-relayd writes, commits with fsync on
//! sync beacons and serves committed data to live viewers.
