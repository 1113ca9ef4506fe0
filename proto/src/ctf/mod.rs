//! CTF on-disk structures as LTTng writes them: index files ([`index`]), packet headers
//! ([`packet`]) and which CTF version a metadata stream is in ([`format`](mod@format)).

pub mod format;
pub mod index;
pub mod packet;
