//! Records files (`[records] zone_file`, `[public] zone_file`): RFC 1035 master files whose
//! records are added to a view, checked so that every mistake names its line.
//!
//! [`text`] reads the master-file syntax as NSD does (escapes, `@`, RFC 3597 generic records,
//! `$INCLUDE`), so that an error points at the file and line it starts on; this module applies
//! the rules of what such a file may hold: records at or under the domain, no SOA (the server
//! makes it), delegations with only glue below them, CNAME alone at its name (RFC 1034
//! 3.6.2), nothing below a DNAME (RFC 6672), and every record encodable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};
use hickory_proto::serialize::txt::parse_ttl;
use thiserror::Error;

use crate::config::{Config, ForwardZone, Upstream};

mod rdata;
mod text;

use text::{entries, name, one_line, tokens, unescape};

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

/// One record, and the file and line its entry starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub record: Record,
    pub line: usize,
    /// The file it was read from (an `$INCLUDE`d one, say); `None` for text given directly.
    pub file: Option<PathBuf>,
}

/// Records from the records files, already checked: what the zone build adds to each view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRecords {
    /// `[records] zone_file`: merged into the backhaul view; wins over member names.
    pub private: Vec<Record>,
    /// `[public] zone_file`: the public view, and the fallback for names the backhaul view
    /// lacks. `None` when no public view is configured.
    pub public: Option<Vec<Record>>,
    /// Files read through `$INCLUDE`: watched like the records files themselves.
    pub included: Vec<PathBuf>,
    /// The delegations of the backhaul view, each with its glue addresses (port 53): names
    /// below them are resolved through those servers for clients that may have names
    /// resolved. A delegation without glue is only referred.
    pub delegations: Vec<ForwardZone>,
}

/// Reads and checks the records files a configuration names. Any error rejects them all.
pub fn load_files(config: &Config) -> Result<FileRecords, RecordsError> {
    let domains: Vec<Name> = config.networks.iter().map(|n| n.domain.clone()).collect();
    let mut included = Vec::new();
    let private = match &config.records_file {
        Some(path) => read(path, &config.domain, &domains, config.ttl, &mut included)?,
        None => Vec::new(),
    };
    let public = match &config.public {
        Some(p) => Some(read(
            &p.zone_file,
            &config.domain,
            &[],
            config.ttl,
            &mut included,
        )?),
        None => None,
    };
    included.sort();
    included.dedup();
    let mut domains = domains;
    domains.push(config.domain.clone());
    no_domain_delegated(&private, &domains, config.records_file.as_deref())?;
    let delegations = delegations(&private, &domains);
    Ok(FileRecords {
        delegations,
        private: private.into_iter().map(|r| r.record).collect(),
        public: public.map(|p| p.into_iter().map(|r| r.record).collect()),
        included,
    })
}

/// The domains a records file may hold names of, for messages: `backhaul., other.`.
fn served(domains: &[&Name]) -> String {
    let mut list: Vec<String> = domains.iter().map(|d| d.to_ascii()).collect();
    list.sort();
    list.dedup();
    list.join(", ")
}

/// A network domain served inside another's zone (`child.p.example` with `p.example`) must not
/// be delegated away by an NS record at it or above it: its members would sit below the cut,
/// never answered. Refused with the record's file and line.
fn no_domain_delegated(
    records: &[FileRecord],
    domains: &[Name],
    file: Option<&Path>,
) -> Result<(), RecordsError> {
    for d in domains {
        // The served domain whose zone `d` lives in, if any (its closest proper ancestor).
        let Some(parent) = (domains.iter())
            .filter(|p| *p != d && p.zone_of(d))
            .max_by_key(|p| p.num_labels())
        else {
            continue;
        };
        for r in records {
            let owner = r.record.name.to_lowercase();
            let takes = match r.record.record_type() {
                RecordType::NS => "NS delegates away",
                RecordType::DNAME => "DNAME redirects away",
                _ => continue,
            };
            if owner != *parent && parent.zone_of(&owner) && owner.zone_of(d) {
                return Err(RecordsError::Line {
                    path: r.file.clone().or_else(|| file.map(Path::to_path_buf)).unwrap_or_default(),
                    line: r.line,
                    message: format!(
                        "{owner} {takes} {d}, the domain of a network served in the zone {parent}: \
                         its members would never be answered; remove that record, or give that network \
                         a domain outside {owner}"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// NS records below a domain apex (cuts), with the addresses of their name servers found in
/// the same records (glue), on port 53.
fn delegations(records: &[FileRecord], domains: &[Name]) -> Vec<ForwardZone> {
    let mut out: Vec<ForwardZone> = Vec::new();
    for r in records {
        let RData::NS(ns) = &r.record.data else {
            continue;
        };
        let cut = r.record.name.to_lowercase();
        if domains.contains(&cut) {
            continue;
        }
        let target = ns.0.to_lowercase();
        let glue = (records.iter())
            .filter(|g| g.record.name.to_lowercase() == target)
            .filter_map(|g| match &g.record.data {
                RData::A(a) => Some(Upstream::plain((a.0, 53).into())),
                RData::AAAA(a) => Some(Upstream::plain((a.0, 53).into())),
                _ => None,
            });
        match out.iter_mut().find(|z| z.name == cut) {
            Some(zone) => zone.upstreams.extend(glue),
            None => out.push(ForwardZone {
                name: cut,
                upstreams: glue.collect(),
            }),
        }
    }
    for zone in &mut out {
        zone.upstreams.sort();
        zone.upstreams.dedup();
    }
    out
}

/// Reads and checks a records file. `apex`: the file's default `$ORIGIN` and the domain every
/// owner must be at or under (or under one of `also`). `ttl`: the TTL of records without one,
/// until a `$TTL` line says otherwise. `$INCLUDE` reads other files, relative to the file
/// that names them.
pub fn load(
    path: &Path,
    apex: &Name,
    also: &[Name],
    ttl: u32,
) -> Result<Vec<FileRecord>, RecordsError> {
    read(path, apex, also, ttl, &mut Vec::new())
}

/// [`load`], adding the files it `$INCLUDE`d to `included`.
fn read(
    path: &Path,
    apex: &Name,
    also: &[Name],
    ttl: u32,
    included: &mut Vec<PathBuf>,
) -> Result<Vec<FileRecord>, RecordsError> {
    let mut reader = Reader::new(ttl);
    let read = reader.file(path, apex.clone(), 0);
    included.append(&mut reader.included);
    read?;
    check(&reader.out, apex, also).map_err(|(file, line, message)| RecordsError::Line {
        path: file.unwrap_or_else(|| path.to_owned()),
        line,
        message,
    })?;
    Ok(reader.out)
}

/// [`load`] on text already read (no `$INCLUDE`); errors are (line, message).
pub fn parse(
    text: &str,
    apex: &Name,
    also: &[Name],
    ttl: u32,
) -> Result<Vec<FileRecord>, (usize, String)> {
    let mut reader = Reader::new(ttl);
    reader
        .text(text, None, apex.clone(), 0)
        .map_err(|e| match e {
            RecordsError::Line { line, message, .. } => (line, message),
            RecordsError::Read { source, .. } => (0, source.to_string()),
        })?;
    check(&reader.out, apex, also).map_err(|(_, line, message)| (line, message))?;
    Ok(reader.out)
}

/// `$INCLUDE` nesting beyond this is a loop.
const MAX_INCLUDE_DEPTH: usize = 8;
/// Files read for one records file, itself and every `$INCLUDE` together: eight files that
/// each include the next eight times would otherwise be read millions of times.
const MAX_FILES: usize = 256;
/// Bytes read for one records file and its includes together (a zone of a million records
/// is well under this; `/dev/zero` or a runaway generator is not).
const MAX_BYTES: u64 = 64 << 20;

/// The text of the regular file at `path`, at most `budget` bytes. Opened without blocking and
/// checked after opening (so a path swapped in between is checked too): a FIFO would block
/// the reader (and with it reloads and shutdown), a device or `/proc` file may never end.
fn read_regular(path: &Path, budget: u64) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(
            "not a regular file (a directory, FIFO, socket or device)",
        ));
    }
    let mut text = String::new();
    file.take(budget + 1).read_to_string(&mut text)?;
    if text.len() as u64 > budget {
        return Err(std::io::Error::other(format!(
            "records files and their includes exceed {} MiB together",
            MAX_BYTES >> 20
        )));
    }
    Ok(text)
}

/// Reads entries into records, keeping what carries from one entry to the next.
struct Reader {
    default_ttl: u32,
    last_owner: Option<Name>,
    out: Vec<FileRecord>,
    /// Files read through `$INCLUDE` (watched like the file that names them).
    included: Vec<PathBuf>,
    /// Files and bytes read so far (bounded by [`MAX_FILES`], [`MAX_BYTES`]).
    files_read: usize,
    bytes_read: u64,
}

impl Reader {
    fn new(ttl: u32) -> Reader {
        Reader {
            default_ttl: ttl,
            last_owner: None,
            out: Vec::new(),
            included: Vec::new(),
            files_read: 0,
            bytes_read: 0,
        }
    }

    fn file(&mut self, path: &Path, origin: Name, depth: usize) -> Result<(), RecordsError> {
        let failed = |source| RecordsError::Read {
            path: path.to_owned(),
            source,
        };
        self.files_read += 1;
        if self.files_read > MAX_FILES {
            return Err(failed(std::io::Error::other(format!(
                "more than {MAX_FILES} files read through $INCLUDE (a file included many times over?)"
            ))));
        }
        let budget = MAX_BYTES.saturating_sub(self.bytes_read);
        let text = read_regular(path, budget).map_err(failed)?;
        self.bytes_read += text.len() as u64;
        self.text(&text, Some(path), origin, depth)
    }

    /// The entries of one file's text (`path`: where it came from, for errors and includes).
    fn text(
        &mut self,
        text: &str,
        path: Option<&Path>,
        mut origin: Name,
        depth: usize,
    ) -> Result<(), RecordsError> {
        let at = |line: usize, message: String| RecordsError::Line {
            path: path.map(Path::to_path_buf).unwrap_or_default(),
            line,
            message,
        };
        let entries = entries(text).map_err(|(line, m)| at(line, m))?;
        for entry in entries {
            let line = entry.line;
            let toks = tokens(&entry.text).map_err(|m| at(line, m))?;
            let Some(first) = toks.first() else { continue };
            let directive = (!first.quoted && !entry.blank_owner)
                .then(|| first.raw.to_ascii_uppercase())
                .filter(|d| d.starts_with('$'));
            match directive.as_deref() {
                Some("$ORIGIN") => {
                    let arg = toks
                        .get(1)
                        .ok_or_else(|| at(line, "$ORIGIN needs a name".into()))?;
                    origin =
                        name(arg, &origin).map_err(|m| at(line, format!("bad $ORIGIN: {m}")))?;
                    continue;
                }
                Some("$TTL") => {
                    let arg = toks.get(1).map(|t| t.raw.as_str()).unwrap_or_default();
                    self.default_ttl =
                        parse_ttl(arg).map_err(|e| at(line, format!("bad $TTL {arg:?}: {e}")))?;
                    continue;
                }
                Some("$INCLUDE") => {
                    let Some(dir) = path.and_then(Path::parent) else {
                        return Err(at(line, "$INCLUDE works in files only".into()));
                    };
                    let file = toks
                        .get(1)
                        .ok_or_else(|| at(line, "$INCLUDE needs a file".into()))?;
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(at(line, "$INCLUDE nested too deep (a loop?)".into()));
                    }
                    let included = dir.join(
                        String::from_utf8_lossy(&unescape(&file.raw).map_err(|m| at(line, m))?)
                            .as_ref(),
                    );
                    // An origin given with it applies to the included file only.
                    let inner = match toks.get(2) {
                        Some(o) => name(o, &origin).map_err(|m| at(line, m))?,
                        None => origin.clone(),
                    };
                    // Watched even if it cannot be read yet: it may appear later.
                    self.included.push(included.clone());
                    self.file(&included, inner, depth + 1)?;
                    continue;
                }
                Some(other) => return Err(at(line, format!("unknown directive {other}"))),
                None => {}
            }
            // A blank start repeats the owner of the entry before (RFC 1035 5.1).
            let (owner, rest) = if entry.blank_owner {
                let owner = self
                    .last_owner
                    .clone()
                    .ok_or_else(|| at(line, "the first record has no owner name".into()))?;
                (owner, &toks[..])
            } else {
                (name(first, &origin).map_err(|m| at(line, m))?, &toks[1..])
            };
            let record = rdata::record(owner.clone(), rest, &origin, self.default_ttl)
                .map_err(|m| at(line, m))?;
            // Encoded here, once, so that nothing the file says can fail later, in a zone
            // build: a record that passed this check always encodes.
            let checked = rdata_wire(&record.data).and_then(|wire| reads_back(&record, &wire));
            if let Err(why) = checked {
                return Err(at(
                    line,
                    format!(
                        "{} {} cannot be served: {why}",
                        record.name,
                        record.record_type()
                    ),
                ));
            }
            self.last_owner = Some(owner);
            self.out.push(FileRecord {
                record,
                line,
                file: path.map(Path::to_path_buf),
            });
        }
        Ok(())
    }
}

/// Whether a resolver can read the record's RDATA as encoded: the text was accepted, but some
/// values are not valid data of the type (a CAA tag with a dot, say), and clients would fail
/// to parse the whole answer.
fn reads_back(record: &Record, wire: &[u8]) -> Result<(), String> {
    let len = u16::try_from(wire.len()).map_err(|_| "its data is too long".to_owned())?;
    let mut decoder = BinDecoder::new(wire);
    match RData::read(&mut decoder, record.record_type(), Restrict::new(len)) {
        Ok(_) if decoder.index() == wire.len() => Ok(()),
        Ok(_) => Err("its data does not read back whole".into()),
        Err(e) => Err(format!(
            "its data is not valid for the type ({})",
            one_line(&e.to_string())
        )),
    }
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
fn check(
    records: &[FileRecord],
    apex: &Name,
    also: &[Name],
) -> Result<(), (Option<PathBuf>, usize, String)> {
    let mut at_owner: HashMap<Name, Vec<&FileRecord>> = HashMap::new();
    // Delegations: NS below an apex cuts the zone there.
    let domains: Vec<&Name> = std::iter::once(apex).chain(also).collect();
    let zone_of = |name: &Name| {
        (domains.iter().copied())
            .filter(|d| d.zone_of(name))
            .max_by_key(|d| d.num_labels())
    };
    let cuts: Vec<Name> = (records.iter())
        .filter(|r| r.record.record_type() == RecordType::NS)
        .filter(|r| zone_of(&r.record.name).is_some_and(|z| *z != r.record.name))
        .map(|r| r.record.name.to_lowercase())
        .collect();
    // DNAME (RFC 6672) redirects every name below its owner: nothing can be below it.
    let dnames: Vec<Name> = (records.iter())
        .filter(|r| r.record.record_type() == RecordType::DNAME)
        .map(|r| r.record.name.to_lowercase())
        .collect();
    for r in records {
        let name = &r.record.name;
        let lower = name.to_lowercase();
        let rtype = r.record.record_type();
        let glue = matches!(rtype, RecordType::A | RecordType::AAAA);
        if let Some(d) = dnames.iter().find(|d| d.zone_of(&lower) && **d != lower) {
            return Err((
                r.file.clone(),
                r.line,
                format!(
                    "{name} is below the DNAME at {d}, which redirects every name below it: this \
                     record would never be answered (RFC 6672 2.3); remove it or the DNAME"
                ),
            ));
        }
        if let Some(cut) = cuts.iter().find(|c| c.zone_of(&lower) && **c != lower) {
            if !glue {
                return Err((
                    r.file.clone(),
                    r.line,
                    format!(
                        "{name} is below the delegation at {cut}: only glue addresses (A, AAAA \
                         of its name servers) may be there; the rest belongs on the servers \
                         {cut} is delegated to"
                    ),
                ));
            }
        } else if cuts.contains(&lower)
            && !glue
            && !matches!(rtype, RecordType::NS | RecordType::DS)
        {
            return Err((
                r.file.clone(),
                r.line,
                format!("{name} is delegated (NS): only NS, DS and glue addresses may be there"),
            ));
        }
        let zone = zone_of(name);
        let Some(zone) = zone else {
            return Err((
                r.file.clone(),
                r.line,
                format!(
                    "{name} is outside the domains served here ({}): records must be at or under one of them",
                    served(&domains)
                ),
            ));
        };
        let why = match r.record.record_type() {
            RecordType::SOA => Some("no SOA here: backhaul-dns makes the SOA (and its serial)"),
            RecordType::DNAME if name == zone => Some(
                "no DNAME at the apex of a served domain: it would redirect every name below it, \
                 members included",
            ),
            RecordType::DNAME if cuts.contains(&lower) => {
                Some("a delegated name (NS) cannot also hold a DNAME (RFC 6672 2.3)")
            }
            RecordType::DS if !cuts.contains(&lower) => {
                Some("DS belongs at a delegation (a name with NS records below the apex)")
            }
            RecordType::CNAME if name == zone => {
                Some("no CNAME at the apex: the apex holds the SOA and NS (RFC 1034 3.6.2)")
            }
            _ => None,
        };
        if let Some(why) = why {
            return Err((r.file.clone(), r.line, why.into()));
        }
        at_owner.entry(name.to_lowercase()).or_default().push(r);
    }
    for (name, rs) in &at_owner {
        let cnames: Vec<&&FileRecord> = rs
            .iter()
            .filter(|r| r.record.record_type() == RecordType::CNAME)
            .collect();
        let dname_lines: Vec<usize> = (rs.iter())
            .filter(|r| r.record.record_type() == RecordType::DNAME)
            .map(|r| r.line)
            .collect();
        if let [first, second, ..] = dname_lines[..] {
            return Err((
                rs[0].file.clone(),
                second,
                format!("{name} has a second DNAME (first on line {first}): a name redirects to one place (RFC 6672 2.4)"),
            ));
        }
        if let (Some(c), true) = (cnames.first(), rs.len() > 1) {
            let other = rs.iter().find(|r| r.line != c.line).unwrap_or(&rs[0]);
            let later = if c.line >= other.line { c } else { other };
            return Err((
                later.file.clone(),
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
        // Delegations: NS below the apex, with glue; nothing else at or below the cut.
        assert_eq!(
            lines("sub NS ns1.sub\nns1.sub A 10.0.0.53\nsub DS 1 8 2 abcd\n").len(),
            3
        );
        assert!(error("sub NS ns1.sub\nwww.sub CNAME db\n")
            .1
            .contains("below the delegation"));
        assert!(error("sub NS ns1.sub\nsub TXT x\n").1.contains("delegated"));
        assert!(error("sub NS ns1.sub\nx.sub NS ns.x.sub\n")
            .1
            .contains("below the delegation"));
        assert!(error("db DS 1 8 2 abcd\n")
            .1
            .contains("DS belongs at a delegation"));
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

    #[test]
    fn as_nsd_reads_it_escapes_at_and_generic_records() {
        let got = lines(
            "www CNAME @\n@ MX 10 @\nx\\065y A 10.0.0.1\n\
             t TXT \"\\065\\066\\195\\133\" \"a\\\"b\"\n\
             g2 TYPE1 \\# 4 0a000001\ng3 A \\# 4 0A000002\n",
        );
        assert_eq!(
            got,
            [
                "www.backhaul. 60 IN CNAME backhaul.",
                "backhaul. 60 IN MX 10 backhaul.",
                "xAy.backhaul. 60 IN A 10.0.0.1",
                "t.backhaul. 60 IN TXT AB\u{c5}a\"b",
                "g2.backhaul. 60 IN A 10.0.0.1",
                "g3.backhaul. 60 IN A 10.0.0.2",
            ]
            .map(str::to_owned)
        );
        // The TXT bytes exactly, on the wire.
        let records = parse("t TXT \"\\065\\066\\195\\133\"\n", &apex(), &[], 60).unwrap();
        assert_eq!(
            rdata_wire(&records[0].record.data).unwrap(),
            [4, 65, 66, 195, 133]
        );
        // Types hickory does not know keep their code and bytes.
        let records = parse(
            "g TYPE65534 \\# 3 abcdef\ne TYPE65534 \\# 0\n",
            &apex(),
            &[],
            60,
        )
        .unwrap();
        for (r, want) in records.iter().zip([&[0xab, 0xcd, 0xef][..], &[]]) {
            assert_eq!(u16::from(r.record.record_type()), 65534);
            assert_eq!(rdata_wire(&r.record.data).unwrap(), want);
        }
        // Generic data must match its length and its type.
        assert!(error("g TYPE65534 \\# 4 abcdef\n")
            .1
            .contains("says 4 bytes"));
        assert!(error("g A \\# 3 0a0000\n").1.contains("not a valid A"));
        assert!(error("g TYPE65534 \\# 3 zz\n").1.contains("hex"));
        assert!(error("g WHATEVER 1\n").1.contains("TYPEnnn"));
    }

    #[test]
    fn names_in_rdata_read_escapes_as_decimal() {
        let records = parse("c CNAME weird\\032name\nm MX 1 a\\.b\n", &apex(), &[], 60).unwrap();
        let wire = |i: usize| rdata_wire(&records[i].record.data).unwrap();
        assert_eq!(wire(0), b"\x0aweird name\x08backhaul\x00");
        assert_eq!(wire(1), b"\x00\x01\x03a.b\x08backhaul\x00");
    }

    /// Every type NSD reads, written by `zone` ([`crate::presentation`]) and read back: the
    /// same bytes.
    #[test]
    fn every_type_reads_back_from_what_zone_writes() {
        let text = "a6 A6 64 ::1 net.\na60 A6 0 2001:db8::1\nafsdb AFSDB 1 db\n\
                    apl APL 1:192.168.1.0/24 !2:2001:db8::/32\ncaa CAA 0 issue \"ca.example\"\n\
                    csync CSYNC 66 3 A NS AAAA TYPE1234\nd DNAME other.\n\
                    dhcid DHCID AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=\n\
                    eui48 EUI48 00-00-5e-00-53-2a\neui64 EUI64 00-00-5e-ef-10-00-00-2a\n\
                    gpos GPOS \"-32.6882\" \"116.8652\" \"10.0\"\nhinfo HINFO \"PC\" \"Linux\"\n\
                    hip HIP 2 200100107B1A74DF AwEAAbdx rvs.example.com.\n\
                    isdn ISDN \"150862028003217\"\nkx KX 10 db\nl32 L32 10 10.1.2.0\n\
                    l64 L64 10 2001:db8:1140:1000\nloc LOC 52 22 23 N 4 53 32 E -2m\nlp LP 10 l64\n\
                    naptr NAPTR 100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp\nnid NID 10 14:4fff:ff20:ee64\n\
                    nsap NSAP 0x47.0005.80.005a00\npx PX 10 net2.it. prmd-net2.admd-p400.c-it.\n\
                    rp RP admin txt\nrt RT 10 db\nsmimea SMIMEA 3 1 1 0C72AC70\nspf SPF \"v=spf1 -all\"\n\
                    srv SRV 0 0 80 we\\\\ird\\032x\nsshfp SSHFP 2 1 123456789ABCDEF6\n\
                    svcb SVCB 1 . alpn=h2,h3 port=8443 ipv4hint=10.0.0.1,10.0.0.2 ipv6hint=::1\n\
                    https HTTPS 0 svc.example.\ntlsa TLSA 3 1 1 0C72AC70\n\
                    uri URI 10 1 \"ftp://ftp1.example.com/public\"\nx25 X25 \"311061700956\"\n\
                    ds NS ns.example.\nds DS 12345 8 2 2BB183AF\nrare TYPE65534 \\# 3 abcdef\n";
        let first = parse(text, &apex(), &[], 60).unwrap();
        assert_eq!(first.len(), text.lines().count());
        for r in &first {
            let wire = rdata_wire(&r.record.data).unwrap();
            let owner = crate::dname::name_wire(&r.record.name);
            let code = u16::from(r.record.record_type());
            let printed = crate::presentation::record_text(&owner, 60, code, &wire);
            // Behind the delegation a DS needs.
            let again = parse(&format!("ds NS ns.example.\n{printed}\n"), &apex(), &[], 60)
                .unwrap_or_else(|e| panic!("{printed}: {e:?}"));
            let again = &again[1].record;
            assert_eq!(rdata_wire(&again.data).unwrap(), wire, "{printed}");
            assert_eq!(u16::from(again.record_type()), code, "{printed}");
        }
    }

    #[test]
    fn nothing_below_a_dname_and_one_per_name() {
        assert!(error("old DNAME new\nx.old A 10.0.0.1\n")
            .1
            .contains("below the DNAME at old.backhaul."));
        assert!(error("x.old A 10.0.0.1\nold DNAME new\n")
            .1
            .contains("below the DNAME"));
        assert_eq!(error("old DNAME a.\nold DNAME b.\n"), (2, "old.backhaul. has a second DNAME (first on line 1): a name redirects to one place (RFC 6672 2.4)".into()));
        assert!(error("@ DNAME other.\n").1.contains("apex"));
        assert!(error("sub NS ns.other.\nsub DNAME other.\n")
            .1
            .contains("delegated"));
        assert!(error("old DNAME new\nold CNAME x\n").1.contains("CNAME"));
        // Data at the DNAME's own name is fine (RFC 6672 2.3).
        assert_eq!(lines("old DNAME new\nold A 10.0.0.1\n").len(), 2);
    }

    #[test]
    fn include_reads_files_relative_to_the_including_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(
            dir.path().join("main.zone"),
            "a A 10.0.0.1\n$INCLUDE sub/more.zone\n$INCLUDE sub/other.zone prod.backhaul.\nb A 10.0.0.2\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("sub/more.zone"), "c A 10.0.0.3\n").unwrap();
        std::fs::write(dir.path().join("sub/other.zone"), "d A 10.0.0.4\n").unwrap();
        let records = load(&dir.path().join("main.zone"), &apex(), &[], 60).unwrap();
        let names: Vec<String> = records.iter().map(|r| r.record.name.to_ascii()).collect();
        // The included origin applies to that file only.
        assert_eq!(
            names,
            [
                "a.backhaul.",
                "c.backhaul.",
                "d.prod.backhaul.",
                "b.backhaul."
            ]
        );
        // An error inside an included file names that file and its line.
        std::fs::write(dir.path().join("sub/more.zone"), "\nc A 10.0.0\n").unwrap();
        let e = load(&dir.path().join("main.zone"), &apex(), &[], 60).unwrap_err();
        assert!(e.to_string().contains("more.zone, line 2"), "{e}");
        // A file including itself stops.
        std::fs::write(dir.path().join("sub/more.zone"), "$INCLUDE more.zone\n").unwrap();
        let e = load(&dir.path().join("main.zone"), &apex(), &[], 60).unwrap_err();
        assert!(e.to_string().contains("too deep"), "{e}");
    }
}
