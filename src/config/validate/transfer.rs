//! `[transfer]`: who may transfer zones, whom to NOTIFY, the TSIG keys (secrets read from
//! their files, never printed) and the IXFR journal's bounds.

use hickory_proto::rr::Name;

use super::super::raw::*;
use super::super::*;
use super::Validator;

impl Validator<'_> {
    /// `domains`: the served domains, which the catalog's name must stay clear of.
    pub(super) fn transfer(
        &self,
        raw: RawTransfer,
        domains: &[&Name],
    ) -> Result<Transfer, ConfigError> {
        let mut keys: Vec<TsigKey> = Vec::new();
        for (i, k) in raw.keys.iter().enumerate() {
            let key = self.tsig_key(&format!("transfer.key[{i}]"), k)?;
            if keys.iter().any(|other| other.name == key.name) {
                return Err(self.err(
                    format!("transfer.key[{i}].name"),
                    format!("a key named \"{}\" is defined twice", k.name),
                ));
            }
            keys.push(key);
        }
        let key_named = |at: &str, name: Option<&String>| -> Result<Option<Name>, ConfigError> {
            let Some(name) = name else { return Ok(None) };
            (keys.iter())
                .find(|k| key_name(name).is_some_and(|n| n == k.name))
                .map(|k| Some(k.name.clone()))
                .ok_or_else(|| {
                    self.err(
                        at,
                        format!("no [[transfer.key]] is named \"{name}\"; define it (name, algorithm, secret_file) or fix the name"),
                    )
                })
        };
        let mut allow = Vec::new();
        for (i, a) in raw.allow.iter().enumerate() {
            let at = format!("transfer.allow[{i}]");
            let (address, key) = a.parts();
            allow.push(TransferAllow {
                network: self.cidr(&at, address)?,
                key: key_named(&format!("{at}.key"), key)?,
            });
        }
        let mut notify = Vec::new();
        for (i, a) in raw.notify.iter().enumerate() {
            let at = format!("transfer.notify[{i}]");
            let (address, key) = a.parts();
            let address = self.socket_addr(&at, address)?;
            // Unnamed: the key the secondary's allow entry requires (it checks NOTIFYs with
            // the key it transfers with).
            let key = match key_named(&format!("{at}.key"), key)? {
                Some(k) => Some(k),
                None => (allow.iter())
                    .find(|a| a.key.is_some() && a.network.contains(&address.ip()))
                    .and_then(|a| a.key.clone()),
            };
            notify.push(NotifyTarget { address, key });
        }
        if raw.journal_changes == 0 {
            return Err(self.err(
                "transfer.journal_changes",
                "must be at least 1 (secondaries would get a full AXFR for every change)",
            ));
        }
        let journal_bytes = self.size("transfer.journal_size", &raw.journal_size)?;
        let catalog = match &raw.catalog {
            None => None,
            Some(text) => {
                let name = self.domain("transfer.catalog", text)?;
                if let Some(d) = domains.iter().find(|d| d.zone_of(&name) || name.zone_of(d)) {
                    return Err(self.err(
                        "transfer.catalog",
                        format!(
                            "{name} overlaps the served domain {d}: a catalog is a zone of its own, \
                             outside every served name (RFC 9432 suggests \"catalog.invalid\")"
                        ),
                    ));
                }
                Some(name)
            }
        };
        Ok(Transfer {
            allow,
            notify,
            keys,
            journal_changes: raw.journal_changes,
            journal_bytes,
            catalog,
        })
    }

    /// A `[[transfer.key]]`: a name, an algorithm we implement, and a base64 secret.
    fn tsig_key(&self, at: &str, raw: &RawTsigKey) -> Result<TsigKey, ConfigError> {
        let name = key_name(&raw.name).ok_or_else(|| {
            self.err(
                format!("{at}.name"),
                format!(
                    "\"{}\" is not a key name (a domain name such as \"xfr\" or \"backhaul-xfr.\")",
                    raw.name
                ),
            )
        })?;
        let algorithm = TsigAlgorithm::from_name(raw.algorithm.trim()).ok_or_else(|| {
            self.err(
                format!("{at}.algorithm"),
                format!(
                    "\"{}\" is not one of hmac-sha256, hmac-sha384, hmac-sha512",
                    raw.algorithm
                ),
            )
        })?;
        let (path, text) = self.read_secret(
            &format!("{at}.secret_file"),
            &raw.secret_file,
            "the key's base64 secret, as `tsig-keygen` or `keymgr -t` print it",
        )?;
        let text = text.trim();
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD.decode(text);
        match decoded {
            Ok(bytes) if !bytes.is_empty() => {}
            // Never the text itself: it is the secret, or close to it.
            _ => {
                return Err(self.err(
                    format!("{at}.secret_file"),
                    format!("{} does not hold one base64 secret (the file holds only the secret, such as the `secret` of `tsig-keygen` output)", path.display()),
                ))
            }
        }
        Ok(TsigKey {
            name,
            algorithm,
            secret: Secret::new(text),
        })
    }

    /// A size in bytes: `1048576`, `"512 KiB"`, `"8 MiB"`, `"1 GiB"`.
    pub(super) fn size(&self, key: &str, text: &str) -> Result<usize, ConfigError> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" | "k" => 1 << 10,
            "mib" | "m" => 1 << 20,
            "gib" | "g" => 1 << 30,
            _ => 0,
        };
        digits
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                self.err(
                    key,
                    format!("\"{text}\" is not a size such as \"8 MiB\" or \"512 KiB\""),
                )
            })
    }
}

/// A TSIG key's name as both sides compare it: lowercase, fully qualified (`xfr` is `xfr.`).
pub(super) fn key_name(text: &str) -> Option<Name> {
    let mut name = Name::from_ascii(text.trim())
        .ok()
        .filter(|n| !n.is_root())?;
    name.set_fqdn(true);
    Some(name.to_lowercase())
}
