#!/usr/bin/env bash
# Many streams: trelayd (release build) receiving a synthetic session of N streams from
# `trelay-consumer bench`, with an open-file pool smaller than the number of stream files.
# Prints one markdown row per stream count: throughput, relay CPU, peak RSS, the relay's peak
# open descriptors (sampled every 200 ms) and the pool's evictions.
#
# usage: scripts/bench-streams.sh                     (1,000 and 10,000 streams, 20 s each)
#        COUNTS="1000" DURATION=5 scripts/bench-streams.sh
# Environment: COUNTS, DURATION (s), PACKET (packet size), CONNECTIONS, MAX_OPEN
# (max_open_files), WORK (scratch directory), KEEP=1 to keep it.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNTS=${COUNTS:-"1000 10000"}
DURATION=${DURATION:-20}
PACKET=${PACKET:-4K}
CONNECTIONS=${CONNECTIONS:-4}
MAX_OPEN=${MAX_OPEN:-4096}
TARGET=${CARGO_TARGET_DIR:-target}
BIN="$TARGET/release"

cargo build --release --locked -p trelay-consumer -p trelay-relayd >&2
WORK=${WORK:-$(mktemp -d /tmp/trelay-streams.XXXXXX)}
mkdir -p "$WORK"
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=scripts/lib/metric.sh
. scripts/lib/metric.sh

echo "| streams | max_open_files | MB/s | relay CPU s/GB | peak RSS MiB | peak open fds | pool evictions |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for n in $COUNTS; do
  run="$WORK/$n"
  mkdir -p "$run"
  printf 'max_open_files = %s\ndurability = "none"\n' "$MAX_OPEN" >"$run/trelay.toml"
  "$BIN/trelayd" -o "$run/out" -C tcp://127.0.0.1:0 -D tcp://127.0.0.1:0 -L tcp://127.0.0.1:0 \
    --metrics-addr 127.0.0.1:0 --config "$run/trelay.toml" --ports-file "$run/ports.json" \
    2>"$run/trelayd.log" &
  PID=$!
  for _ in $(seq 1 100); do [ -s "$run/ports.json" ] && break; sleep 0.1; done
  read -r control data metrics < <(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["control"], p["data"], p["metrics"])' "$run/ports.json")
  # Sample the relay's open descriptors while the load runs; keep the highest.
  ( peak=0; while kill -0 "$PID" 2>/dev/null; do
      n_fd=$(ls /proc/"$PID"/fd 2>/dev/null | wc -l); [ "$n_fd" -gt "$peak" ] && peak=$n_fd
      echo "$peak" >"$run/peak-fds"; sleep 0.2; done ) &
  SAMPLER=$!
  "$BIN/trelay-consumer" bench --url "net://127.0.0.1:$control:$data" --streams "$n" \
    --connections "$CONNECTIONS" --packet-size "$PACKET" --duration "$DURATION" \
    --json --relay-pid "$PID" >"$run/bench.json"
  kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true
  hwm=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$PID/status")
  fds=$(cat "$run/peak-fds")
  evicted=$(metric trelay_pool_evictions_total "$metrics" "?")
  python3 - "$run/bench.json" "$n" "$MAX_OPEN" "$hwm" "$fds" "$evicted" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n, mx, hwm, fds, ev = sys.argv[2:]
mbs = r["mb_per_s"]
cpu_gb = r.get("relay_cpu_s_per_gb")
cpu_gb = f"{cpu_gb:.2f}" if cpu_gb else "?"
print(f"| {int(n):,} | {int(mx):,} | {mbs:.0f} | {cpu_gb} | {hwm} | {fds} | {ev} |")
PY
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
done
