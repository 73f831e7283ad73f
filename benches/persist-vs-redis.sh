#!/usr/bin/env bash
# kura against redis-server in the same run: SAVE time, load-at-start time and file size
# for the same log-shaped dataset (issue 4 "Performance").
#
#   benches/persist-vs-redis.sh [-r RECORDS] [-h HASHES] [-d]
#
#   -r  list records of ~200 bytes, spread over 100 lists (default 2000000)
#   -h  small hashes of 4 fields (default 200000)
#   -d  use the debug build (only for checking the script)
#
# Then RPUSH p99 latency (redis-benchmark) alone and while BGSAVEs run back to back, and
# the peak RSS meanwhile. Both servers get the same commands through redis-cli --pipe, run with --save "" on free
# ports, and are stopped at the end. Ratios are kura/redis: below 1.0 kura is faster.
set -euo pipefail

RECORDS=2000000
HASHES=200000
PROFILE=release
# Prints the comment block at the top of this script (its help), whatever its length.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }
while getopts "r:h:d" opt; do
    case $opt in
        r) RECORDS=$OPTARG ;;
        h) HASHES=$OPTARG ;;
        d) PROFILE=debug ;;
        *) usage 1 ;;
    esac
done
cd "$(dirname "$0")/.."
[ "$PROFILE" = release ] && cargo build --release --quiet --bin kura
KURA=target/$PROFILE/kura
. benches/common.sh
wait_loaded() { for _ in $(seq 6000); do redis-cli -p "$1" info persistence 2>/dev/null | grep -q '^loading:0' && return 0; sleep 0.05; done; return 1; }

log_dataset "$RECORDS" "$HASHES" >"$WORK/data.resp"


run_case() { # name binary args...
    local name=$1; shift
    local port dir
    port=$(free_port); dir="$WORK/$name"; mkdir -p "$dir"
    "$@" --port "$port" --dir "$dir" --save "" >"$dir/log" 2>&1 &
    PIDS+=($!); local pid=$!
    wait_port "$port"
    redis-cli -p "$port" --pipe <"$WORK/data.resp" >/dev/null
    local t0 t1 t2
    t0=$(date +%s.%N)
    redis-cli -p "$port" save >/dev/null
    t1=$(date +%s.%N)
    local rss
    rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    "$@" --port "$port" --dir "$dir" --save "" >"$dir/log2" 2>&1 &
    PIDS+=($!); pid=$!
    t2=$(date +%s.%N)
    wait_port "$port"; wait_loaded "$port"
    local t3; t3=$(date +%s.%N)
    local size; size=$(stat -c %s "$dir/dump.rdb")
    # RPUSH p99 alone, then with back-to-back BGSAVEs running; peak RSS meanwhile.
    local p99a p99b peak
    p99a=$(p99 "$port")
    ( while [ ! -e "$dir/stop" ]; do
          redis-cli -p "$port" bgsave >/dev/null 2>&1 || true
          sleep 0.05
      done ) &
    local saver=$!
    ( while [ ! -e "$dir/stop" ]; do awk '/VmRSS/{print $2}' "/proc/$pid/status"; sleep 0.05; done >"$dir/rss" ) &
    local sampler=$!
    p99b=$(p99 "$port")
    touch "$dir/stop"; wait "$saver" "$sampler" 2>/dev/null || true
    peak=$(sort -n "$dir/rss" | tail -1)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$name $(echo "$t1 - $t0" | bc) $(echo "$t3 - $t2" | bc) $size $rss $p99a $p99b $peak"
}

r=$(run_case redis redis-server)
k=$(run_case kura "$KURA" --forward-port 0 --http-port 0)
python3 - "$r" "$k" "$RECORDS" "$HASHES" <<'PY'
import sys
r, k = sys.argv[1].split(), sys.argv[2].split()
print(f"dataset: {int(sys.argv[3]):,} list records in 100 lists + {int(sys.argv[4]):,} hashes")
print(f"{'':14}{'redis':>12}{'kura':>12}{'kura/redis':>12}")
rows = [(1, "SAVE s"), (2, "load s"), (3, "file bytes"), (4, "RSS KiB"),
        (5, "RPUSH p99 ms"), (6, "p99 in BGSAVE"), (7, "peak RSS KiB")]
for i, name in rows:
    a, b = float(r[i]), float(k[i])
    fmt = ".3f" if i in (1, 2, 5, 6) else ".0f"
    print(f"{name:14}{a:>12{fmt}}{b:>12{fmt}}{b / a:>12.2f}")
for n, row in (("redis", r), ("kura", k)):
    print(f"{n}: RPUSH p99 during BGSAVEs / alone = {float(row[6]) / float(row[5]):.2f}, "
          f"peak RSS during BGSAVEs / RSS after SAVE = {float(row[7]) / float(row[4]):.2f}")
PY
