#!/usr/bin/env bash
# The AOF against redis-server's in the same run (issue 4 "Performance").
#
#   benches/aof-vs-redis.sh [-n REQUESTS] [-s SECONDS] [-d]
#
#   -n  requests per redis-benchmark case (default 200000)
#   -s  seconds per forward-ingest case (default 5)
#   -d  use the debug build (only for checking the script)
#
# 1. redis-benchmark SET and RPUSH (50 clients, without and with -P 16) against kura and
#    redis-server, both with appendonly yes, for appendfsync everysec and always.
# 2. Forward ingest with acks (kura-bench): ack_after applied without an AOF and with
#    appendfsync always, against appendfsync always + ack_after fsynced (the target: at
#    least 50% of applied). With an AOF, ingest is bound by the disk's write bandwidth.
# Ratios are kura/redis for requests per second (above 1.0 kura is faster) and
# fsynced/applied for ingest. Both servers run with --save "" in private dirs on free
# ports and are stopped at the end.
set -euo pipefail

REQUESTS=200000
SECS=5
PROFILE=release
# Prints the comment block at the top of this script (its help), whatever its length.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }
while getopts "n:s:dh" opt; do
    case $opt in
        n) REQUESTS=$OPTARG ;;
        s) SECS=$OPTARG ;;
        d) PROFILE=debug ;;
        h) usage ;;
        *) usage 1 ;;
    esac
done
cd "$(dirname "$0")/.."
[ "$PROFILE" = release ] && cargo build --release --quiet --bins
BIN=target/$PROFILE
. benches/common.sh
rps() { redis-benchmark -p "$1" -c 50 -n "$REQUESTS" -t "$2" $3 --csv | tail -1 | cut -d, -f2 | tr -d '"'; }

start_pair() { # $1 = appendfsync
    KP=$(free_port); RP=$(free_port)
    rm -rf "$WORK/k" "$WORK/r"; mkdir -p "$WORK/k" "$WORK/r"
    NO_COLOR=1 "$BIN/kura" --port "$KP" --save "" --dir "$WORK/k" --forward-port 0 \
        --http-port 0 --appendonly yes --appendfsync "$1" >"$WORK/k.log" 2>&1 &
    KPID=$!; PIDS+=("$KPID")
    redis-server --port "$RP" --save "" --dir "$WORK/r" --appendonly yes \
        --appendfsync "$1" >"$WORK/r.log" 2>&1 &
    RPID=$!; PIDS+=("$RPID")
    wait_port "$KP"; wait_port "$RP"
}
stop_pair() { kill "$KPID" "$RPID"; wait "$KPID" "$RPID" 2>/dev/null || true; }

printf '%-28s %12s %12s %8s\n' case "kura rps" "redis rps" ratio
for policy in everysec always; do
    start_pair "$policy"
    for t in set rpush; do
        for p in "" "-P 16"; do
            [ "$policy" = always ] && [ -n "$p" ] && continue
            k=$(rps "$KP" "$t" "$p"); r=$(rps "$RP" "$t" "$p")
            printf '%-28s %12.0f %12.0f %8.2f\n' "$policy $t ${p:-P1}" "$k" "$r" \
                "$(python3 -c "print($k/$r)")"
        done
    done
    stop_pair
done

ingest() { # extra kura flags...
    rm -rf "$WORK/f"; mkdir -p "$WORK/f"
    NO_COLOR=1 "$BIN/kura" --port 0 --save "" --dir "$WORK/f" --forward-port 0 --http-port 0 \
        "$@" >"$WORK/f.log" 2>&1 &
    local pid=$!; PIDS+=("$pid")
    local addr=
    for _ in $(seq 100); do
        addr=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/f.log" |
            sed -n 's/.*forward door listening tcp and udp addr=\([0-9.:]*\).*/\1/p' | head -1)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    "$BIN/kura-bench" forward --addr "$addr" --ack --duration "$SECS" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["records_per_s"])'
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
applied=$(ingest)
applied_aof=$(ingest --appendonly yes --appendfsync always)
fsynced=$(ingest --appendonly yes --appendfsync always --forward.ack_after fsynced)
printf '%-34s %12.0f\n' "ingest applied, no AOF" "$applied"
printf '%-34s %12.0f\n' "ingest applied, AOF always" "$applied_aof"
printf '%-34s %12.0f  %5.2f of the first, %5.2f of the second\n' \
    "ingest fsynced, AOF always" "$fsynced" \
    "$(python3 -c "print($fsynced/$applied)")" "$(python3 -c "print($fsynced/$applied_aof)")"
