//! The status page (`GET /`): one self-contained HTML document, rendered here, with no
//! external assets. Member names are text anyone on the network can set: everything that
//! comes from data goes through [`esc`].
//!
//! At most [`PER_PAGE`] names per page; `?q=` filters on the server (name, address, node id,
//! problem), `?problems=1` shows only rows with a problem, `?page=N` pages.

use std::fmt::Write as _;

use serde::Deserialize;

use crate::metrics::Readiness;
use crate::zone::directory::{Directory, Kind, ProblemKind, Row};

/// Names per page: a page for 1,000 members renders at once in a browser; 100,000 members
/// are a hundred pages, not one document of 30 MB.
pub const PER_PAGE: usize = 1000;

/// The page's query parameters.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub problems: Option<String>,
    #[serde(default)]
    pub page: Option<usize>,
}

/// `text` safe inside HTML text and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How long ago `then` (Unix seconds) was, in words.
fn age(now: u64, then: u64) -> String {
    let s = now.saturating_sub(then);
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86400),
    }
}

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:12px;color:#1b1b1b}
h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:20px 0 6px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0;cursor:pointer}
td.addr{font-family:ui-monospace,monospace;font-size:12px}
tr.problem td{background:#fff4e5}tr.down td,span.bad{color:#b00020}span.ok{color:#0a7a30}
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{border:1px solid #ddd;border-radius:6px;padding:8px 10px;min-width:220px;flex:1}
.card.bad{border-color:#b00020;background:#fff0f0}.muted{color:#666}
form{margin:8px 0}input[type=search]{width:260px;max-width:100%;padding:4px}
.wrap{overflow-x:auto}
@media (max-width:640px){td.node,th.node,td.net,th.net{display:none}}
";

/// Sorting a column by clicking its header: the only script on the page.
const SCRIPT: &str = "
document.querySelectorAll('th[data-col]').forEach(function(th){th.addEventListener('click',function(){
var t=th.closest('table'),b=t.tBodies[0],i=+th.dataset.col,up=th.dataset.up!=='1';th.dataset.up=up?'1':'0';
var rows=Array.prototype.slice.call(b.rows);rows.sort(function(x,y){var a=x.cells[i].textContent,c=y.cells[i].textContent;return up?a.localeCompare(c,undefined,{numeric:true}):c.localeCompare(a,undefined,{numeric:true});});
rows.forEach(function(r){b.appendChild(r);});});});
";

/// The whole page.
/// Each scope's name and how many names it hides, for [`render`].
pub fn scopes_of(map: &crate::zone::ScopeMap) -> Vec<(String, usize)> {
    map.names
        .iter()
        .cloned()
        .zip(map.counts.iter().copied())
        .collect()
}

pub fn render(
    ready: &Readiness,
    directory: &Directory,
    scopes: &[(String, usize)],
    now: u64,
    query: &PageQuery,
) -> String {
    let mut h = String::with_capacity(64 * 1024);
    h.push_str("<!doctype html><html lang=en><head><meta charset=utf-8>");
    h.push_str("<meta name=viewport content=\"width=device-width,initial-scale=1\">");
    h.push_str("<title>backhaul-dns</title><style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body><h1>backhaul-dns</h1>");
    summary(&mut h, ready, directory);
    networks(&mut h, ready, now);
    services(&mut h, ready);
    scope_table(&mut h, scopes);
    names(&mut h, directory, query);
    h.push_str("<script>");
    h.push_str(SCRIPT);
    h.push_str("</script></body></html>\n");
    h
}

/// One line of counts, problems first.
fn summary(h: &mut String, ready: &Readiness, d: &Directory) {
    let count = |f: &dyn Fn(&Row) -> bool| d.names.iter().filter(|r| f(r)).count();
    let has = |kind: ProblemKind| count(&|r| r.problem.as_ref().is_some_and(|p| p.kind == kind));
    let conflicts = has(ProblemKind::Conflict);
    let waiting = has(ProblemKind::Unauthorized);
    let no_address = has(ProblemKind::NoAddress);
    let failing = ready
        .networks
        .iter()
        .filter(|n| n.last_error.is_some())
        .count();
    let down = ready.services.iter().filter(|s| !s.down.is_empty()).count();
    let served = count(&|r| r.served);
    let _ = write!(
        h,
        "<p>{} <b>{served}</b> names served on {}. ",
        if ready.ready {
            "<span class=ok>Ready</span>:"
        } else {
            "<span class=bad>Not ready</span>:"
        },
        if ready.listening.is_empty() {
            "no address yet".to_owned()
        } else {
            esc(&(ready.listening.iter())
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", "))
        }
    );
    let mut problems = Vec::new();
    for (n, what) in [
        (failing, "failing network"),
        (conflicts, "name conflict"),
        (waiting, "unauthorized member"),
        (no_address, "member without address"),
        (down, "service with members down"),
    ] {
        if n > 0 {
            problems.push(format!(
                "<a href=\"?problems=1#names\"><span class=bad>{n} {what}{}</span></a>",
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    if problems.is_empty() {
        h.push_str("<span class=ok>No problems.</span></p>");
    } else {
        h.push_str(&problems.join(", "));
        h.push_str(".</p>");
    }
}

fn networks(h: &mut String, ready: &Readiness, now: u64) {
    h.push_str("<h2>Networks</h2><div class=cards>");
    for n in &ready.networks {
        let bad = n.last_error.is_some() || !n.ready;
        let _ = write!(
            h,
            "<div class=\"card{}\"><b>{}</b> <span class=muted>({})</span><br>{} members; data: {}<br>last sync: {}",
            if bad { " bad" } else { "" },
            esc(&n.id),
            esc(n.source),
            n.members,
            esc(match n.data {
                "sync" => "synced by this process",
                "snapshot" => "last good snapshot (no sync yet)",
                _ => "none yet",
            }),
            n.last_sync
                .map(|t| age(now, t))
                .unwrap_or_else(|| "never".into()),
        );
        if let Some(t) = n.snapshot_saved {
            let _ = write!(h, "<br>snapshot saved: {}", age(now, t));
        }
        if let Some(e) = &n.last_error {
            let _ = write!(h, "<br><span class=bad>last error: {}</span>", esc(e));
        }
        h.push_str("</div>");
    }
    h.push_str("</div>");
}

fn services(h: &mut String, ready: &Readiness) {
    if ready.services.is_empty() {
        return;
    }
    h.push_str("<h2>Services</h2><div class=wrap><table><thead><tr><th>service</th><th>check</th><th>up</th><th>down</th></tr></thead><tbody>");
    for s in &ready.services {
        let bad = !s.down.is_empty() || s.fail_open;
        let _ = write!(
            h,
            "<tr class=\"{}\"><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if bad { "problem" } else { "" },
            esc(&s.name),
            if s.fail_open {
                " <span class=bad>(none up: answering with every member)</span>"
            } else {
                ""
            },
            esc(s.check),
            esc(&s.up.join(", ")),
            esc(&s.down.join(", ")),
        );
    }
    h.push_str("</tbody></table></div>");
}

/// `[[scope]]`: who sees less, and how much less.
fn scope_table(h: &mut String, scopes: &[(String, usize)]) {
    if scopes.is_empty() {
        return;
    }
    h.push_str("<h2>Scopes</h2><div class=wrap><table><thead><tr><th>scope</th><th>names hidden</th></tr></thead><tbody>");
    for (name, hidden) in scopes {
        let _ = write!(h, "<tr><td>{}</td><td>{hidden}</td></tr>", esc(name));
    }
    h.push_str("</tbody></table></div>");
}

fn names(h: &mut String, d: &Directory, query: &PageQuery) {
    let q = query.q.trim().to_ascii_lowercase();
    let only_problems = query
        .problems
        .as_deref()
        .is_some_and(|p| !p.is_empty() && p != "0");
    let matches = |r: &Row| {
        if only_problems && r.problem.is_none() {
            return false;
        }
        if q.is_empty() {
            return true;
        }
        r.name.contains(&q)
            || r.node.is_some_and(|n| n.to_string().contains(&q))
            || r.addresses.iter().any(|a| a.to_string().contains(&q))
            || (r.problem.as_ref()).is_some_and(|p| p.text.to_ascii_lowercase().contains(&q))
    };
    let rows: Vec<&Row> = d.names.iter().filter(|r| matches(r)).collect();
    let pages = rows.len().div_ceil(PER_PAGE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let _ = write!(
        h,
        "<h2 id=names>Names</h2><form method=get action=\"#names\"><input type=search name=q value=\"{}\" placeholder=\"name, address, node id\"> \
         <label><input type=checkbox name=problems value=1{}> problems only</label> <button>Filter</button></form>",
        esc(&query.q),
        if only_problems { " checked" } else { "" }
    );
    let _ = write!(h, "<p class=muted>{} of {} rows", rows.len(), d.names.len());
    if pages > 1 {
        let link = |p: usize| {
            format!(
                "?q={}&amp;problems={}&amp;page={p}#names",
                esc(&percent(&query.q)),
                if only_problems { "1" } else { "" }
            )
        };
        let _ = write!(h, "; page {page} of {pages}");
        if page > 1 {
            let _ = write!(h, " <a href=\"{}\">previous</a>", link(page - 1));
        }
        if page < pages {
            let _ = write!(h, " <a href=\"{}\">next</a>", link(page + 1));
        }
    }
    h.push_str("</p><div class=wrap><table id=table><thead><tr><th data-col=0>name</th><th data-col=1>type</th><th data-col=2>addresses</th><th class=node data-col=3>node</th><th class=net data-col=4>network</th><th data-col=5>authorized</th><th data-col=6>problem</th></tr></thead><tbody>");
    for r in rows.iter().skip((page - 1) * PER_PAGE).take(PER_PAGE) {
        let class = match (&r.problem, r.served) {
            (Some(_), _) => "problem",
            (None, false) => "down",
            _ => "",
        };
        let kind = match r.kind {
            Kind::Member => "member",
            Kind::Alias => "alias",
            Kind::Records => "records file",
            Kind::Service => "service",
            Kind::Updated => "updated (RFC 2136)",
        };
        let addresses: Vec<String> = r.addresses.iter().map(|a| a.to_string()).collect();
        let _ = write!(
            h,
            "<tr class=\"{class}\"><td>{}{}{}</td><td>{kind}</td><td class=addr>{}</td><td class=node>{}</td><td class=net>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.name),
            if r.served { "" } else { " <span class=muted>(not served)</span>" },
            r.zerotier_name
                .as_deref()
                .map(|n| format!("<br><span class=muted>ZeroTier name: {}</span>", esc(n)))
                .unwrap_or_default(),
            esc(&addresses.join(" ")),
            r.node.map(|n| n.to_string()).unwrap_or_default(),
            r.network.map(|n| n.to_string()).unwrap_or_default(),
            match r.authorized {
                Some(true) => "yes",
                Some(false) => "<span class=bad>no</span>",
                None => "",
            },
            esc(r.problem.as_ref().map_or("", |p| p.text.as_str())),
        );
    }
    h.push_str("</tbody></table></div>");
}

/// `text` for a URL query value.
fn percent(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(percent("a b&c"), "a%20b%26c");
    }
}
