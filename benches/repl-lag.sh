#!/usr/bin/env bash
# Replica lag under sustained ingest, against redis-server's in the same run (issue 5
# "Performance": replica lag p99 <= 10 ms at 500k records/s of forward ingest).
#
#   benches/repl-lag.sh [-r RECORDS_PER_S] [-s SECONDS] [-g] [-n RECORDS] [-d]
#
#   -r  ingest rate, records per second in total (default 500000)
#   -s  seconds of ingest (default 10; kura keeps ~220 B per record, twice: master and replica)
#   -g  also time a full sync of a ~2 GB dataset (off by default: ~6 GB of RAM, minutes)
#   -n  records in the -g dataset (default 10000000, ~200 B each: about 2 GB of payload)
#   -d  use the debug build (only for checking the script)
#
# Lag: a master and one replica (same server, --save "", private dirs, free ports), in sync
# and with the stream flowing (a first write seen on the replica) before the ingest. kura is
# fed by `kura-bench forward --rate R` (2 connections, chunks of 1000 ~150 B records, no
# acks; the default route RPUSHes each record as JSON). redis-server cannot take Forward, so
# it is fed the same load as RESP: `RPUSH bench.access` with 1000 JSON records of kura's
# shape (~200 B) per command, paced to the same rate on one connection. Meanwhile a probe
# writes `SET lagprobe <n>` on the master every 10 ms and, from the master's +OK, polls the
# replica (GET, then 0.2 ms sleeps) until it reads <n>: that delay is one lag sample (an
# upper bound by one poll; the worst one's time into the run is printed). Every 100 ms a
# sampler reads the replica's slave_repl_offset and then the master's master_repl_offset:
# the difference is the bytes behind (an upper bound by what the master took in during one
# INFO round trip).
#
# -g: a master filled with log_dataset (common.sh) through redis-cli --pipe, then a fresh
# replica: time from REPLICAOF to master_link_status:up with the replica's offset equal to
# the master's. Both diskless with no delay, as in repl-vs-redis.sh. Ratio kura/redis,
# target <= 1.0.
set -euo pipefail

RATE=500000
SECS=10
FULL=0
RECORDS=10000000
PROFILE=release
# Prints the comment block at the top of this script (its help), whatever its length.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }
while getopts "r:s:gn:dh" opt; do
    case $opt in
        r) RATE=$OPTARG ;;
        s) SECS=$OPTARG ;;
        g) FULL=1 ;;
        n) RECORDS=$OPTARG ;;
        d) PROFILE=debug ;;
        h) usage ;;
        *) usage 1 ;;
    esac
done
cd "$(dirname "$0")/.."
if [ "$PROFILE" = release ]; then cargo build --release --quiet --bins; else cargo build --quiet --bins; fi
BIN=target/$PROFILE
. benches/common.sh

start() { # $1 = kura|redis, $2 = name, rest = extra flags; sets PORT
    local port; port=$(free_port); mkdir -p "$WORK/$2"
    if [ "$1" = kura ]; then
        NO_COLOR=1 "$BIN/kura" --port "$port" --save "" --dir "$WORK/$2" --http-port 0 \
            --repl-diskless-sync-delay 0 "${@:3}" >"$WORK/$2.log" 2>&1 &
    else
        redis-server --port "$port" --save "" --dir "$WORK/$2" --repl-diskless-sync-delay 0 \
            "${@:3}" >"$WORK/$2.log" 2>&1 &
    fi
    PIDS+=($!); wait_port "$port"; PORT=$port
}
# kura takes Redis's config-file form ("host port" as one value), redis-server two words.
start_replica() { # $1 = kura|redis, $2 = name, $3 = master port; sets PORT
    if [ "$1" = kura ]; then start kura "$2" --forward-port 0 --replicaof "127.0.0.1 $3"
    else start redis "$2" --replicaof 127.0.0.1 "$3"; fi
}
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }

# The probe, the sampler, the RESP feeder and the sync wait, on raw sockets (nothing to install).
cat >"$WORK/lag.py" <<'PY'
import json, socket, sys, threading, time

class Conn:
    """A minimal RESP client: one command, one reply."""
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
    def line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.recv()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line
    def recv(self):
        got = self.s.recv(65536)
        if not got:
            raise ConnectionError("server closed the connection")
        return got
    def call(self, *args):
        self.s.sendall(cmd(*args))
        line = self.line()
        if line[:1] == b"$" and line != b"$-1":
            n = int(line[1:])
            while len(self.buf) < n + 2:
                self.buf += self.recv()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if line[:1] == b"-":
            raise RuntimeError(line.decode())
        return None if line == b"$-1" else line[1:]
    def info(self, field):
        for l in self.call(b"INFO", b"replication").split(b"\r\n"):
            if l.startswith(field + b":"):
                return l.split(b":", 1)[1].decode()
        return None

def cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)

def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[max(1, min(len(xs), -(-len(xs) * p // 100))) - 1]

def probe(master, replica, stop_file):
    """Lag samples (ms) and bytes-behind samples until stop_file exists; prints JSON."""
    import os
    lags, behind, lost, worst = [], [], [0], [0.0, None]
    done = threading.Event()
    def lag_loop():
        m, r = Conn(master), Conn(replica)
        n, tick = 0, time.perf_counter()
        t_start = tick
        while not done.is_set():
            tick += 0.010
            time.sleep(max(0.0, tick - time.perf_counter()))
            n += 1
            want = str(n).encode()
            m.call(b"SET", b"lagprobe", want)
            t_ok = time.perf_counter()
            while r.call(b"GET", b"lagprobe") != want:
                if time.perf_counter() - t_ok > 30:
                    lost[0] += 1
                    break
                time.sleep(0.0002)
            else:
                lags.append((time.perf_counter() - t_ok) * 1000)
                if lags[-1] >= worst[0]:
                    worst[:] = [lags[-1], t_ok - t_start]
            tick = max(tick, time.perf_counter() - 0.010)  # a slow probe does not make a burst
    def offset_loop():
        m, r = Conn(master), Conn(replica)
        while not done.is_set():
            got = int(r.info(b"slave_repl_offset"))
            behind.append(max(0, int(m.info(b"master_repl_offset")) - got))
            time.sleep(0.1)
    threads = [threading.Thread(target=f) for f in (lag_loop, offset_loop)]
    for t in threads:
        t.start()
    while not os.path.exists(stop_file):
        time.sleep(0.05)
    done.set()
    for t in threads:
        t.join()
    print(json.dumps({"lag_p50": pct(lags, 50), "lag_p99": pct(lags, 99), "lag_max": pct(lags, 100), "lag_max_at": worst[1],
                      "probes": len(lags), "lost": lost[0],
                      "behind_p99": pct(behind, 99), "behind_max": pct(behind, 100)}))

def feed(port, rate, secs):
    """RPUSHes JSON records like kura's default route stores, paced to rate records/s."""
    import random
    rng, batch = random.Random(1), 1000
    agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 ", "curl/8.5.0 "]
    def rec(i):
        return ('{"host":"10.%d.%d.%d","user":"-","method":"GET","path":"/api/v1/items/%d",'
                '"code":200,"size":%d,"referer":"-","agent":"%s","time":1795562261.0}' % (
                    rng.randrange(256), rng.randrange(256), rng.randrange(1, 255),
                    rng.randrange(100000), rng.randrange(200000),
                    (agents[i % 2] * 3)[:40])).encode()
    chunks = [cmd(b"RPUSH", b"bench.access", *[rec(i) for i in range(batch)]) for _ in range(16)]
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start, sent, replies = time.perf_counter(), 0, 0
    k = 0
    while True:
        due = start + k * batch / rate
        if due >= start + secs:  # idle to the end, so the rate is over the whole run
            time.sleep(max(0.0, start + secs - time.perf_counter()))
            break
        time.sleep(max(0.0, due - time.perf_counter()))
        s.sendall(chunks[k % len(chunks)])
        sent += batch
        k += 1
        s.setblocking(False)
        try:
            replies += s.recv(1 << 16).count(b"\r\n")
        except BlockingIOError:
            pass
        s.setblocking(True)
    while replies < k:  # every RPUSH answered: the master has applied them all
        replies += s.recv(1 << 16).count(b"\r\n")
    took = time.perf_counter() - start
    print(json.dumps({"records": sent, "seconds": took, "records_per_s": sent / took}))

def sync_wait(master, replica):
    """Sends REPLICAOF and prints the seconds until the link is up and the offsets agree."""
    m, r = Conn(master), Conn(replica)
    t0 = time.perf_counter()
    r.call(b"REPLICAOF", b"127.0.0.1", master)
    while True:
        if r.info(b"master_link_status") == "up" and \
                r.info(b"slave_repl_offset") == m.info(b"master_repl_offset"):
            break
        time.sleep(0.01)
    print("%.2f" % (time.perf_counter() - t0))

def in_sync(master, replica):
    """Waits up to 60 s until the replica's link is up, its offset equals the master's and a
    write reaches it: after a diskless sync redis-server starts the stream only on the
    replica's first REPLCONF ACK (up to a second later), which is not lag under load."""
    m, r = Conn(master), Conn(replica)
    for _ in range(6000):
        if r.info(b"master_link_status") == "up" and \
                r.info(b"slave_repl_offset") == m.info(b"master_repl_offset"):
            break
        time.sleep(0.01)
    else:
        sys.exit("replica on port %d never caught up" % replica)
    m.call(b"SET", b"lagprobe", b"0")
    for _ in range(6000):
        if r.call(b"GET", b"lagprobe") == b"0":
            return
        time.sleep(0.01)
    sys.exit("replica on port %d gets no stream" % replica)

def used_memory(port):
    for l in Conn(port).call(b"INFO", b"memory").split(b"\r\n"):
        if l.startswith(b"used_memory:"):
            print(int(l.split(b":")[1]))

if __name__ == "__main__":
    what, args = sys.argv[1], sys.argv[2:]
    if what == "probe":
        probe(int(args[0]), int(args[1]), args[2])
    elif what == "feed":
        feed(int(args[0]), float(args[1]), float(args[2]))
    elif what == "sync_wait":
        sync_wait(int(args[0]), int(args[1]))
    elif what == "in_sync":
        in_sync(int(args[0]), int(args[1]))
    elif what == "used_memory":
        used_memory(int(args[0]))
PY
lag() { python3 "$WORK/lag.py" "$@"; }
field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("-" if v is None else (f"{v:.{sys.argv[3]}f}" if isinstance(v, float) else v))' "$1" "$2" "${3:-0}"; }

for srv in kura redis; do
    fwd=
    if [ $srv = kura ]; then fwd=$(free_port); start kura "$srv-m" --forward-port "$fwd"
    else start redis "$srv-m"; fi
    m=$PORT
    start_replica $srv "$srv-r" "$m"; r=$PORT
    lag in_sync "$m" "$r"
    rm -f "$WORK/stop"
    lag probe "$m" "$r" "$WORK/stop" >"$WORK/$srv-probe.json" &
    probe_pid=$!
    if [ $srv = kura ]; then
        ingest=$("$BIN/kura-bench" forward --addr "127.0.0.1:$fwd" --rate "$RATE" --duration "$SECS" --json)
    else
        ingest=$(lag feed "$m" "$RATE" "$SECS")
    fi
    touch "$WORK/stop"
    wait "$probe_pid"
    printf -v "${srv}_ingest" '%s' "$ingest"
    printf -v "${srv}_probe" '%s' "$(cat "$WORK/$srv-probe.json")"
    stop_all
done

printf '%-34s %12s %12s\n' "replica lag at $RATE records/s, ${SECS}s" kura redis
row() { printf '%-34s %12s %12s\n' "$1" "$(field "$kura_probe" "$2" "${3:-0}")" "$(field "$redis_probe" "$2" "${3:-0}")"; }
printf '%-34s %12s %12s\n' "ingest achieved (records/s)" "$(field "$kura_ingest" records_per_s)" "$(field "$redis_ingest" records_per_s)"
row "lag p50 (ms)" lag_p50 2
row "lag p99 (ms, target <= 10)" lag_p99 2
row "lag max (ms)" lag_max 2
row "  at (s into the run)" lag_max_at 1
row "lag probes" probes
row "probes lost (not seen in 30 s)" lost
row "bytes behind p99" behind_p99
row "bytes behind max" behind_max
echo "(kura ingest: kura-bench forward, 2 conns x 1000-record chunks; redis: RPUSH x 1000 on 1 conn)"

[ "$FULL" = 1 ] || exit 0
for srv in kura redis; do
    if [ $srv = kura ]; then start kura "$srv-gm" --forward-port 0; else start redis "$srv-gm"; fi
    m=$PORT
    log_dataset "$RECORDS" 0 | redis-cli -p "$m" --pipe >"$WORK/$srv-pipe.log"
    mem=$(lag used_memory "$m")
    if [ $srv = kura ]; then start kura "$srv-gr" --forward-port 0; else start redis "$srv-gr"; fi
    r=$PORT
    took=$(lag sync_wait "$m" "$r")
    eval "${srv}_mem=$((mem / 1000000)) ${srv}_sync=$took"
    stop_all
done
printf '%-34s %12s %12s %8s\n' "full sync, $RECORDS records" kura redis ratio
printf '%-34s %12s %12s\n' "master used_memory (MB)" "$kura_mem" "$redis_mem"
printf '%-34s %12s %12s %8s\n' "REPLICAOF to in sync (s)" "$kura_sync" "$redis_sync" \
    "$(python3 -c "print(f'{$kura_sync/$redis_sync:.2f}')")"
