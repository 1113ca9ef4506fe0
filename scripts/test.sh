#!/usr/bin/env bash
# The whole trelay test suite. Installs what the tests need when it is missing (the real LTTng
# tools and babeltrace2, which the end-to-end tests drive, and Prometheus with promtool, which
# scrapes the relay in the operations tests; Chromium and its WebDriver, which read the status
# page in integration/tests/status_page.rs; the s3s-fs S3 server, which the archive tests upload
# to, built once into ~/.cache/trelay/s3s-fs), then runs format, lint and tests.
# usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v lttng-sessiond >/dev/null || need+=(lttng-tools)
command -v lttng-relayd >/dev/null || need+=(lttng-tools)
command -v babeltrace2 >/dev/null || need+=(babeltrace2)
[ -e /usr/include/lttng/tracepoint.h ] || need+=(liblttng-ust-dev)
command -v python3 >/dev/null || need+=(python3)
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "test.sh: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq lttng-tools liblttng-ust-dev babeltrace2 python3 prometheus \
    chromium chromium-driver >/dev/null
fi

# A real S3-compatible server for integration/tests/archive.rs (found there through this cache,
# or TRELAY_S3S_FS). 0.13 is the newest release building with the workspace's toolchain.
s3s_root="$HOME/.cache/trelay/s3s-fs"
if [ ! -x "$s3s_root/bin/s3s-fs" ] && [ -z "${TRELAY_S3S_FS:-}" ]; then
  echo "test.sh: installing s3s-fs into $s3s_root"
  cargo install s3s-fs --version 0.13.0 --features binary --locked --root "$s3s_root"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --locked
cargo test --workspace --locked --no-fail-fast
