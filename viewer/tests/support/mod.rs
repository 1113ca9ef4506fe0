//! Helpers for the viewer's tests: the vendored fixture and running the binary.

#![allow(dead_code)]

pub mod fake_relay;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixture recorded from the real LTTng tools (in-repo copy). Panics if it is missing: the
/// tests must not pass vacuously.
pub fn fixture() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/shared/fixtures/lttng-2.13-live-uid");
    assert!(
        p.join("relay-out").is_dir(),
        "fixture missing at {}",
        p.display()
    );
    p
}

/// The CTF 2 trace recorded with the real LTTng 2.15 tools (in-repo copy): its `trace/` folder
/// and what babeltrace2 2.1 printed of it. Panics if it is missing.
pub fn ctf2_fixture() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/shared/fixtures/lttng-2.15-ctf2-local-uid");
    assert!(
        p.join("trace").is_dir(),
        "fixture missing at {}",
        p.display()
    );
    p
}

/// The CTF 2 fixture's trace directory, below its `trace/` folder.
pub const CTF2_TRACE_REL: &str = "ust/uid/0/64-bit";

/// The fixture's trace directory (holding metadata, channel0_N and index/).
pub const TRACE_REL: &str = "vm/fx3754-20261123-062223/ust/uid/0/64-bit";

/// Runs `trelay-viewer ARGS`.
pub fn viewer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trelay-viewer"))
        .args(args)
        .output()
        .expect("trelay-viewer runs")
}

/// Asserts that the run exited with status 0, showing `what` and its standard error if not.
pub fn assert_exit_0(o: &Output, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// A fresh copy of the fixture's relay output in a temporary folder.
pub fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("relay-out");
    copy_tree(&fixture().join("relay-out"), &root);
    (t, root)
}
