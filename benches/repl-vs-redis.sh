#!/usr/bin/env bash
# Replication against redis-server's in the same run (issue 5 "Performance").
#
#   benches/repl-vs-redis.sh [-n REQUESTS] [-k KEYS] [-d]
#
#   -n  requests per redis-benchmark case (default 200000)
#   -k  lists of 1000 ~200-byte records loaded before the full-sync case (default 2000,
#       about 400 MB)
#   -d  use the debug build (only for checking the script)
#
# 1. Master throughput with 2 replicas attached vs none: redis-benchmark RPUSH and SET
#    (50 clients, -P 16) against kura (replicas: kura) and redis-server (replicas:
#    redis-server). Target: with/without >= 0.8.
# 2. Full sync time: a replica attaches to a loaded master (diskless, no delay); time from
#    REPLICAOF to master_link_status:up. Ratio kura/redis, target <= 1.0.
# Both servers run with --save "" in private dirs on free ports, stopped at the end.
set -euo pipefail

REQUESTS=200000
KEYS=2000
PROFILE=release
# Prints the comment block at the top of this script (its help), whatever its length.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }
while getopts "n:k:dh" opt; do
    case $opt in
        n) REQUESTS=$OPTARG ;;
        k) KEYS=$OPTARG ;;
        d) PROFILE=debug ;;
        h) usage ;;
        *) usage 1 ;;
    esac
done
cd "$(dirname "$0")/.."
[ "$PROFILE" = release ] && cargo build --release --quiet --bins
BIN=target/$PROFILE
. benches/common.sh
rps() { redis-benchmark -p "$1" -c 50 -P 16 -n "$REQUESTS" -t "$2" --csv | tail -1 | cut -d, -f2 | tr -d '"'; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }

start() { # $1 = kura|redis, $2 = name, rest = extra flags; sets PORT
    local port; port=$(free_port); mkdir -p "$WORK/$2"
    if [ "$1" = kura ]; then
        NO_COLOR=1 "$BIN/kura" --port "$port" --save "" --dir "$WORK/$2" --forward-port 0 \
            --http-port 0 --repl-diskless-sync-delay 0 "${@:3}" >"$WORK/$2.log" 2>&1 &
    else
        redis-server --port "$port" --save "" --dir "$WORK/$2" --repl-diskless-sync-delay 0 \
            "${@:3}" >"$WORK/$2.log" 2>&1 &
    fi
    PIDS+=($!); wait_port "$port"; PORT=$port
}
# kura takes Redis's config-file form ("host port" as one value), redis-server two words.
start_replica() { # $1 = kura|redis, $2 = name, $3 = master port
    if [ "$1" = kura ]; then start kura "$2" --replicaof "127.0.0.1 $3"
    else start redis "$2" --replicaof 127.0.0.1 "$3"; fi
}
link_up() { for _ in $(seq 6000); do redis-cli -p "$1" info replication | grep -q "master_link_status:up" && return 0; sleep 0.05; done; return 1; }

printf '%-34s %12s %12s %8s\n' case kura redis ratio
for t in rpush set; do
    for srv in kura redis; do
        start $srv "$srv-m-$t"; m=$PORT
        alone=$(rps "$m" $t)
        start_replica $srv "$srv-a-$t" "$m"; a=$PORT; link_up "$a"
        start_replica $srv "$srv-b-$t" "$m"; b=$PORT; link_up "$b"
        with=$(rps "$m" $t)
        eval "${srv}_alone=$alone ${srv}_with=$with"
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=()
    done
    printf '%-34s %12s %12s %8s\n' "$t -P16 no replicas (rps)" "$kura_alone" "$redis_alone" "$(ratio "$kura_alone" "$redis_alone")"
    printf '%-34s %12s %12s %8s\n' "$t -P16 2 replicas (rps)" "$kura_with" "$redis_with" "$(ratio "$kura_with" "$redis_with")"
    printf '%-34s %12s %12s\n' "$t with/without replicas" "$(ratio "$kura_with" "$kura_alone")" "$(ratio "$redis_with" "$redis_alone")"
done

for srv in kura redis; do
    start $srv "$srv-fm"; m=$PORT
    python3 - "$m" "$KEYS" <<'PY'
import socket, sys
port, keys = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
rec = b'{"time":"2026-11-24T10:00:00Z","host":"web-01","level":"info","msg":"' + b"x" * 120 + b'"}'
def cmd(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out
for k in range(keys):
    s.sendall(cmd([b"RPUSH", b"log:%d" % k] + [rec] * 1000))
got = b""
while got.count(b"\r\n") < keys:
    got += s.recv(1 << 16)
PY
    start $srv "$srv-fr"; r=$PORT
    t0=$(date +%s.%N)
    redis-cli -p "$r" replicaof 127.0.0.1 "$m" >/dev/null
    link_up "$r"
    t1=$(date +%s.%N)
    eval "${srv}_sync=$(python3 -c "print(f'{$t1-$t0:.2f}')")"
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=()
done
printf '%-34s %12s %12s %8s\n' "full sync of $KEYS x 1000 records (s)" "$kura_sync" "$redis_sync" "$(ratio "$kura_sync" "$redis_sync")"
