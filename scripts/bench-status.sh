#!/usr/bin/env bash
# Ingest throughput with the status page open and refreshing versus closed: one bench row
# (`trelay-consumer bench`, LTTng protocol, indexed packets, one stream), REPEAT runs of each case
# taking turns, a fresh trelayd (--metrics-addr on in both cases) per run. "Open" polls what the
# page's script fetches: the page once, then /api/v1/status and /api/v1/sessions every second.
# Prints one JSON line per run and the medians.
# usage: scripts/bench-status.sh   (SIZE=4K STREAMS=1 DURATION=4 REPEAT=3 DURABILITY=none)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-4K}
STREAMS=${STREAMS:-1}
DURATION=${DURATION:-4}
REPEAT=${REPEAT:-3}
DURABILITY=${DURABILITY:-none}
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "bench-status: $tool is required" >&2; exit 1; }
done
cargo build --release --locked -p trelay-consumer -p trelay-relayd >&2
BIN=target/release
WORK=$(mktemp -d /tmp/trelay-bench-status.XXXXXX)
RESULTS="$WORK/results.jsonl"
RELAY=""
POLLER=""
cleanup() {
  [ -n "$POLLER" ] && kill "$POLLER" 2>/dev/null || true
  [ -n "$RELAY" ] && kill "$RELAY" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

run() {
  local case=$1 n=$2
  rm -rf "$WORK/out" "$WORK/ports.json"
  "$BIN/trelayd" -o "$WORK/out" -C tcp://127.0.0.1:0 -D tcp://127.0.0.1:0 -L tcp://127.0.0.1:0 \
    --metrics-addr 127.0.0.1:0 --durability="$DURABILITY" --ports-file "$WORK/ports.json" \
    >"$WORK/trelayd.log" 2>&1 &
  RELAY=$!
  for _ in $(seq 1 200); do [ -s "$WORK/ports.json" ] && break; sleep 0.1; done
  read -r CTRL DATA OPS < <(python3 -c "import json; p=json.load(open('$WORK/ports.json')); print(p['control'], p['data'], p['metrics'])")
  if [ "$case" = open ]; then
    (
      curl -sf "http://127.0.0.1:$OPS/" >/dev/null || true
      while :; do
        curl -sf "http://127.0.0.1:$OPS/api/v1/status" >/dev/null || true
        curl -sf "http://127.0.0.1:$OPS/api/v1/sessions" >/dev/null || true
        sleep 1
      done
    ) &
    POLLER=$!
  fi
  echo "bench-status: $case run $n" >&2
  "$BIN/trelay-consumer" bench --url "net://127.0.0.1:$CTRL:$DATA" --streams "$STREAMS" \
    --packet-size "$SIZE" --duration "$DURATION" --relay-pid "$RELAY" --label "page-$case" \
    --session "status-$case-$n" --json | tee -a "$RESULTS"
  if [ -n "$POLLER" ]; then kill "$POLLER" 2>/dev/null || true; wait "$POLLER" 2>/dev/null || true; POLLER=""; fi
  kill "$RELAY"; wait "$RELAY" 2>/dev/null || true; RELAY=""
}

for n in $(seq 1 "$REPEAT"); do
  run closed "$n"
  run open "$n"
done
python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for case in ("page-closed", "page-open"):
    r = [x for x in rows if x.get("label") == case]
    mb = [x["mb_per_s"] for x in r]
    cpu = [x["relay_cpu_s_per_gb"] for x in r if x.get("relay_cpu_s_per_gb") is not None]
    print(f"{case}: MB/s median {statistics.median(mb):.1f} (runs {', '.join(f'{v:.1f}' for v in mb)}); "
          f"relay CPU s/GB median {statistics.median(cpu):.2f}")
EOF
