#!/usr/bin/env bash
# Our discovery-server against the reference Spring Cloud Netflix Eureka
# Server (interop/spring/eureka-server), measured in one run with the same
# load generator (discovery-server/examples/bench_load.rs, `compare`) on
# loopback, always alternating between the two servers:
#   - registration of 10,000 instances (ten alternating chunks),
#   - a warm-up, the same for both (saturated renewals and full fetches),
#   - paced renewals: each instance once a second (10,000/s), ROUNDS
#     alternating rounds of SECONDS_PACED seconds: rate, latency p50/p99,
#   - saturated renewals: CONNECTIONS connections, SLICES alternating 1 s slices,
#   - full `GET /eureka/apps` (JSON, gzip), FETCHES alternating fetches:
#     client-side p50/p99,
#   - VmRSS of each server: empty, after registering, at the end.
# Renewals are the Eureka client's `PUT /eureka/apps/{APP}/{id}?status=UP&lastDirtyTimestamp=...`.
# The reference runs with `java -Xmx1g` (full tiered JIT) and its module's
# application.yml: standalone, self-preservation off and
# `eureka.server.use-read-only-response-cache=false` (passed again below), so
# a full fetch is served from its read-write response cache (a Guava cache
# invalidated on every change), which is what ours does too: reads see
# writes at once on both. Its Eureka loggers are set to WARN, as ours runs
# with RUST_LOG=warn, so neither logs each registration.
#
# Usage: bench/eureka-vs-spring.sh   (about 3 minutes; needs java and the jar
#        from scripts/prereqs)
# Overrides: INSTANCES (10000), SECONDS_PACED (5), ROUNDS (3), SLICES (10),
#            CONNECTIONS (64), WARM_UP_SECONDS (60), FETCHES (60), XMX (1g).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

INSTANCES=${INSTANCES:-10000}
SECONDS_PACED=${SECONDS_PACED:-5}
ROUNDS=${ROUNDS:-3}
SLICES=${SLICES:-10}
CONNECTIONS=${CONNECTIONS:-64}
WARM_UP_SECONDS=${WARM_UP_SECONDS:-60}
FETCHES=${FETCHES:-60}
XMX=${XMX:-1g}

JAR=interop/spring/eureka-server/target/eureka-server.jar
[ -f "$JAR" ] || { echo "missing $JAR: run scripts/prereqs (needs java and mvn)" >&2; exit 1; }
command -v java >/dev/null || { echo "java is required" >&2; exit 1; }

timeout 1800 cargo build --release -q -p discovery-server --bin discovery-server --example bench_load
BIN=target/release/discovery-server
GEN=target/release/examples/bench_load

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # The JVM stops gracefully on SIGTERM; give it 10 s, then kill it.
    for _ in $(seq 1 100); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Wait (at most $3 tenths of a second) for "$2" in file "$1"; print the rest
# of its line.
wait_for() {
    for _ in $(seq 1 "$3"); do
        if grep -q "$2" "$1" 2>/dev/null; then
            grep -m1 "$2" "$1" | sed "s/.*$2//"
            return 0
        fi
        sleep 0.1
    done
    echo "timed out waiting for '$2' in $1; its tail:" >&2
    tail -20 "$1" >&2
    return 1
}

# A free port chosen up front (the log format of the address line may change).
ours_port=$("$GEN" free-ports 1)
RUST_LOG=warn "$BIN" --port "$ours_port" --bind 127.0.0.1 >"$work/ours.log" 2>&1 &
ours_pid=$!
pids+=("$ours_pid")
ours_addr="127.0.0.1:$ours_port"
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://$ours_addr/eureka/apps" && break; sleep 0.1; done
curl -sf -o /dev/null "http://$ours_addr/eureka/apps" || { echo "our server did not start; its log:" >&2; tail -20 "$work/ours.log" >&2; exit 1; }

java "-Xmx$XMX" -jar "$JAR" \
    --server.port=0 \
    --spring.main.banner-mode=off \
    --eureka.server.use-read-only-response-cache=false \
    --logging.level.com.netflix=WARN \
    >"$work/reference.log" 2>&1 &
ref_pid=$!
pids+=("$ref_pid")
ref_port=$(wait_for "$work/reference.log" "Tomcat started on port " 1200 | grep -o '^[0-9]*')

echo "ours: discovery-server at $ours_addr (pid $ours_pid); reference: Spring Cloud Netflix Eureka Server at 127.0.0.1:$ref_port (pid $ref_pid, java -Xmx$XMX)"
echo "machine: $(nproc) cores; $(uname -sr); $(java -version 2>&1 | head -1)"
echo "load before: $(uptime)"
timeout 600 "$GEN" compare \
    --server "http://$ours_addr" --pid "$ours_pid" \
    --reference "http://127.0.0.1:$ref_port" --reference-pid "$ref_pid" \
    --instances "$INSTANCES" --seconds "$SECONDS_PACED" --rounds "$ROUNDS" --slices "$SLICES" \
    --connections "$CONNECTIONS" --warm-up-seconds "$WARM_UP_SECONDS" --fetches "$FETCHES"
echo "load after: $(uptime)"
