# Shared by the benches/*-vs-redis.sh scripts (sourced, not run): a private work directory
# and the servers started into PIDS, both cleaned up on exit, and port helpers.

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Prints a port nobody listens on.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 60 s for a RESP server on port $1 to answer PING.
wait_port() {
    for _ in $(seq 600); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "nothing answers on port $1" >&2
    return 1
}

# Writes the log-shaped dataset as RESP commands on stdout: $1 JSON records of ~200 bytes
# RPUSHed 100 at a time over 100 lists, then $2 small hashes of 4 fields.
log_dataset() {
    python3 - "$1" "$2" <<'PY'
import sys
records, hashes = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
def cmd(*args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
batch = 100
for i in range(0, records, batch):
    key = b"logs:app%d" % (i // batch % 100)
    vals = [b'{"host":"10.0.%d.%d","path":"/api/v1/items/%d","status":200,"bytes":%d,"agent":"Mozilla/5.0 (X11; Linux x86_64) kura-bench","time":1764000000.%06d}' % (j % 256, j % 200, j, j * 7 % 100000, j % 1000000) for j in range(i, min(i + batch, records))]
    cmd(b"RPUSH", key, *vals)
for h in range(hashes):
    cmd(b"HSET", b"rec:%d" % h, b"level", b"info", b"host", b"web-%d" % (h % 50), b"code", b"%d" % (200 + h % 300), b"msg", b"request served")
PY
}

# Prints the RPUSH p99 latency in ms of redis-benchmark (300k requests, 20 clients) on port $1.
p99() {
    redis-benchmark -p "$1" -t rpush -n 300000 -c 20 -P 1 --csv 2>/dev/null |
        awk -F'","' '/RPUSH/{gsub(/"/,"",$7); print $7}'
}
