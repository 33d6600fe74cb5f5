#!/usr/bin/env bash
# dnstap bench: does reporting every exchange cost answers? backhaul-dns serves 1,000 members
# on 127.0.0.1 (pinned to core 0, dnsperf on core 1); runs with dnstap off and on take turns:
#  - off: no [log] dnstap;
#  - on: [log] dnstap to a running reader: bench/tap_sink.py (handshake, then reads and throws
#    away), or Debian's `dnstap -u SOCKET -w /dev/null` with READER=dnstap (which decodes every
#    message and needs about a core of its own at these rates);
#  - killed: the same, the reader killed halfway through the run (the writer then drops and
#    counts until a reader comes back).
# Prints each run's QPS and lost queries, the median per mode, and the ratios to "off".
#
#   bench/dnstap.sh [SECONDS] [RUNS]   (defaults: 10 s per run, 3 runs per mode; READER_KIND=dnstap)
#
# Bounded in time; everything on loopback; only the processes this script started are stopped.
set -euo pipefail
SECONDS_PER_RUN=${1:-10}
RUNS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out/dnstap
PORT=25551
SOCK=$OUT/run/dnstap.sock
mkdir -p "$OUT/run" "$OUT/logs"
for tool in dnsperf dnstap taskset; do
  command -v $tool >/dev/null || { echo "bench: needs $tool (dnsperf, golang-github-dnstap-golang-dnstap-cli, util-linux)" >&2; exit 1; }
done

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release/backhaul-dns
python3 "$ROOT/bench/gen.py" 1000 "$OUT/run" >/dev/null

SERVER=
READER=
end() { [ -z "$1" ] || { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }; }
stop() { end "$READER"; READER=; end "$SERVER"; SERVER=; }
trap stop EXIT

start() {
  local tap=$1
  {
    echo 'state_dir = "state"'
    echo '[listen]'; echo 'addresses = ["127.0.0.1"]'; echo "port = $PORT"
    echo '[forward]'; echo 'upstreams = []'
    [ "$tap" = off ] || { echo '[log]'; echo "dnstap = \"$SOCK\""; }
    echo '[[network]]'; echo 'id = "8056c2e21c000001"'; echo 'source = "file"'
    echo 'members_file = "members.json"'; echo 'poll_interval = "1h"'
  } > "$OUT/run/backhaul-dns.toml"
  if [ "$tap" != off ]; then
    rm -f "$SOCK"
    if [ "${READER_KIND:-sink}" = dnstap ]; then
      taskset -c 1 dnstap -u "$SOCK" -w /dev/null 2>"$OUT/logs/reader.log" &
    else
      taskset -c 1 python3 "$ROOT/bench/tap_sink.py" "$SOCK" 2>"$OUT/logs/reader.log" &
    fi
    READER=$!
    for _ in $(seq 1 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
  fi
  taskset -c 0 "$BIN" run --config "$OUT/run/backhaul-dns.toml" --log-level warn 2>"$OUT/logs/server.log" &
  SERVER=$!
  for _ in $(seq 1 100); do
    dig +short +time=1 +tries=1 -p $PORT @127.0.0.1 host1.backhaul. >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "bench: the server did not answer" >&2
  exit 1
}

declare -A QPS
for run in $(seq 1 "$RUNS"); do
  for mode in off on killed; do
    start "$([ $mode = off ] && echo off || echo on)"
    KILLER=
    if [ $mode = killed ]; then
      ( sleep "$(echo "$SECONDS_PER_RUN / 2" | bc -l)"; kill "$READER" 2>/dev/null ) &
      KILLER=$!
    fi
    taskset -c 1 dnsperf -s 127.0.0.1 -p $PORT -d "$OUT/run/queries.txt" -l "$SECONDS_PER_RUN" \
      -c 8 -q 256 > "$OUT/logs/dnsperf-$mode-$run.txt" 2>&1
    qps=$(awk '/Queries per second:/ {print $4}' "$OUT/logs/dnsperf-$mode-$run.txt")
    lost=$(awk '/Queries lost:/ {print $3}' "$OUT/logs/dnsperf-$mode-$run.txt")
    printf 'run %d  %-7s %10.0f q/s  lost %s\n' "$run" "$mode" "$qps" "$lost"
    QPS[$mode]="${QPS[$mode]:-} $qps"
    [ -z "$KILLER" ] || wait "$KILLER" 2>/dev/null || true
    stop
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
off=$(echo "${QPS[off]}" | median)
for mode in off on killed; do
  m=$(echo "${QPS[$mode]}" | median)
  printf 'median %-7s %10.0f q/s  (%.3f of off)\n' "$mode" "$m" "$(echo "$m / $off" | bc -l)"
done
