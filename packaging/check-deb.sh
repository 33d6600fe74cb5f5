#!/usr/bin/env bash
# Installs the .deb built by build-deb.sh (no running systemd needed) and checks that it works
# as a user would find it: the binary runs, `check` on the installed config names what is
# still to provide, the man page renders, the completions are where shells look.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls -t target/debian/backhaul-dns_*.deb | head -1)
dpkg -i "$deb" >/dev/null
fail() { echo "check-deb: $*" >&2; exit 1; }

backhaul-dns --version | grep -q "^backhaul-dns [0-9.]* (commit " || fail "--version: $(backhaul-dns --version)"
config=/etc/backhaul-dns/backhaul-dns.toml
dpkg-query -W -f='${Conffiles}\n' backhaul-dns | grep -q "$config" || fail "$config is not a conffile"

# As installed: the network id is the one thing to set first...
set +e
out=$(backhaul-dns check --config "$config" 2>&1); code=$?
set -e
[ "$code" = 2 ] && grep -q "network\[0\].id: set your ZeroTier network's id" <<<"$out" || fail "check as installed ($code): $out"
# ...then the token file.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sed 's/0000000000000000/8056c2e21c000001/' "$config" >"$tmp/backhaul-dns.toml"
set +e
out=$(backhaul-dns check --config "$tmp/backhaul-dns.toml" 2>&1); code=$?
set -e
[ "$code" = 2 ] && grep -q "token_file: cannot read /etc/backhaul-dns/central.token" <<<"$out" || fail "check with an id ($code): $out"

man -P cat backhaul-dns 2>/dev/null | grep -q "backhaul-dns-run" || fail "man backhaul-dns does not render"
man -P cat backhaul-dns-hosts 2>/dev/null | grep -q -- "--config" || fail "man backhaul-dns-hosts does not render"
for f in /usr/share/bash-completion/completions/backhaul-dns /usr/share/zsh/vendor-completions/_backhaul-dns \
         /usr/share/fish/vendor_completions.d/backhaul-dns.fish /lib/systemd/system/backhaul-dns.service; do
  [ -s "$f" ] || fail "$f missing"
done
bash -c 'source /usr/share/bash-completion/completions/backhaul-dns && complete -p backhaul-dns' >/dev/null || fail "bash completion does not load"
echo "check-deb: $deb installs and works"
