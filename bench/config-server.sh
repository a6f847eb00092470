#!/usr/bin/env bash
# Benchmark of config-server, run from the workspace root or anywhere:
#   bench/config-server.sh   (DURATION=10 CONNECTIONS=32 THREADS=1 ROUNDS=3 by default)
#
# 1. Repeated GET /foo/dev against config-server and against nginx serving the
#    same JSON bytes as a static file; same load generator (wrk), same
#    settings, loopback only. Prints requests/s and p99 of both and the ratio.
# 2. Time to serve the first request for a new label on a repository with
#    10,000 commits: (a) a tag that exists but was never requested,
#    (b) a branch pushed after start, announced by webhook (includes the fetch).
# Installs nginx and wrk from Debian when missing. Everything it starts is
# stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx && [ ! -x /usr/sbin/nginx ] || ! need wrk; then
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx wrk >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 1 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "timeout waiting for $1" >&2; return 1
}

echo "building config-server (release)..." >&2
(cd "$root" && cargo build -q --release -p config-server)
BIN="$root/target/release/config-server"

# --- a repository with 10,000 commits (git fast-import) -----------------------
repo="$work/repo"
git init -q -b main "$repo"
python3 - "$repo" <<'PY' | git -C "$repo" fast-import --quiet
import sys
app = b"""spring:
  application:
    name: foo
server:
  port: 8080
  tomcat:
    threads:
      max: 200
datasource:
  url: jdbc:postgresql://db:5432/foo
  username: foo
  pool:
    max-size: 20
features:
  - name: search
    enabled: true
  - name: export
    enabled: false
"""
dev = b"server:\n  port: 9090\nlogging:\n  level:\n    root: DEBUG\n"
shared = b"management:\n  endpoints:\n    web:\n      exposure:\n        include: health,info,prometheus\n"
out = sys.stdout.buffer
for i in range(1, 10001):
    out.write(b"commit refs/heads/main\n")
    out.write(b"committer bench <bench@example.invalid> %d +0000\n" % (1700000000 + i))
    msg = b"commit %d" % i
    out.write(b"data %d\n%s\n" % (len(msg), msg))
    if i == 1:
        for name, body in ((b"foo.yml", app), (b"application.yml", shared)):
            out.write(b"M 100644 inline %s\ndata %d\n%s\n" % (name, len(body), body))
    body = dev + b"build: %d\n" % i
    out.write(b"M 100644 inline foo-dev.yml\ndata %d\n%s\n" % (len(body), body))
PY
git -C "$repo" tag -f v5000 "$(git -C "$repo" rev-list main | sed -n 5001p)" >/dev/null
echo "repo: $(git -C "$repo" rev-list --count main) commits" >&2

# --- start config-server -------------------------------------------------------
cs_port=$(free_port)
SPRING_CLOUD_CONFIG_SERVER_GIT_BASEDIR="$work/mirror.git" RUST_LOG=warn \
  "$BIN" --port "$cs_port" --git-uri "file://$repo" --refresh-rate 0 2>"$work/cs.log" &
pids+=($!)
wait_http "http://127.0.0.1:$cs_port/actuator/health"
curl -sf "http://127.0.0.1:$cs_port/foo/dev" -o "$work/foo-dev.json"

# --- nginx serving the same bytes ----------------------------------------------
ng_port=$(free_port)
mkdir -p "$work/www/foo"
chmod 755 "$work"
cp "$work/foo-dev.json" "$work/www/foo/dev"
chmod -R a+rX "$work/www"
cat >"$work/nginx.conf" <<NGX
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  client_body_temp_path $work/tmp-body;
  proxy_temp_path $work/tmp-proxy;
  fastcgi_temp_path $work/tmp-fcgi;
  uwsgi_temp_path $work/tmp-uwsgi;
  scgi_temp_path $work/tmp-scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$ng_port;
    root $work/www;
  }
}
NGX
"$NGINX" -c "$work/nginx.conf" -p "$work" 2>/dev/null
wait_http "http://127.0.0.1:$ng_port/foo/dev"
cmp <(curl -s "http://127.0.0.1:$ng_port/foo/dev") "$work/foo-dev.json"

# --- load ----------------------------------------------------------------------
run_wrk() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$1" 2>&1; }
rps() { awk '/^Requests\/sec/ {print $2}'; }
p99() { awk '$1=="99%" {print $2}'; }

# Alternate the two servers ROUNDS times (default 3) and take the median of
# each, so that noise from other work on the machine hits both alike.
wrk -t1 -c4 -d2s "http://127.0.0.1:$cs_port/foo/dev" >/dev/null
wrk -t1 -c4 -d2s "http://127.0.0.1:$ng_port/foo/dev" >/dev/null
cs_rps_all=(); ng_rps_all=(); cs_p99_all=(); ng_p99_all=()
for _ in $(seq 1 "$ROUNDS"); do
  out=$(run_wrk "http://127.0.0.1:$cs_port/foo/dev")
  cs_rps_all+=("$(echo "$out" | rps)"); cs_p99_all+=("$(echo "$out" | p99)")
  out=$(run_wrk "http://127.0.0.1:$ng_port/foo/dev")
  ng_rps_all+=("$(echo "$out" | rps)"); ng_p99_all+=("$(echo "$out" | p99)")
done
median() { python3 - "$@" <<'PY'
import re, statistics, sys
def ms(v):
    m = re.match(r"([0-9.]+)(us|ms|s)$", v)
    if not m:
        return float(v)
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
print(f"{statistics.median(ms(v) for v in sys.argv[1:]):.2f}")
PY
}
cs_rps=$(median "${cs_rps_all[@]}"); ng_rps=$(median "${ng_rps_all[@]}")
cs_p99="$(median "${cs_p99_all[@]}")ms"; ng_p99="$(median "${ng_p99_all[@]}")ms"
ratios=()
for i in "${!cs_rps_all[@]}"; do
  ratios+=("$(python3 -c "print(f'{${cs_rps_all[$i]}/${ng_rps_all[$i]}:.3f}')")")
done
ratio=$(median "${ratios[@]}")
echo "rounds: config-server ${cs_rps_all[*]} / nginx ${ng_rps_all[*]} req/s; ratios ${ratios[*]}" >&2

# --- first request for a new label on the 10,000-commit repository -------------
first_tag=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$cs_port/foo/dev/v5000")
second_tag=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$cs_port/foo/dev/v5000")
git -C "$repo" branch -q release/next "$(git -C "$repo" rev-list main | sed -n 101p)"
push_start=$(date +%s.%N)
curl -sf -o /dev/null -X POST "http://127.0.0.1:$cs_port/monitor" \
  -H 'Content-Type: application/x-www-form-urlencoded' -d 'path=foo-dev.yml'
for _ in $(seq 1 400); do
  if curl -sf -o /dev/null "http://127.0.0.1:$cs_port/foo/dev/release(_)next"; then break; fi
  sleep 0.005
done
push_end=$(date +%s.%N)
new_branch=$(python3 -c "print(f'{$push_end-$push_start:.3f}')")

cat <<REPORT
config-server benchmark ($(nproc) cores, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, median of $ROUNDS alternating rounds, $(stat -c %s "$work/foo-dev.json") byte body)
| server | requests/s | p99 (ms) |
| --- | --- | --- |
| config-server GET /foo/dev | $cs_rps | ${cs_p99%ms} |
| nginx static, same bytes | $ng_rps | ${ng_p99%ms} |
ratio config-server / nginx (median of per-round ratios): $ratio
per round: config-server ${cs_rps_all[*]}; nginx ${ng_rps_all[*]}

10,000-commit repository:
first request for a never-requested tag (v5000): ${first_tag}s (repeat: ${second_tag}s)
new branch pushed + webhook -> first successful GET of it: ${new_branch}s
REPORT
