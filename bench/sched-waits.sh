#!/usr/bin/env bash
# Where a proxy's tail latency waits: the kernel's scheduler events
# (sched_switch, sched_wakeup, from tracefs) recorded for TRACE seconds in
# the middle of `wrk -t$THREADS -c$C` through one proxy, in front of
# bench/gateway.sh's upstream (an nginx, one worker). For every thread that
# ran at least 1 % of the time it prints its share of a CPU and its waits
# to run: from being woken, or preempted while still runnable, to running
# again. A request whose thread waits, waits with it: a proxy worker that
# waits 4 ms for a CPU holds up every request on its connections for 4 ms,
# which is what a p99 of 4 ms is made of. The longest waits name the thread
# that was running meanwhile ("preempted by", "woken by").
#
# Usage: bench/sched-waits.sh PROXY   (PROXY: ours or nginx; about 15 s;
#        run as root, which tracefs needs; needs nginx and wrk)
# Overrides: BIN (ours' binary; default: the release build), C (64),
#            THREADS (2), TRACE (1.5), OURS_YML_EXTRA (YAML lines added to
#            ours' configuration, e.g. "server.io-worker-affinity: none"),
#            NGINX_MAIN (directives for nginx's main block, e.g.
#            "worker_cpu_affinity auto;").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PROXY=${1:?usage: bench/sched-waits.sh ours|nginx}
C=${C:-64}
THREADS=${THREADS:-2}
TRACE=${TRACE:-1.5}
T=/sys/kernel/tracing

# shellcheck source=bench/spring-reference.sh
source bench/spring-reference.sh
command -v nginx >/dev/null || { echo "nginx is required (apt-get install nginx-light)" >&2; exit 1; }
require_wrk
if [ ! -e "$T/events/sched/sched_switch/enable" ]; then
  mount -t tracefs nodev "$T" || { echo "tracefs is needed at $T (run as root)" >&2; exit 1; }
fi
[ -w "$T/tracing_on" ] || { echo "$T/tracing_on is not writable (run as root)" >&2; exit 1; }

start_bench_upstream
port=$(free_port)
case $PROXY in
  nginx)
    start_nginx_proxy "$port" "${NGINX_MAIN:-}" ;;
  ours)
    bin=${BIN:-$(release_binary api-gateway)}
    printf '%s\n' "${OURS_YML_EXTRA:-}" >>"$work/plain.yml"
    RUST_LOG=info "$bin" --port "$port" --admin-port "$(free_port)" --config "$work/plain.yml" >"$work/ours.log" 2>&1 &
    pids+=("$!") ;;
  *) echo "unknown proxy $PROXY (ours or nginx)" >&2; exit 2 ;;
esac
url="http://127.0.0.1:$port/api/hello"
wait_http "$url" 300

events="sched_switch sched_wakeup"
stop_tracing() {
  echo 0 >"$T/tracing_on"
  for e in $events; do echo 0 >"$T/events/sched/$e/enable"; done
  echo >"$T/trace"
}
trap 'stop_tracing; stop_all' EXIT INT TERM
echo 0 >"$T/tracing_on"
echo >"$T/trace"
echo 20000 >"$T/buffer_size_kb"
for e in $events; do echo 1 >"$T/events/sched/$e/enable"; done

timeout 40 wrk -t"$THREADS" -c"$C" -d2s "$url" >/dev/null
(sleep 2; echo 1 >"$T/tracing_on"; sleep "$TRACE"; echo 0 >"$T/tracing_on") &
tracer=$!
timeout 60 wrk -t"$THREADS" -c"$C" -d"$(python3 -c "print(int($TRACE + 5))")s" --latency "$url" |
  awk '/Requests\/sec|^ +(50|90|99)%/'
wait "$tracer"
cp "$T/trace" "$work/trace.txt"
[ "$PROXY" = ours ] && grep -o 'I/O workers pinned[^"]*' "$work/ours.log" | head -1 || true

python3 - "$work/trace.txt" <<'PY'
import collections, re, sys
switch = re.compile(r'^\s*(.+?)-(\d+)\s+\[(\d+)\].*?\s([\d.]+): sched_switch: prev_comm=(.+?) prev_pid=(\d+) '
                    r'prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.+?) next_pid=(\d+)')
wakeup = re.compile(r'^\s*(.+?)-(\d+)\s+\[(\d+)\].*?\s([\d.]+): sched_wakeup: comm=(.+?) pid=(\d+) ')
runnable, comm, oncpu = {}, {}, {}
waits, ran = collections.defaultdict(list), collections.defaultdict(float)
first = last = None
for line in open(sys.argv[1]):
    if m := switch.match(line):
        t = float(m[4]); first = first or t; last = t
        prev, state, nxt = int(m[6]), m[7], int(m[9])
        comm[prev], comm[nxt] = m[5], m[8]
        if prev in oncpu:
            ran[prev] += t - oncpu.pop(prev)
        oncpu[nxt] = t
        if state.startswith('R'):
            runnable[prev] = (t, 'preempted by ' + m[8])
        if nxt in runnable:
            t0, why = runnable.pop(nxt)
            waits[nxt].append((t - t0, why))
    elif m := wakeup.match(line):
        pid = int(m[6]); comm[pid] = m[5]
        runnable.setdefault(pid, (float(m[4]), 'woken by ' + m[1]))
if first is None or last == first:
    sys.exit("no scheduler events were recorded")
span = last - first
print(f"\n{span:.2f} s traced; waits to run per thread (pid 0 is the idle task)")
print(f"{'thread':18s} {'pid':>7s} {'CPU %':>6s} {'waits':>7s} {'>1 ms':>6s} {'>2 ms':>6s} {'longest ms':>11s}  how the longest began")
for pid, w in sorted(waits.items(), key=lambda kv: -ran[kv[0]]):
    if pid == 0 or ran[pid] < 0.01 * span:
        continue
    longest = max(w)
    print(f"{comm[pid]:18s} {pid:7d} {ran[pid] / span * 100:6.1f} {len(w):7d} "
          f"{sum(d > 0.001 for d, _ in w):6d} {sum(d > 0.002 for d, _ in w):6d} {longest[0] * 1000:11.2f}  {longest[1]}")
PY
