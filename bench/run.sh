#!/usr/bin/env bash
# Benchmark: backhaul-dns against NSD, Knot and gdnsd serving the same records, measured with
# dnsperf.
#
#   bench/run.sh [MEMBERS] [SECONDS] [RUNS]   (defaults: 1000 members, 10 s per run, median of 3)
#   environment: PHASES=1254 (which phases run), LAT_RUNS=10 and LAT_SECONDS=2 (latency runs),
#   SIZES="1000 100000" (phase 5), SYNC_MEMBERS=10000 (phase 4)
#
# Builds the release binary, generates MEMBERS members (a Central member list), asks
# `backhaul-dns zone` for the zone and gives exactly those records to NSD, Knot and gdnsd
# (each with one UDP worker), then:
#  1. throughput: dnsperf against the servers taking turns, UDP and TCP, with the mixed query
#     set (70% A, 10% AAAA, 15% NXDOMAIN, 5% NODATA/PTR) and NXDOMAIN-only and A-only sets;
#     the median QPS of RUNS runs, lost queries, server CPU per query (and the part of it spent
#     in user space, the server's own code; the rest is the kernel's), ratios to NSD; over UDP
#     also each server's share of a zero-work recvmmsg/sendmmsg reflector's QPS (the
#     machine's ceiling, bench/reflector.c);
#  2. latency: average and p99 at a fixed 10,000 queries/s (UDP, mixed set), over LAT_RUNS
#     short runs per server (default 10 of 2 s) taking turns, so that a slow spell of the
#     machine is shared out evenly;
#  3. memory: each server's resident set size after all of that;
#  5. zone size (SIZES="1000 100000"): backhaul-dns serving the smaller and the larger network
#     side by side, taking turns run by run with the NXDOMAIN-only and A-only sets over UDP: QPS
#     and CPU per query at each size and the ratio larger / smaller (the cost of a query should
#     not grow with the zone);
#  4. sync under load (SYNC_MEMBERS=10000 members): backhaul-dns re-reads a members file that
#     changes every 100 ms (every member's address moves each time), so it rebuilds and swaps
#     its zone about every 100 ms while dnsperf sends 10,000 queries/s: lost queries, p99
#     latency, and whether any answer differed from the same queries without swaps (runs with
#     and without swaps take turns).
# Servers are pinned to core 0 and dnsperf to core 1. Everything runs on 127.0.0.1, is bounded
# in time, and stops itself.
#
# SERVER_CPU=P (a percentage, unset by default) caps each server of phases 1, 2, 3 and 5 at P%
# of core 0 with a cgroup CPU quota (needs root). Over UDP one dnsperf core sends about as fast
# as these servers answer, so uncapped QPS ratios mostly measure dnsperf; capped, each server
# is the bottleneck and its QPS is what it can answer in the same CPU budget. (At 10,000 q/s,
# phase 2, no server comes near the cap.)
set -euo pipefail

MEMBERS=${1:-1000}
SECONDS_PER_RUN=${2:-10}
RUNS=${3:-3}
# Latency phases: many short runs, servers taking turns (see 2. above).
LAT_RUNS=${LAT_RUNS:-10}
LAT_SECONDS=${LAT_SECONDS:-2}
# Which of the phases 1, 2, 5 and 4 to run (3 always runs): PHASES=24 skips the throughput runs.
PHASES=${PHASES:-1254}
if [ -n "${SERVER_CPU:-}" ] && ! [[ $SERVER_CPU =~ ^[0-9]+$ && $SERVER_CPU -ge 1 && $SERVER_CPU -le 100 ]]; then
  echo "bench: SERVER_CPU is a percentage of one core, 1 to 100 (got '$SERVER_CPU')" >&2; exit 1
fi
# The two network sizes of phase 5.
read -r SIZE_SMALL SIZE_BIG <<< "${SIZES:-1000 100000}"
# Members in the sync-under-load phase (the issue's target is set for a 10,000-member sync).
SYNC_MEMBERS=${SYNC_MEMBERS:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/configs.sh
. "$ROOT/bench/configs.sh"
OUT=$ROOT/bench/out/$MEMBERS
# Below the kernel's ephemeral range (32768-60999 by default): a port in it can be held by one
# of dnsperf's or dig's client sockets just when a server wants to bind it.
BH_PORT=25531
NSD_PORT=25532
KNOT_PORT=25533
GDNSD_PORT=25537
# The zero-work UDP reflector (bench/reflector.c): the ceiling of phase 1's UDP runs.
REFLECTOR_PORT=25538
SYNC_PORT=25534
SIZE_PORTS=(25535 25536)

need() { command -v "$1" >/dev/null || { echo "bench: $1 is missing: apt-get install -y $2" >&2; exit 1; }; }
need dnsperf dnsperf
need nsd nsd
need knotd knot
need gdnsd gdnsd
need taskset util-linux
need chrt util-linux
need python3 python3

# dnsperf's logs and the server's own log go apart from the servers' config files: backhaul-dns
# watches the directory of its config, and a log written beside it wakes its watcher thread
# (at normal priority, on the server's core) for every write.
LOGS=$OUT/logs
rm -rf "$OUT" && mkdir -p "$OUT/knot" "$OUT/nsd" "$OUT/gdnsd" "$LOGS"
echo "== building release binary"
(cd "$ROOT" && cargo build --release --quiet)
BIN=$ROOT/target/release/backhaul-dns

echo "== generating $MEMBERS members and query files"
python3 "$ROOT/bench/gen.py" "$MEMBERS" "$OUT"

bh_config "$OUT/backhaul-dns.toml" "$BH_PORT"

"$BIN" zone --config "$OUT/backhaul-dns.toml" --log-level warn > "$OUT/zone.txt"
ZONES=$(python3 "$ROOT/bench/split_zones.py" "$OUT/zone.txt" "$OUT")
cat > "$OUT/nsd.conf" <<CONF
server:
	ip-address: 127.0.0.1@$NSD_PORT
	server-count: 1
	username: ""
	chroot: ""
	zonesdir: "$OUT"
	database: ""
	zonelistfile: "$OUT/nsd/zone.list"
	xfrdfile: "$OUT/nsd/xfrd.state"
	pidfile: "$OUT/nsd/nsd.pid"
	logfile: "$OUT/nsd/nsd.log"
	verbosity: 0
	hide-version: yes
	rrl-ratelimit: 0
	tcp-count: 256
remote-control:
	control-enable: no
$ZONES
CONF
cat > "$OUT/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$KNOT_PORT
    rundir: "$OUT/knot"
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$OUT/knot"
log:
  - target: stderr
    any: error
template:
  - id: default
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1
$(cat "$OUT/knot-zones.conf")
CONF

gdnsd_config "$OUT/gdnsd" "$GDNSD_PORT"

# A server left over from an earlier run would answer in place of the one started here.
for port in $BH_PORT $NSD_PORT $KNOT_PORT $GDNSD_PORT $SYNC_PORT "${SIZE_PORTS[@]}"; do
  if dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" host0.backhaul A | grep -q .; then
    echo "bench: something already answers on 127.0.0.1:$port; stop it first" >&2; exit 1
  fi
done

PIDS=()
CGROUPS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  for c in "${CGROUPS[@]}"; do rmdir "$c" 2>/dev/null || true; done
}
trap cleanup EXIT

# capped NAME -> a cgroup holding at most SERVER_CPU% of one core (cgroup v2, or v1's cpu
# controller); CAPPED is the file that takes a process into it
capped() {
  local dir
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    dir=/sys/fs/cgroup/backhaul-bench-$1
    echo +cpu > /sys/fs/cgroup/cgroup.subtree_control
    mkdir -p "$dir" && echo "$(( SERVER_CPU * 100 )) 10000" > "$dir/cpu.max"
  elif [ -d /sys/fs/cgroup/cpu ]; then
    dir=/sys/fs/cgroup/cpu/backhaul-bench-$1
    mkdir -p "$dir" && echo 10000 > "$dir/cpu.cfs_period_us"
    echo "$(( SERVER_CPU * 100 ))" > "$dir/cpu.cfs_quota_us"
  else
    echo "bench: SERVER_CPU needs a cgroup cpu controller under /sys/fs/cgroup" >&2; exit 1
  fi
  CGROUPS+=("$dir")
  CAPPED=$dir/cgroup.procs
}
# serve NAME COMMAND... -> runs COMMAND on core 0 in the background (capped with SERVER_CPU),
# its pid in $!
serve() {
  local name=$1; shift
  if [ -n "${SERVER_CPU:-}" ]; then
    capped "$name"
    # shellcheck disable=SC2016
    sh -c 'echo $$ > "$1"; shift; exec taskset -c 0 "$@"' sh "$CAPPED" "$@" &
  else
    taskset -c 0 "$@" &
  fi
}

[ -z "${SERVER_CPU:-}" ] || echo "== servers capped at $SERVER_CPU% of core 0 (SERVER_CPU)"
serve backhaul-dns "$BIN" run --config "$OUT/backhaul-dns.toml" --log-level warn
PIDS+=($!); BH_PID=$!
serve nsd nsd -d -c "$OUT/nsd.conf"
PIDS+=($!); NSD_PID=$!
serve knot knotd -c "$OUT/knot.conf"
PIDS+=($!); KNOT_PID=$!
# gdnsd warns on stderr about every single-NS reverse zone: into its own log.
serve gdnsd sh -c 'exec gdnsd -c "$1" start 2>"$2"' sh "$OUT/gdnsd" "$LOGS/gdnsd.log"
PIDS+=($!); GDNSD_PID=$!
cc -O2 -o "$OUT/reflector" "$ROOT/bench/reflector.c"
serve reflector "$OUT/reflector" 127.0.0.1 "$REFLECTOR_PORT"
PIDS+=($!); REFLECTOR_PID=$!

wait_up() {
  for _ in $(seq 600); do
    if dig +short +time=1 +tries=1 @127.0.0.1 -p "$1" host0.backhaul A | grep -q .; then return 0; fi
    sleep 0.1
  done
  echo "bench: server on port $1 did not answer" >&2; exit 1
}
wait_up $BH_PORT
wait_up $NSD_PORT
wait_up $KNOT_PORT
wait_up $GDNSD_PORT

# A process and all its descendants (NSD serves from a grandchild).
tree() { local c; echo "$1"; for c in $(pgrep -P "$1" || true); do tree "$c"; done; }
# CPU ticks of a process tree: "TOTAL USER" (utime + stime, and utime alone).
ticks() {
  local total=0 user=0 p u s
  for p in $(tree "$1"); do
    [ -r /proc/$p/stat ] || continue
    # fields after "(comm) ": state is 1st, utime 12th, stime 13th (comm may contain spaces)
    read -r u s < <(sed 's/.*) //' /proc/$p/stat | awk '{print $12, $13}')
    total=$(( total + u + s )); user=$(( user + u ))
  done
  echo "$total $user"
}
# Resident memory (MiB) of a process tree.
rss() {
  local total=0 p
  for p in $(tree "$1"); do
    [ -r /proc/$p/status ] || continue
    total=$(( total + $(awk '/VmRSS/ {print $2}' /proc/$p/status) ))
  done
  python3 -c "print(f'{$total/1024:.1f}')"
}
HZ=$(getconf CLK_TCK)
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

# once NAME PID PORT MODE QUERYFILE I -> one dnsperf run; sets QPS, LOST, CPU and USER (CPU
# and the part of it in user space, us per query: the rest is the kernel's)
once() {
  local name=$1 pid=$2 port=$3 mode=$4 file=$5 i=$6 log before after user_before user_after
  local completed
  log="$LOGS/dnsperf-$name-$mode-$(basename "$file" .txt)-$i.log"
  read -r before user_before < <(ticks "$pid")
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -m "$mode" -d "$file" -l "$SECONDS_PER_RUN" \
    -c 20 -q 200 -t 2 > "$log" 2>&1 || true
  read -r after user_after < <(ticks "$pid")
  QPS=$(awk '/Queries per second/ {print $4}' "$log")
  LOST=$(awk '/Queries lost/ {print $3}' "$log")
  completed=$(awk '/Queries completed/ {print $3}' "$log")
  CPU=$(python3 -c "print(($after-$before)/$HZ*1e6/max(1,$completed))")
  USER=$(python3 -c "print(($user_after-$user_before)/$HZ*1e6/max(1,$completed))")
}

# latency_run PORT FILE LOG I -> one run at 10,000 q/s over UDP, every answer's latency in
# LOG-I.log. (Not in the real-time class: pinned to one core, dnsperf's threads can spin on
# each other there, and one run hung that way.)
latency_run() {
  local port=$1 file=$2 log=$3 i=$4
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$file" -l "$LAT_SECONDS" \
    -Q 10000 -v -t 2 > "$log-$i.log" 2>&1 || true
}

# latency_report NAME LOG -> over the LAT_RUNS runs: average and p99 of all answers (ms), the
# lowest, median and highest p99 of single runs, and lost queries in all
latency_report() {
  local name=$1 log=$2
  python3 - "$name" "$log" "$LAT_RUNS" <<'PY'
import statistics, sys
name, prefix, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
every, p99s, lost = [], [], 0
p99 = lambda lat: lat[int(len(lat) * 0.99) - 1] * 1000
for i in range(1, runs + 1):
    lines = open(f"{prefix}-{i}.log").read().splitlines()
    lat = sorted(float(l.split()[-1]) for l in lines if l.startswith("> "))
    lost += int(next((l.split()[2] for l in lines if "Queries lost" in l), "0"))
    if lat:
        every += lat
        p99s.append(p99(lat))
if not p99s:
    print(f"{name:<12} no answers"); sys.exit()
every.sort()
print(f"{name:<12} {len(every):7d} answers  avg {sum(every) / len(every) * 1000:6.3f} ms  "
      f"p99 {p99(every):6.3f} ms  (single runs: {min(p99s):.2f} / {statistics.median(p99s):.2f} / "
      f"{max(p99s):.2f})  lost {lost}")
PY
}

SERVERS=("backhaul-dns $BH_PID $BH_PORT" "nsd $NSD_PID $NSD_PORT" "knot $KNOT_PID $KNOT_PORT" "gdnsd $GDNSD_PID $GDNSD_PORT")
if [[ $PHASES == *1* ]]; then
echo "== 1. throughput: $MEMBERS members, ${SECONDS_PER_RUN}s runs, server on core 0, dnsperf on core 1"
# The servers take turns run by run (backhaul-dns, NSD, Knot, backhaul-dns, ...), so a slow
# spell of the machine hits all three alike; a ratio is the median of the per-round ratios.
declare -A RATIO
for mode in udp tcp; do
  for set in queries queries-nx queries-a; do
    declare -A qs=() lost=() cpu=() user=()
    # Over UDP the zero-work reflector takes its turn too: the ceiling.
    turns=("${SERVERS[@]}")
    [ "$mode" = tcp ] || turns+=("reflector $REFLECTOR_PID $REFLECTOR_PORT")
    for i in $(seq "$RUNS"); do
      for s in "${turns[@]}"; do
        read -r name pid port <<< "$s"
        once "$name" "$pid" "$port" "$mode" "$OUT/$set.txt" "$i"
        qs[$name]+="$QPS "; lost[$name]=$(( ${lost[$name]:-0} + ${LOST:-0} )); cpu[$name]+="$CPU "
        user[$name]+="$USER "
      done
    done
    for s in "${turns[@]}"; do
      read -r name _ <<< "$s"
      # shellcheck disable=SC2086
      printf '%-12s %-4s %-11s %9.0f q/s (median of %s)  lost %-5s  cpu %5.2f us/q (user %4.2f)\n' \
        "$name" "$mode" "$set" "$(median ${qs[$name]})" "$RUNS" "${lost[$name]}" \
        "$(median ${cpu[$name]})" "$(median ${user[$name]})"
    done
    RATIO["$mode $set"]=$(python3 - "${qs[backhaul-dns]}" "${qs[nsd]}" "${qs[knot]}" "${qs[gdnsd]}" "${qs[reflector]:-}" <<'PY'
import statistics, sys
bh, nsd, knot, gdnsd, ceiling = ([float(x) for x in a.split()] for a in sys.argv[1:])
r = lambda ours, other: statistics.median(b / o for b, o in zip(ours, other))
top = (f", of the reflector: backhaul-dns {r(bh, ceiling):.2f}, gdnsd {r(gdnsd, ceiling):.2f},"
       f" NSD {r(nsd, ceiling):.2f}, Knot {r(knot, ceiling):.2f}") if ceiling else ""
print(f"{r(bh, nsd):.2f} (vs Knot {r(bh, knot):.2f}, vs gdnsd {r(bh, gdnsd):.2f}{top})   per round vs NSD: "
      + " ".join(f"{b / n:.2f}" for b, n in zip(bh, nsd))
      + ", vs gdnsd: " + " ".join(f"{b / g:.2f}" for b, g in zip(bh, gdnsd)))
PY
)
    unset qs lost cpu user
  done
done
echo "== ratio backhaul-dns / NSD (QPS, median of per-round ratios)"
for k in "udp queries" "udp queries-nx" "udp queries-a" "tcp queries" "tcp queries-nx" "tcp queries-a"; do
  printf '%-20s %s\n' "$k" "${RATIO[$k]}"
done
fi

if [[ $PHASES == *2* ]]; then
echo "== 2. latency at 10,000 q/s (UDP, mixed set; $LAT_RUNS runs of ${LAT_SECONDS}s each, servers taking turns)"
for i in $(seq "$LAT_RUNS"); do
  for s in "${SERVERS[@]}"; do
    read -r name _ port <<< "$s"
    latency_run "$port" "$OUT/queries.txt" "$LOGS/latency-$name" "$i"
  done
done
for s in "${SERVERS[@]}"; do
  read -r name _ <<< "$s"
  latency_report "$name" "$LOGS/latency-$name"
done
fi

echo "== 3. resident memory with $MEMBERS members (MiB)"
printf 'backhaul-dns %s   nsd %s   knot %s   gdnsd %s\n' "$(rss $BH_PID)" "$(rss $NSD_PID)" "$(rss $KNOT_PID)" "$(rss $GDNSD_PID)"
cleanup; PIDS=()

if [[ $PHASES == *5* ]]; then
echo "== 5. zone size: backhaul-dns with $SIZE_SMALL and with $SIZE_BIG members, UDP, ${SECONDS_PER_RUN}s runs taking turns"
SIZE_SERVERS=()
k=0
for n in $SIZE_SMALL $SIZE_BIG; do
  dir=$OUT/size-$n
  mkdir -p "$dir"
  python3 "$ROOT/bench/gen.py" "$n" "$dir"
  sed -e "s/port = $BH_PORT/port = ${SIZE_PORTS[$k]}/" "$OUT/backhaul-dns.toml" > "$dir/backhaul-dns.toml"
  serve "size-$n" "$BIN" run --config "$dir/backhaul-dns.toml" --log-level warn
  PIDS+=($!)
  SIZE_SERVERS+=("$n $! ${SIZE_PORTS[$k]} $dir")
  k=$(( k + 1 ))
done
for s in "${SIZE_SERVERS[@]}"; do read -r _ _ port _ <<< "$s"; wait_up "$port"; done
for set in queries-nx queries-a; do
  declare -A qs=() cpu=() lost=()
  for i in $(seq "$RUNS"); do
    for s in "${SIZE_SERVERS[@]}"; do
      read -r n pid port dir <<< "$s"
      once "size-$n" "$pid" "$port" udp "$dir/$set.txt" "$i"
      qs[$n]+="$QPS "; cpu[$n]+="$CPU "; lost[$n]=$(( ${lost[$n]:-0} + ${LOST:-0} ))
    done
  done
  for n in $SIZE_SMALL $SIZE_BIG; do
    # shellcheck disable=SC2086
    printf '%7s members  udp %-11s %9.0f q/s (median of %s)  lost %-5s  cpu %5.1f us/q\n' "$n" \
      "$set" "$(median ${qs[$n]})" "$RUNS" "${lost[$n]}" "$(median ${cpu[$n]})"
  done
  python3 - "$set" "${qs[$SIZE_SMALL]}" "${qs[$SIZE_BIG]}" "${cpu[$SIZE_SMALL]}" "${cpu[$SIZE_BIG]}" <<'PY'
import statistics, sys
name, small, big, cpu_small, cpu_big = sys.argv[1], *([float(x) for x in a.split()] for a in sys.argv[2:])
r = lambda a, b: statistics.median(x / y for x, y in zip(a, b))
print(f"ratio larger / smaller, {name}: QPS {r(big, small):.2f} (per round: "
      + " ".join(f"{b / s:.2f}" for b, s in zip(big, small))
      + f"), CPU per query {r(cpu_big, cpu_small):.2f}")
PY
  unset qs cpu lost
done
for s in "${SIZE_SERVERS[@]}"; do
  read -r n pid _ <<< "$s"
  printf 'resident memory with %s members: %s MiB\n' "$n" "$(rss "$pid")"
done
cleanup; PIDS=()
fi

[[ $PHASES == *4* ]] || exit 0
echo "== 4. sync under load: $SYNC_MEMBERS members rebuilt and swapped every ~100 ms during 10,000 q/s"
mkdir -p "$OUT/a" "$OUT/b"
python3 "$ROOT/bench/gen.py" "$SYNC_MEMBERS" "$OUT/a" --shift 0
python3 "$ROOT/bench/gen.py" "$SYNC_MEMBERS" "$OUT/b" --shift 1
mkdir -p "$OUT/sync"
# Names only: every answer is then the same in both versions (only addresses move), so the
# response codes during the swaps must match those of the same queries without swaps; a
# query answered from a half-built zone would show up there (NXDOMAIN, SERVFAIL).
grep -v ' PTR$' "$OUT/a/queries.txt" > "$OUT/sync/queries.txt"
# The members file stands in for the ZeroTier API, which a real deployment reads over the
# network: it lives in tmpfs when there is one. (Rewriting 2 MB on this VM's disk ten times a
# second delayed everything on the machine: p99 5-13 ms with no swap at all.)
LIVE=$(mktemp -d /dev/shm/backhaul-bench.XXXXXX 2>/dev/null || echo "$OUT/sync")
trap 'cleanup; [ "$LIVE" = "$OUT/sync" ] || rm -rf "$LIVE"' EXIT
sed -e "s/port = $BH_PORT/port = $SYNC_PORT/" -e 's/poll_interval = "1h"/poll_interval = "100ms"/' \
  -e "s|members_file = \"members.json\"|members_file = \"$LIVE/members.json\"|" \
  "$OUT/backhaul-dns.toml" > "$OUT/sync/backhaul-dns.toml"
cp "$OUT/a/members.json" "$LIVE/members.json"
taskset -c 0 "$BIN" run --config "$OUT/sync/backhaul-dns.toml" --log-level info 2> "$LOGS/sync-server.log" &
PIDS+=($!)
wait_up $SYNC_PORT
# flip SECONDS: rewrites the members file with the other version every 100 ms (by rename, as
# a sync source would). One process, in the SCHED_IDLE class: the harness must not take CPU
# from the server or from dnsperf (a shell loop spawning cp and mv every 100 ms delayed
# dnsperf itself by milliseconds).
flip() {
  # exec: run in the background, the killable process is python itself.
  exec chrt --idle 0 python3 - "$OUT" "$LIVE" "$1" <<'PY'
import os, sys, time
out, live, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
versions = [open(f"{out}/{v}/members.json", "rb").read() for v in ("b", "a")]
target, tmp = f"{live}/members.json", f"{live}/members.json.tmp"
end, i = time.monotonic() + seconds, 0
while time.monotonic() < end:
    with open(tmp, "wb") as f:
        f.write(versions[i % 2])
    os.replace(tmp, target)
    i += 1
    time.sleep(0.1)
PY
}
# Runs without and with swaps take turns, so a slow spell of the machine hits both alike.
for i in $(seq "$LAT_RUNS"); do
  latency_run $SYNC_PORT "$OUT/sync/queries.txt" "$LOGS/sync-latency-static" "$i"
  flip $(( LAT_SECONDS + 1 )) &
  FLIP=$!
  latency_run $SYNC_PORT "$OUT/sync/queries.txt" "$LOGS/sync-latency-during-sync" "$i"
  kill $FLIP 2>/dev/null || true; wait $FLIP 2>/dev/null || true
done
latency_report "no swaps" "$LOGS/sync-latency-static"
latency_report "with swaps" "$LOGS/sync-latency-during-sync"
SYNCS=$(grep -c '"zone updated"\|zone updated' "$LOGS/sync-server.log" || true)
TOOK=$(grep -o 'took_ms=[0-9]*' "$LOGS/sync-server.log" | cut -d= -f2 | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "?"}')
echo "zone swaps during the run: $SYNCS (median build+compile+swap ${TOOK} ms)"
rcodes() { grep -o 'Response codes:.*' "$1" | sed 's/Response codes: *//'; }
echo "response codes without swaps: $(rcodes "$LOGS/sync-latency-static-1.log")"
echo "response codes with swaps:    $(rcodes "$LOGS/sync-latency-during-sync-1.log")"
python3 - "$LOGS/sync-latency-static" "$LOGS/sync-latency-during-sync" "$LAT_RUNS" <<'PY'
import re, sys
def shares(path):
    line = next(l for l in open(path) if "Response codes" in l)
    return {c: float(p) for c, p in re.findall(r"([A-Z]+) \d+ \(([\d.]+)%\)", line)}
static, swapping, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
a = shares(f"{static}-1.log")
worst, servfail = 0.0, False
for i in range(1, runs + 1):
    b = shares(f"{swapping}-{i}.log")
    servfail |= "SERVFAIL" in b
    worst = max([worst] + [abs(a.get(c, 0) - b.get(c, 0)) for c in set(a) | set(b)])
# The runs send slightly different numbers of queries from the same file: allow 0.5 points.
print("same answers with and without swaps in every run" if worst <= 0.5 and not servfail
      else f"ANSWERS DIFFER during swaps (by up to {worst:.2f} points)")
PY
