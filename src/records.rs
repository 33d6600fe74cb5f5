//! Records files (`[records] zone_file`, `[public] zone_file`): RFC 1035 master files whose
//! records are added to a view, checked so that every mistake names its line.
//!
//! hickory-proto parses each entry (RDATA of every type it knows); this module splits the file
//! into entries first, so that an error points at the line it starts on, and applies the rules
//! of what such a file may hold: records at or under the domain, no SOA (the server makes it),
//! NS only at the apex (no delegations), CNAME alone at its name (RFC 1034 3.6.2).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use hickory_proto::serialize::txt::{parse_ttl, Parser};
use thiserror::Error;

use crate::config::Config;

/// A records file that cannot be used, worded for the person editing it.
#[derive(Debug, Error)]
pub enum RecordsError {
    #[error("cannot read records file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// One record and the line its entry starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub record: Record,
    pub line: usize,
}

/// Records from the records files, already checked: what the zone build adds to each view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRecords {
    /// `[records] zone_file`: merged into the backhaul view; wins over member names.
    pub private: Vec<Record>,
    /// `[public] zone_file`: the public view, and the fallback for names the backhaul view
    /// lacks. `None` when no public view is configured.
    pub public: Option<Vec<Record>>,
}

/// Reads and checks the records files a configuration names. Any error rejects them all.
pub fn load_files(config: &Config) -> Result<FileRecords, RecordsError> {
    let domains: Vec<Name> = config.networks.iter().map(|n| n.domain.clone()).collect();
    let private = match &config.records_file {
        Some(path) => load(path, &config.domain, &domains, config.ttl)?,
        None => Vec::new(),
    };
    let public = match &config.public {
        Some(p) => Some(load(&p.zone_file, &config.domain, &[], config.ttl)?),
        None => None,
    };
    Ok(FileRecords {
        private: private.into_iter().map(|r| r.record).collect(),
        public: public.map(|p| p.into_iter().map(|r| r.record).collect()),
    })
}

/// Reads and checks a records file. `apex`: the file's default `$ORIGIN` and the domain every
/// owner must be at or under (or under one of `also`). `ttl`: the TTL of records without one,
/// until a `$TTL` line says otherwise.
pub fn load(
    path: &Path,
    apex: &Name,
    also: &[Name],
    ttl: u32,
) -> Result<Vec<FileRecord>, RecordsError> {
    let text = std::fs::read_to_string(path).map_err(|source| RecordsError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, apex, also, ttl).map_err(|(line, message)| RecordsError::Line {
        path: path.to_owned(),
        line,
        message,
    })
}

/// [`load`] on text already read; errors are (line, message).
pub fn parse(
    text: &str,
    apex: &Name,
    also: &[Name],
    ttl: u32,
) -> Result<Vec<FileRecord>, (usize, String)> {
    let mut origin = apex.clone();
    let mut default_ttl = ttl;
    let mut last_owner: Option<Name> = None;
    let mut out: Vec<FileRecord> = Vec::new();
    for entry in entries(text)? {
        let line = entry.line;
        let fail = |m: String| Err((line, m));
        let first = entry.text.split_whitespace().next().unwrap_or_default();
        match first.to_ascii_uppercase().as_str() {
            "$ORIGIN" => {
                let arg = entry.text.split_whitespace().nth(1).unwrap_or_default();
                origin = match Name::parse(arg, Some(&origin)) {
                    Ok(n) => n,
                    Err(e) => return fail(format!("bad $ORIGIN {arg:?}: {e}")),
                };
                continue;
            }
            "$TTL" => {
                let arg = entry.text.split_whitespace().nth(1).unwrap_or_default();
                default_ttl = match parse_ttl(arg) {
                    Ok(t) => t,
                    Err(e) => return fail(format!("bad $TTL {arg:?}: {e}")),
                };
                continue;
            }
            "$INCLUDE" => {
                return fail("$INCLUDE is not supported: put the records in this file".into())
            }
            d if d.starts_with('$') => return fail(format!("unknown directive {first}")),
            _ => {}
        }
        // Each entry is parsed alone, so it carries its context: origin, TTL and, for an entry
        // that starts blank, the owner of the entry before it.
        let body = if entry.blank_owner {
            match &last_owner {
                Some(owner) => format!("{owner}{}", entry.text),
                None => return fail("the first record has no owner name".into()),
            }
        } else {
            entry.text.clone()
        };
        let source = format!("$TTL {default_ttl}\n{body}\n");
        let parsed = Parser::new(source, None, Some(origin.clone()))
            .parse()
            .map_err(|e| (line, one_line(&e.to_string())))?;
        for set in parsed.1.into_values() {
            for record in set.records_without_rrsigs() {
                if record.dns_class != DNSClass::IN {
                    return fail(format!(
                        "class {} is not served: only IN records",
                        record.dns_class
                    ));
                }
                // Encoded here, once, so that nothing the file says can fail later, in a
                // zone build: a record that passed this check always encodes.
                if let Err(why) = rdata_wire(&record.data) {
                    return fail(format!(
                        "{} {} cannot be served: {why}",
                        record.name,
                        record.record_type()
                    ));
                }
                last_owner = Some(record.name.clone());
                out.push(FileRecord {
                    record: record.clone(),
                    line,
                });
            }
        }
    }
    check(&out, apex, also)?;
    Ok(out)
}

/// RDATA in wire form with no name compression (pointers would be relative to the wrong
/// message), or why it cannot be sent: a character-string over 255 bytes (TXT, HINFO,
/// NAPTR, CAA tags, SVCB values) or RDATA over 65,535 bytes.
pub fn rdata_wire(rdata: &RData) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    if let Err(e) = rdata.emit(&mut enc) {
        let text = one_line(&e.to_string());
        return Err(if text.contains("char data length exceeds") {
            format!(
                "{text}; a quoted string holds at most 255 bytes (RFC 1035 3.3): split a long \
                 value into several quoted strings, e.g. \"part one\" \"part two\""
            )
        } else {
            text
        });
    }
    if buf.len() > usize::from(u16::MAX) {
        return Err(format!(
            "its data is {} bytes, more than the 65,535 a record can hold",
            buf.len()
        ));
    }
    Ok(buf)
}

/// The rules of what a records file may hold.
fn check(records: &[FileRecord], apex: &Name, also: &[Name]) -> Result<(), (usize, String)> {
    let mut at_owner: HashMap<Name, Vec<&FileRecord>> = HashMap::new();
    for r in records {
        let name = &r.record.name;
        let zone = std::iter::once(apex).chain(also).find(|d| d.zone_of(name));
        let Some(zone) = zone else {
            return Err((
                r.line,
                format!("{name} is outside {apex}: records here must be at or under it"),
            ));
        };
        let why = match r.record.record_type() {
            RecordType::SOA => Some("no SOA here: backhaul-dns makes the SOA (and its serial)"),
            RecordType::NS if name != zone => {
                Some("NS below the apex would be a delegation, which is not supported")
            }
            RecordType::DNAME => Some("DNAME is not supported: use a CNAME per name"),
            RecordType::CNAME if name == zone => {
                Some("no CNAME at the apex: the apex holds the SOA and NS (RFC 1034 3.6.2)")
            }
            _ => None,
        };
        if let Some(why) = why {
            return Err((r.line, why.into()));
        }
        at_owner.entry(name.to_lowercase()).or_default().push(r);
    }
    for (name, rs) in &at_owner {
        let cnames: Vec<&&FileRecord> = rs
            .iter()
            .filter(|r| r.record.record_type() == RecordType::CNAME)
            .collect();
        if let (Some(c), true) = (cnames.first(), rs.len() > 1) {
            let other = rs.iter().find(|r| r.line != c.line).unwrap_or(&rs[0]);
            return Err((
                c.line.max(other.line),
                format!(
                    "{name} has a CNAME (line {}) and other records (line {}): a CNAME must be \
                     alone at its name (RFC 1034 3.6.2)",
                    c.line, other.line
                ),
            ));
        }
    }
    Ok(())
}

/// hickory's messages can span lines; a log line must not.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One entry of a master file: a line, or several joined by parentheses.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    line: usize,
    /// The entry with comments removed and parenthesised continuation lines joined.
    text: String,
    /// Starts with a blank: the owner is the previous entry's (RFC 1035 5.1).
    blank_owner: bool,
}

/// Splits master-file text into entries, keeping quoted strings intact.
fn entries(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let mut depth = 0usize;
    let mut in_quote = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if depth == 0 && !in_quote {
            start = n;
            current.clear();
        }
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    current.push(c);
                    if let Some(next) = chars.next() {
                        current.push(next);
                    }
                }
                '"' => {
                    in_quote = !in_quote;
                    current.push(c);
                }
                ';' if !in_quote => break,
                '(' if !in_quote => {
                    depth += 1;
                    current.push(' ');
                }
                ')' if !in_quote => {
                    if depth == 0 {
                        return Err((n, "')' without '('".into()));
                    }
                    depth -= 1;
                    current.push(' ');
                }
                _ => current.push(c),
            }
        }
        if in_quote {
            return Err((n, "unterminated quoted string".into()));
        }
        if depth > 0 {
            current.push(' ');
            continue;
        }
        if !current.trim().is_empty() {
            let blank_owner = current.starts_with([' ', '\t']);
            out.push(Entry {
                line: start,
                text: current.trim_end().to_owned(),
                blank_owner,
            });
        }
    }
    if depth > 0 {
        return Err((start, "'(' is never closed".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apex() -> Name {
        Name::from_ascii("backhaul.").unwrap()
    }

    fn lines(text: &str) -> Vec<String> {
        parse(text, &apex(), &[], 60)
            .unwrap()
            .iter()
            .map(|r| r.record.to_string())
            .collect()
    }

    fn error(text: &str) -> (usize, String) {
        parse(text, &apex(), &[], 60).unwrap_err()
    }

    #[test]
    fn every_common_type_with_relative_names_and_ttls() {
        let got = lines(
            "; extra names\n\
             db2   CNAME db\n\
             _pg._tcp 300 SRV 0 0 5432 db\n\
             @     TXT \"v=spf1 -all\" \"two; strings\"\n\
             \x20     MX 10 mail\n\
             mail  A 10.147.17.9\n\
             \x20     AAAA fd00::9\n\
             *.dev A 10.147.17.10\n\
             $TTL 1h\n\
             big ( TXT \"a\"\n\
                   \"b\" ) ; continued\n",
        );
        for want in [
            "db2.backhaul. 60 IN CNAME db.backhaul.",
            "_pg._tcp.backhaul. 300 IN SRV 0 0 5432 db.backhaul.",
            "backhaul. 60 IN TXT v=spf1 -alltwo; strings", // two strings, shown joined
            "backhaul. 60 IN MX 10 mail.backhaul.",
            "mail.backhaul. 60 IN AAAA fd00::9",
            "*.dev.backhaul. 60 IN A 10.147.17.10",
            "big.backhaul. 3600 IN TXT ab",
        ] {
            assert!(got.iter().any(|g| g == want), "missing {want} in {got:#?}");
        }
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(error("ok A 10.0.0.1\nbad A 10.0.0\n").0, 2);
        assert_eq!(error("a A 10.0.0.1\n\n\nb BOGUS x\n").0, 4);
        let (line, msg) = error("www.example.com. A 192.0.2.1\n");
        assert_eq!(line, 1);
        assert!(msg.contains("outside"), "{msg}");
        assert!(error("@ SOA a b 1 2 3 4 5\n").1.contains("SOA"));
        assert!(error("sub NS ns1\n").1.contains("delegation"));
        let (line, msg) = error("x CNAME db\nx A 10.0.0.1\n");
        assert_eq!(line, 2);
        assert!(msg.contains("alone"), "{msg}");
        assert_eq!(error("a TXT \"open\n").0, 1);
        assert_eq!(error("a ( TXT \"x\"\n").0, 1);
        assert!(error("$INCLUDE other.zone\n").1.contains("$INCLUDE"));
    }

    #[test]
    fn other_domains_and_origin() {
        let net = Name::from_ascii("lab.example.").unwrap();
        let got = parse(
            "$ORIGIN lab.example.\nweb A 10.0.0.5\n",
            &apex(),
            std::slice::from_ref(&net),
            60,
        )
        .unwrap();
        assert_eq!(got[0].record.name.to_ascii(), "web.lab.example.");
        assert_eq!(got[0].line, 2);
    }

    #[test]
    fn records_that_cannot_be_encoded_are_refused_with_their_line() {
        let long = "a".repeat(256);
        let (line, why) = error(&format!("ok TXT \"fine\"\ndkim TXT \"{long}\"\n"));
        assert_eq!(line, 2, "{why}");
        assert!(why.contains("255 bytes"), "{why}");
        // The same value split into strings is fine.
        let split = format!("dkim TXT \"{}\" \"{}\"\n", &long[..200], &long[200..]);
        assert_eq!(lines(&split).len(), 1);
        let (line, _) = error(&format!("x HINFO \"{long}\" \"os\"\n"));
        assert_eq!(line, 1);
        let (line, _) = error(&format!("x CAA 0 {} \"ca.example\"\n", "t".repeat(256)));
        assert_eq!(line, 1);
        // Over 64 KiB in one record.
        let strings = format!("\"{}\" ", "b".repeat(255)).repeat(260);
        let (line, why) = error(&format!("\n\nbig TXT {strings}\n"));
        assert_eq!(line, 3, "{why}");
    }
}
