#!/usr/bin/env bash
# Builds api-gateway with profile-guided optimisation (PGO) and prints the
# binary's path (target/pgo/release/api-gateway) on stdout; progress goes
# to stderr. bench/gateway.sh uses it unless PGO=0.
#
#   1. an instrumented release build (`-Cprofile-generate`, target/pgo-gen);
#   2. training: that gateway in front of an nginx upstream, with a route
#      table of several routes and filters (StripPrefix; SetPath,
#      AddRequestHeader, AddResponseHeader, SecureHeaders; the full chain
#      of CircuitBreaker, RequestRateLimiter and JwtAuth; RewritePath with
#      a Host predicate), loaded by wrk at 16 and 64 connections, plus 404s
#      and POSTs with bodies from curl; then a graceful stop, which writes
#      the profile;
#   3. `llvm-profdata merge`, and a release build that uses the profile
#      (`-Cprofile-use`, target/pgo), same source and same profile
#      settings (fat LTO, one codegen unit) as `cargo build --release`.
#
# PGO lays out the code that runs together next to each other and
# inlines along the hot paths: the gateway spends about 15 % less user CPU
# per request (docs/benchmarks.md, "Thirty-first pass"). The source and the
# behaviour are the same as the plain release build's; only the machine
# code's layout and inlining differ.
#
# Needs llvm-profdata of rustc's LLVM: the rustup component `llvm-tools`
# (added when missing), or Debian's `llvm-N` package for rustc's LLVM N.
# nginx, wrk and curl as bench/gateway.sh. About 10 minutes on 2 cores.
#
# Usage: bench/gateway-pgo.sh   Overrides: TRAIN_SECONDS (3, per wrk round).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
TRAIN_SECONDS=${TRAIN_SECONDS:-3}
# shellcheck source=bench/spring-reference.sh
source bench/spring-reference.sh
command -v nginx >/dev/null || { echo "nginx is required (apt-get install nginx-light)" >&2; exit 1; }
require_wrk

# --- llvm-profdata of rustc's own LLVM -------------------------------------------
llvm_major=$(rustc -vV | awk '/^LLVM version/ {split($3, v, "."); print v[1]}')
find_profdata() {
  local sysroot tool
  sysroot=$(rustc --print sysroot)
  for tool in "$sysroot"/lib/rustlib/*/bin/llvm-profdata "$(command -v "llvm-profdata-$llvm_major" || true)"; do
    [ -x "$tool" ] && { echo "$tool"; return 0; }
  done
  return 1
}
if ! profdata=$(find_profdata); then
  echo "gateway-pgo: adding llvm-profdata (rustup component llvm-tools, else Debian llvm-$llvm_major)" >&2
  rustup component add llvm-tools >&2 ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "llvm-$llvm_major" >/dev/null; } ||
    true
  profdata=$(find_profdata) || { echo "gateway-pgo: no llvm-profdata for LLVM $llvm_major" >&2; exit 1; }
fi

# --- 1. instrumented build --------------------------------------------------------
raw="$root/target/pgo/raw"
rm -rf "$raw"
mkdir -p "$raw"
echo "gateway-pgo: instrumented build (target/pgo-gen)..." >&2
RUSTFLAGS="-Cprofile-generate=$raw" timeout 1800 \
  cargo build -q --release -p api-gateway --bin api-gateway --target-dir "$root/target/pgo-gen" >&2

# --- 2. training ------------------------------------------------------------------
start_bench_upstream
jwt_secret="pgo-training-secret-pgo-training-secret-0123"
jwt=$(bench_jwt "$jwt_secret")
cat >"$work/train.yml" <<YML
spring:
  cloud:
    gateway:
      jwt: { secret: $jwt_secret }
      server:
        webflux:
          routes:
            - id: api
              uri: http://127.0.0.1:$up_port
              predicates: [ "Path=/api/**" ]
              filters: [ StripPrefix=1 ]
            - id: edit
              uri: http://127.0.0.1:$up_port
              predicates: [ "Path=/edit/{segment}", Method=GET ]
              filters:
                - SetPath=/{segment}
                - AddRequestHeader=X-Trace, pgo
                - AddResponseHeader=X-Served-By, gateway
                - SecureHeaders
            - id: full
              uri: http://127.0.0.1:$up_port
              predicates: [ "Path=/full/**" ]
              filters:
                - StripPrefix=1
                - name: CircuitBreaker
                  args: { name: full }
                - name: RequestRateLimiter
                  args: { replenishRate: 100000000, burstCapacity: 100000000 }
                - JwtAuth
            - id: hosted
              uri: http://127.0.0.1:$up_port
              predicates: [ "Host=**.example.org", "Path=/svc/**" ]
              filters: [ "RewritePath=/svc/(?<rest>.*), /\${rest}" ]
resilience4j:
  circuitbreaker:
    instances:
      full: { slidingWindowSize: 100, failureRateThreshold: 50 }
YML
port=$(free_port)
admin=$(free_port)
LLVM_PROFILE_FILE="$raw/gateway-%p.profraw" RUST_LOG=warn \
  "$root/target/pgo-gen/release/api-gateway" --port "$port" --admin-port "$admin" --config "$work/train.yml" \
  >"$work/train.log" 2>&1 &
gw_pid=$!
pids+=("$gw_pid")
url="http://127.0.0.1:$port"
wait_http "$url/api/hello" 300
# Every training route answers before the load (a route that failed would
# train the error path).
wait_http "$url/edit/hello" 10
wait_http "$url/full/hello" 10 "Authorization: Bearer $jwt"
wait_http "$url/svc/hello" 10 "Host: a.example.org"
echo "gateway-pgo: training (${TRAIN_SECONDS}s per round)..." >&2
train() { timeout $((TRAIN_SECONDS + 30)) wrk -t2 -c"$1" -d"${TRAIN_SECONDS}s" "${@:2}" >/dev/null; }
for c in 16 64; do
  train "$c" "$url/api/hello"
  train "$c" "$url/edit/hello"
  train "$c" -H "Authorization: Bearer $jwt" "$url/full/hello"
  train "$c" -H "Host: a.example.org" "$url/svc/hello"
done
for _ in $(seq 1 200); do
  curl -s -o /dev/null "$url/nowhere"
  curl -s -o /dev/null -X POST --data-binary 'a body of a few bytes' "$url/api/hello"
  curl -s -o /dev/null "$url/full/hello"
done
kill -TERM "$gw_pid"
for _ in $(seq 1 300); do kill -0 "$gw_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$gw_pid" 2>/dev/null || ! ls "$raw"/gateway-*.profraw >/dev/null 2>&1; then
  echo "gateway-pgo: the instrumented gateway did not stop and write its profile; its log:" >&2
  tail -20 "$work/train.log" >&2
  exit 1
fi

# --- 3. merge, and the optimised build ---------------------------------------------
data="$root/target/pgo/api-gateway.profdata"
"$profdata" merge -o "$data" "$raw"/gateway-*.profraw
# The profile's hash in the flags: cargo rebuilds when the profile changes
# (it sees the flags, not the file's content).
sum=$(sha256sum "$data" | cut -c1-16)
rm -f "$root"/target/pgo/api-gateway-*.profdata
cp "$data" "$root/target/pgo/api-gateway-$sum.profdata"
echo "gateway-pgo: optimised build (target/pgo)..." >&2
RUSTFLAGS="-Cprofile-use=$root/target/pgo/api-gateway-$sum.profdata" timeout 1800 \
  cargo build -q --release -p api-gateway --bin api-gateway --target-dir "$root/target/pgo" >&2
echo "$root/target/pgo/release/api-gateway"
