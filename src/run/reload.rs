//! Reloading the configuration while serving: everything is read and checked first, then
//! applied at once; settings bound at start-up keep their running value, and the compiler
//! makes every new setting say which kind it is ([`restart_only`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Server;
use crate::config::{Config, Listen};
use crate::http::Access;
use crate::records;
use crate::sync::SyncHandle;
use crate::watch::{self, FileWatch};

impl Server {
    /// Reads the configuration and records files again and applies what can change while
    /// running. Anything invalid rejects the whole reload: the running configuration stays.
    /// Files still being written (or just emptied, as editors do before writing) are not read
    /// yet: the return value says when to try again.
    pub(super) async fn reload(
        &mut self,
        why: &str,
        sync: &SyncHandle,
        files_watch: &mut FileWatch,
    ) -> Option<Duration> {
        if let Some(wait) = self.settling.wait(&[&self.config.path]) {
            return Some(wait);
        }
        let telemetry = self.telemetry.clone();
        let reject = |e: &dyn std::fmt::Display| {
            telemetry.reload(false);
            tracing::error!(
                cause = why,
                "reload rejected, still serving the previous configuration: {e}"
            );
            None
        };
        let new = match Config::load(&self.config.path) {
            Ok(c) => c,
            Err(e) => return reject(&e),
        };
        let record_files: Vec<&Path> = (new.records_file.iter())
            .chain(new.public.as_ref().map(|p| &p.zone_file))
            .map(PathBuf::as_path)
            .collect();
        // Stamped before the settling check and again after the read: equal stamps mean the
        // version found settled is the one read.
        let before = watch::stamps(&record_files);
        if let Some(wait) = self.settling.wait(&record_files) {
            return Some(wait);
        }
        let files = match records::load_files(&new) {
            Ok(f) => f,
            Err(e) => return reject(&e),
        };
        // Settled when looked at, but changed while being read (a file emptied again just
        // then, on a slow disk): what was read may be the empty moment. Look again shortly.
        if watch::stamps(&record_files) != before {
            return Some(watch::DEBOUNCE);
        }
        let (new, restart) = restart_only(&self.config, new);
        if !restart.is_empty() {
            tracing::warn!(settings = %restart.join(", "),
                "changed in the config file: takes effect after a restart");
        }
        // Everything is built and checked before anything changes: a rejected reload leaves
        // the rules and the zones as they were.
        let rules = match self.build_rules(&new, &files.delegations) {
            Ok(r) => r,
            Err(e) => return reject(&format!("{e:#}")),
        };
        let (included, delegations) = (files.included.clone(), files.delegations.clone());
        if let Err(e) = sync.reconfigure(&new, files).await {
            return reject(&format!("{e:#}"));
        }
        self.set_rules(rules);
        self.delegations = delegations;
        files_watch.follow(&new, &included);
        (self.http_access).store(Arc::new(Access::new(&self.nets, &new)));
        self.config = new;
        self.telemetry.reload(true);
        tracing::info!(cause = why, "configuration reloaded");
        None
    }
}

/// `new` with every setting bound at start-up put back to its value in `old`, and the names
/// of those that differed. Every field of [`Config`] is named below, so a new field does not
/// compile until it is sorted into "applied by a reload" or "needs a restart".
pub(super) fn restart_only(old: &Config, mut new: Config) -> (Config, Vec<&'static str>) {
    let mut restart = Vec::new();
    let Config {
        // Applied by a reload: the rules, the next zone build, the pollers, the watchers.
        path: _,
        domain: _,
        ttl: _,
        negative_ttl: _,
        networks: _,
        transfer: _,
        forward: _,
        records_file: _,
        public: _,
        http_allow: _,
        ready_max_age: _,
        log_queries: _,
        forward_zones: _,
        forward_ca_file: _,
        rate_limit: _,
        soa: _,
        services: _,
        scopes: _,
        updates: _,
        // Bound at start-up.
        state_dir,
        dnstap,
        listen,
        webhook,
        http,
        // Following or not decides which tasks run at all.
        follow,
    } = &mut new;
    let Listen {
        // Applied: the ACL and TCP limits are part of the rules.
        allow: _,
        tcp: _,
        // Bound: the sockets and the way addresses are found.
        from,
        port,
    } = listen;
    let mut keep = |name: &'static str, changed: bool| {
        if changed {
            restart.push(name);
        }
        changed
    };
    if keep(
        "[listen] interface/network/addresses",
        *from != old.listen.from,
    ) {
        *from = old.listen.from.clone();
    }
    if keep("[listen] port", *port != old.listen.port) {
        *port = old.listen.port;
    }
    if keep("state_dir", *state_dir != old.state_dir) {
        *state_dir = old.state_dir.clone();
    }
    if keep("[log] dnstap", *dnstap != old.dnstap) {
        *dnstap = old.dnstap.clone();
    }
    if keep("[webhook]", *webhook != old.webhook) {
        *webhook = old.webhook.clone();
    }
    if keep("[http] listen", *http != old.http) {
        *http = old.http;
    }
    if keep("[follow]", *follow != old.follow) {
        *follow = old.follow.clone();
    }
    (new, restart)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.json"), "[]").unwrap();
        let text = format!(
            "domain = \"backhaul\"\nstate_dir = \"/tmp/x\"\n[listen]\naddresses = [\"127.0.0.1\"]\n\
             port = 5353\n{extra}\n[[network]]\nid = \"8056c2e21c000001\"\nsource = \"file\"\n\
             members_file = \"m.json\"\n"
        );
        Config::parse(&dir.path().join("t.toml"), &text).unwrap()
    }

    #[test]
    fn restart_only_settings_keep_their_value_and_are_named() {
        let old = config("");
        let new = config("allow = [\"10.0.0.0/8\"]");
        let (kept, restart) = restart_only(&old, new.clone());
        assert!(restart.is_empty(), "allow is reloadable: {restart:?}");
        assert_eq!(kept.listen.allow, new.listen.allow);

        let mut moved = config("");
        moved.listen.port = 53;
        moved.state_dir = "/var/lib/elsewhere".into();
        let (kept, restart) = restart_only(&old, moved);
        assert_eq!(restart, ["[listen] port", "state_dir"]);
        assert_eq!(kept.listen.port, 5353);
        assert_eq!(kept.state_dir, old.state_dir);
    }
}
