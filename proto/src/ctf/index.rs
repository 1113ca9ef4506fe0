//! CTF index files (v1.0, v1.1).
