//! Live viewers: per-viewer state machines over committed data.
//!
//! - [`source`]: the narrow view of the relay the state machine reads ([`Source`]), implemented
//!   for the registry in `registry.rs` and by an in-memory fake in the tests.
//! - what viewers read is what the commit group published in [`crate::frontier`]: per stream
//!   the committed entries and the open tracefiles holding them, per session the streams
//!   announced and the viewers attached.
//! - [`Viewer`] (`viewer.rs`, `discover.rs`, `read.rs`): one viewer connection's protocol
//!   state, sans-IO with time passed in; the connection handler is [`crate::server::live`].
//! - [`settings`]: the `[live]` settings (idle timeout, RETRY pacing).
//!
//! Invariants:
//! - only committed data is served: an index entry reaches a viewer only after its data and the
//!   entry itself were made durable by a commit, and a packet only inside such an entry, so what a
//!   viewer saw survives a crash of the relay; metadata is committed with the data that needs it
//!   and published first;
//! - any number of viewers per session, each with its own position and its own NEW_STREAM flag;
//!   a viewer reaches only streams of sessions it attached to;
//! - nothing a viewer does holds a registry or stream lock across socket I/O: the state machine
//!   copies what it needs out of short lock sections, and the handler sends file bytes from the
//!   viewer's own open file handles, so a slow or vanished viewer never slows ingest, rotation,
//!   clear or destroy.

pub mod discover;
pub mod read;
mod registry;
pub mod settings;
pub mod source;
pub mod viewer;

pub use registry::Ticket;
pub use settings::LiveSettings;
pub use source::{Announced, EntryError, SessionInfo, Source, StreamInfo, StreamView};
pub use viewer::{FileSlice, Step, Viewer};

#[cfg(test)]
mod tests;
