//! `backhaul-dns client-setup`: the exact commands that make a client's resolver ask this
//! server for the names it serves (and only those, where the OS can split DNS), for each OS,
//! with this server's ZeroTier addresses and every zone it serves, and the command that
//! checks the result (`_whoami`).

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::cli::ClientOs;
use crate::config::Config;
use crate::ids::NetworkId;
use crate::interfaces::Finder;
use crate::records::FileRecords;
use crate::sync;

/// What the commands are made of: per network the interface a Linux client has for it and
/// the server addresses reachable on it, and every zone served.
pub struct Setup {
    pub networks: Vec<(NetworkId, String, Vec<IpAddr>)>,
    /// Without the final dot: `backhaul`, `17.147.10.in-addr.arpa`.
    pub domains: Vec<String>,
}

/// Works out the [`Setup`] as `run` would: the addresses it would listen on, and the zones of
/// one sync.
pub async fn gather(config: &Config, files: FileRecords) -> anyhow::Result<Setup> {
    let listening: Vec<IpNet> = Finder::new(&config.listen).find().await.map_err(|w| {
        anyhow::anyhow!(
            "this host has no address to answer on yet ({w}): run it where the server runs"
        )
    })?;
    let mut builder = sync::fetch_all(config, files).await?;
    let built = builder.build();
    let catalog = config.transfer.catalog.as_ref();
    let mut domains: Vec<String> = (built.private.zones.iter())
        .filter(|z| Some(&z.apex) != catalog)
        .map(|z| z.apex.to_ascii().trim_end_matches('.').to_ascii_lowercase())
        .collect();
    domains.sort_by_key(|d| (d.ends_with(".arpa"), d.clone()));
    domains.dedup();
    let networks = (config.networks.iter())
        .map(|n| {
            let routes: Vec<IpNet> = builder
                .snapshot(n.id)
                .map(|s| s.routes.clone())
                .unwrap_or_default();
            let on_it: Vec<IpAddr> = (listening.iter())
                .map(IpNet::addr)
                .filter(|a| routes.iter().any(|r| r.contains(a)))
                .collect();
            // A server address outside every managed route (an `addresses` list): all of them.
            let addrs = if on_it.is_empty() {
                listening.iter().map(IpNet::addr).collect()
            } else {
                on_it
            };
            (n.id, interface_name(n.id), addrs)
        })
        .collect();
    Ok(Setup { networks, domains })
}

/// The Linux interface zerotier-one creates for a network: `zt` and eight base32 digits of
/// the network id folded to 40 bits (ZeroTierOne's LinuxEthernetTap; another name only when
/// two networks collide).
pub fn interface_name(id: NetworkId) -> String {
    const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let nwid = id.0;
    let folded = (nwid ^ (nwid >> 24)) & 0xff_ffff_ffff;
    let mut name = String::from("zt");
    for i in 0..8 {
        name.push(char::from(
            BASE32[((folded >> (35 - 5 * i)) & 0x1f) as usize],
        ));
    }
    name
}

/// The commands for `os` (every OS when `None`).
pub fn text(setup: &Setup, os: Option<ClientOs>) -> String {
    let all = [
        ClientOs::Linux,
        ClientOs::Networkmanager,
        ClientOs::Resolvconf,
        ClientOs::Macos,
        ClientOs::Windows,
    ];
    let chosen: Vec<ClientOs> = os.map_or(all.to_vec(), |o| vec![o]);
    let mut out = String::new();
    let first = setup.domains.first().map_or("backhaul", String::as_str);
    for os in chosen {
        match os {
            ClientOs::Linux => linux(&mut out, setup, first),
            ClientOs::Networkmanager => networkmanager(&mut out, setup, first),
            ClientOs::Resolvconf => resolvconf(&mut out, setup, first),
            ClientOs::Macos => macos(&mut out, setup, first),
            ClientOs::Windows => windows(&mut out, setup, first),
        }
        out.push('\n');
    }
    out
}

fn join(addrs: &[IpAddr], sep: &str) -> String {
    addrs
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

fn routing_domains(setup: &Setup) -> String {
    (setup.domains.iter())
        .map(|d| format!("~{d}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every server address, once, in network order.
fn all_addresses(setup: &Setup) -> Vec<IpAddr> {
    let mut all: Vec<IpAddr> = Vec::new();
    for (_, _, addrs) in &setup.networks {
        for a in addrs {
            if !all.contains(a) {
                all.push(*a);
            }
        }
    }
    all
}

fn linux(out: &mut String, setup: &Setup, first: &str) {
    let domains = routing_domains(setup);
    let _ = writeln!(
        out,
        "## Linux with systemd-resolved: only these zones go to this server, the rest as before"
    );
    for (id, iface, addrs) in &setup.networks {
        let _ = writeln!(
            out,
            "# a host on network {id} (interface {iface}), as root:"
        );
        let _ = writeln!(out, "resolvectl dns {iface} {}", join(addrs, " "));
        let _ = writeln!(out, "resolvectl domain {iface} {domains}");
        let _ = writeln!(
            out,
            "# kept across restarts of the interface, on hosts that run systemd-networkd:\n\
             mkdir -p /etc/systemd/network\n\
             printf '[Match]\\nName={iface}\\n\\n[Network]\\nDHCP=no\\nKeepConfiguration=static\\nDNS={}\\nDomains={domains}\\n' > /etc/systemd/network/99-backhaul-dns-{iface}.network\n\
             systemctl enable --now systemd-networkd && networkctl reload",
            join(addrs, " ")
        );
    }
    let _ = writeln!(out, "# check:\nresolvectl query -t TXT _whoami.{first}");
}

fn networkmanager(out: &mut String, setup: &Setup, first: &str) {
    let domains = routing_domains(setup);
    let _ = writeln!(
        out,
        "## NetworkManager: only these zones go to this server, the rest as before"
    );
    for (id, iface, addrs) in &setup.networks {
        let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = addrs.iter().partition(|a| a.is_ipv4());
        let _ = writeln!(out, "# a host on network {id} (interface {iface}):");
        let mut line = format!("nmcli device modify {iface}");
        if !v4.is_empty() {
            let _ = write!(
                line,
                " ipv4.dns \"{}\" ipv4.dns-search \"{domains}\"",
                join(&v4, " ")
            );
        }
        if !v6.is_empty() {
            let _ = write!(
                line,
                " ipv6.dns \"{}\" ipv6.dns-search \"{domains}\"",
                join(&v6, " ")
            );
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "# (applies until the interface goes away; zerotier-one recreates it at start)\n\
         # check:\nresolvectl query -t TXT _whoami.{first} || host -t TXT _whoami.{first}"
    );
}

fn resolvconf(out: &mut String, setup: &Setup, first: &str) {
    let all = all_addresses(setup);
    let servers: String = all.iter().map(|a| format!("nameserver {a}\\n")).collect();
    let search = setup
        .domains
        .iter()
        .filter(|d| !d.ends_with(".arpa"))
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let _ = writeln!(
        out,
        "## Plain resolv.conf: every name goes to this server (it resolves the others for\n\
         ## ZeroTier clients through its upstreams), so also its zones {}; as root:\n\
         # with the resolvconf program:\n\
         printf '{servers}search {search}\\n' | resolvconf -a {}.backhaul-dns\n\
         # without it:\n\
         printf '{servers}search {search}\\n' > /etc/resolv.conf\n\
         # check (the first prints this server's addresses, the second who it thinks you are):\n\
         getent hosts {first}; host -t TXT _whoami.{first}",
        setup.domains.join(" "),
        setup.networks.first().map_or("zt", |(_, i, _)| i.as_str())
    );
}

fn macos(out: &mut String, setup: &Setup, first: &str) {
    let all = all_addresses(setup);
    let servers: String = all.iter().map(|a| format!("nameserver {a}\\n")).collect();
    let _ = writeln!(
        out,
        "## macOS: one /etc/resolver file per zone (only these go to this server)\n\
         sudo mkdir -p /etc/resolver"
    );
    for d in &setup.domains {
        let _ = writeln!(
            out,
            "printf '{servers}' | sudo tee /etc/resolver/{d} >/dev/null"
        );
    }
    let _ = writeln!(
        out,
        "# check:\nscutil --dns | grep -A3 'domain   : {first}'; dig +short TXT _whoami.{first} @{}",
        all.first().map_or(String::new(), IpAddr::to_string)
    );
}

fn windows(out: &mut String, setup: &Setup, first: &str) {
    let all = all_addresses(setup);
    let servers = all
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(",");
    let _ = writeln!(
        out,
        "## Windows (PowerShell as administrator): one NRPT rule per zone (only these go to this server)"
    );
    for d in &setup.domains {
        let _ = writeln!(
            out,
            "Add-DnsClientNrptRule -Namespace \".{d}\" -NameServers {servers}"
        );
    }
    let _ = writeln!(out, "# check:\nResolve-DnsName -Type TXT _whoami.{first}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Setup {
        Setup {
            networks: vec![(
                "8056c2e21c000001".parse().unwrap(),
                interface_name("8056c2e21c000001".parse().unwrap()),
                vec!["10.147.17.1".parse().unwrap(), "fd00::1".parse().unwrap()],
            )],
            domains: vec!["backhaul".into(), "17.147.10.in-addr.arpa".into()],
        }
    }

    #[test]
    fn interface_names_as_zerotier_makes_them() {
        assert_eq!(
            interface_name("8056c2e21c000001".parse().unwrap()),
            "ztmjfmfyq5"
        );
    }

    #[test]
    fn every_os_names_the_addresses_and_every_zone() {
        let s = setup();
        let linux = text(&s, Some(ClientOs::Linux));
        assert!(
            linux.contains("resolvectl dns ztmjfmfyq5 10.147.17.1 fd00::1"),
            "{linux}"
        );
        assert!(linux.contains("resolvectl domain ztmjfmfyq5 ~backhaul ~17.147.10.in-addr.arpa"));
        let nm = text(&s, Some(ClientOs::Networkmanager));
        assert!(
            nm.contains("ipv4.dns \"10.147.17.1\"") && nm.contains("ipv6.dns \"fd00::1\""),
            "{nm}"
        );
        let rc = text(&s, Some(ClientOs::Resolvconf));
        assert!(rc.contains("printf 'nameserver 10.147.17.1\\nnameserver fd00::1\\nsearch backhaul\\n' > /etc/resolv.conf"), "{rc}");
        let mac = text(&s, Some(ClientOs::Macos));
        assert!(
            mac.contains("/etc/resolver/backhaul")
                && mac.contains("/etc/resolver/17.147.10.in-addr.arpa")
        );
        let win = text(&s, Some(ClientOs::Windows));
        assert!(
            win.contains(
                "-Namespace \".17.147.10.in-addr.arpa\" -NameServers \"10.147.17.1\",\"fd00::1\""
            ),
            "{win}"
        );
        let all = text(&s, None);
        for part in [&linux, &nm, &rc, &mac, &win] {
            assert!(all.contains(part.trim()));
        }
    }
}
