//! The recorded LTTng 2.13 session the fixture tests decode: `$TRELAY_SHARED` when set, else the
//! copy in the repository's `testdata/shared`.

#![allow(dead_code)]

use std::path::PathBuf;

/// The fixture's folder; panics when it is missing.
pub fn fixture() -> PathBuf {
    let shared = std::env::var_os("TRELAY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/shared"));
    let dir = shared.join("fixtures/lttng-2.13-live-uid");
    assert!(dir.is_dir(), "fixture missing: {}", dir.display());
    dir
}

/// The one trace directory lttng-relayd wrote for the recorded session.
pub fn trace_dir() -> PathBuf {
    fixture().join("relay-out/vm/fx3754-20261123-062223/ust/uid/0/64-bit")
}

/// The bytes of `p`; panics naming the file when it cannot be read.
pub fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
