//! The published frontier: what commits have made durable and viewers may read.
//!
//! It sits below both the writers ([`crate::session`], whose commit group publishes into it) and
//! the readers ([`crate::live`], whose viewers read from it), so neither depends on the other
//! through it:
//! - [`Frontier`] (one per stream): the committed entries, the open index files (tracefiles)
//!   holding them, the committed metadata bytes, and a generation counter viewers wait on;
//! - [`Roster`] (one per session): the streams announced to viewers and the viewers attached.

mod roster;
mod stream;

pub use roster::Roster;
pub use stream::{Announce, Frontier, Publish, Segment, MAX_SEGMENTS};
