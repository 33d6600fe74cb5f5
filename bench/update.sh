#!/usr/bin/env bash
# Benchmark: RFC 2136 updates per second through the real server, at MEMBERS members
# (default 100,000), in the backhaul view and in the public view.
#
#   bench/update.sh [MEMBERS] [UPDATES]   (defaults: 100000 members, 200 updates per run)
#
# Starts backhaul-dns on a members file with an [[update]] key for each view, then sends
# UPDATES signed updates (each adds one TXT) over TCP with dnspython (Debian
# python3-dnspython, which certbot's plugin uses): one client one after another, then 8
# clients at once. Prints updates per second and the median time to an answer. Everything
# stays on loopback, is bounded in count, and the server is stopped at the end.
set -euo pipefail

MEMBERS=${1:-100000}
UPDATES=${2:-200}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out/update-$MEMBERS
PORT=25551
SECRET=c2VjcmV0LXNoYXJlZC1ieS1wcmltYXJ5LWFuZC1zZWNvbmRhcmllcw==
PID=
cleanup() { [ -z "$PID" ] || { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; }
trap cleanup EXIT

echo "== building release binary"
(cd "$ROOT" && cargo build --release --quiet)
BIN=$ROOT/target/release/backhaul-dns
rm -rf "$OUT" && mkdir -p "$OUT"
python3 "$ROOT/bench/gen.py" "$MEMBERS" "$OUT" > /dev/null
echo "$SECRET" > "$OUT/k.key"
echo "www 300 IN A 203.0.113.10" > "$OUT/public.zone"
cat > "$OUT/backhaul-dns.toml" <<EOF
state_dir = "state"
[listen]
addresses = ["127.0.0.1"]
port = $PORT
[forward]
upstreams = []
[public]
addresses = ["127.0.0.6"]
zone_file = "public.zone"
[[transfer.key]]
name = "k"
secret_file = "k.key"
[[update]]
key = "k"
names = ["_acme-challenge.*"]
max_records = 100000
[[update]]
key = "k"
names = ["_acme-challenge.*"]
view = "public"
max_records = 100000
[[network]]
id = "8056c2e21c000001"
source = "file"
members_file = "members.json"
poll_interval = "1h"
EOF
"$BIN" run --config "$OUT/backhaul-dns.toml" --log-level warn 2> "$OUT/server.log" &
PID=$!
for _ in $(seq 600); do
  [ -n "$(dig +short +time=1 +tries=1 -p $PORT @127.0.0.1 host1.backhaul A 2>/dev/null)" ] && break
  sleep 0.1
done

/usr/bin/python3 - "$PORT" "$SECRET" "$UPDATES" <<'PY'
import statistics, sys, threading, time
import dns.query, dns.tsigkeyring, dns.update, dns.rcode, dns.tsig
port, secret, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
keyring = dns.tsigkeyring.from_text({"k.": secret})

def send(server, tag, i):
    u = dns.update.UpdateMessage("backhaul.", keyring=keyring, keyalgorithm=dns.tsig.HMAC_SHA256)
    u.add(f"_acme-challenge.{tag}-{i}", 60, "TXT", f'"t{i}"')
    t = time.monotonic()
    r = dns.query.tcp(u, server, port=port, timeout=30)
    assert r.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(r.rcode())
    return time.monotonic() - t

for view, server in (("backhaul", "127.0.0.1"), ("public", "127.0.0.6")):
    start = time.monotonic()
    times = [send(server, f"{view}-seq", i) for i in range(n)]
    took = time.monotonic() - start
    print(f"{view:8} one client:  {n / took:7.0f} updates/s, median answer {statistics.median(times) * 1e3:6.1f} ms")
    lock, all_times = threading.Lock(), []
    def client(c):
        mine = [send(server, f"{view}-par{c}", i) for i in range(n // 8)]
        with lock:
            all_times.extend(mine)
    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    took = time.monotonic() - start
    print(f"{view:8} 8 clients:   {len(all_times) / took:7.0f} updates/s, median answer {statistics.median(all_times) * 1e3:6.1f} ms")
PY
