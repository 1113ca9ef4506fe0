#!/usr/bin/env bash
# The whole trelay test suite. Installs what the tests need when it is missing (the real LTTng
# tools and babeltrace2, which the end-to-end tests drive, and Prometheus with promtool, which
# scrapes the relay in the operations tests), then runs format, lint and tests.
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
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "test.sh: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq lttng-tools liblttng-ust-dev babeltrace2 python3 prometheus >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --locked
cargo test --workspace --locked
