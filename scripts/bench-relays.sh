#!/usr/bin/env bash
# Side-by-side ingest benchmark: lttng-relayd and trelayd (--durability=none and =beacon) on this
# machine, the same `trelay-consumer bench` matrix against each, in one run. Writes
# docs/PERFORMANCE.md, docs/performance.svg (and docs/performance.png when rsvg-convert is
# installed) and docs/performance-results.jsonl.
#
# usage: scripts/bench-relays.sh            (3 runs of 4 s per row and relay)
#        REPORT_ONLY=1 scripts/bench-relays.sh (rewrite PERFORMANCE.md from the last run, e.g.
#                                              after editing docs/performance-notes.md)
#        DURATION=2 REPEAT=1 SIZES="4K" STREAMS="1" scripts/bench-relays.sh
# Environment: DURATION (s per run), REPEAT (runs per row and relay; the report shows the
# median), SIZES, STREAMS, INDEX ("yes no"), MANY (connection pairs of the many-senders rows,
# "8 32"; empty for none), SESSIONS (tracing sessions of the several-sessions rows: that many
# connection pairs, one stream each, dealt among that many sessions, "8"; empty for none),
# CTF2 (packet sizes of the CTF 2 rows: one indexed stream of a synthetic CTF 2 trace, "4K";
# empty for none; lttng-relayd 2.13 takes no CTF 2 and sits them out), RELAYS, WINDOW (SEND_INDEX
# replies left in flight, 0 = like lttng-consumerd), WORK (scratch directory, on the disk to
# measure; default a new directory under /tmp), KEEP=1 to keep it.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-4}
REPEAT=${REPEAT:-3}
SIZES=${SIZES:-"4K 256K"}
STREAMS=${STREAMS:-"1 4"}
INDEX=${INDEX:-"yes no"}
MANY=${MANY-"8 32"}
SESSIONS=${SESSIONS-"8"}
CTF2=${CTF2-"4K"}
WINDOW=${WINDOW:-0}
TARGET=${CARGO_TARGET_DIR:-target}
BIN="$TARGET/release"

for tool in lttng-relayd python3; do
  command -v "$tool" >/dev/null || { echo "bench-relays: $tool is required" >&2; exit 1; }
done

if [ "${REPORT_ONLY:-0}" = 1 ]; then
  # Rewrite the report (after editing the notes) from the last run's results and conditions.
  # shellcheck source=/dev/null
  . docs/performance-run.env
  RESULTS=docs/performance-results.jsonl
  cargo build --release --locked -p trelay-consumer >&2
else
echo "bench-relays: building release binaries" >&2
cargo build --release --locked -p trelay-consumer -p trelay-relayd >&2

WORK=${WORK:-$(mktemp -d /tmp/trelay-bench.XXXXXX)}
mkdir -p "$WORK"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

free_ports() {
  python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))'
}

wait_port() {
  for _ in $(seq 1 200); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench-relays: nothing listens on port $1" >&2
  return 1
}

# The disk's sequential write bandwidth with fdatasync, where the relays write.
echo "bench-relays: measuring the disk (512 MiB, fdatasync)" >&2
DISK_MBPS=$(dd if=/dev/zero of="$WORK/dd.test" bs=1M count=512 conv=fdatasync 2>&1 |
  python3 -c 'import sys,re
t=sys.stdin.read(); m=re.search(r"(\d+) bytes.* copied, ([\d.]+) s", t)
print(round(int(m.group(1))/float(m.group(2))/1e6))')
rm -f "$WORK/dd.test"
echo "bench-relays: disk ${DISK_MBPS} MB/s with fdatasync" >&2

# Loopback TCP bandwidth: 2 GiB through one connection, 1 MiB writes (the ceiling of the
# 256 KiB rows).
LOOPBACK_MBPS=$(python3 - <<'PY'
import socket, threading, time
N = 2 << 30
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def sink():
    c, _ = srv.accept(); buf = bytearray(1 << 20); got = 0
    while got < N:
        n = c.recv_into(buf)
        if not n: break
        got += n
t = threading.Thread(target=sink); t.start()
s = socket.create_connection(srv.getsockname()); chunk = b"\0" * (1 << 20)
start = time.time(); sent = 0
while sent < N:
    s.sendall(chunk); sent += len(chunk)
s.close(); t.join()
print(round(N / (time.time() - start) / 1e6))
PY
)
echo "bench-relays: loopback TCP ${LOOPBACK_MBPS} MB/s" >&2

# start_relay LABEL -> sets PID CTRL DATA OUT (three attempts: a picked port may be taken).
start_relay() {
  for _ in 1 2 3; do
    try_start_relay "$1" && return 0
    stop_relay
  done
  echo "bench-relays: cannot start $1 (see $WORK/$1.log)" >&2
  return 1
}

try_start_relay() {
  local label=$1
  OUT="$WORK/out-$label"
  mkdir -p "$OUT"
  case $label in
    lttng-relayd)
      read -r CTRL DATA LIVE < <(free_ports)
      lttng-relayd -o "$OUT" -C "tcp://127.0.0.1:$CTRL" -D "tcp://127.0.0.1:$DATA" \
        -L "tcp://127.0.0.1:$LIVE" >"$WORK/$label.log" 2>&1 &
      PID=$!
      ;;
    trelayd-* | trelay-*)
      local mode=${label#*-}
      rm -f "$WORK/ports.json"
      "$BIN/trelayd" -o "$OUT" -C tcp://127.0.0.1:0 -D tcp://127.0.0.1:0 -L tcp://127.0.0.1:0 \
        --durability="$mode" --ports-file "$WORK/ports.json" >"$WORK/$label.log" 2>&1 &
      PID=$!
      for _ in $(seq 1 200); do [ -s "$WORK/ports.json" ] && break; sleep 0.1; done
      [ -s "$WORK/ports.json" ] || return 1
      read -r CTRL DATA < <(python3 -c "import json; p=json.load(open('$WORK/ports.json')); print(p['control'], p['data'])")
      ;;
  esac
  PIDS+=("$PID")
  wait_port "$CTRL"
}

stop_relay() {
  kill "$PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  # lttng-relayd sometimes ignores SIGTERM after a run; do not wait for it forever.
  kill -9 "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}

# Every run gets a freshly started relay (lttng-relayd can stay wedged after a session whose
# packets were never indexed, and a fresh process keeps runs independent). Each row runs REPEAT
# times with the relays taking turns, so a slow spell of the machine hits all of them; the report
# shows the median of each relay's runs.
# trelay-*: trelayd again, the load going over trelay:// (batched, acknowledged; indexed rows
# only, as trelay:// always indexes).
RELAYS=${RELAYS:-"lttng-relayd trelayd-none trelayd-beacon trelay-none trelay-beacon"}
# run_row SIZE STREAMS INDEX CONNECTIONS [SESSIONS [FORMAT]]: REPEAT runs of every relay,
# taking turns.
run_row() {
  local size=$1 streams=$2 index=$3 conns=$4 sessions=${5:-1} format=${6:-ctf-1.8}
  for run in $(seq 1 "$REPEAT"); do
    for relay in $RELAYS; do
      flag=()
      [ "$index" = no ] && flag=(--no-index)
      case $relay in trelay-*) [ "$index" = no ] && continue ;; esac
      # Over trelay:// every connection is a session already: the rows of several sessions
      # are the LTTng path's.
      case $relay in trelay-*) [ "$sessions" -gt 1 ] && continue ;; esac
      # lttng-relayd 2.13 speaks protocol 2.13, which cannot carry a CTF 2 session.
      [ "$format" = ctf-2 ] && [ "$relay" = lttng-relayd ] && continue
      sync
      start_relay "$relay"
      echo "bench-relays: $relay $size x$streams/$conns index=$index $format run $run/$REPEAT (pid $PID)" >&2
      url="net://127.0.0.1:$CTRL:$DATA"
      case $relay in trelay-*) url="trelay://127.0.0.1:$CTRL" ;; esac
      if ! timeout $((DURATION + 300)) "$BIN/trelay-consumer" bench --url "$url" \
        --streams "$streams" --connections "$conns" --sessions "$sessions" \
        --packet-size "$size" --duration "$DURATION" \
        --index-window "$WINDOW" "${flag[@]}" --relay-pid "$PID" --label "$relay" \
        --trace-format "$format" \
        --session "b-$relay-$size-$streams-$conns-$sessions-$index-$format-$run" --json | tee -a "$RESULTS" >&2; then
        echo "bench-relays: $relay $size x$streams/$conns index=$index $format FAILED" >&2
      fi
      stop_relay
      rm -rf "${OUT:?}"
    done
  done
}

for size in $SIZES; do
  for streams in $STREAMS; do
    for index in $INDEX; do
      run_row "$size" "$streams" "$index" 1
    done
  done
done
# Many senders: one stream per connection pair (each pair a relay session of its own), 4 KiB
# indexed packets, where lttng-relayd's single ingest thread is the limit.
for conns in $MANY; do
  run_row 4K "$conns" yes "$conns"
done
# Several tracing sessions at once: as many pairs as sessions, dealt one per session.
for n in $SESSIONS; do
  run_row 4K "$n" yes "$n" "$n"
done
# CTF 2: the same synthetic trace with JSON metadata (data packets are alike in both formats).
for size in $CTF2; do
  run_row "$size" 1 yes 1 1 ctf-2
done


RUN_DATE=$(date -u +%Y-%m-%d)
RUN_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
RUN_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p docs
cp "$RESULTS" docs/performance-results.jsonl
cat >docs/performance-run.env <<ENV
DISK_MBPS=$DISK_MBPS
LOOPBACK_MBPS=$LOOPBACK_MBPS
DURATION=$DURATION
REPEAT=$REPEAT
WINDOW=$WINDOW
RUN_DATE=$RUN_DATE
RUN_COMMIT=$RUN_COMMIT
RUN_LOAD="$RUN_LOAD"
ENV
fi

TABLES=$("$BIN/trelay-consumer" report "$RESULTS" --baseline lttng-relayd --disk-mbps "$DISK_MBPS" \
  --svg docs/performance.svg)
if command -v rsvg-convert >/dev/null; then
  rsvg-convert -o docs/performance.png docs/performance.svg
fi

{
  cat <<HEAD
# Performance: trelayd against lttng-relayd

Generated by \`scripts/bench-relays.sh\` on ${RUN_DATE} (commit \`${RUN_COMMIT}\`).
Do not edit by hand: rerun the script. Notes on the results live in \`docs/performance-notes.md\`
and are copied below.

## Setup

- Machine: $(nproc) cores, $(uname -sr), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) of memory; relays and load generator share it.
  Load average when the run ended: ${RUN_LOAD} (other work on the machine skews the numbers).
- Relays: $(lttng-relayd --version 2>&1 | head -1); trelayd from this commit with \`--durability=none\`
  (no fsync, like lttng-relayd) and \`--durability=beacon\` (fdatasync of data then index at every
  commit). All three write to the same disk, measured at **${DISK_MBPS} MB/s** with
  \`dd bs=1M count=512 conv=fdatasync\`. Loopback TCP carries **${LOOPBACK_MBPS} MB/s** through one
  connection (1 MiB writes).
- \`trelay-none\` and \`trelay-beacon\`: trelayd again (same two modes), the load going over
  trelay:// (\`docs/TRELAY-PROTOCOL.md\`): packets in batches of 256 KiB with their index fields,
  a commit requested every 16 MiB and acknowledged at the committed level, the run ending when
  the relay acknowledged the close. Indexed rows only.
- Load: \`trelay-consumer bench --duration ${DURATION} --index-window ${WINDOW}\` for every run: synthetic
  64-bit LTTng packets (84-byte header and context, 64-byte events, zero padding) on one
  control+data connection pair (\`N (N conns)\` rows: N pairs of one tracing session, a stream each;
  \`N (N conns, N sessions)\`: N tracing sessions of one pair and one stream each; \`N, CTF 2\`:
  the same packets with CTF 2 metadata, \`--trace-format ctf-2\`, over protocol 2.15 — lttng-relayd
  2.13 cannot take a CTF 2 session and has no figure there); with index, every packet is followed by its SEND_INDEX and (window
  0) the generator waits for the reply before the next packet, as lttng-consumerd does. Throughput
  counts whole packets from the first one until the relay reports no data pending (without
  index: until it has read the data connection to its end). CPU is the relay process's user +
  system time (\`/proc/PID/stat\`) over the same span, per 10⁹ bytes.
- Each row ran ${REPEAT} times per relay, the relays taking turns; every run starts a fresh relay,
  deletes its output and runs \`sync\` before it. **Every figure below is the median of a relay's
  ${REPEAT} runs** (\`docs/performance-results.jsonl\` has each run).

## Results

HEAD
  echo "$TABLES"
  cat <<'PLOT'

![Throughput and CPU per GB, per matrix row and relay](performance.svg)

Raw results: `docs/performance-results.jsonl` (one `bench --json` report per row).
PLOT
  if [ -f docs/performance-notes.md ]; then
    echo
    echo "## Notes"
    echo
    cat docs/performance-notes.md
  fi
} >docs/PERFORMANCE.md
echo "bench-relays: wrote docs/PERFORMANCE.md" >&2
