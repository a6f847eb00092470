#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: our
# api-gateway against nginx and the floor of a hyper proxy
# (bench/hyper-floor), with bench/gateway-cpu.sh's upstream, routes and
# load. Instructions do not move with what else the machine runs, so two
# builds (or ours and a peer) compare on a noisy machine where requests/s
# and CPU time spread by 5 % or more.
#
# Each proxy runs under `valgrind --tool=callgrind --instr-atstart=no`
# (nginx's worker is followed with --trace-children). After a warm-up the
# counting is switched on and zeroed, `wrk -t1 -c$C -d${DURATION}s` runs,
# the counts are dumped, and the instructions of all the proxy's processes
# are divided by the requests wrk completed. Connection set-up (C
# connections) is in the count, spread over the requests.
# Prints instructions per request of each proxy and the ratios; with
# PROFILE=1 it also prints the top functions of each (callgrind_annotate).
#
# Usage: bench/gateway-instructions.sh   (about 2 minutes; needs nginx, wrk
# and valgrind)
# Overrides: CHAIN (plain; `full` is bench/gateway.sh's full chain: nginx
# with `limit_req`, ours with CircuitBreaker, RequestRateLimiter and JwtAuth,
# wrk sending a valid HS256 token; `jwks` is that chain with the token
# RS256-signed and its key from a JWKS URL, api-gateway/tests/keys/rsa-1,
# served by another nginx: ours only, as nginx has no JWT check), DURATION (10), C (16), PROXIES ("nginx
# floor ours"; the floor is always the plain route; `ours-b`
# is the api-gateway binary at OURS_B), PROFILE (0; 1 prints the top
# functions and keeps its callgrind file in PROFILE_DIR, default /tmp).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
DURATION=${DURATION:-10}
C=${C:-16}
PROXIES=${PROXIES:-nginx floor ours}
PROFILE=${PROFILE:-0}
CHAIN=${CHAIN:-plain}

# shellcheck source=bench/spring-reference.sh
source bench/spring-reference.sh
for cmd in nginx valgrind callgrind_control; do
  command -v "$cmd" >/dev/null || { echo "$cmd is required (apt-get install nginx-light valgrind)" >&2; exit 1; }
done
require_wrk
BIN=$(release_binary api-gateway)
echo "building bench/hyper-floor (release)..." >&2
(cd bench/hyper-floor && timeout 1800 cargo build -q --release >&2)
FLOOR=$root/bench/hyper-floor/target/release/hyper-floor

start_bench_upstream
# The full chain, as in bench/gateway.sh.
jwt_secret="bench-secret-bench-secret-bench-secret-0123"
cat >"$work/full.yml" <<YML
spring.cloud.gateway.jwt.secret: $jwt_secret
spring.cloud.gateway.server.webflux.routes:
  - id: api
    uri: http://127.0.0.1:$up_port
    predicates: [ "Path=/api/**" ]
    filters:
      - StripPrefix=1
      - name: CircuitBreaker
        args: { name: api }
      - name: RequestRateLimiter
        args: { replenishRate: 100000000, burstCapacity: 100000000 }
      - JwtAuth
resilience4j.circuitbreaker.instances.api: { slidingWindowSize: 100, failureRateThreshold: 50 }
YML
jwt=$(bench_jwt "$jwt_secret")
case $CHAIN in
  plain) ours_yml=$work/plain.yml; nginx_zone=""; nginx_limit=""; auth=() ;;
  full)
    ours_yml=$work/full.yml
    nginx_zone='limit_req_zone $binary_remote_addr zone=perip:1m rate=1000000r/s;'
    nginx_limit='limit_req zone=perip burst=1000000 nodelay; proxy_next_upstream error timeout http_502 http_503;'
    auth=(-H "Authorization: Bearer $jwt") ;;
  jwks)
    # The full chain's JwtAuth with its key from a JWKS instead of the
    # secret: the token is RS256-signed with the test key rsa-1.
    keys=api-gateway/tests/keys
    jwks_port=$(free_port)
    start_nginx jwks 1 "server { listen 127.0.0.1:$jwks_port; location = /jwks {
      default_type application/json; return 200 '{\"keys\": [$(tr -d '\n' <"$keys/rsa-1.jwk.json")]}'; } }"
    wait_http "http://127.0.0.1:$jwks_port/jwks" 100
    sed "s|^spring.cloud.gateway.jwt.secret: .*|spring.cloud.gateway.jwt.jwk-set-uri: http://127.0.0.1:$jwks_port/jwks|" \
      "$work/full.yml" >"$work/jwks.yml"
    ours_yml=$work/jwks.yml; nginx_zone=""; nginx_limit=""
    jwt=$(python3 - "$keys/rsa-1.key.pem" <<'PY'
import base64, json, subprocess, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}).encode())
body = b64(json.dumps({"sub": "bench", "exp": int(time.time()) + 86400}).encode())
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", sys.argv[1]],
                     input=f"{head}.{body}".encode(), capture_output=True, check=True).stdout
print(f"{head}.{body}.{b64(sig)}")
PY
)
    auth=(-H "Authorization: Bearer $jwt")
    case " $PROXIES " in
      *" nginx "*|*" floor "*) echo "CHAIN=jwks runs ours and ours-b only" >&2; exit 1 ;;
    esac ;;
  *) echo "CHAIN is plain, full or jwks" >&2; exit 1 ;;
esac

vg=(valgrind --tool=callgrind --instr-atstart=no --trace-children=yes)

# start PROXY: starts one proxy under callgrind; sets proxy_pid, proxy_url
# and out (the prefix of its callgrind files).
start() {
  local port
  port=$(free_port)
  out="$work/cg-$1"
  case $1 in
    nginx)
      # Two workers and two threads each for the floor and ours, as in
      # bench/gateway-cpu.sh; every process is counted.
      local dir="$work/proxy"
      # Its workers run as root, so that callgrind_control reaches them.
      nginx_conf proxy 2 "upstream backend { server 127.0.0.1:$up_port max_fails=5 fail_timeout=10s; keepalive 64; }
  $nginx_zone
  server { listen 127.0.0.1:$port; location /api/ { $nginx_limit proxy_pass http://backend/;
    $(nginx_proxy_headers) } }" \
        "user root;"
      "${vg[@]}" "--callgrind-out-file=$out.%p" nginx -p "$dir" -c "$dir/nginx.conf" >"$work/nginx-vg.log" 2>&1 &
      ;;
    floor)
      "${vg[@]}" "--callgrind-out-file=$out.%p" "$FLOOR" "$port" "127.0.0.1:$up_port" 2 >"$work/floor.log" 2>&1 &
      ;;
    ours|ours-b)
      local bin=$BIN
      [ "$1" = ours-b ] && bin=${OURS_B:?set OURS_B to the other api-gateway binary}
      RUST_LOG=warn "${vg[@]}" "--callgrind-out-file=$out.%p" "$bin" --port "$port" --admin-port "$(free_port)" \
        --config "$ours_yml" >"$work/ours.log" 2>&1 &
      ;;
  esac
  proxy_pid=$!
  pids+=("$proxy_pid")
  proxy_url="http://127.0.0.1:$port/api/hello"
  wait_http "$proxy_url" 1200 "${auth[@]:1}"
}

machine_line
echo "chain: $CHAIN; nginx: $(nginx -v 2>&1); $(valgrind --version); load before: $(uptime)"
printf '%-7s %9s %14s %12s\n' proxy requests instructions 'per request'
results="$work/ir.tsv"
for proxy in $PROXIES; do
  start "$proxy"
  timeout 120 wrk -t1 -c"$C" -d3s "${auth[@]}" "$proxy_url" >/dev/null
  for p in $(all_pids "$proxy_pid"); do
    callgrind_control -i on "$p" >/dev/null 2>&1
    callgrind_control -z "$p" >/dev/null 2>&1
  done
  wrk_out=$(timeout $((DURATION + 120)) wrk -t1 -c"$C" -d"${DURATION}s" "${auth[@]}" "$proxy_url")
  for p in $(all_pids "$proxy_pid"); do callgrind_control -d "$p" >/dev/null 2>&1; done
  if echo "$wrk_out" | grep -q -E 'Non-2xx|Socket errors'; then
    echo "$proxy: wrk reported errors:" >&2; echo "$wrk_out" >&2; exit 1
  fi
  n=$(echo "$wrk_out" | awk '/requests in/ {print $1}')
  kill "$proxy_pid"
  wait "$proxy_pid" 2>/dev/null || true
  # The dumps made by `-d` end in `.1`; their `totals:` line is the count.
  ir=$(cat "$out".*.1 | awk '/^totals:/ {s += $2} END {print s}')
  python3 -c "import sys; p, n, ir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]); print(f'{p:7s} {n:9d} {ir:14d} {ir / n:12.0f}')" \
    "$proxy" "$n" "$ir" | tee -a "$results"
  if [ "$PROFILE" = 1 ]; then
    callgrind_annotate --inclusive=no "$(ls "$out".*.1 | head -1)" >"$work/annotate.txt" 2>/dev/null
    head -60 "$work/annotate.txt"
    cp "$out".*.1 "${PROFILE_DIR:-/tmp}/" && echo "profile kept in ${PROFILE_DIR:-/tmp}" >&2
  fi
done
echo "load after: $(uptime)"
python3 - "$results" <<'PY'
import sys
rows = {r[0]: int(float(r[3])) for r in (l.split() for l in open(sys.argv[1]))}
base = "ours" if "ours" in rows else next(iter(rows))
for other in [p for p in rows if p != base]:
    print(f"{base} / {other}: {rows[base] / rows[other]:.2f} of the instructions per request "
          f"({rows[base] - rows[other]:+d})")
PY
