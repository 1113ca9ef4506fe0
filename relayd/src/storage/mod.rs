//! Storage concerns below the sessions: committed-frontier OFD locks ([`lock`]), the
//! one-relay-per-output-folder lock ([`output_lock`]), loss sidecar files ([`loss`]) and crash
//! recovery of torn tails ([`recovery`]).

pub mod lock;
pub mod loss;
pub mod output_lock;
pub mod recovery;
