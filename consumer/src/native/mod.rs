//! The sender side of trelay:// (`trelay://HOST[:PORT]` URLs): [`client::NativeConn`] speaks the
//! protocol on one connection, [`send::send`] ships a local trace with it and resumes after
//! cuts.

pub mod bench;
pub mod client;
pub mod follow;
mod follower;
pub mod send;
