#!/usr/bin/env bash
# Response rate limiting bench: floods of each kind with and without RRL, and a real client.
#
#   bench/rrl.sh [SECONDS] [RATE]      (defaults: 5 s per flood, responses_per_second = 200)
#
# backhaul-dns serves 1,000 members and an apex TXT of about 500 bytes on 127.0.0.1, with
# [rate_limit] inside = true and ipv4_prefix = 32, so each loopback source is one client (as a
# /24 of the internet would be). For each flood kind (txt, any, nxdomain, refused), once with
# RRL at RATE and once with it off (responses_per_second = 0):
#  - the flood: bench/flood.py from 127.0.0.2 sends queries as fast as it can and never waits
#    for answers (what a reflection attack with a spoofed victim address looks like to the
#    server); it prints full answers and TC=1 slips per second and the amplification (bytes
#    back / bytes sent);
#  - a real client: dnsperf from 127.0.0.3 at a fixed 500 queries/s of the usual mix; it
#    should lose nothing.
# Bounded in time; everything on loopback; only the server this script started is stopped.
set -euo pipefail
SECONDS_PER_RUN=${1:-5}
RATE=${2:-200}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out/rrl
PORT=25541
HTTP_PORT=25542
mkdir -p "$OUT/run" "$OUT/logs"
command -v dnsperf >/dev/null || { echo "bench: needs dnsperf (apt-get install dnsperf)" >&2; exit 1; }

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release/backhaul-dns
python3 "$ROOT/bench/gen.py" 1000 "$OUT/run" >/dev/null
printf '@ TXT "%s" "%s"\n' "$(printf 'v%.0s' $(seq 250))" "$(printf 'w%.0s' $(seq 250))" > "$OUT/run/records.zone"

SERVER=
stop() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null; SERVER=; }
trap stop EXIT

start() {
  local rate=$1
  cat > "$OUT/run/backhaul-dns.toml" <<TOML
state_dir = "state"
[listen]
addresses = ["127.0.0.1"]
port = $PORT
[forward]
upstreams = []
[http]
listen = "127.0.0.1:$HTTP_PORT"
[records]
zone_file = "records.zone"
[rate_limit]
responses_per_second = $rate
slip = 2
ipv4_prefix = 32
inside = true
[[network]]
id = "8056c2e21c000001"
source = "file"
members_file = "members.json"
poll_interval = "1h"
TOML
  "$BIN" run --config "$OUT/run/backhaul-dns.toml" --log-level warn 2>"$OUT/logs/server.log" &
  SERVER=$!
  for _ in $(seq 1 100); do
    dig +short +time=1 +tries=1 -p $PORT @127.0.0.1 host1.backhaul. >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "bench: the server did not answer" >&2
  exit 1
}

report() {
  local name=$1 file=$2
  local sent done_ lost
  sent=$(awk '/Queries sent:/ {print $3}' "$file")
  done_=$(awk '/Queries completed:/ {print $3}' "$file")
  lost=$(awk '/Queries lost:/ {print $3}' "$file")
  printf '  %-16s sent %6s  answered %6s  lost %4s  answered %5.1f%%\n' \
    "$name" "$sent" "$done_" "$lost" "$(echo "100 * $done_ / $sent" | bc -l)"
}

for rate in "$RATE" 0; do
  start "$rate"
  if [ "$rate" = 0 ]; then echo "RRL off"; else echo "RRL on: $rate responses/s per client, slip 2"; fi
  for kind in txt any nxdomain refused; do
    python3 "$ROOT/bench/flood.py" 127.0.0.2 127.0.0.1 $PORT "$SECONDS_PER_RUN" "$kind" \
      > "$OUT/logs/flood-$kind-$rate.txt" &
    FLOOD=$!
    dnsperf -s 127.0.0.1 -p $PORT -a 127.0.0.3 -d "$OUT/run/queries.txt" -l "$SECONDS_PER_RUN" \
      -Q 500 -c 1 > "$OUT/logs/client-$kind-$rate.txt" 2>&1
    wait $FLOOD
    printf '  '; cat "$OUT/logs/flood-$kind-$rate.txt"
    report "real client" "$OUT/logs/client-$kind-$rate.txt"
  done
  stop
done
