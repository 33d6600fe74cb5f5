//! `[[update]]` tables: which key may change which names by RFC 2136 UPDATE, and how much.

use hickory_proto::rr::RecordType;

use super::super::raw::RawUpdate;
use super::super::*;
use super::transfer::key_name;
use super::Validator;
use crate::view::View;

/// Types an update may never touch: the zone's own (SOA, NS at the apex are the server's),
/// and the pseudo-types.
const NEVER: [RecordType; 8] = [
    RecordType::SOA,
    RecordType::NS,
    RecordType::ANY,
    RecordType::AXFR,
    RecordType::IXFR,
    RecordType::OPT,
    RecordType::TSIG,
    RecordType::DNAME,
];

impl Validator<'_> {
    pub(super) fn updates(
        &self,
        raw: Vec<RawUpdate>,
        keys: &[TsigKey],
        public: bool,
    ) -> Result<Vec<UpdatePolicy>, ConfigError> {
        let mut out: Vec<UpdatePolicy> = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            let at = |k: &str| format!("update[{i}].{k}");
            let key = (keys.iter())
                .find(|k| key_name(&r.key).is_some_and(|n| n == k.name))
                .map(|k| k.name.clone())
                .ok_or_else(|| {
                    self.err(
                        at("key"),
                        format!(
                            "no [[transfer.key]] is named \"{}\"; define it (name, algorithm, secret_file): updates must be signed with it",
                            r.key
                        ),
                    )
                })?;
            if r.names.is_empty() {
                return Err(self.err(
                    at("names"),
                    "list the names this key may change, below the zone (for certbot: \"_acme-challenge.*\")",
                ));
            }
            let mut names = Vec::new();
            for (j, text) in r.names.iter().enumerate() {
                let t = text.trim().trim_end_matches('.').to_ascii_lowercase();
                let pattern = glob::Pattern::new(&t).ok().filter(|_| !t.is_empty());
                let Some(pattern) = pattern else {
                    return Err(self.err(
                        format!("update[{i}].names[{j}]"),
                        format!("\"{text}\" is not a name glob such as \"_acme-challenge.*\""),
                    ));
                };
                if pattern.as_str() == "*" || pattern.as_str() == "**" {
                    return Err(self.err(
                        format!("update[{i}].names[{j}]"),
                        "\"*\" would let the key write any name; name the names (\"_acme-challenge.*\", \"*.k8s\")",
                    ));
                }
                names.push(pattern);
            }
            let mut types = Vec::new();
            for (j, text) in r.types.iter().enumerate() {
                let rtype: Option<RecordType> = text.trim().to_ascii_uppercase().parse().ok();
                match rtype {
                    Some(t) if !NEVER.contains(&t) && !matches!(t, RecordType::Unknown(_)) => {
                        types.push(u16::from(t))
                    }
                    _ => {
                        return Err(self.err(
                            format!("update[{i}].types[{j}]"),
                            format!("\"{text}\" is not a type an update may change (TXT, A, AAAA, CNAME, SRV...; never SOA, NS or DNAME)"),
                        ))
                    }
                }
            }
            if types.is_empty() {
                return Err(self.err(
                    at("types"),
                    "list at least one type (the default is [\"TXT\"])",
                ));
            }
            let view = match r.view.trim() {
                "private" | "backhaul" => View::Backhaul,
                "public" if public => View::Public,
                "public" => {
                    return Err(self.err(
                        at("view"),
                        "\"public\" needs a [public] view (addresses and zone_file) to update",
                    ))
                }
                other => {
                    return Err(self.err(
                        at("view"),
                        format!("\"{other}\" is not a view: private or public"),
                    ))
                }
            };
            if out.iter().any(|o| o.key == key && o.view == view) {
                return Err(self.err(
                    at("key"),
                    format!(
                        "key \"{}\" has two [[update]] tables for one view; merge their names",
                        r.key
                    ),
                ));
            }
            if r.max_records == 0 {
                return Err(self.err(at("max_records"), "must be at least 1"));
            }
            let max_bytes = self.size(&at("max_size"), &r.max_size)?;
            out.push(UpdatePolicy {
                key,
                names,
                types,
                view,
                max_records: r.max_records,
                max_bytes,
            });
        }
        Ok(out)
    }
}
