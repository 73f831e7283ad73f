#!/usr/bin/env bash
# kura against redis-server on the same machine, in the same run: throughput with
# redis-benchmark (unpipelined and pipelined) and memory for a log-shaped dataset.
#
#   benches/resp-vs-redis.sh [-n REQUESTS] [-c CLIENTS] [-t TESTS] [-P "1 16"] [-R ROUNDS] [-m RECORDS] [-d]
#
#   -n  requests per redis-benchmark test (default 1000000; use e.g. 20000 for a quick run)
#   -c  parallel clients (default 50)
#   -t  comma-separated redis-benchmark tests
#       (default set,get,incr,lpush,rpush,lpop,rpop,hset,lrange_100,lrange_600,mset)
#   -P  pipeline depths (default "1 16")
#   -R  rounds per test (default 3): the servers take turns, redis then kura, ROUNDS times,
#       and the median of each is reported, so a burst of noise from a neighbour on this
#       shared machine lands on one round of one server, not on the figure
#   -m  records for the memory check (default 1000000 records of 200 bytes in 10 lists)
#   -d  use the debug build (target/debug/kura) instead of building --release
#       (numbers then say nothing about kura's speed; only for checking the script)
#
# Both servers run with --save "" on free loopback ports and are stopped at the end. Each
# test runs as its own redis-benchmark invocation, so a test one server fails (redis-benchmark
# aborts on an error reply) shows as "error" without hiding the others.
set -euo pipefail

REQUESTS=1000000
CLIENTS=50
TESTS=set,get,incr,lpush,rpush,lpop,rpop,hset,lrange_100,lrange_600,mset
DEPTHS="1 16"
ROUNDS=3
RECORDS=1000000
PROFILE=release

# Prints the comment block at the top of this script (its help), whatever its length.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }
while getopts "n:c:t:P:R:m:dh" opt; do
    case $opt in
        n) REQUESTS=$OPTARG ;;
        c) CLIENTS=$OPTARG ;;
        t) TESTS=$OPTARG ;;
        P) DEPTHS=$OPTARG ;;
        R) ROUNDS=$OPTARG ;;
        m) RECORDS=$OPTARG ;;
        d) PROFILE=debug ;;
        h) usage 0 ;;
        *) usage 2 ;;
    esac
done

cd "$(dirname "$0")/.."
for tool in redis-server redis-cli redis-benchmark python3; do
    command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done

. benches/common.sh

if [ "$PROFILE" = release ]; then
    echo "building kura --release ..." >&2
    cargo build --release --quiet --bin kura
else
    cargo build --quiet --bin kura
fi
KURA_BIN=target/$PROFILE/kura

# Starts one server of each kind on fresh ports with empty data; sets REDIS_PORT, KURA_PORT.
start_servers() {
    REDIS_PORT=$(free_port)
    KURA_PORT=$(free_port)
    mkdir -p "$WORK/redis-$REDIS_PORT" "$WORK/kura-$KURA_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$WORK/redis-$REDIS_PORT" --loglevel warning >"$WORK/redis-$REDIS_PORT.log" 2>&1 &
    PIDS+=($!)
    REDIS_PID=$!
    "$KURA_BIN" --port "$KURA_PORT" --save "" --dir "$WORK/kura-$KURA_PORT" \
        --forward-port "$(free_port)" --http-port "$(free_port)" --loglevel warning \
        >"$WORK/kura-$KURA_PORT.log" 2>&1 &
    PIDS+=($!)
    KURA_PID=$!
    wait_port "$REDIS_PORT"
    wait_port "$KURA_PORT"
}

stop_servers() {
    for pid in "$REDIS_PID" "$KURA_PID"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# Prints the requests per second of one test at one depth, or "error".
rps() {
    local port=$1 test=$2 depth=$3 out name
    out=$(redis-benchmark -p "$port" -t "$test" -n "$REQUESTS" -c "$CLIENTS" -r 100000 \
        -P "$depth" --csv 2>/dev/null) || true
    # The CSV row's first field starts with the test's name in capitals ("LRANGE_100 (first
    # 100 elements)"); lrange tests also print the LPUSH that fills the list first.
    name=$(echo "$test" | tr '[:lower:]' '[:upper:]')
    echo "$out" | awk -F'"' -v n="$name" '
        { split($2, w, " ") } w[1] == n && $4 ~ /^[0-9.]+$/ { print $4; found = 1; exit }
        END { if (!found) print "error" }'
}

# Prints the median of its arguments ("error" if any round failed).
median() {
    printf '%s\n' "$@" | sort -g | awk '
        !/^[0-9.]+$/ { bad = 1 } { v[NR] = $1 }
        END { if (bad || NR == 0) print "error"; else print v[int((NR + 1) / 2)] }'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && a > 0) printf "%.2f", b / a; else printf "n/a" }'
}

# ---- THROUGHPUT ----

start_servers
printf '\nredis-benchmark -n %s -c %s -r 100000, median of %s alternating rounds (kura: %s build)\n\n' \
    "$REQUESTS" "$CLIENTS" "$ROUNDS" "$PROFILE"
printf '%-12s %6s %14s %14s %12s\n' test depth "redis ops/s" "kura ops/s" "kura/redis"
printf '%-12s %6s %14s %14s %12s\n' ------------ ------ -------------- -------------- ------------
for depth in $DEPTHS; do
    for test in ${TESTS//,/ }; do
        rs=() ks=()
        for _ in $(seq "$ROUNDS"); do
            rs+=("$(rps "$REDIS_PORT" "$test" "$depth")")
            ks+=("$(rps "$KURA_PORT" "$test" "$depth")")
        done
        r=$(median "${rs[@]}")
        k=$(median "${ks[@]}")
        printf '%-12s %6s %14s %14s %12s\n' "$test" "$depth" "$r" "$k" "$(ratio "$r" "$k")"
    done
done
stop_servers

# ---- MEMORY ----

# RECORDS RPUSHes of 200-byte JSON records spread over 10 lists, as fluentd would store logs.
python3 - "$RECORDS" >"$WORK/records.resp" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
for i in range(n):
    head = '{"time":%d,"host":"web-%02d","level":"info","msg":"' % (1700000000 + i, i % 50)
    rec = (head + "x" * (200 - len(head) - 2) + '"}').encode()
    assert len(rec) == 200
    key = b"logs:%d" % (i % 10)
    out.write(b"*3\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n$200\r\n%s\r\n" % (len(key), key, rec))
PY

used_memory() {
    redis-cli -p "$1" INFO memory 2>/dev/null | tr -d '\r' |
        awk -F: '$1 == "used_memory" { print $2; found = 1 } END { if (!found) print "n/a" }'
}

start_servers
declare -A MEM_BEFORE MEM_AFTER
for side in redis kura; do
    port=$REDIS_PORT
    [ "$side" = kura ] && port=$KURA_PORT
    MEM_BEFORE[$side]=$(used_memory "$port")
    summary=$(redis-cli -p "$port" --pipe <"$WORK/records.resp" 2>&1 | tail -1) || true
    echo "$side: redis-cli --pipe: $summary" >&2
    MEM_AFTER[$side]=$(used_memory "$port")
done
stop_servers

printf '\nmemory: %s records of 200 bytes in 10 lists (INFO used_memory, bytes)\n\n' "$RECORDS"
printf '%-8s %16s %16s %14s\n' server before after "per record"
printf '%-8s %16s %16s %14s\n' -------- ---------------- ---------------- --------------
for side in redis kura; do
    per=$(awk -v a="${MEM_BEFORE[$side]}" -v b="${MEM_AFTER[$side]}" -v n="$RECORDS" 'BEGIN {
        if (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/ && n > 0) printf "%.1f", (b - a) / n; else printf "n/a" }')
    printf '%-8s %16s %16s %14s\n' "$side" "${MEM_BEFORE[$side]}" "${MEM_AFTER[$side]}" "$per"
done
printf '\nkura/redis used_memory: %s\n' "$(ratio "${MEM_AFTER[redis]}" "${MEM_AFTER[kura]}")"
