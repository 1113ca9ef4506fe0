//! The live viewer protocol (5344).
