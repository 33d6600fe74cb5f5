//! Upstream resolvers as `[forward]` lists them: `10.0.0.1[:53]`, `tls://ip[:853]#name`
//! (DNS over TLS, RFC 7858), `https://ip[:443][/path]#name` (DNS over HTTPS, RFC 8484); and
//! `tls_ca_file`, the certificates trusted for them besides the system's.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use super::super::{ConfigError, Upstream, UpstreamTransport};
use super::Validator;

impl Validator<'_> {
    pub(super) fn upstream(&self, key: &str, text: &str) -> Result<Upstream, ConfigError> {
        let t = text.trim();
        let (scheme, rest) = match t.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => return Ok(Upstream::plain(self.socket_addr(key, t)?)),
        };
        let (location, name) = match rest.split_once('#') {
            Some((l, n)) if !n.trim().is_empty() => (l, n.trim().to_ascii_lowercase()),
            _ => {
                return Err(self.err(
                    key,
                    format!(
                        "\"{text}\": name the server's certificate after '#' \
                         (\"tls://9.9.9.9:853#dns.quad9.net\", \"https://9.9.9.9/dns-query#dns.quad9.net\")"
                    ),
                ))
            }
        };
        let (host, path) = match location.find('/') {
            Some(at) => (&location[..at], &location[at..]),
            None => (location, ""),
        };
        let (default_port, transport) = match scheme.as_str() {
            "tls" if path.is_empty() => (853, UpstreamTransport::Tls { name }),
            "tls" => {
                return Err(self.err(key, format!("\"{text}\": a tls:// upstream has no path")))
            }
            "https" => {
                let path = if path.is_empty() { "/dns-query" } else { path };
                (
                    443,
                    UpstreamTransport::Https {
                        name,
                        path: path.to_owned(),
                    },
                )
            }
            other => {
                return Err(self.err(
                    key,
                    format!(
                        "\"{text}\": {other}:// is not an upstream kind (plain, tls://, https://)"
                    ),
                ))
            }
        };
        let addr = host
            .parse::<SocketAddr>()
            .ok()
            .or_else(|| {
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, default_port))
            })
            .filter(|a| !a.ip().is_unspecified() && a.port() != 0)
            .ok_or_else(|| {
                self.err(
                    key,
                    format!(
                        "\"{host}\" is not an address: give the upstream's address, its name after '#' \
                         (a name to look up would go through the resolver this server may itself be)"
                    ),
                )
            })?;
        Ok(Upstream { addr, transport })
    }

    /// A PEM file holding at least one certificate.
    pub(super) fn ca_file(&self, key: &str, path: &Path) -> Result<PathBuf, ConfigError> {
        use rustls_pki_types::pem::PemObject;
        let path = self.resolve(path);
        let certs: Result<Vec<_>, _> =
            rustls_pki_types::CertificateDer::pem_file_iter(&path).and_then(Iterator::collect);
        match certs {
            Ok(c) if !c.is_empty() => Ok(path),
            Ok(_) => Err(self.err(
                key,
                format!(
                    "{}: no certificate (PEM, BEGIN CERTIFICATE) in it",
                    path.display()
                ),
            )),
            Err(e) => Err(self.err(key, format!("{}: {e}", path.display()))),
        }
    }
}
