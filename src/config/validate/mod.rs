//! Validation: the raw file shape ([`super::raw`]) -> a [`Config`], every mistake reported
//! as one [`ConfigError`] naming the key or file at fault.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::Name;
use ipnet::IpNet;

use super::raw::*;
use super::*;
use crate::ids::NetworkId;
use crate::secret::Secret;

/// Central allows 20 requests/s on free accounts and a poll costs two; stay far below that.
const MIN_CENTRAL_POLL: Duration = Duration::from_secs(1);
const MIN_FILE_POLL: Duration = Duration::from_millis(100);

mod follow;
mod listen;
mod scope;
mod service;
mod transfer;
mod update;
mod upstream;

use follow::Mine;

pub(super) struct Validator<'a> {
    pub(super) path: &'a Path,
}

impl Validator<'_> {
    /// An error about `key`. Values quoted in it may hold anything (a TOML string can hold a
    /// newline): control characters are escaped, so the error stays one line.
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let one_line = |s: String| {
            if s.chars().any(char::is_control) {
                s.chars().flat_map(char::escape_default).collect()
            } else {
                s
            }
        };
        ConfigError::Invalid {
            path: self.path.to_owned(),
            key: one_line(key.into()),
            message: one_line(message.into()),
        }
    }

    /// Relative paths in the file are relative to the file, not to wherever the server was started.
    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.path.parent().unwrap_or_else(|| Path::new(".")).join(p)
        }
    }

    pub(super) fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let domain = self.domain("domain", &raw.domain)?;
        let ttl = self.seconds("ttl", &raw.ttl)?;
        let negative_ttl = self.seconds("negative_ttl", &raw.negative_ttl)?;
        let listen = self.listen(raw.listen)?;
        if raw.networks.is_empty() && raw.follow.is_none() {
            return Err(self.err(
                "network",
                "no [[network]] table: add one with the 16-digit ZeroTier network id",
            ));
        }
        let mut networks = Vec::with_capacity(raw.networks.len());
        for (i, n) in raw.networks.into_iter().enumerate() {
            let net = self.network(i, n, &domain)?;
            if networks.iter().any(|o: &Network| o.id == net.id) {
                return Err(self.err(
                    format!("network[{i}].id"),
                    format!("network {} is listed twice", net.id),
                ));
            }
            networks.push(net);
        }
        let webhook = raw.webhook.map(|w| self.webhook(w)).transpose()?;
        let domains: Vec<&Name> = std::iter::once(&domain)
            .chain(networks.iter().map(|n| &n.domain))
            .collect();
        let transfer = self.transfer(raw.transfer, &domains)?;
        let forward = match raw.forward.upstreams {
            None => Forward::ResolvConf,
            Some(list) if list.is_empty() => Forward::Off,
            Some(list) => {
                let mut ups = Vec::new();
                for (i, a) in list.iter().enumerate() {
                    ups.push(self.upstream(&format!("forward.upstreams[{i}]"), a)?);
                }
                Forward::To(ups)
            }
        };
        let mut forward_zones: Vec<ForwardZone> = Vec::new();
        for (i, z) in raw.forward.zone.iter().enumerate() {
            let key = format!("forward.zone[{i}]");
            let name = self.domain(&format!("{key}.name"), &z.name)?;
            let ours = std::iter::once(&domain)
                .chain(networks.iter().map(|n| &n.domain))
                .find(|d| d.zone_of(&name) || name.zone_of(d));
            if let Some(d) = ours {
                return Err(self.err(
                    format!("{key}.name"),
                    format!(
                        "{name} overlaps {d}, which this server answers for: forward zones are \
                         for names outside it (delegate a subdomain with NS records instead)"
                    ),
                ));
            }
            if forward_zones.iter().any(|o| o.name == name) {
                return Err(self.err(format!("{key}.name"), format!("{name} is listed twice")));
            }
            if z.upstreams.is_empty() {
                return Err(self.err(
                    format!("{key}.upstreams"),
                    "give at least one upstream (address or address:port)",
                ));
            }
            let mut upstreams = Vec::new();
            for (j, a) in z.upstreams.iter().enumerate() {
                upstreams.push(self.upstream(&format!("{key}.upstreams[{j}]"), a)?);
            }
            forward_zones.push(ForwardZone { name, upstreams });
        }
        let forward_ca_file = (raw.forward.tls_ca_file.as_deref())
            .map(|p| self.ca_file("forward.tls_ca_file", p))
            .transpose()?;
        let records_file = raw.records.map(|r| self.resolve(&r.zone_file));
        let public = raw.public.map(|p| self.public(p, &listen)).transpose()?;
        let ready_max_age = (raw.http.as_ref())
            .and_then(|h| h.ready_max_age.as_deref())
            .map(|text| self.duration("http.ready_max_age", text))
            .transpose()?;
        let (http, http_allow) = match raw.http {
            None => (None, Vec::new()),
            Some(h) => {
                let listen: std::net::SocketAddr = h.listen.trim().parse().map_err(|_| {
                    self.err(
                        "http.listen",
                        format!(
                            "\"{}\" is not an address:port like \"127.0.0.1:9153\"",
                            h.listen
                        ),
                    )
                })?;
                let ip = listen.ip();
                if (ip.is_unspecified() || !listen::is_private(ip)) && !h.allow_public {
                    return Err(self.err(
                        "http.listen",
                        format!(
                            "{ip} is reachable from the public internet (or is every address): \
                             the status page lists every host; use a loopback or ZeroTier address, \
                             or set allow_public = true if that is really meant"
                        ),
                    ));
                }
                (Some(listen), self.allow_list("http.allow", &h.allow)?)
            }
        };
        let rate_limit = self.rate_limit(raw.rate_limit)?;
        let soa = self.soa(raw.soa)?;
        let services = self.services(raw.services, &domain, &networks)?;
        let scopes = self.scopes(raw.scopes)?;
        let follow = match raw.follow {
            None => None,
            Some(f) => {
                let mine = Mine {
                    networks: !networks.is_empty(),
                    services: !services.is_empty(),
                    scopes: !scopes.is_empty(),
                    catalog: transfer.catalog.is_some(),
                    updates: !raw.updates.is_empty(),
                };
                Some(self.follow(f, &transfer.keys, mine)?)
            }
        };
        let updates = self.updates(raw.updates, &transfer.keys, public.is_some())?;
        Ok(Config {
            updates,
            follow,
            services,
            scopes,
            forward_zones,
            forward_ca_file,
            soa,
            rate_limit,
            http,
            http_allow,
            ready_max_age,
            log_queries: raw.log.queries,
            dnstap: raw.log.dnstap.as_deref().map(|p| self.resolve(p)),
            records_file,
            public,
            forward,
            webhook,
            transfer,
            path: self.path.to_owned(),
            domain,
            ttl,
            negative_ttl,
            state_dir: self.resolve(&raw.state_dir),
            listen,
            networks,
        })
    }

    fn soa(&self, raw: RawSoa) -> Result<Soa, ConfigError> {
        let name = |key: &str, text: Option<String>| -> Result<Option<Name>, ConfigError> {
            let Some(text) = text else { return Ok(None) };
            // A mailbox may be written as an address: hostmaster@example.com.
            let text = match key {
                "soa.rname" => text.replacen('@', ".", 1),
                _ => text,
            };
            let fqdn = format!("{}.", text.trim().trim_end_matches('.'));
            Name::from_ascii(&fqdn)
                .map(|n| Some(n.to_lowercase()))
                .map_err(|e| self.err(key, format!("\"{text}\" is not a domain name: {e}")))
        };
        let soa = Soa {
            mname: name("soa.mname", raw.mname)?,
            rname: name("soa.rname", raw.rname)?,
            refresh: self.seconds(
                "soa.refresh",
                &raw.refresh.unwrap_or_else(default_soa_refresh),
            )?,
            retry: self.seconds("soa.retry", &raw.retry.unwrap_or_else(default_soa_retry))?,
            expire: self.seconds("soa.expire", &raw.expire.unwrap_or_else(default_soa_expire))?,
        };
        if soa.retry >= soa.refresh {
            return Err(self.err(
                "soa.retry",
                "must be shorter than soa.refresh (RFC 1912 2.2): a secondary retries a failed \
                 refresh sooner than it refreshes",
            ));
        }
        if soa.expire <= soa.refresh + soa.retry {
            return Err(self.err(
                "soa.expire",
                "must be longer than soa.refresh + soa.retry (RFC 1912 2.2 suggests 2 to 4 weeks)",
            ));
        }
        Ok(soa)
    }

    fn rate_limit(&self, raw: RawRateLimit) -> Result<RateLimit, ConfigError> {
        let limit = RateLimit {
            responses_per_second: raw.responses_per_second.unwrap_or_else(default_rate_limit),
            slip: raw.slip.unwrap_or_else(default_slip),
            ipv4_prefix: raw
                .ipv4_prefix
                .unwrap_or_else(default_rate_limit_ipv4_prefix),
            ipv6_prefix: raw
                .ipv6_prefix
                .unwrap_or_else(default_rate_limit_ipv6_prefix),
            inside: raw.inside,
        };
        if limit.ipv4_prefix > 32 {
            return Err(self.err("rate_limit.ipv4_prefix", "must be 0 to 32"));
        }
        if limit.ipv6_prefix > 128 {
            return Err(self.err("rate_limit.ipv6_prefix", "must be 0 to 128"));
        }
        Ok(limit)
    }

    fn domain(&self, key: &str, text: &str) -> Result<Name, ConfigError> {
        let trimmed = text.trim().trim_end_matches('.');
        if trimmed.is_empty() {
            return Err(self.err(key, "must not be empty (for example \"backhaul\")"));
        }
        let ok_chars = trimmed
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        let name = Name::from_ascii(format!("{trimmed}."))
            .ok()
            .filter(|_| ok_chars)
            .ok_or_else(|| {
                self.err(
                    key,
                    format!("\"{text}\" is not a domain name (letters, digits, '-' and dots)"),
                )
            })?;
        // Every member gets zt-<10 hex digits> under it: 14 more bytes of a 255-byte name.
        if crate::dname::name_wire(&name).len() + 14 > 255 {
            return Err(self.err(
                key,
                format!("\"{text}\" is too long to hold member names (zt-<id>.{trimmed} must fit in 255 bytes); use a shorter domain"),
            ));
        }
        Ok(name.to_lowercase())
    }

    fn duration(&self, key: &str, text: &str) -> Result<Duration, ConfigError> {
        humantime::parse_duration(text.trim()).map_err(|e| {
            self.err(
                key,
                format!("\"{text}\" is not a duration ({e}); write it like \"30s\" or \"5m\""),
            )
        })
    }

    fn seconds(&self, key: &str, text: &str) -> Result<u32, ConfigError> {
        let d = self.duration(key, text)?;
        u32::try_from(d.as_secs())
            .ok()
            .filter(|s| *s <= i32::MAX as u32) // RFC 2181 section 8: TTLs fit in 31 bits
            .ok_or_else(|| self.err(key, "is too long (at most 68 years)"))
    }

    fn network(&self, i: usize, raw: RawNetwork, domain: &Name) -> Result<Network, ConfigError> {
        let key = |k: &str| format!("network[{i}].{k}");
        let id: NetworkId = raw.id.parse().map_err(|_| {
            self.err(
                key("id"),
                format!(
                    "\"{}\" is not a ZeroTier network id (16 hex digits)",
                    raw.id
                ),
            )
        })?;
        // The packaged config's placeholder: no controller has the address 0.
        if id.0 == 0 {
            return Err(self.err(
                key("id"),
                "set your ZeroTier network's id (16 hex digits; Central -> Networks)",
            ));
        }
        let domain = match &raw.domain {
            Some(d) => self.domain(&key("domain"), d)?,
            None => domain.clone(),
        };
        let poll_interval = self.duration(&key("poll_interval"), &raw.poll_interval)?;
        let source = match raw.source {
            RawSource::Central | RawSource::Controller => {
                if raw.members_file.is_some() {
                    return Err(self.err(key("members_file"), "only applies to source = \"file\""));
                }
                if poll_interval < MIN_CENTRAL_POLL {
                    return Err(self.err(
                        key("poll_interval"),
                        "must be at least 1s: API servers rate-limit their clients",
                    ));
                }
                let controller = raw.source == RawSource::Controller;
                let default_url = if controller {
                    default_controller_url()
                } else {
                    default_api_url()
                };
                let text = raw.api_url.unwrap_or(default_url);
                let api_url = text.trim().trim_end_matches('/').to_owned();
                if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
                    return Err(
                        self.err(key("api_url"), format!("\"{text}\" is not an http(s) URL"))
                    );
                }
                let timeout = self.duration(&key("request_timeout"), &raw.request_timeout)?;
                if timeout.is_zero() {
                    return Err(self.err(key("request_timeout"), "must be more than 0s"));
                }
                if controller {
                    let file = raw.token_file.unwrap_or_else(default_authtoken_file);
                    Source::Controller {
                        api_url,
                        token: self.token(&key("token_file"), Some(&file))?,
                        timeout,
                    }
                } else {
                    Source::Central {
                        api_url,
                        token: self.token(&key("token_file"), raw.token_file.as_deref())?,
                        timeout,
                    }
                }
            }
            RawSource::File => {
                if raw.token_file.is_some() || raw.api_url.is_some() {
                    return Err(self.err(
                        key("token_file"),
                        "token_file and api_url only apply to source = \"central\" or \"controller\"",
                    ));
                }
                let file = raw.members_file.ok_or_else(|| {
                    self.err(
                        key("members_file"),
                        "source = \"file\" needs members_file = \"<path to a member-list JSON>\"",
                    )
                })?;
                let members_file = self.resolve(&file);
                if !members_file.is_file() {
                    return Err(self.err(
                        key("members_file"),
                        format!("{} does not exist or is not a file", members_file.display()),
                    ));
                }
                if poll_interval < MIN_FILE_POLL {
                    return Err(self.err(key("poll_interval"), "must be at least 100ms"));
                }
                Source::File { members_file }
            }
        };
        if raw.push_dns && !matches!(source, Source::Central { .. }) {
            return Err(self.err(key("push_dns"), "only works with source = \"central\""));
        }
        Ok(Network {
            id,
            domain,
            source,
            poll_interval,
            include_unauthorized: raw.include_unauthorized,
            push_dns: raw.push_dns,
            wildcard: (raw.wildcard.iter())
                .map(|w| self.selector(&key("wildcard"), w))
                .collect::<Result<_, _>>()?,
        })
    }

    fn public(&self, raw: RawPublic, listen: &Listen) -> Result<Public, ConfigError> {
        if raw.addresses.is_empty() {
            return Err(self.err(
                "public.addresses",
                "is empty: list the public addresses that answer for the public view",
            ));
        }
        let mut addresses = Vec::new();
        for (i, a) in raw.addresses.iter().enumerate() {
            let key = format!("public.addresses[{i}]");
            let ip: IpAddr = a
                .trim()
                .parse()
                .map_err(|_| self.err(&key, format!("\"{a}\" is not an IP address")))?;
            if ip.is_unspecified() {
                return Err(self.err(
                    &key,
                    format!("{ip} would also answer on the ZeroTier interface: list the public addresses"),
                ));
            }
            if matches!(&listen.from, ListenOn::Addresses(l) if l.contains(&ip)) {
                return Err(self.err(
                    &key,
                    format!("{ip} is also in listen.addresses: one address serves one view"),
                ));
            }
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
        Ok(Public {
            addresses,
            zone_file: self.resolve(&raw.zone_file),
        })
    }

    /// `ip` or `ip:port` (`[v6]:port`); port 53 when absent. Wildcards are refused.
    fn socket_addr(&self, key: &str, text: &str) -> Result<std::net::SocketAddr, ConfigError> {
        let t = text.trim();
        let addr = t
            .parse::<std::net::SocketAddr>()
            .or_else(|_| {
                t.parse::<IpAddr>()
                    .map(|ip| std::net::SocketAddr::new(ip, 53))
            })
            .map_err(|_| self.err(key, format!("\"{text}\" is not an address or address:port")))?;
        if addr.ip().is_unspecified() || addr.port() == 0 {
            return Err(self.err(key, format!("\"{text}\" is not a usable address")));
        }
        Ok(addr)
    }

    /// An address or CIDR; /0 (everyone) is refused.
    fn cidr(&self, key: &str, text: &str) -> Result<IpNet, ConfigError> {
        let net = text
            .trim()
            .parse::<IpNet>()
            .or_else(|_| text.trim().parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| self.err(key, format!("\"{text}\" is not an address or CIDR")))?;
        if net.prefix_len() == 0 {
            return Err(self.err(key, format!("{net} would allow everyone")));
        }
        Ok(net.trunc())
    }

    fn webhook(&self, raw: RawWebhook) -> Result<Webhook, ConfigError> {
        let listen = raw.listen.trim().parse().map_err(|_| {
            self.err(
                "webhook.listen",
                format!(
                    "\"{}\" is not an address:port like \"127.0.0.1:9154\"",
                    raw.listen
                ),
            )
        })?;
        let (path, text) = self.read_secret(
            "webhook.secret_file",
            &raw.secret_file,
            "the webhook signing secret from Central",
        )?;
        let mut secrets = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let secret = hex::decode(line).map_err(|_| {
                self.err(
                    "webhook.secret_file",
                    format!(
                        "{}: a secret is not hex (Central shows it as a hex string)",
                        path.display()
                    ),
                )
            })?;
            secrets.push(secret);
        }
        if secrets.is_empty() {
            return Err(self.err(
                "webhook.secret_file",
                format!("{} is empty", path.display()),
            ));
        }
        Ok(Webhook { listen, secrets })
    }

    /// A file holding a secret (token, signing secret, key), relative to the config file:
    /// its path and text. The error names the file and what it must hold, never its content.
    fn read_secret(
        &self,
        key: &str,
        file: &Path,
        holds: &str,
    ) -> Result<(PathBuf, String), ConfigError> {
        let path = self.resolve(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.err(
                key,
                format!("cannot read {}: {e} (it must hold {holds})", path.display()),
            )
        })?;
        Ok((path, text))
    }

    fn token(&self, key: &str, file: Option<&Path>) -> Result<Secret, ConfigError> {
        let token = match file {
            Some(f) => {
                self.read_secret(key, f, "the ZeroTier Central API token")?
                    .1
            }
            None => std::env::var(TOKEN_ENV).map_err(|_| {
                self.err(
                    key,
                    format!(
                        "source = \"central\" needs an API token: set token_file, or the \
                         environment variable {TOKEN_ENV}"
                    ),
                )
            })?,
        };
        let token = token.trim().to_owned();
        if token.is_empty() {
            return Err(self.err(key, "the API token is empty"));
        }
        Ok(Secret::new(token))
    }
}
