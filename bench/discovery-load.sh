#!/usr/bin/env bash
# Load benchmark of discovery-server (issue 3), bounded in time (~2 min):
# 10,000 instances registered over loopback, then renewing once a second;
# renewals per second and p99 latency; saturated renewal rate against a bare
# hyper server answering 200 to the same PUTs (the ceiling) and the ratio;
# full `GET /eureka/apps` (JSON, gzip) unchanged at 10,000 and 100,000
# instances; resident memory per instance (VmRSS of the server process);
# then a pair of replicating nodes under the same paced load.
#
# Usage: bench/discovery-load.sh
# Overrides: INSTANCES (10000), BIG (100000), SECONDS_PACED (10),
#            CONNECTIONS (64), SATURATE_SECONDS (5), ROUNDS (3): the saturated
#            phase alternates ROUNDS x SATURATE_SECONDS one-second slices.
set -euo pipefail
cd "$(dirname "$0")/.."

INSTANCES=${INSTANCES:-10000}
BIG=${BIG:-100000}
SECONDS_PACED=${SECONDS_PACED:-10}
CONNECTIONS=${CONNECTIONS:-64}
SATURATE_SECONDS=${SATURATE_SECONDS:-5}
ROUNDS=${ROUNDS:-3}

timeout 900 cargo build --release -q -p discovery-server --bin discovery-server --example bench_load
BIN=target/release/discovery-server
GEN=target/release/examples/bench_load

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Wait for "$2" to appear in file "$1"; print the rest of its line.
wait_for() {
    for _ in $(seq 1 200); do
        if grep -q "$2" "$1" 2>/dev/null; then
            grep -m1 "$2" "$1" | sed "s/.*$2//"
            return 0
        fi
        sleep 0.05
    done
    echo "timed out waiting for '$2' in $1" >&2
    return 1
}

RUST_LOG=warn,discovery_server::server=info "$BIN" --port 0 --bind 127.0.0.1 --log-format text >"$work/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
server_addr=$(wait_for "$work/server.log" "addr=" | awk '{print $1}' | sed 's/\x1b\[[0-9;]*m//g')

"$GEN" ceiling >"$work/ceiling.log" 2>&1 &
pids+=("$!")
ceiling_addr=$(wait_for "$work/ceiling.log" "listening " | awk '{print $1}')

echo "discovery-server at $server_addr (pid $server_pid), bare hyper ceiling at $ceiling_addr"
echo "machine: $(nproc) cores; $(uname -sr)"
timeout 600 "$GEN" run --server "http://$server_addr" --pid "$server_pid" --ceiling "http://$ceiling_addr" \
    --instances "$INSTANCES" --big "$BIG" --seconds "$SECONDS_PACED" --connections "$CONNECTIONS" \
    --saturate-seconds "$SATURATE_SECONDS" --rounds "$ROUNDS"

# Replication: a pair of nodes, each the other's peer; the same 10,000
# instances registered and renewed on one of them.
kill "$server_pid" 2>/dev/null || true
read -r port_a port_b < <("$GEN" free-ports 2)
RUST_LOG=warn "$BIN" --port "$port_a" --bind 127.0.0.1 --peer "http://127.0.0.1:$port_b/eureka/" >"$work/a.log" 2>&1 &
pids+=("$!")
RUST_LOG=warn "$BIN" --port "$port_b" --bind 127.0.0.1 --peer "http://127.0.0.1:$port_a/eureka/" >"$work/b.log" 2>&1 &
pids+=("$!")
timeout 300 "$GEN" replicated --server "http://127.0.0.1:$port_a" --peer "http://127.0.0.1:$port_b" \
    --instances "$INSTANCES" --seconds "$SECONDS_PACED" --connections "$CONNECTIONS"
