#!/usr/bin/env bash
# CPU per proxied request: our api-gateway against nginx and against the
# floor of a hyper proxy (bench/hyper-floor), one run on loopback with the
# same upstream and load generator as bench/gateway.sh:
#   - the upstream: an nginx (1 worker) answering `GET /hello` with 13 bytes;
#   - nginx as a keep-alive reverse proxy (`worker_processes auto`,
#     `keepalive 64`, `reuseport`, `worker_cpu_affinity auto`),
#     bench/gateway.sh's plain configuration;
#   - hyper-floor (2 threads): HTTP/1.1 in and out, `/api` stripped,
#     `X-Forwarded-For`; no routing, filters, timeouts or metrics;
#   - ours (release build, I/O workers and their CPU affinity by default,
#     one pinned per CPU) with `Path=/api/**` and
#     `StripPrefix=1`.
# Each proxy runs alone, in ROUNDS alternating rounds: 2 s of load to warm
# up, then `wrk -t$THREADS -c$C -d${DURATION}s` while the user and system
# CPU time of the proxy's processes (/proc/PID/stat, nginx's workers
# included) is read before and after. Prints requests/s and user, system
# and total CPU microseconds per request for each round, then the medians
# and the ratios ours / nginx and ours / hyper-floor. Each round also
# prints the upstream nginx's user and system microseconds per request
# (what the proxy's requests cost the upstream: a longer head costs it
# more), the proxy threads' context switches per request, voluntary
# and involuntary (/proc/PID/task/*/status), and wrk's p99 latency.
# CPU per request is steadier than requests/s on a shared machine, and it
# shows where the time goes: wrk, the upstream and the proxy share the
# cores, so a proxy's requests/s follow its CPU per request.
#
# Usage: bench/gateway-cpu.sh   (about 2 minutes; needs nginx and wrk)
# Overrides: ROUNDS (3), DURATION (5), C (64), THREADS (2), PROXIES ("nginx
# floor ours"; also bench/raw-floor's `raw`, `http` and `hybrid`: the
# upstream exchange inline in the client's task, with no HTTP library, with
# `http` types, or behind hyper's server; and `ours-b`, the api-gateway
# binary at OURS_B, for an A/B of two builds of ours).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
C=${C:-64}
THREADS=${THREADS:-2}
PROXIES=${PROXIES:-nginx floor ours}

# shellcheck source=bench/spring-reference.sh
source bench/spring-reference.sh
command -v nginx >/dev/null || { echo "nginx is required (apt-get install nginx-light)" >&2; exit 1; }
require_wrk
BIN=$(release_binary api-gateway)
echo "building bench/hyper-floor (release)..." >&2
(cd bench/hyper-floor && timeout 1800 cargo build -q --release >&2)
FLOOR=$root/bench/hyper-floor/target/release/hyper-floor
RAW=$root/bench/raw-floor/target/release/raw-floor
if [[ " $PROXIES " =~ \ (raw|http|hybrid)\  ]]; then
  echo "building bench/raw-floor (release)..." >&2
  (cd bench/raw-floor && timeout 1800 cargo build -q --release >&2)
fi

start_bench_upstream

# start PROXY: starts one proxy; sets proxy_pid and proxy_url.
start() {
  local port
  port=$(free_port)
  case $1 in
    nginx)
      start_nginx_proxy "$port" "worker_cpu_affinity auto;"
      proxy_pid=$nginx_pid ;;
    floor)
      "$FLOOR" "$port" "127.0.0.1:$up_port" 2 >"$work/floor.log" 2>&1 &
      proxy_pid=$!
      pids+=("$proxy_pid") ;;
    raw|http|hybrid)
      "$RAW" "$1" "$port" "127.0.0.1:$up_port" 2 >"$work/$1.log" 2>&1 &
      proxy_pid=$!
      pids+=("$proxy_pid") ;;
    ours|ours-b)
      local bin=$BIN
      [ "$1" = ours-b ] && bin=${OURS_B:?set OURS_B to the other api-gateway binary}
      RUST_LOG=warn "$bin" --port "$port" --admin-port "$(free_port)" --config "$work/plain.yml" >"$work/ours.log" 2>&1 &
      proxy_pid=$!
      pids+=("$proxy_pid") ;;
  esac
  proxy_url="http://127.0.0.1:$port/api/hello"
  wait_http "$proxy_url" 300
}

# cpu_ticks PID: user and system clock ticks of PID and its children.
cpu_ticks() {
  local u=0 s=0 p t
  for p in "$1" $(pgrep -P "$1" || true); do
    read -r -a t < <(awk '{print $14, $15}' "/proc/$p/stat")
    u=$((u + t[0])); s=$((s + t[1]))
  done
  echo "$u $s"
}

# switches PID: voluntary and involuntary context switches of PID's and
# its children's threads.
switches() {
  local v=0 n=0 p t a b
  for p in "$1" $(pgrep -P "$1" || true); do
    for t in /proc/"$p"/task/*/status; do
      read -r a b < <(awk '/^voluntary_ctxt/ {v=$2} /^nonvoluntary_ctxt/ {n=$2} END {print v, n}' "$t")
      v=$((v + a)); n=$((n + b))
    done
  done
  echo "$v $n"
}

tck=$(getconf CLK_TCK)
up_pid=$nginx_pid
results="$work/cpu.tsv"
machine_line
echo "nginx: $(nginx -v 2>&1); $(wrk --version 2>&1 | head -1); load before: $(uptime)"
printf '%-6s %5s %10s %8s %8s %8s %8s %8s %9s %7s\n' proxy round 'req/s' 'user us' 'sys us' 'total us' \
  'up user' 'up sys' 'ctx v/i' 'p99 ms'
for round in $(seq 1 "$ROUNDS"); do
  for proxy in $PROXIES; do
    start "$proxy"
    timeout 40 wrk -t"$THREADS" -c"$C" -d2s "$proxy_url" >/dev/null
    read -r u0 s0 < <(cpu_ticks "$proxy_pid")
    read -r uu0 us0 < <(cpu_ticks "$up_pid")
    read -r cv0 cn0 < <(switches "$proxy_pid")
    out=$(timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$C" -d"${DURATION}s" --latency "$proxy_url")
    read -r u1 s1 < <(cpu_ticks "$proxy_pid")
    read -r uu1 us1 < <(cpu_ticks "$up_pid")
    read -r cv1 cn1 < <(switches "$proxy_pid")
    kill "$proxy_pid"
    wait "$proxy_pid" 2>/dev/null || true
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    if echo "$out" | grep -q -E 'Non-2xx|Socket errors'; then
      echo "$proxy: wrk reported errors:" >&2; echo "$out" >&2; exit 1
    fi
    python3 - "$proxy" "$round" "$n" "$rps" "$((u1 - u0))" "$((s1 - s0))" "$tck" \
      "$((uu1 - uu0))" "$((us1 - us0))" "$((cv1 - cv0))" "$((cn1 - cn0))" "$p99" <<'PY' | tee -a "$results"
import re, sys
proxy, rnd, n, rps, u, s, tck = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
uu, us_, cv, cn = (int(a) for a in sys.argv[8:12])
value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", sys.argv[12]).groups()
p99 = float(value) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit]
us = lambda ticks: ticks / tck * 1e6 / n
print(f"{proxy:6s} {rnd:>5s} {rps:10.0f} {us(u):8.2f} {us(s):8.2f} {us(u + s):8.2f} "
      f"{us(uu):8.2f} {us(us_):8.2f} {cv / n:.2f}/{cn / n:.2f} {p99:7.2f}")
PY
  done
done
echo "load after: $(uptime)"
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for p in dict.fromkeys(r[0] for r in rows):
    mine = [r for r in rows if r[0] == p]
    med[p] = [statistics.median(float(r[i]) for r in mine) for i in (2, 3, 4, 5, 6, 7, 9)]
print("\nmedians       req/s  user us   sys us total us  up user   up sys  p99 ms")
for p, m in med.items():
    print(f"{p:6s} {m[0]:12.0f} {m[1]:8.2f} {m[2]:8.2f} {m[3]:8.2f} {m[4]:8.2f} {m[5]:8.2f} {m[6]:7.2f}")
base = "ours" if "ours" in med else next(iter(med))
for other in [p for p in med if p != base]:
    o, m = med[other], med[base]
    print(f"{base} / {other:7s}: req/s {m[0] / o[0]:.2f}, CPU per request {m[3] / o[3]:.2f} "
          f"(user {m[1] - o[1]:+.2f} us, system {m[2] - o[2]:+.2f} us), p99 {m[6] / o[6]:.2f}")
PY
