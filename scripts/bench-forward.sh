#!/usr/bin/env bash
# Edge → core forwarding: `trelay-consumer bench` into an edge trelayd (LTTng protocol, every
# packet indexed) that forwards to a core trelayd over trelay://, both release builds on this
# machine. Prints one markdown row per packet size: the edge's ingest rate, the rate at which
# the core acknowledged everything (first packet to last acknowledgement), how long the core
# lagged after the load stopped, and each relay's CPU seconds per GB.
#
# usage: scripts/bench-forward.sh
#        PACKETS="4K" STREAMS=4 DURATION=5 scripts/bench-forward.sh
# Environment: PACKETS, STREAMS, CONNECTIONS, DURATION (s), DURABILITY (none|beacon, both
# relays), WORK (scratch directory), KEEP=1 to keep it.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKETS=${PACKETS:-"4K 256K"}
STREAMS=${STREAMS:-4}
CONNECTIONS=${CONNECTIONS:-4}
DURATION=${DURATION:-5}
DURABILITY=${DURABILITY:-beacon}
TARGET=${CARGO_TARGET_DIR:-target}
BIN="$TARGET/release"

cargo build --release --locked -p trelay-consumer -p trelay-relayd >&2
WORK=${WORK:-$(mktemp -d /tmp/trelay-forward.XXXXXX)}
mkdir -p "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=scripts/lib/metric.sh
. scripts/lib/metric.sh
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
start() { # start NAME EXTRA... ; sets PID and PORTS_FILE
  local dir="$WORK/$1"; shift
  mkdir -p "$dir"
  "$BIN/trelayd" -o "$dir/out" -C tcp://127.0.0.1:0 -D tcp://127.0.0.1:0 -L tcp://127.0.0.1:0 \
    --durability "$DURABILITY" --metrics-addr 127.0.0.1:0 --ports-file "$dir/ports.json" "$@" \
    2>"$dir/trelayd.log" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 100); do [ -s "$dir/ports.json" ] && break; sleep 0.1; done
  PORTS_FILE="$dir/ports.json"
}
port() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

echo "| packet | streams | edge ingest MB/s | core acknowledged MB/s | core lag after the load s | edge CPU s/GB | core CPU s/GB |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for p in $PACKETS; do
  start "core-$p"; core=$PID; core_control=$(port "$PORTS_FILE" control)
  start "edge-$p" --forward "trelay://127.0.0.1:$core_control"; edge=$PID; f="$PORTS_FILE"
  control=$(port "$f" control); data=$(port "$f" data); metrics=$(port "$f" metrics)
  t0=$(date +%s.%N)
  "$BIN/trelay-consumer" bench --url "net://127.0.0.1:$control:$data" --streams "$STREAMS" \
    --connections "$CONNECTIONS" --packet-size "$p" --duration "$DURATION" --json \
    >"$WORK/bench-$p.json"
  t1=$(date +%s.%N)
  for _ in $(seq 1 1200); do
    [ "$(metric trelay_forward_sessions "$metrics")" = "0" ] && break
    sleep 0.1
  done
  t2=$(date +%s.%N)
  acked=$(metric trelay_forward_acked_bytes_total "$metrics")
  ecpu=$(cpu "$edge"); ccpu=$(cpu "$core")
  python3 - "$WORK/bench-$p.json" "$p" "$STREAMS" "$t0" "$t1" "$t2" "$acked" "$ecpu" "$ccpu" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p, streams = sys.argv[2], sys.argv[3]
t0, t1, t2, acked, ecpu, ccpu = map(float, sys.argv[4:])
gb = r["bytes"] / 1e9
fwd = acked / 1e6 / max(t2 - t0, 1e-9)
print(f"| {p} | {streams} | {r['mb_per_s']:.0f} | {fwd:.0f} | {t2 - t1:.2f} | {ecpu / gb:.2f} | {ccpu / gb:.2f} |")
if abs(acked - r["bytes"]) > 0:
    print(f"forwarded {acked:.0f} bytes of {r['bytes']}", file=sys.stderr)
PY
  kill "$edge" "$core"; wait "$edge" "$core" 2>/dev/null || true; PIDS=()
done
