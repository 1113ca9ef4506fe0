//! # trelay-consumer
//!
//! Ships LTTng traces to a relay speaking LTTng 2.13's relayd protocol (trelayd or the real
//! `lttng-relayd`), the way a 2.13 consumer daemon does, and generates load to measure relays.
//!
//! - [`bench`](mod@bench): load generation against a relay (throughput, index round trips, relay CPU).
//! - [`synth`]: synthetic traces (TSDL metadata and CTF packets in LTTng's layout).
//! - [`sender`]: an async sender for the relayd protocol (control and data ports).
//! - [`ship`]: shipping local traces (`send` a finished one, `follow` a growing one).
//! - [`trace`]: reading local LTTng trace directories (streams, index entries, metadata).
pub mod bench;
pub mod cli;
pub mod native;
pub mod sender;
pub mod ship;
pub mod synth;
pub mod tls;
pub mod trace;
pub mod url;

/// A random, non-zero 16-byte UUID (version 4 layout), from the kernel's random source; falls
/// back to a hash of the time and process id if `/dev/urandom` cannot be read.
pub fn random_uuid() -> [u8; 16] {
    use std::io::Read;
    let mut u = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut u))
        .is_ok();
    if !ok {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(1),
        );
        h.write_u32(std::process::id());
        let a = h.finish();
        h.write_u64(a);
        let b = h.finish();
        u[..8].copy_from_slice(&a.to_le_bytes());
        u[8..].copy_from_slice(&b.to_le_bytes());
    }
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}
