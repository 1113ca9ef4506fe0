//! trelay-consumer library.
