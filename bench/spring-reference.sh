# Shared by the scripts in bench/ that compare against Spring or nginx (sourced,
# not run): the temporary directory, stopping what was started, starting a
# reference Spring application from interop/spring or an nginx, and reading memory.
# Sets `work` (a temporary directory) and `pids`, and traps EXIT to clean up.

work=$(mktemp -d)
pids=()

# Stops every process in `pids`: SIGTERM, up to 10 s for the JVM's graceful
# stop, then SIGKILL; removes `work`.
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap stop_all EXIT INT TERM

# require_reference MODULE: exits unless java and the module's jar are
# there; prints the jar's path.
require_reference() {
  local jar="interop/spring/$1/target/$1.jar"
  [ -f "$jar" ] || { echo "missing $jar: run scripts/prereqs (needs java and mvn)" >&2; exit 1; }
  command -v java >/dev/null || { echo "java (17+) is required" >&2; exit 1; }
  echo "$jar"
}

# start_reference MODULE ARGS...: runs `java -Xmx$XMX -jar
# interop/spring/MODULE/target/MODULE.jar --server.port=0 ARGS...` in the
# background (log: $work/reference.log) and waits at most 120 s for Tomcat's
# `Tomcat started on port NNNN` line. Sets `ref_pid` and `ref_port`.
start_reference() {
  local module=$1
  shift
  local jar
  jar=$(require_reference "$module")
  java "-Xmx$XMX" -jar "$jar" --server.port=0 --spring.main.banner-mode=off "$@" \
    >"$work/reference.log" 2>&1 &
  ref_pid=$!
  pids+=("$ref_pid")
  ref_port=""
  for _ in $(seq 1 1200); do
    ref_port=$(grep -m1 -o 'Tomcat started on port [0-9]*' "$work/reference.log" 2>/dev/null | grep -o '[0-9]*$' || true)
    [ -n "$ref_port" ] && return 0
    kill -0 "$ref_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the reference $module did not start; its log:" >&2
  tail -30 "$work/reference.log" >&2
  exit 1
}

# wait_http URL TENTHS [HEADER]: waits (at most TENTHS tenths of a second) until URL
# answers 2xx.
wait_http() {
  local header=()
  if [ -n "${3:-}" ]; then header=(-H "$3"); fi
  for _ in $(seq 1 "$2"); do curl -sf -o /dev/null "${header[@]}" "$1" && return 0; sleep 0.1; done
  echo "timeout waiting for $1" >&2
  return 1
}

# machine_line: cores, kernel, Java version.
machine_line() {
  echo "machine: $(nproc) cores; $(uname -sr); $(java -version 2>&1 | head -1)"
}

# free_port: a free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# all_pids PID: PID and its descendants.
all_pids() {
  local all=("$1") i=0
  while [ "$i" -lt "${#all[@]}" ]; do
    for c in $(pgrep -P "${all[$i]}" || true); do all+=("$c"); done
    i=$((i + 1))
  done
  echo "${all[@]}"
}

# rss_mib PID: VmRSS in MiB of a process and all its descendants (nginx's
# workers, `git cat-file` children).
rss_mib() {
  local p
  for p in $(all_pids "$1"); do cat "/proc/$p/status" 2>/dev/null || true; done |
    awk '/^VmRSS:/ {kib += $2} END {printf "%.1f", kib / 1024}'
}

# require_wrk: installs wrk from Debian when it is missing.
require_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
}

# release_binary CRATE: builds the crate's binary of the same name (release)
# and prints its path.
release_binary() {
  echo "building $1 (release)..." >&2
  timeout 1800 cargo build -q --release -p "$1" --bin "$1" >&2
  echo "$root/target/release/$1"
}

# nginx_conf NAME WORKERS HTTP_BLOCK [MAIN]: writes $work/NAME/nginx.conf, an
# nginx in the foreground with its own prefix under $work, HTTP_BLOCK inside
# its `http` block and MAIN (directives such as `user root;`) before it.
nginx_conf() {
  local dir="$work/$1"
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<EOF
${4:-}
worker_processes $2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
  $3
}
EOF
}

# start_nginx NAME WORKERS HTTP_BLOCK: starts nginx_conf's nginx; sets
# nginx_pid and adds it to `pids`.
start_nginx() {
  local dir="$work/$1"
  nginx_conf "$@"
  nginx -p "$dir" -c "$dir/nginx.conf" 2>"$dir/logs/stderr" &
  nginx_pid=$!
  pids+=("$nginx_pid")
}

# nginx_proxy_headers: the request fields of nginx as the gateway
# benchmarks' reverse proxy (the `/api/` location): HTTP/1.1 with keep-alive
# to the upstream, and the forwarding fields that Spring Cloud Gateway and
# ours set by default (`X-Forwarded-For`, `-Proto`, `-Host`, `-Port`,
# `-Prefix` for the stripped `/api`, and `Forwarded`), so that nginx does
# the same work as the gateways and the upstream reads a head of the same
# size from each. (Until 2026-12-02 nginx set only the first two.)
nginx_proxy_headers() {
  cat <<'EOF'
proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $http_host;
    proxy_set_header X-Forwarded-Port $server_port;
    proxy_set_header X-Forwarded-Prefix /api;
    proxy_set_header Forwarded "proto=$scheme;host=\"$http_host\";for=\"$remote_addr:$remote_port\"";
EOF
}

# start_nginx_proxy PORT [MAIN]: nginx (`worker_processes auto`) as the
# gateway benchmarks' plain keep-alive reverse proxy on PORT, its port with
# `reuseport`: `/api/` to start_bench_upstream's upstream with
# nginx_proxy_headers; MAIN as nginx_conf's. Sets nginx_pid.
start_nginx_proxy() {
  start_nginx proxy auto "upstream backend { server 127.0.0.1:$up_port; keepalive 64; }
server { listen 127.0.0.1:$1 reuseport; location /api/ { proxy_pass http://backend/;
    $(nginx_proxy_headers) } }" "${2:-}"
}

# start_bench_upstream: the gateway benchmarks' upstream, an nginx (1
# worker) answering `GET /hello` with 13 bytes, and $work/plain.yml, the
# gateway's `Path=/api/**` + `StripPrefix=1` route to it. Sets up_port.
start_bench_upstream() {
  up_port=$(free_port)
  start_nginx upstream 1 "server { listen 127.0.0.1:$up_port; location / { default_type text/plain; return 200 'hello, world\n'; } }"
  wait_http "http://127.0.0.1:$up_port/hello" 100
  cat >"$work/plain.yml" <<YML
spring.cloud.gateway.server.webflux.routes:
  - id: api
    uri: http://127.0.0.1:$up_port
    predicates: [ "Path=/api/**" ]
    filters: [ StripPrefix=1 ]
YML
}

# bench_jwt SECRET: prints an HS256 token signed with SECRET, `sub` bench,
# valid for a day (the full chain's JwtAuth).
bench_jwt() {
  python3 - "$1" <<'PY'
import base64, hashlib, hmac, json, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": "bench", "exp": int(time.time()) + 86400}).encode())
sig = hmac.new(sys.argv[1].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
print(f"{head}.{body}.{b64(sig)}")
PY
}
