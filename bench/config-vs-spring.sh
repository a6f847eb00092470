#!/usr/bin/env bash
# Our config-server against the reference Spring Cloud Config Server
# (interop/spring/config-server, git backend), measured in one run on the
# same git repository with the same load generator (wrk), loopback only:
#   - the repository (created here): 5 applications x profiles dev and prod,
#     with application.yml, application-{profile}.yml, {app}.yml and
#     {app}-{profile}.yml (a few dozen keys per application and profile);
#   - wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --timeout 10s --latency, each request a
#     `GET /{app}/{profile}` taken in turn from the 10 pairs (a Lua script),
#     the same for both servers;
#   - warm-up: WARM_UP seconds of the same load on each (JIT for the JVM);
#   - ROUNDS alternating rounds (ours, reference, ours, ...): requests/s and
#     p99, medians, and the median of the per-round ratios ours / reference;
#   - VmRSS of each server (with its child processes: ours runs
#     `git cat-file`) after the warm-up and at the end.
# Same settings for both: the git remote is a file:// URL, fetched in the
# background every 30 s (`refresh-rate: 30`; Spring's default 0 would fetch
# on every request), default label main. The reference runs with
# `java -Xmx$XMX` (full tiered JIT) and its module's application.yml.
# Installs wrk from Debian when missing. Everything it starts is stopped on
# exit.
#
# Usage: bench/config-vs-spring.sh   (about 3 minutes; needs java and the jar
#        from scripts/prereqs)
# Overrides: DURATION (10), CONNECTIONS (32), THREADS (1), ROUNDS (3),
#            WARM_UP (15), XMX (1g).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}
WARM_UP=${WARM_UP:-15}
XMX=${XMX:-1g}

# shellcheck source=bench/spring-reference.sh
source bench/spring-reference.sh
require_reference config-server >/dev/null

require_wrk
BIN=$(release_binary config-server)

# --- the repository ------------------------------------------------------------
repo="$work/repo"
git init -q -b main "$repo"
python3 - "$repo" <<'PY'
import os, sys
repo = sys.argv[1]
apps = ["orders", "billing", "users", "catalog", "shipping"]
def write(name, text):
    with open(os.path.join(repo, name), "w") as f:
        f.write(text)
write("application.yml", """management:
  endpoints:
    web:
      exposure:
        include: health,info,prometheus,refresh
  endpoint:
    health:
      show-details: when-authorized
logging:
  level:
    root: INFO
    org.springframework.web: WARN
server:
  shutdown: graceful
  tomcat:
    threads:
      max: 200
    accept-count: 100
spring:
  jackson:
    default-property-inclusion: non_null
  lifecycle:
    timeout-per-shutdown-phase: 20s
eureka:
  client:
    service-url:
      defaultZone: http://eureka-1:8761/eureka/,http://eureka-2:8761/eureka/
  instance:
    prefer-ip-address: true
    lease-renewal-interval-in-seconds: 30
tracing:
  sampling: 0.1
  endpoint: http://collector:9411/api/v2/spans
""")
for profile, level, replicas in (("dev", "DEBUG", 1), ("prod", "WARN", 3)):
    write(f"application-{profile}.yml", f"""logging:
  level:
    root: {level}
tracing:
  sampling: {0.5 if profile == "dev" else 0.01}
features:
  audit: {str(profile == "prod").lower()}
  beta: {str(profile == "dev").lower()}
cluster:
  replicas: {replicas}
  zone: {profile}-zone-a
""")
for n, app in enumerate(apps):
    keys = "\n".join(f"  setting-{k}: value-{app}-{k}" for k in range(12))
    write(f"{app}.yml", f"""spring:
  application:
    name: {app}
  datasource:
    url: jdbc:postgresql://db:5432/{app}
    username: {app}
    hikari:
      maximum-pool-size: 20
      minimum-idle: 5
      connection-timeout: 30000
server:
  port: {8080 + n}
{app}:
{keys}
  limits:
    - name: per-user
      rate: 100
    - name: per-ip
      rate: 1000
  retry:
    attempts: 3
    backoff-ms: 200
""")
    for profile in ("dev", "prod"):
        keys = "\n".join(f"  tuned-{k}: {profile}-{app}-{k}" for k in range(8))
        write(f"{app}-{profile}.yml", f"""spring:
  datasource:
    url: jdbc:postgresql://db-{profile}:5432/{app}
    hikari:
      maximum-pool-size: {10 if profile == "dev" else 50}
{app}:
{keys}
  retry:
    attempts: {1 if profile == "dev" else 5}
""")
PY
git -C "$repo" add -A
git -C "$repo" -c user.email=bench@example.invalid -c user.name=bench commit -q -m "config"
paths=()
for app in orders billing users catalog shipping; do
  for profile in dev prod; do paths+=("/$app/$profile"); done
done
{
  echo "paths = {"
  for p in "${paths[@]}"; do echo "  \"$p\","; done
  echo "}"
  echo "i = 0"
  echo "request = function()"
  echo "  i = i % #paths + 1"
  echo "  return wrk.format(\"GET\", paths[i])"
  echo "end"
} >"$work/paths.lua"

# --- both servers ----------------------------------------------------------------
ours_port=$(free_port)
SPRING_CLOUD_CONFIG_SERVER_GIT_BASEDIR="$work/mirror.git" CONFIG_SERVER_MIRROR_DIR="$work/mirror.git" RUST_LOG=warn \
  "$BIN" --port "$ours_port" --git-uri "file://$repo" --refresh-rate 30 >"$work/ours.log" 2>&1 &
ours_pid=$!
pids+=("$ours_pid")
wait_http "http://127.0.0.1:$ours_port/orders/dev" 300

start_reference config-server \
  --spring.cloud.config.server.git.uri="file://$repo" \
  --spring.cloud.config.server.git.basedir="$work/reference-basedir" \
  --spring.cloud.config.server.git.default-label=main \
  --spring.cloud.config.server.git.refresh-rate=30
wait_http "http://127.0.0.1:$ref_port/orders/dev" 300

# Both serve the same properties (names of the property sources differ).
same=$(python3 - "http://127.0.0.1:$ours_port" "http://127.0.0.1:$ref_port" "${paths[@]}" <<'PY'
import json, sys, urllib.request
ours, ref, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
def sources(base, path):
    with urllib.request.urlopen(base + path) as r:
        env = json.load(r)
    return [ps["source"] for ps in env["propertySources"]]
diff = [p for p in paths if sources(ours, p) != sources(ref, p)]
keys = sum(len(s) for s in sources(ours, paths[0]))
print(f"property sources equal on {len(paths) - len(diff)} of {len(paths)} paths ({keys} keys in {paths[0]})" + (f"; differ: {diff}" if diff else ""))
PY
)
ours_bytes=$(curl -s "http://127.0.0.1:$ours_port/orders/dev" | wc -c)
ref_bytes=$(curl -s "http://127.0.0.1:$ref_port/orders/dev" | wc -c)

ours_url="http://127.0.0.1:$ours_port"
ref_url="http://127.0.0.1:$ref_port"
echo "ours: config-server at $ours_url (pid $ours_pid); reference: Spring Cloud Config Server at $ref_url (pid $ref_pid, java -Xmx$XMX)"
machine_line
echo "$same; /orders/dev body: ours $ours_bytes B, reference $ref_bytes B"
echo "load before: $(uptime)"

# --timeout 10s: wrk leaves requests slower than its timeout (default 2 s)
# out of the latency distribution; the reference's p99 under this load is
# close to that.
run_wrk() { timeout $(($1 + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1s" --timeout 10s --latency -s "$work/paths.lua" "$2" 2>&1; }
rps() { awk '/^Requests\/sec/ {print $2}'; }
p99() { awk '$1=="99%" {print $2}'; }
errors() { awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' '; }

# --- warm-up, the same for both --------------------------------------------------
run_wrk "$WARM_UP" "$ours_url" >/dev/null
run_wrk "$WARM_UP" "$ref_url" >/dev/null
ours_rss_warm=$(rss_mib "$ours_pid"); ref_rss_warm=$(rss_mib "$ref_pid")

# --- alternating rounds --------------------------------------------------------
ours_rps=(); ref_rps=(); ours_p99=(); ref_p99=(); errs=""
for _ in $(seq 1 "$ROUNDS"); do
  out=$(run_wrk "$DURATION" "$ours_url")
  ours_rps+=("$(echo "$out" | rps)"); ours_p99+=("$(echo "$out" | p99)"); errs+="$(echo "$out" | errors)"
  out=$(run_wrk "$DURATION" "$ref_url")
  ref_rps+=("$(echo "$out" | rps)"); ref_p99+=("$(echo "$out" | p99)"); errs+="$(echo "$out" | errors)"
done
ours_rss_end=$(rss_mib "$ours_pid"); ref_rss_end=$(rss_mib "$ref_pid")
echo "load after: $(uptime)"

python3 - "$ROUNDS" "${ours_rps[@]}" "${ref_rps[@]}" "${ours_p99[@]}" "${ref_p99[@]}" \
  "$ours_rss_warm" "$ref_rss_warm" "$ours_rss_end" "$ref_rss_end" <<'PY'
import re, statistics, sys
r = int(sys.argv[1])
v = sys.argv[2:]
ours_rps, ref_rps = [float(x) for x in v[0:r]], [float(x) for x in v[r:2 * r]]
def ms(x):
    m = re.match(r"([0-9.]+)(us|ms|s)$", x)
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
ours_p99, ref_p99 = [ms(x) for x in v[2 * r:3 * r]], [ms(x) for x in v[3 * r:4 * r]]
rss = [float(x) for x in v[4 * r:4 * r + 4]]
med = statistics.median
ratios = [o / f for o, f in zip(ours_rps, ref_rps)]
def row(name, unit, o, f):
    print(f"| {name} | {o:,.1f} {unit} | {f:,.1f} {unit} | {o / f:.2f} |")
print()
print("| figure | ours | reference | ours / reference |")
print("| --- | --- | --- | --- |")
row(f"GET /{{app}}/{{profile}} requests/s, median of {r} rounds", "/s", med(ours_rps), med(ref_rps))
row(f"p99 latency, median of {r} rounds", "ms", med(ours_p99), med(ref_p99))
row("VmRSS after the warm-up (with child processes)", "MiB", rss[0], rss[1])
row("VmRSS at the end (with child processes)", "MiB", rss[2], rss[3])
print()
print("median of per-round ratios (requests/s):", f"{med(ratios):.2f}")
print("per round requests/s: ours", ours_rps, "reference", ref_rps)
print("per round p99 (ms): ours", ours_p99, "reference", ref_p99)
PY
echo "wrk errors: ${errs:-none}"
