# Sourced by bench/run.sh and bench/instructions.sh: the configs both start their comparisons
# from, written once here so that the servers compared are set up the same way in each.

# bh_config FILE PORT: backhaul-dns on 127.0.0.1:PORT serving the members of members.json
# (beside FILE, as bench/gen.py writes it), no forwarding.
bh_config() {
  cat > "$1" <<TOML
state_dir = "state"
[listen]
addresses = ["127.0.0.1"]
port = $2
[forward]
upstreams = []
[[network]]
id = "8056c2e21c000001"
source = "file"
members_file = "members.json"
poll_interval = "1h"
TOML
}

# gdnsd_config DIR PORT: gdnsd on 127.0.0.1:PORT with one UDP and one TCP thread, its zones in
# DIR/zones (bench/split_zones.py writes them) and its state under DIR.
gdnsd_config() {
  cat > "$1/config" <<CONF
options => {
  listen => [ 127.0.0.1 ]
  dns_port = $2
  udp_threads = 1
  tcp_threads = 1
  run_dir = "$1/run"
  state_dir = "$1/state"
}
CONF
}
