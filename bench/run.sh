#!/usr/bin/env bash
# Benchmark: backhaul-dns against NSD serving the same records, measured with dnsperf.
#
#   bench/run.sh [MEMBERS] [SECONDS]      (defaults: 1000 members, 10 s per run)
#
# Builds the release binary, generates MEMBERS members (a Central member list), asks
# `backhaul-dns zone` for the zone and gives exactly those records to NSD, then runs dnsperf
# against each server in turn: UDP and TCP, the mixed query set (70% A, 10% AAAA,
# 15% NXDOMAIN, 5% NODATA/PTR), plus NXDOMAIN-only and A-only sets. Servers are pinned to
# core 0 and dnsperf to core 1. Prints QPS, lost queries, average latency, server CPU time
# per query, and the backhaul-dns / NSD ratio. Everything runs on 127.0.0.1 and stops itself.
set -euo pipefail

MEMBERS=${1:-1000}
SECONDS_PER_RUN=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out/$MEMBERS
BH_PORT=53531
NSD_PORT=53532

need() { command -v "$1" >/dev/null || { echo "bench: $1 is missing: apt-get install -y $2" >&2; exit 1; }; }
need dnsperf dnsperf
need nsd nsd
need taskset util-linux
need python3 python3

rm -rf "$OUT" && mkdir -p "$OUT"
echo "== building release binary"
(cd "$ROOT" && cargo build --release --quiet)
BIN=$ROOT/target/release/backhaul-dns

echo "== generating $MEMBERS members and query files"
python3 "$ROOT/bench/gen.py" "$MEMBERS" "$OUT"

cat > "$OUT/backhaul-dns.toml" <<TOML
state_dir = "state"
[listen]
addresses = ["127.0.0.1"]
port = $BH_PORT
[forward]
upstreams = []
[[network]]
id = "8056c2e21c000001"
source = "file"
members_file = "members.json"
poll_interval = "1h"
TOML

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
	zonelistfile: "$OUT/zone.list"
	xfrdfile: "$OUT/xfrd.state"
	pidfile: "$OUT/nsd.pid"
	logfile: "$OUT/nsd.log"
	verbosity: 0
	hide-version: yes
	rrl-ratelimit: 0
	tcp-count: 256
remote-control:
	control-enable: no
$ZONES
CONF

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

TOKIO_WORKER_THREADS=1 taskset -c 0 "$BIN" run --config "$OUT/backhaul-dns.toml" --log-level warn &
PIDS+=($!); BH_PID=$!
taskset -c 0 nsd -d -c "$OUT/nsd.conf" &
PIDS+=($!); NSD_PID=$!

wait_up() {
  for _ in $(seq 600); do
    if dig +short +time=1 +tries=1 @127.0.0.1 -p "$1" host0.backhaul A | grep -q .; then return 0; fi
    sleep 0.1
  done
  echo "bench: server on port $1 did not answer" >&2; exit 1
}
wait_up $BH_PORT
wait_up $NSD_PORT

# A process and all its descendants (NSD serves from a grandchild).
tree() { local c; echo "$1"; for c in $(pgrep -P "$1" || true); do tree "$c"; done; }
# CPU ticks (utime + stime) of a process tree.
ticks() {
  local total=0 p
  for p in $(tree "$1"); do
    [ -r /proc/$p/stat ] || continue
    # fields after "(comm) ": state is 1st, utime 12th, stime 13th (comm may contain spaces)
    total=$(( total + $(sed 's/.*) //' /proc/$p/stat | awk '{print $12 + $13}') ))
  done
  echo $total
}
HZ=$(getconf CLK_TCK)

# run NAME PID PORT MODE QUERYFILE -> prints one line, leaves "qps" in $LAST_QPS
run() {
  local name=$1 pid=$2 port=$3 mode=$4 file=$5 before after log
  log="$OUT/dnsperf-$name-$mode-$(basename "$file" .txt).log"
  before=$(ticks "$pid")
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -m "$mode" -d "$file" -l "$SECONDS_PER_RUN" \
    -c 20 -q 200 -t 2 > "$log" 2>&1 || true
  after=$(ticks "$pid")
  local qps lost completed avg
  qps=$(awk '/Queries per second/ {print $4}' "$log")
  lost=$(awk '/Queries lost/ {print $3}' "$log")
  completed=$(awk '/Queries completed/ {print $3}' "$log")
  avg=$(awk '/Average Latency/ {print $4; exit}' "$log")
  local us_per_q
  us_per_q=$(python3 -c "print(f'{($after-$before)/$HZ*1e6/max(1,$completed):.1f}')")
  printf '%-12s %-4s %-12s %12.0f q/s  lost %-6s avg %8.3f ms  cpu %6s us/q\n' \
    "$name" "$mode" "$(basename "$file" .txt)" "$qps" "$lost" "$(python3 -c "print($avg*1000)")" "$us_per_q"
  LAST_QPS=$qps
}

echo "== $MEMBERS members, ${SECONDS_PER_RUN}s per run, server on core 0, dnsperf on core 1"
declare -A RATIO
for mode in udp tcp; do
  for set in queries queries-nx queries-a; do
    run backhaul-dns $BH_PID $BH_PORT $mode "$OUT/$set.txt"; bh=$LAST_QPS
    run nsd $NSD_PID $NSD_PORT $mode "$OUT/$set.txt"; nsd=$LAST_QPS
    RATIO["$mode $set"]=$(python3 -c "print(f'{$bh/$nsd:.2f}')")
  done
done
echo "== ratio backhaul-dns / NSD (QPS)"
for k in "udp queries" "udp queries-nx" "udp queries-a" "tcp queries" "tcp queries-nx" "tcp queries-a"; do
  printf '%-20s %s\n' "$k" "${RATIO[$k]}"
done
