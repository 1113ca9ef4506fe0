//! # trelay-viewer
//!
//! A command-line companion for LTTng traces relayed by trelayd or lttng-relayd:
//!
//! - [`sessions`](live::sessions): the live sessions a relay offers (live port, 5344);
//! - [`live`]: attach to a live session and mirror it into a CTF trace on disk;
//! - [`query`]: post-mortem questions answered from the on-disk index alone;
//! - [`check`]: integrity of a trace on disk;
//! - [`tail`]: follow a trace a relay writes on this machine, reading only committed bytes
//!   (the OFD lock protocol, see [`lock`]);
//! - [`dissect`]: decode captures of the three relay protocols, like a protocol analyser;
//! - [`fetch`]: bring a trace trelayd archived to S3-compatible storage back as a directory;
//! - [`status`]: a relay's status page in a terminal, from trelayd's status API.
//!
//! The binary is a thin layer over this library ([`cli`]), so tests drive the same code.

pub mod check;
pub mod cli;
pub mod ctf2;
pub mod dissect;
pub mod fetch;
pub mod live;
pub mod lock;
pub mod metadata;
pub mod query;
pub mod report;
pub mod status;
pub mod tail;
pub mod time;
pub mod trace;
pub mod tsdl;
pub mod url;
