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

# shellcheck source=bench/spring-reference.sh
source bench/spring-reference.sh
require_reference eureka-server >/dev/null

timeout 1800 cargo build --release -q -p discovery-server --bin discovery-server --example bench_load
BIN=target/release/discovery-server
GEN=target/release/examples/bench_load

# A free port chosen up front (the log format of the address line may change).
ours_port=$("$GEN" free-ports 1)
RUST_LOG=warn "$BIN" --port "$ours_port" --bind 127.0.0.1 >"$work/ours.log" 2>&1 &
ours_pid=$!
pids+=("$ours_pid")
ours_addr="127.0.0.1:$ours_port"
wait_http "http://$ours_addr/eureka/apps" 100 || { tail -20 "$work/ours.log" >&2; exit 1; }

start_reference eureka-server \
    --eureka.server.use-read-only-response-cache=false \
    --logging.level.com.netflix=WARN

echo "ours: discovery-server at $ours_addr (pid $ours_pid); reference: Spring Cloud Netflix Eureka Server at 127.0.0.1:$ref_port (pid $ref_pid, java -Xmx$XMX)"
machine_line
echo "load before: $(uptime)"
timeout 600 "$GEN" compare \
    --server "http://$ours_addr" --pid "$ours_pid" \
    --reference "http://127.0.0.1:$ref_port" --reference-pid "$ref_pid" \
    --instances "$INSTANCES" --seconds "$SECONDS_PACED" --rounds "$ROUNDS" --slices "$SLICES" \
    --connections "$CONNECTIONS" --warm-up-seconds "$WARM_UP_SECONDS" --fetches "$FETCHES"
echo "load after: $(uptime)"
