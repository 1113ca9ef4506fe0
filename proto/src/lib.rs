//! # trelay-proto
//!
//! Sans-IO codecs for everything trelay reads or writes in LTTng's formats: no sockets, no files,
//! no clock. Bytes go in, typed messages come out, and back.
//!
//! - [`lttng::relayd`]: the control port (5342) commands and replies of LTTng 2.1 to 2.15 senders,
//!   with the layouts that depend on the negotiated protocol minor, and the data port (5343) header.
//! - [`lttng::live`]: the live viewer protocol (5344), requests and replies, up to minor 15.
//! - [`lttng::TraceFormat`]: a session's trace format (CTF 1.8 or CTF 2), as both ports carry it.
//! - [`ctf::index`]: CTF index files (v1.0 and v1.1), header and entries.
//! - [`ctf::packet`]: the CTF packet header and context as LTTng lays them out.
//! - [`trelay`]: trelay's own framed, batched, resumable protocol (trelay://).
//! - [`status`]: the JSON documents of trelayd's status API (`/api/v1/…`).
//!
//! ## Decoding contract
//! Every decoder takes a byte slice and returns [`Decoded::Incomplete`] with the number of bytes it
//! needs at least, [`Decoded::Done`] with the message and the number of bytes it consumed, or a
//! typed [`DecodeError`]. Lengths from the peer are checked against caps before anything is
//! allocated; arithmetic on peer values is checked. Non-test code in this crate is compiled with
//! lints that forbid indexing, unchecked arithmetic, `unwrap` and `panic`, so no input can make a
//! decoder panic.
//!
//! ## Encoding contract
//! Encoders append to a buffer the caller owns (any [`bytes::BufMut`], e.g. a reused `Vec<u8>`).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod codec;
pub mod ctf;
pub mod id;
pub mod lttng;
pub mod status;
pub mod trelay;

pub use codec::{DecodeError, Decoded, Reader};
pub use id::{CtfTraceId, NetSeq, SessionId, StreamId, ViewerSessionId};
pub use lttng::TraceFormat;
