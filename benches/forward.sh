#!/usr/bin/env bash
# The forward door's throughput with kura-bench, each case against a freshly started kura
# (a kura already holding gigabytes of earlier runs measures page faults, not the door).
#
#   benches/forward.sh [-s SECONDS] [-c CONNS] [-b BATCH] [-w WINDOW] [-d]
#
#   -s  seconds per case (default 5; records are kept in memory: ~1 GB per 4M records)
#   -c  connections (default 2)
#   -b  records per chunk (default 1000)
#   -w  chunks in flight per connection (default 4)
#   -d  use the debug build (only for checking the script)
#
# Cases: plain with acks, gzip with acks, plain without acks. kura runs with its defaults
# (default route: RPUSH ${tag} JSON, ack_after applied), no saving, on free ports.
set -euo pipefail

SECONDS_PER=5
CONNS=2
BATCH=1000
WINDOW=4
PROFILE=release

# Prints the comment block at the top of this script (its help), whatever its length.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }
while getopts "s:c:b:w:dh" opt; do
    case $opt in
        s) SECONDS_PER=$OPTARG ;;
        c) CONNS=$OPTARG ;;
        b) BATCH=$OPTARG ;;
        w) WINDOW=$OPTARG ;;
        d) PROFILE=debug ;;
        h) usage ;;
        *) usage 1 ;;
    esac
done

cd "$(dirname "$0")/.."
if [ "$PROFILE" = release ]; then
    cargo build --release --quiet --bins
fi
BIN=target/$PROFILE
WORK=$(mktemp -d)
KURA_PID=
cleanup() {
    if [ -n "$KURA_PID" ]; then kill "$KURA_PID" 2>/dev/null || true; wait "$KURA_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

start_kura() {
    NO_COLOR=1 "$BIN/kura" --port 0 --save "" --dir "$WORK" --forward-port 0 --http-port 0 \
        >"$WORK/kura.log" 2>&1 &
    KURA_PID=$!
    for _ in $(seq 100); do
        ADDR=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/kura.log" |
            sed -n 's/.*forward door listening tcp and udp addr=\([0-9.:]*\).*/\1/p' | head -1)
        [ -n "$ADDR" ] && return 0
        sleep 0.1
    done
    echo "kura did not start:" >&2
    cat "$WORK/kura.log" >&2
    exit 1
}

stop_kura() {
    kill "$KURA_PID"
    wait "$KURA_PID" 2>/dev/null || true
    KURA_PID=
}

printf '%-22s %12s %10s %10s %10s\n' case "records/s" "MB/s" "p50 ms" "p99 ms"
for case in "plain+ack:--ack" "gzip+ack:--ack --gzip" "plain, no ack:"; do
    name=${case%%:*}
    flags=${case#*:}
    start_kura
    # shellcheck disable=SC2086
    out=$("$BIN/kura-bench" forward --addr "$ADDR" --conns "$CONNS" --batch "$BATCH" \
        --window "$WINDOW" --duration "$SECONDS_PER" --json $flags)
    stop_kura
    python3 - "$name" "$out" <<'PY'
import json, sys
name, out = sys.argv[1], json.loads(sys.argv[2])
g = lambda *ks: next((out[k] for k in ks if out.get(k) is not None), float("nan"))
print(f"{name:<22} {g('records_per_s'):>12,.0f} {g('payload_mb_per_s'):>10.1f} "
      f"{g('ack_p50_ms'):>10.2f} {g('ack_p99_ms'):>10.2f}")
PY
done
