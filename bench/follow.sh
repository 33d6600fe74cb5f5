#!/usr/bin/env bash
# Benchmark: a one-member change reaching a follower (`[follow]`) by NOTIFY + IXFR, at
# MEMBERS members (default 100,000).
#
#   bench/follow.sh [MEMBERS] [CHANGES]   (defaults: 100000 members, 5 changes)
#
# Starts a primary on a members file (the ZeroTier API's stand-in) and a follower of it on
# 127.0.0.1, waits for the follower's first AXFR, then renames one member CHANGES times (the
# file rewritten by rename, as a sync source would see it). For each change it reports the
# IXFR the follower logged (bytes, messages, its own time) and how long after the file was
# written the follower answered the new name (the primary's sync and build included). Both
# servers stop at the end; everything stays on loopback and is bounded in time.
set -euo pipefail

MEMBERS=${1:-100000}
CHANGES=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out/follow-$MEMBERS
PRIMARY_PORT=25541
FOLLOWER_PORT=25542
SECRET=c2VjcmV0LXNoYXJlZC1ieS1wcmltYXJ5LWFuZC1zZWNvbmRhcmllcw==
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== building release binary"
(cd "$ROOT" && cargo build --release --quiet)
BIN=$ROOT/target/release/backhaul-dns
rm -rf "$OUT" && mkdir -p "$OUT/primary" "$OUT/follower"
echo "== generating $MEMBERS members"
python3 "$ROOT/bench/gen.py" "$MEMBERS" "$OUT/primary" > /dev/null
echo "$SECRET" > "$OUT/primary/xfr.key"
cp "$OUT/primary/xfr.key" "$OUT/follower/xfr.key"
KEY='[[transfer.key]]
name = "xfr"
algorithm = "hmac-sha256"
secret_file = "xfr.key"'
cat > "$OUT/primary/backhaul-dns.toml" <<EOF2
state_dir = "state"
[listen]
addresses = ["127.0.0.1"]
port = $PRIMARY_PORT
[forward]
upstreams = []
[transfer]
allow = [{ address = "127.0.0.1", key = "xfr" }]
notify = [{ address = "127.0.0.1:$FOLLOWER_PORT", key = "xfr" }]
$KEY
[[network]]
id = "8056c2e21c000001"
source = "file"
members_file = "members.json"
poll_interval = "1h"
EOF2
cat > "$OUT/follower/backhaul-dns.toml" <<EOF2
state_dir = "state"
[listen]
addresses = ["127.0.0.1"]
port = $FOLLOWER_PORT
[forward]
upstreams = []
[follow]
primary = "127.0.0.1:$PRIMARY_PORT"
key = "xfr"
zones = ["backhaul"]
$KEY
EOF2
"$BIN" run --config "$OUT/primary/backhaul-dns.toml" --log-format json 2> "$OUT/primary.log" &
PIDS+=($!)
"$BIN" run --config "$OUT/follower/backhaul-dns.toml" --log-format json 2> "$OUT/follower.log" &
PIDS+=($!)

# answered NAME PORT: whether the server answers NAME with an address.
answered() { [ -n "$(dig +short +time=1 +tries=1 -p "$2" @127.0.0.1 "$1" A 2>/dev/null)" ]; }
# wait_until SECONDS COMMAND...: polls every 10 ms; fails after SECONDS.
wait_until() {
  local end=$(( $(date +%s) + $1 )); shift
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.01
  done
}
wait_until 120 answered host1.backhaul $FOLLOWER_PORT || { echo "the follower never took the zone"; tail -5 "$OUT/follower.log"; exit 1; }
grep '"zone transferred from the primary"' "$OUT/follower.log" | tail -1 | python3 -c '
import json, sys
l = json.loads(sys.stdin.read())
t, r, b, m, ms = (l[k] for k in ("transfer", "records", "bytes", "messages", "took_ms"))
print(f"first transfer: {t}, {r} records, {b} bytes in {m} messages, {ms} ms")'

for i in $(seq "$CHANGES"); do
  # Member i is renamed to changed-i (one name, its A record and its PTR).
  python3 - "$OUT/primary/members.json" "$i" <<'PY'
import json, os, sys
path, i = sys.argv[1], int(sys.argv[2])
data = json.load(open(path))
data["members"][i]["name"] = f"changed-{i}"
tmp = path + ".tmp"
json.dump(data, open(tmp, "w"))
os.replace(tmp, path)
PY
  start=$(date +%s%N)
  wait_until 30 answered "changed-$i.backhaul" $FOLLOWER_PORT || { echo "change $i never reached the follower"; exit 1; }
  end=$(date +%s%N)
  wait_until 5 test "$(grep -c '"IXFR' "$OUT/follower.log")" -ge "$i" || true
  grep '"zone transferred from the primary"' "$OUT/follower.log" | grep '"IXFR' | tail -1 | python3 -c '
import json, sys
l = json.loads(sys.stdin.read())
seen = (int(sys.argv[2]) - int(sys.argv[1])) / 1e6
t, b, m, ms = (l[k] for k in ("transfer", "bytes", "messages", "took_ms"))
print(f"change {sys.argv[3]}: {t}: {b} bytes in {m} message(s), transfer {ms} ms; answered by the follower {seen:.0f} ms after the file changed")' "$start" "$end" "$i"
done
echo "== memory: primary $(( $(awk '/VmRSS/ {print $2}' /proc/${PIDS[0]}/status) / 1024 )) MiB, follower $(( $(awk '/VmRSS/ {print $2}' /proc/${PIDS[1]}/status) / 1024 )) MiB"
