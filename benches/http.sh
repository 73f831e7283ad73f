#!/usr/bin/env bash
# The HTTP door's costs (issue 6 "Performance"), measured, never asserted.
#
#   benches/http.sh [-r RECORDS] [-h HASHES] [-s SECONDS] [-d]
#
#   -r  list records of ~200 bytes for the backup case (default 2000000)
#   -h  small hashes for the backup case (default 200000)
#   -s  seconds per ingest run in the scrape case (default 10)
#   -d  use the debug build (only for checking the script)
#
# Backup: GET /backup of the log-shaped dataset (MB/s; redis-cli --rdb from a
# redis-server holding the same data is the reference in the same run), and RPUSH p99
# alone and while backups stream back to back (the BGSAVE rule: <= 1.5x alone).
# Scrape: forward ingest with kura-bench, once without scraping and once with /metrics
# scraped 20 times a second; kura's extra CPU per scrape, and what one scrape a second
# costs as a share of one core.
set -euo pipefail

RECORDS=2000000
HASHES=200000
SECS=10
PROFILE=release
# Prints the comment block at the top of this script (its help), whatever its length.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }
while getopts "r:h:s:d" opt; do
    case $opt in
        r) RECORDS=$OPTARG ;;
        h) HASHES=$OPTARG ;;
        s) SECS=$OPTARG ;;
        d) PROFILE=debug ;;
        *) usage 1 ;;
    esac
done
cd "$(dirname "$0")/.."
[ "$PROFILE" = release ] && cargo build --release --quiet --bins
BIN=target/$PROFILE
. benches/common.sh

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick_hz=$(getconf CLK_TCK)

# ---- backup ----
log_dataset "$RECORDS" "$HASHES" >"$WORK/data.resp"
rport=$(free_port)
redis-server --port "$rport" --dir "$WORK" --save "" --appendonly no \
    --repl-diskless-sync-delay 0 >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
kport=$(free_port); hport=$(free_port)
mkdir -p "$WORK/kura"
"$BIN/kura" --port "$kport" --http-port "$hport" --forward-port 0 --dir "$WORK/kura" --save "" \
    >"$WORK/kura.log" 2>&1 &
PIDS+=($!)
wait_port "$rport"; wait_port "$kport"
redis-cli -p "$rport" --pipe <"$WORK/data.resp" >/dev/null
redis-cli -p "$kport" --pipe <"$WORK/data.resp" >/dev/null

t0=$(date +%s.%N)
redis-cli -p "$rport" --rdb "$WORK/redis.rdb" >/dev/null 2>&1
t1=$(date +%s.%N)
redis_bytes=$(stat -c %s "$WORK/redis.rdb")
read -r kura_bytes kura_secs < <(curl -s -o "$WORK/backup.rdb" -w '%{size_download} %{time_total}\n' \
    "http://127.0.0.1:$hport/backup")
redis-check-rdb "$WORK/backup.rdb" | grep -q "RDB looks OK" || { echo "backup fails redis-check-rdb" >&2; exit 1; }

# Without LZF (rdbcompression no): the stream is then bound by the encoding, not compression.
redis-cli -p "$kport" config set rdbcompression no >/dev/null
read -r raw_bytes raw_secs < <(curl -s -o /dev/null -w '%{size_download} %{time_total}\n' \
    "http://127.0.0.1:$hport/backup")
redis-cli -p "$kport" config set rdbcompression yes >/dev/null

# RPUSH p99 alone and while dumps stream back to back, on each server.
loaded_p99() { # $1 port, $2 command streaming one dump
    local alone during loop
    alone=$(p99 "$1")
    rm -f "$WORK/stop"
    ( while [ ! -e "$WORK/stop" ]; do eval "$2" >/dev/null 2>&1; done ) &
    loop=$!
    during=$(p99 "$1")
    touch "$WORK/stop"; wait "$loop" 2>/dev/null || true
    echo "$alone $during"
}
read -r kp99a kp99b < <(loaded_p99 "$kport" "curl -s -o /dev/null http://127.0.0.1:$hport/backup")
read -r rp99a rp99b < <(loaded_p99 "$rport" "redis-cli -p $rport --rdb $WORK/loop.rdb")

python3 - "$redis_bytes" "$(echo "$t1 - $t0" | bc)" "$kura_bytes" "$kura_secs" \
    "$raw_bytes" "$raw_secs" "$kp99a" "$kp99b" "$rp99a" "$rp99b" <<'PY'
import sys
rb, rs, kb, ks, ub, us, ka, kd, ra, rd = map(float, sys.argv[1:])
rmb, kmb = rb / rs / 1e6, kb / ks / 1e6
print(f"backup: kura GET /backup {kb/1e6:.0f} MB in {ks:.2f} s = {kmb:.0f} MB/s; "
      f"redis-cli --rdb {rb/1e6:.0f} MB in {rs:.2f} s = {rmb:.0f} MB/s; kura/redis speed {kmb/rmb:.2f}")
print(f"backup: with rdbcompression no, {ub/1e6:.0f} MB in {us:.2f} s = {ub/us/1e6:.0f} MB/s")
print(f"backup: RPUSH p99 kura {ka:.3f} ms alone, {kd:.3f} ms while backups stream ({kd/ka:.2f}x); "
      f"redis {ra:.3f} ms alone, {rd:.3f} ms during --rdb dumps ({rd/ra:.2f}x)")
PY
kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; PIDS=()

# ---- scrape ----
start_kura() { # starts a fresh kura; sets kp (RESP), hp (HTTP), fp (forward), kpid
    kp=$(free_port); hp=$(free_port); fp=$(free_port)
    rm -rf "$WORK/k2"; mkdir -p "$WORK/k2"
    "$BIN/kura" --port "$kp" --http-port "$hp" --forward-port "$fp" --dir "$WORK/k2" \
        --save "" >"$WORK/k2.log" 2>&1 &
    kpid=$!; PIDS+=($kpid)
    wait_port "$kp"
}
ingest() { # $1: 1 to scrape /metrics once a second meanwhile; prints records/s
    start_kura
    local scraper=""
    if [ "$1" = 1 ]; then
        ( while [ ! -e "$WORK/stop2" ]; do curl -s -o /dev/null "http://127.0.0.1:$hp/metrics"; sleep 1; done ) &
        scraper=$!
    fi
    local out
    out=$("$BIN/kura-bench" forward --addr "127.0.0.1:$fp" --duration "$SECS" --json)
    if [ -n "$scraper" ]; then touch "$WORK/stop2"; wait "$scraper" || true; rm -f "$WORK/stop2"; fi
    kill "$kpid"; wait "$kpid" 2>/dev/null || true
    python3 -c 'import json,sys; print(json.loads(sys.argv[1])["records_per_s"])' "$out"
}
rate0=$(ingest 0)
rate1=$(ingest 1)
# kura's CPU per scrape, on a server holding a short ingest's data and traffic history:
# 500 scrapes over one keep-alive connection, so the client costs kura nothing extra.
start_kura
"$BIN/kura-bench" forward --addr "127.0.0.1:$fp" --duration 2 --json >/dev/null
redis-benchmark -p "$kp" -t set,get,rpush,lpush,hset -n 20000 -q >/dev/null
urls=(); for _ in $(seq 500); do urls+=("http://127.0.0.1:$hp/metrics"); done
c0=$(cpu_ticks "$kpid"); t0=$(date +%s.%N)
curl -s "${urls[@]}" >/dev/null
c1=$(cpu_ticks "$kpid"); t1=$(date +%s.%N)
size=$(curl -s "http://127.0.0.1:$hp/metrics" | wc -c)
python3 - "$rate0" "$rate1" "$c0" "$c1" "$tick_hz" "$t0" "$t1" "$size" <<'PY'
import sys
r0, r1, c0, c1, hz, t0, t1, size = map(float, sys.argv[1:])
per = (c1 - c0) / hz / 500
print(f"scrape: forward ingest {r0:,.0f} records/s alone, {r1:,.0f} while /metrics is scraped "
      f"every second (ratio {r1/r0:.3f})")
print(f"scrape: kura CPU {per*1e3:.2f} ms per scrape (wall {(t1-t0)/500*1e3:.2f} ms; body "
      f"{size/1024:.0f} KiB) = {per*100:.2f}% of one core at one scrape a second")
PY
