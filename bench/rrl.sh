#!/usr/bin/env bash
# Response rate limiting bench: a spoofed-looking UDP flood against a real client.
#
#   bench/rrl.sh [SECONDS] [RATE]      (defaults: 5 s, responses_per_second = 100)
#
# backhaul-dns serves 1,000 members on 127.0.0.1 with [rate_limit] inside = true and
# ipv4_prefix = 32, so each loopback source is one client. At the same time:
#  - the flood: bench/flood.py from 127.0.0.2 sends NXDOMAIN queries as fast as it can and
#    never waits for answers (what a reflection attack with a spoofed victim address looks like
#    to the server);
#  - a real client: dnsperf from 127.0.0.3 at a fixed 500 queries/s of the usual mix (70% A,
#    15% NXDOMAIN: about 75 NXDOMAIN/s, below the rate).
# It prints what the flood got back (full answers and TC=1 slips per second), the real
# client's queries sent, answered and lost, and the server's counts of dropped and slipped
# responses. The flood should get about RATE full answers per second; the real client should
# lose nothing. Bounded in time; everything on loopback.
set -euo pipefail
SECONDS_PER_RUN=${1:-5}
RATE=${2:-100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out/rrl
PORT=25541
HTTP_PORT=25542
mkdir -p "$OUT/run" "$OUT/logs"
command -v dnsperf >/dev/null || { echo "bench: needs dnsperf (apt-get install dnsperf)" >&2; exit 1; }

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release/backhaul-dns
python3 "$ROOT/bench/gen.py" 1000 "$OUT/run" >/dev/null
cat > "$OUT/run/backhaul-dns.toml" <<TOML
state_dir = "state"
[listen]
addresses = ["127.0.0.1"]
port = $PORT
[forward]
upstreams = []
[http]
listen = "127.0.0.1:$HTTP_PORT"
[rate_limit]
responses_per_second = $RATE
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
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  dig +short +time=1 +tries=1 -p $PORT @127.0.0.1 host1.backhaul. >/dev/null 2>&1 && break
  sleep 0.1
done

python3 "$ROOT/bench/flood.py" 127.0.0.2 127.0.0.1 $PORT "$SECONDS_PER_RUN" > "$OUT/logs/flood.txt" &
FLOOD=$!
dnsperf -s 127.0.0.1 -p $PORT -a 127.0.0.3 -d "$OUT/run/queries.txt" -l "$SECONDS_PER_RUN" \
  -Q 500 -c 1 > "$OUT/logs/client.txt" 2>&1
wait $FLOOD

report() {
  local name=$1 file=$2
  local sent done_ lost
  sent=$(awk '/Queries sent:/ {print $3}' "$file")
  done_=$(awk '/Queries completed:/ {print $3}' "$file")
  lost=$(awk '/Queries lost:/ {print $3}' "$file")
  printf '%-12s sent %8s (%7.0f/s)  answered %8s (%7.0f/s)  lost %8s  answered %5.1f%%\n' \
    "$name" "$sent" "$(echo "$sent / $SECONDS_PER_RUN" | bc -l)" "$done_" \
    "$(echo "$done_ / $SECONDS_PER_RUN" | bc -l)" "$lost" "$(echo "100 * $done_ / $sent" | bc -l)"
}
echo "rate limit: $RATE responses/s per client, slip 2, ${SECONDS_PER_RUN}s"
cat "$OUT/logs/flood.txt"
report "real client" "$OUT/logs/client.txt"
metrics=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics" || true)
echo "server: $(echo "$metrics" | grep -E '^backhaul_dns_rate_limited_(dropped|slipped)_total' | tr '\n' ' ')"
