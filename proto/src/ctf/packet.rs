//! CTF packet header and context as LTTng lays them out.
