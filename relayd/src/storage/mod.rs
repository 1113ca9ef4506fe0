//! Storage concerns below the sessions: committed-frontier OFD locks ([`lock`]), the one-relay-per-
//! output-folder lock ([`output_lock`]) and crash recovery of torn
//! tails ([`recovery`]).

pub mod lock;
pub mod output_lock;
pub mod recovery;
