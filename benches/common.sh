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
