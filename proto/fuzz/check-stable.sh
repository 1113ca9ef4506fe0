#!/bin/sh
# Builds every fuzz target on the stable toolchain without cargo-fuzz or libFuzzer, and runs each
# target once over every input of its committed corpus: `fuzz_target!` is replaced by a plain
# function (a stub libfuzzer-sys in a temporary folder). A quick check that the targets still
# compile against trelay-proto and that no corpus input trips an assertion.
# Usage: proto/fuzz/check-stable.sh   (CARGO_TARGET_DIR is honoured)
set -eu
FUZZ=$(cd "$(dirname "$0")" && pwd -P)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/shim/src" "$T/check/src"
cat > "$T/shim/Cargo.toml" <<'TOML'
[package]
name = "libfuzzer-sys"
version = "0.4.99"
edition = "2021"
TOML
cat > "$T/shim/src/lib.rs" <<'RS'
#[macro_export]
macro_rules! fuzz_target {
    (|$d:ident: &[u8]| $body:block) => {
        pub fn fuzz_one($d: &[u8]) $body
    };
}
RS
cat > "$T/check/Cargo.toml" <<TOML
[package]
name = "fuzz-check"
version = "0.0.0"
edition = "2021"
[workspace]
[dependencies]
libfuzzer-sys = { path = "../shim" }
trelay-proto = { path = "$FUZZ/.." }
TOML
{
  echo '#![allow(unused_attributes)]'
  for f in "$FUZZ"/fuzz_targets/*.rs; do
    n=$(basename "$f" .rs)
    echo "#[path = \"$f\"] mod $n;"
  done
  echo '#[test] fn corpora() {'
  for f in "$FUZZ"/fuzz_targets/*.rs; do
    n=$(basename "$f" .rs)
    echo "    let dir = std::path::Path::new(\"$FUZZ/corpus/$n\");"
    echo "    if let Ok(rd) = std::fs::read_dir(dir) { for e in rd.flatten() { $n::fuzz_one(&std::fs::read(e.path()).unwrap()); } }"
  done
  echo '}'
} > "$T/check/src/lib.rs"
cargo test --offline --manifest-path "$T/check/Cargo.toml" -q
