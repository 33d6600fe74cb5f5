//! Command-line interface: clap definitions only.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `--version`: the package version and the git commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BACKHAUL_DNS_COMMIT"),
    ")"
);

/// Authoritative DNS for a ZeroTier backhaul network.
#[derive(Debug, Parser)]
#[command(name = "backhaul-dns", version = VERSION, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve DNS: sync members, answer on the configured addresses.
    Run(CommonArgs),
    /// Validate the configuration; exit 0, or 2 with one readable line.
    Check(CommonArgs),
    /// Sync once and print the zone in RFC 1035 master-file format.
    Zone(CommonArgs),
    /// Sync once and print a hosts file (`address name zt-name` lines, IPv4 and IPv6), for
    /// hosts that cannot ask the server: `backhaul-dns hosts >> /etc/hosts` from cron.
    Hosts(CommonArgs),
    /// Ask the running server's /healthz (at `[http] listen`); exit 0 when it is alive, 1 if
    /// not (a container HEALTHCHECK).
    Health(CommonArgs),
    /// Print the commands that point a client's resolver at this server for every zone it
    /// serves (run it where the server runs: it uses the addresses the server listens on).
    ClientSetup(ClientSetupArgs),
}

#[derive(Debug, Args)]
pub struct ClientSetupArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Only the commands for this kind of client (default: all of them).
    #[arg(long, value_enum)]
    pub os: Option<ClientOs>,
}

/// Kinds of clients `client-setup` writes commands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientOs {
    /// systemd-resolved (resolvectl), kept with a systemd-networkd file.
    Linux,
    /// NetworkManager (nmcli).
    Networkmanager,
    /// A plain /etc/resolv.conf (or the resolvconf program).
    Resolvconf,
    /// /etc/resolver files.
    Macos,
    /// NRPT rules (PowerShell).
    Windows,
}

impl Command {
    pub fn common(&self) -> &CommonArgs {
        match self {
            Command::Run(a)
            | Command::Check(a)
            | Command::Zone(a)
            | Command::Hosts(a)
            | Command::Health(a) => a,
            Command::ClientSetup(a) => &a.common,
        }
    }
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Configuration file (TOML).
    #[arg(long, default_value = "/etc/backhaul-dns/backhaul-dns.toml")]
    pub config: PathBuf,
    /// Log level or filter (error, warn, info, debug, trace, or a RUST_LOG-style filter).
    /// Overrides RUST_LOG.
    #[arg(long)]
    pub log_level: Option<String>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
