#!/usr/bin/env bash
# Instructions per query: backhaul-dns and gdnsd each answer a query set once under valgrind's
# callgrind, counting every instruction their processes run in user space meanwhile, divided by
# the queries. Unlike QPS on a shared 2-core machine (a few percent of noise from run to run),
# the count is the same every time, so a change to the request path shows up even when it is
# worth 1% of QPS. The kernel's part (three quarters of the CPU per UDP query) is not in it:
# bench/run.sh measures the whole.
#
#   bench/instructions.sh [MEMBERS] [SET]   (defaults: 1000 members, the mixed set; SET: mix, a, nx)
#
# Needs valgrind, dnsperf, gdnsd and dig (bind9-dnsutils). Uses bench/out/instr-MEMBERS and
# ports 25551-25552; ends only the processes it started.
set -euo pipefail

MEMBERS=${1:-1000}
SET=${2:-mix}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/configs.sh
. "$ROOT/bench/configs.sh"
OUT=$ROOT/bench/out/instr-$MEMBERS
BH_PORT=25551
GDNSD_PORT=25552
case $SET in
  mix) QUERIES=$OUT/queries.txt ;;
  a) QUERIES=$OUT/queries-a.txt ;;
  nx) QUERIES=$OUT/queries-nx.txt ;;
  *) echo "bench: SET is mix, a or nx (got '$SET')" >&2; exit 1 ;;
esac

need() { command -v "$1" >/dev/null || { echo "bench: $1 is missing: apt-get install -y $2" >&2; exit 1; }; }
need valgrind valgrind
need callgrind_control valgrind
need dnsperf dnsperf
need gdnsd gdnsd
need dig bind9-dnsutils
need python3 python3

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

rm -rf "$OUT" && mkdir -p "$OUT/gdnsd/run" "$OUT/gdnsd/state" "$OUT/logs"
echo "== building release binary"
(cd "$ROOT" && cargo build --release --quiet)
BIN=$ROOT/target/release/backhaul-dns
python3 "$ROOT/bench/gen.py" "$MEMBERS" "$OUT" >/dev/null
bh_config "$OUT/backhaul-dns.toml" "$BH_PORT"
"$BIN" zone --config "$OUT/backhaul-dns.toml" --log-level warn > "$OUT/zone.txt"
python3 "$ROOT/bench/split_zones.py" "$OUT/zone.txt" "$OUT" >/dev/null
gdnsd_config "$OUT/gdnsd" "$GDNSD_PORT"
FIRST=$(awk 'NR == 1 {print $1}' "$QUERIES")
TOTAL=$(wc -l < "$QUERIES")

# count NAME PORT COMMAND...: the instructions per query of COMMAND answering the set once.
count() {
  local name=$1 port=$2 pid
  shift 2
  local data=$OUT/callgrind.$name
  valgrind --tool=callgrind --callgrind-out-file="$data" "$@" > "$OUT/logs/$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 120); do
    [ -n "$(dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 "$FIRST" A 2>/dev/null)" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "bench: $name exited; see $OUT/logs/$name.log" >&2; exit 1; }
  done
  # Start-up is not counted: one pass over the set first, then wait until the process is
  # idle (its CPU time still for a second: zone build, snapshot and warm-up done), then zero,
  # answer the set again, dump.
  dnsperf -s 127.0.0.1 -p "$port" -d "$QUERIES" -n 1 -c 20 -q 50 -t 5 > /dev/null 2>&1
  local before="" now
  for _ in $(seq 60); do
    now=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    [ "$now" = "$before" ] && break
    before=$now
    sleep 1
  done
  callgrind_control --zero "$pid" > /dev/null
  dnsperf -s 127.0.0.1 -p "$port" -d "$QUERIES" -n 1 -c 20 -q 50 -t 5 > "$OUT/logs/$name.dnsperf" 2>&1
  callgrind_control --dump "$pid" > /dev/null
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  local done_queries
  done_queries=$(awk '/Queries completed/ {print $3}' "$OUT/logs/$name.dnsperf")
  python3 "$ROOT/bench/callgrind_self.py" "$TOTAL" "$done_queries" "$name" "$data".*
}

echo "== $TOTAL queries ($SET set), $MEMBERS members: instructions per query"
count backhaul-dns "$BH_PORT" "$BIN" run --config "$OUT/backhaul-dns.toml" --log-level warn
count gdnsd "$GDNSD_PORT" gdnsd -c "$OUT/gdnsd" start
