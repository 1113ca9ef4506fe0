#!/bin/bash
# Records a small local CTF 2 trace with the LTTng 2.15 bundle (an isolated session daemon of its
# own), as in fixtures/lttng-2.15-ctf2-local-uid: record-ctf2-local.sh OUT [BUNDLE].
# Takes the machine-wide lock the integration tests take around session daemons.
set -euo pipefail
OUT=$(realpath -m "$1")
BUNDLE=${2:-$(dirname "$0")/../../../../shared/peers/lttng-2.15}
. "$BUNDLE/env.sh"
T=$(mktemp -d)
trap 'kill $(cat $T/run/lttng-sessiond.pid 2>/dev/null) 2>/dev/null || true; rm -rf $T' EXIT
export LTTNG_HOME=$T/home LTTNG_RUNDIR=$T/run LTTNG_UST_CTL_PATH=$T/run LTTNG_UST_APP_PATH=$T/run
mkdir -p "$LTTNG_HOME" "$LTTNG_RUNDIR"
gcc -O0 -fno-builtin -o "$T/prog" "$BUNDLE/build-scripts/prog.c"
exec 9>/tmp/trelay-integration-lttng.lock
flock 9
lttng-sessiond --no-kernel -d
lttng create s --output="$OUT"
lttng enable-channel -u c0 --subbuf-size=4096 --num-subbuf=4
lttng enable-event -u 'lttng_ust_libc:*' -c c0
lttng start
LD_PRELOAD=$LTTNG215_UST_LIBC_WRAPPER "$T/prog" 40
lttng stop
lttng destroy s
babeltrace2 "$OUT" > "$OUT.babeltrace.txt"
