//! CTF on-disk structures as LTTng writes them: index files ([`index`]) and packet headers
//! ([`packet`]).

pub mod index;
pub mod packet;
