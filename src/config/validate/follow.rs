//! `[follow]`: the primary, the key its transfers are signed with, and which of its zones
//! (its catalog's members, or a list). A follower takes whole zones, so what needs member
//! data (networks, services, scopes, a catalog of its own) is refused with where it belongs.

use super::super::raw::RawFollow;
use super::super::*;
use super::transfer::key_name;
use super::Validator;

/// What the rest of the config sets that only a server with member data can do.
pub(super) struct Mine {
    pub(super) networks: bool,
    pub(super) services: bool,
    pub(super) scopes: bool,
    pub(super) catalog: bool,
    pub(super) updates: bool,
}

impl Validator<'_> {
    pub(super) fn follow(
        &self,
        raw: RawFollow,
        keys: &[TsigKey],
        mine: Mine,
    ) -> Result<Follow, ConfigError> {
        let primary_only = [
            (mine.networks, "network", "[[network]]"),
            (mine.services, "service", "[[service]]"),
            (mine.scopes, "scope", "[[scope]]"),
            (mine.catalog, "transfer.catalog", "[transfer] catalog"),
            (mine.updates, "update", "[[update]]"),
        ];
        if let Some((_, key, what)) = primary_only.iter().find(|(set, _, _)| *set) {
            return Err(self.err(
                *key,
                format!(
                    "{what} needs member data or changes the zones, which a follower does not have: it serves the \
                     primary's zones as they are; set it on the primary (or remove [follow])"
                ),
            ));
        }
        let primary = self.socket_addr("follow.primary", &raw.primary)?;
        let key = match &raw.key {
            None => None,
            Some(text) => Some(
                (keys.iter())
                    .find(|k| key_name(text).is_some_and(|n| n == k.name))
                    .map(|k| k.name.clone())
                    .ok_or_else(|| {
                        self.err(
                            "follow.key",
                            format!(
                                "no [[transfer.key]] is named \"{text}\"; define it with the \
                                 primary's secret (name, algorithm, secret_file) or fix the name"
                            ),
                        )
                    })?,
            ),
        };
        let zones = match (&raw.catalog, raw.zones.is_empty()) {
            (Some(c), true) => Followed::Catalog(self.domain("follow.catalog", c)?),
            (None, false) => {
                let mut zones: Vec<Name> = Vec::new();
                for (i, z) in raw.zones.iter().enumerate() {
                    let name = self.domain(&format!("follow.zones[{i}]"), z)?;
                    if zones.contains(&name) {
                        return Err(self.err(
                            format!("follow.zones[{i}]"),
                            format!("{name} is listed twice"),
                        ));
                    }
                    zones.push(name);
                }
                Followed::Listed(zones)
            }
            (Some(_), false) => {
                return Err(self.err(
                    "follow.zones",
                    "give either catalog (the primary's catalog zone) or zones, not both",
                ))
            }
            (None, true) => {
                return Err(self.err(
                    "follow",
                    "name the zones to follow: catalog = \"catalog.invalid\" (the primary's \
                     [transfer] catalog) or zones = [\"backhaul\", ...]",
                ))
            }
        };
        Ok(Follow {
            primary,
            key,
            zones,
        })
    }
}
