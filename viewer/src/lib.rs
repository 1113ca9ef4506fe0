//! # trelay-viewer
//!
//! A command-line companion for LTTng traces relayed by trelayd or lttng-relayd. Built so far:
//!
//! - [`dissect`]: decode captures of the three relay protocols, like a protocol analyser.
//!
//! The binary is a thin layer over this library ([`cli`]), so tests drive the same code.

pub mod cli;
pub mod dissect;
