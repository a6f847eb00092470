#!/usr/bin/env bash
# Our api-gateway against nginx and Spring Cloud Gateway (interop/spring/
# gateway, SCG 4.3 on Netty), measured in one run on loopback with the same
# upstream and the same load generator:
#   - the upstream: an nginx (1 worker) answering `GET /hello` with a fixed
#     13-byte body, itself measured directly ("direct");
#   - nginx as a keep-alive reverse proxy (`worker_processes auto`, an
#     `upstream` block with `keepalive 64`, HTTP/1.1 to the upstream), and
#     the forwarding fields SCG and ours set (nginx_proxy_headers); its
#     port with `reuseport`, so that the kernel spreads the connections
#     over its workers evenly, as ours hands them out in turn (without it
#     one worker takes whatever number it accepts first, from 32 to all
#     64, and nginx's rate and p99 change with that number from run to run);
#     and `worker_cpu_affinity auto`, each worker pinned to its own CPU, as
#     ours pins its I/O workers by default (`server.io-worker-affinity`);
#   - SCG with the same route (`Path=/api/**`, `StripPrefix=1`) from an
#     application.yml written here, `java -Xmx$XMX -jar`;
#   - ours with the same application.yml: the release build with
#     profile-guided optimisation from bench/gateway-pgo.sh (PGO=0: the
#     plain `cargo build --release` binary; BIN=path: that binary);
#   - "full chain": nginx again with `limit_req` (a rate it never reaches)
#     and passive failure detection (`max_fails`), and ours again with
#     `CircuitBreaker` + `RequestRateLimiter` (a budget it never exhausts)
#     and `JwtAuth` (an HS256 token, sent by wrk on every request) on the
#     route; nginx gets the same header and does not check it.
#   - per proxy and per connection count: WARM_UP seconds of load (JIT for
#     the JVM), then wrk -t$THREADS -c$C -d${DURATION}s --latency; requests/s,
#     p50, p99, non-2xx/socket errors, and VmRSS of the proxy (all its
#     processes: nginx master + workers) after the run. Direct and SCG are
#     measured once (SCG is stopped once measured); nginx and ours, plain
#     and full chain, in ROUNDS alternating rounds, since on a shared
#     machine one 10-second sample of either moves by several per cent from
#     run to run.
# Prints every round, then each figure's median over its rounds and the
# ratios of the medians, ours / nginx and ours / SCG. Everything it starts
# is stopped on exit; the configs live in a temporary directory.
#
# Usage: bench/gateway.sh   (about 9 minutes, and 10 more for the PGO
#        build; needs nginx, wrk, java and the gateway jar from
#        scripts/prereqs)
# Overrides: DURATION (10), CONNECTIONS ("16 64"), THREADS (2), WARM_UP (5),
#            SCG_WARM_UP (20), XMX (512m), PGO (1), BIN (ours' binary),
#            ROUNDS (3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16 64}
THREADS=${THREADS:-2}
WARM_UP=${WARM_UP:-5}
SCG_WARM_UP=${SCG_WARM_UP:-20}
XMX=${XMX:-512m}
PGO=${PGO:-1}
ROUNDS=${ROUNDS:-3}

# shellcheck source=bench/spring-reference.sh
source bench/spring-reference.sh
scg_jar=$(require_reference gateway)
command -v nginx >/dev/null || { echo "nginx is required (apt-get install nginx-light)" >&2; exit 1; }
require_wrk
if [ -n "${BIN:-}" ]; then
  build="$BIN"
elif [ "$PGO" = 1 ]; then
  BIN=$(bash bench/gateway-pgo.sh)
  build="release with PGO (bench/gateway-pgo.sh)"
else
  BIN=$(release_binary api-gateway)
  build="release (PGO=0)"
fi

# --- the upstream ----------------------------------------------------------------
up_port=$(free_port)
start_nginx upstream 1 "server { listen 127.0.0.1:$up_port; location / { default_type text/plain; return 200 'hello, world\n'; } }"
up_pid=$nginx_pid
wait_http "http://127.0.0.1:$up_port/hello" 100

# --- nginx as a reverse proxy, plain and "full chain" ------------------------------
proxy_block() {
  cat <<EOF
upstream backend { server 127.0.0.1:$up_port max_fails=5 fail_timeout=10s; keepalive 64; }
$2
server {
  listen 127.0.0.1:$1 reuseport;
  location /api/ {
    $3
    proxy_pass http://backend/;
    $(nginx_proxy_headers)
  }
}
EOF
}
nginx_affinity="worker_cpu_affinity auto;"
nginx_port=$(free_port)
start_nginx proxy auto "$(proxy_block "$nginx_port" "" "")" "$nginx_affinity"
nginx_plain_pid=$nginx_pid
nginx_full_port=$(free_port)
start_nginx proxy-full auto "$(proxy_block "$nginx_full_port" \
  'limit_req_zone $binary_remote_addr zone=perip:1m rate=1000000r/s;' \
  'limit_req zone=perip burst=1000000 nodelay; proxy_next_upstream error timeout http_502 http_503;')" \
  "$nginx_affinity"
nginx_full_pid=$nginx_pid
wait_http "http://127.0.0.1:$nginx_port/api/hello" 100
wait_http "http://127.0.0.1:$nginx_full_port/api/hello" 100

# --- the gateway configs (SCG's format; ours reads the same file) -----------------
# gateway_yml FILE FILTERS [EXTRA]: the route `api` (Path=/api/**, to the
# upstream) with FILTERS (YAML list items) and EXTRA top-level YAML.
gateway_yml() {
  cat >"$1" <<EOF
spring:
  cloud:
    gateway:
      server:
        webflux:
          routes:
            - id: api
              uri: http://127.0.0.1:$up_port
              predicates: [ "Path=/api/**" ]
              filters:
$2
${3:-}
EOF
}
gateway_yml "$work/plain.yml" "                - StripPrefix=1"
# The full chain checks an HS256 token on every request (JwtAuth); wrk sends
# the same valid token each time (nginx's full chain gets it too and ignores
# it: open-source nginx has no JWT check).
jwt_secret="bench-secret-bench-secret-bench-secret-0123"
jwt=$(bench_jwt "$jwt_secret")
gateway_yml "$work/full.yml" "                - StripPrefix=1
                - name: CircuitBreaker
                  args: { name: api }
                - name: RequestRateLimiter
                  args: { replenishRate: 100000000, burstCapacity: 100000000 }
                - JwtAuth
" "spring.cloud.gateway.jwt.secret: $jwt_secret
resilience4j:
  circuitbreaker:
    instances:
      api: { slidingWindowSize: 100, failureRateThreshold: 50 }"

start_ours() {
  local port admin
  port=$(free_port)
  admin=$(free_port)
  RUST_LOG=warn "$BIN" --port "$port" --admin-port "$admin" --config "$1" >"$work/ours-$2.log" 2>&1 &
  ours_pid=$!
  pids+=("$ours_pid")
  ours_url="http://127.0.0.1:$port"
  wait_http "$ours_url/api/hello" 300 "${3:-}"
}
start_ours "$work/plain.yml" plain
ours_plain_pid=$ours_pid; ours_plain_url=$ours_url
start_ours "$work/full.yml" full "Authorization: Bearer $jwt"
ours_full_pid=$ours_pid; ours_full_url=$ours_url

# SCG logs `Netty started on port NNNN`.
scg_port=$(free_port)
# The jar carries the Redis starter (for api-gateway's route-sharing test);
# its Redis auto-configuration stays off here, as without it.
java "-Xmx$XMX" -jar "$scg_jar" --server.port="$scg_port" --spring.main.banner-mode=off \
  --spring.autoconfigure.exclude=org.springframework.boot.autoconfigure.data.redis.RedisAutoConfiguration,org.springframework.boot.autoconfigure.data.redis.RedisReactiveAutoConfiguration \
  --spring.config.additional-location="file:$work/plain.yml" >"$work/scg.log" 2>&1 &
scg_pid=$!
pids+=("$scg_pid")
wait_http "http://127.0.0.1:$scg_port/api/hello" 1800 || { tail -30 "$work/scg.log" >&2; exit 1; }

machine_line
echo "nginx: $(nginx -v 2>&1); $(wrk --version 2>&1 | head -1)"
echo "ours: $build; upstream: nginx on :$up_port returning 13 bytes; load before: $(uptime)"

# --- load ------------------------------------------------------------------------
# run_wrk URL SECONDS CONNECTIONS [HEADER]
run_wrk() {
  if [ -n "${4:-}" ]; then
    timeout $(($2 + 30)) wrk -t"$THREADS" -c"$3" -d"$2s" --timeout 10s --latency -H "$4" "$1" 2>&1
  else
    timeout $(($2 + 30)) wrk -t"$THREADS" -c"$3" -d"$2s" --timeout 10s --latency "$1" 2>&1
  fi
}
results="$work/results.tsv"
# measure NAME PID URL WARM_UP [HEADER]: one line per connection count in $results.
measure() {
  local c out
  for c in $CONNECTIONS; do
    run_wrk "$3" "$4" "$c" "${5:-}" >/dev/null
    out=$(run_wrk "$3" "$DURATION" "$c" "${5:-}")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$round" "$c" \
      "$(echo "$out" | awk '/^Requests\/sec/ {print $2}')" \
      "$(echo "$out" | awk '$1=="50%" {print $2}')" \
      "$(echo "$out" | awk '$1=="99%" {print $2}')" \
      "$(rss_mib "$2")" \
      "$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')" >>"$results"
  done
}
round=1
measure direct "$up_pid" "http://127.0.0.1:$up_port/hello" "$WARM_UP"
measure scg "$scg_pid" "http://127.0.0.1:$scg_port/api/hello" "$SCG_WARM_UP"
# The JVM goes on working after its load (collector, compiler, Netty's
# threads); it is stopped before the next proxy is measured, so that each
# proxy runs alone. (The nginx and gateway processes left idle use no CPU.)
kill "$scg_pid" 2>/dev/null || true
for _ in $(seq 1 100); do kill -0 "$scg_pid" 2>/dev/null || break; sleep 0.1; done
kill -9 "$scg_pid" 2>/dev/null || true
# nginx and ours in alternating rounds, each starting with the one the
# last ended with, so that neither is always measured first or last.
for round in $(seq 1 "$ROUNDS"); do
  pair=(nginx ours)
  [ $((round % 2)) = 0 ] && pair=(ours nginx)
  for chain in plain full; do
    for proxy in "${pair[@]}"; do
      case $proxy-$chain in
        nginx-plain) measure nginx "$nginx_plain_pid" "http://127.0.0.1:$nginx_port/api/hello" "$WARM_UP" ;;
        ours-plain) measure ours "$ours_plain_pid" "$ours_plain_url/api/hello" "$WARM_UP" ;;
        nginx-full) measure nginx-full "$nginx_full_pid" "http://127.0.0.1:$nginx_full_port/api/hello" "$WARM_UP" "Authorization: Bearer $jwt" ;;
        ours-full) measure ours-full "$ours_full_pid" "$ours_full_url/api/hello" "$WARM_UP" "Authorization: Bearer $jwt" ;;
      esac
    done
  done
done
echo "load after: $(uptime)"

python3 - "$results" <<'PY'
import re, statistics, sys
def ms(x):
    m = re.match(r"([0-9.]+)(us|ms|s)$", x)
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
runs = {}
print()
print("| proxy | round | connections | requests/s | p50 ms | p99 ms | VmRSS MiB | errors |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for line in open(sys.argv[1]):
    name, rnd, c, rps, p50, p99, rss, errs = line.rstrip("\n").split("\t")
    row = (float(rps), ms(p50), ms(p99), float(rss))
    runs.setdefault((name, int(c)), []).append(row)
    print(f"| {name} | {rnd} | {c} | {row[0]:,.0f} | {row[1]:.2f} | {row[2]:.2f} | {row[3]:.1f} | {errs.strip() or 'none'} |")
# Each figure's median over its rounds (direct and SCG: one round).
rows = {k: tuple(statistics.median(r[i] for r in v) for i in range(4)) for k, v in runs.items()}
print()
print("| proxy | connections | rounds | requests/s | p50 ms | p99 ms | VmRSS MiB |")
print("| --- | --- | --- | --- | --- | --- | --- |")
order = ["direct", "nginx", "scg", "ours", "nginx-full", "ours-full"]
for (name, c), (rps, p50, p99, rss) in sorted(rows.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
    print(f"| {name} | {c} | {len(runs[(name, c)])} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {rss:.1f} |")
print()
print("| ratio (of the medians) | connections | requests/s | p99 | VmRSS |")
print("| --- | --- | --- | --- | --- |")
for ours, other in (("ours", "nginx"), ("ours", "scg"), ("ours-full", "nginx-full")):
    for c in sorted({c for (_, c) in rows}):
        if (ours, c) in rows and (other, c) in rows:
            o, t = rows[(ours, c)], rows[(other, c)]
            print(f"| {ours} / {other} | {c} | {o[0] / t[0]:.2f} | {o[2] / t[2]:.2f} | {o[3] / t[3]:.2f} |")
PY
