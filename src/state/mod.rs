//! Everything under `state_dir`: the last good member snapshots ([`snapshot`]), the zone
//! serial books, the IXFR journals, a follower's zones, and the atomic writes they use.
//! Nothing else in the crate touches that directory.

pub mod snapshot;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;

use crate::view::View;
use crate::zone::{Journal, RecordList, SerialBook};

/// One serial book per view: the public view has zones of the same names as the backhaul
/// view, so its serials are kept apart.
fn serials_file(view: View) -> &'static str {
    match view {
        View::Backhaul => "serials.json",
        View::Public => "serials-public.json",
    }
}

/// Where the serial book of `view` lives.
pub fn serials_path(state_dir: &Path, view: View) -> PathBuf {
    state_dir.join(serials_file(view))
}

/// The serial book of `view` as last saved; empty (every zone starts at the current time)
/// when there is none or it cannot be read, which is logged.
pub fn load_serials(state_dir: &Path, view: View) -> SerialBook {
    let path = serials_path(state_dir, view);
    let Some(bytes) = read_if_there(&path, "cannot read the serials file") else {
        return SerialBook::default();
    };
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable serials file");
        SerialBook::default()
    })
}

/// The bytes of a file under `state_dir`; `None` when it is not there (nothing saved yet) or
/// cannot be read (logged with `what`: every reader goes on without it).
fn read_if_there(path: &Path, what: &str) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "{what}");
            None
        }
    }
}

/// Replaces the serial book of `view` atomically, without waiting for the disk: other
/// processes (`backhaul-dns zone`) read the new book at once, whatever the disk's speed;
/// [`make_durable`] then makes it survive a crash.
pub fn show_serials(state_dir: &Path, view: View, book: &SerialBook) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(book).map_err(std::io::Error::other)?;
    replace(&serials_path(state_dir, view), &bytes, false)
}

/// Where the IXFR journal of the zone `apex` (e.g. `backhaul.`) lives.
pub fn journal_path(state_dir: &Path, apex: &str) -> PathBuf {
    let name = apex.trim_end_matches('.').replace(['/', '\\'], "_");
    let name = if name.is_empty() { "root" } else { &name };
    state_dir.join("journal").join(format!("{name}.ixfr"))
}

/// The IXFR journal of `apex` as last saved; `None` when there is none, or it is damaged
/// (logged: secondaries behind then get the whole zone).
pub fn load_journal(state_dir: &Path, apex: &str) -> Option<Journal> {
    let path = journal_path(state_dir, apex);
    let bytes = read_if_there(
        &path,
        "cannot read the IXFR journal; secondaries behind get the whole zone",
    )?;
    let journal = Journal::from_bytes(&bytes);
    if journal.is_none() {
        tracing::warn!(file = %path.display(), "ignoring a damaged IXFR journal; secondaries behind get the whole zone");
    }
    journal
}

/// Saves the IXFR journal of `apex` atomically.
pub fn save_journal(state_dir: &Path, apex: &str, journal: &Journal) -> std::io::Result<()> {
    write_atomically(&journal_path(state_dir, apex), &journal.to_bytes())
}

/// Where a followed zone (`[follow]`) is kept between runs.
fn followed_path(state_dir: &Path, apex: &str) -> PathBuf {
    let name = apex.trim_end_matches('.').replace(['/', '\\'], "_");
    let name = if name.is_empty() { "root" } else { &name };
    state_dir.join("follow").join(format!("{name}.zone"))
}

/// The first bytes of a kept followed zone (and its version).
const FOLLOWED_MAGIC: &[u8] = b"backhaul-dns followed zone 1\n";

/// Keeps a followed zone's records (SOA first) atomically, with a SHA-256 so that a file
/// damaged on disk is refused rather than served.
pub fn save_followed(state_dir: &Path, apex: &str, records: &RecordList) -> std::io::Result<()> {
    let mut out = FOLLOWED_MAGIC.to_vec();
    records.write_to(&mut out);
    let sum = <sha2::Sha256 as sha2::Digest>::digest(&out);
    out.extend_from_slice(&sum);
    write_atomically(&followed_path(state_dir, apex), &out)
}

/// A followed zone as last kept, and when the primary last vouched for it (the file's
/// modification time, moved by [`confirm_followed`]); `None` when there is none or it is
/// damaged (logged: the zone is then transferred whole).
pub fn load_followed(state_dir: &Path, apex: &str) -> Option<(RecordList, std::time::SystemTime)> {
    let path = followed_path(state_dir, apex);
    let bytes = read_if_there(
        &path,
        "cannot read a followed zone; it is transferred whole",
    )?;
    let confirmed = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    let body = bytes.get(..bytes.len().checked_sub(32)?)?;
    let sum = <sha2::Sha256 as sha2::Digest>::digest(body);
    let mut at = FOLLOWED_MAGIC.len();
    let records = (sum.as_slice() == &bytes[body.len()..] && body.starts_with(FOLLOWED_MAGIC))
        .then(|| RecordList::read_from(body, &mut at))
        .flatten()
        .filter(|r| at == body.len() && !r.is_empty());
    if records.is_none() {
        tracing::warn!(file = %path.display(), "ignoring a damaged followed zone; it is transferred whole");
    }
    Some((records?, confirmed))
}

/// The primary vouched for the kept zone just now (its serial is current): a restart counts
/// the SOA expire from here.
pub fn confirm_followed(state_dir: &Path, apex: &str) {
    let path = followed_path(state_dir, apex);
    if let Ok(f) = std::fs::File::options().write(true).open(&path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// Forgets a zone no longer followed.
pub fn remove_followed(state_dir: &Path, apex: &str) {
    let _ = std::fs::remove_file(followed_path(state_dir, apex));
}

/// Where the records dynamic updates wrote in `view` are kept.
fn updates_path(state_dir: &Path, view: View) -> PathBuf {
    state_dir
        .join("updates")
        .join(format!("{}.records", view.name()))
}

/// The first bytes of kept update-written records (and their version).
const UPDATES_MAGIC: &[u8] = b"backhaul-dns updated records 1\n";

/// Keeps what updates wrote in `view`, per key, atomically and durably (before the update is
/// answered), with a SHA-256 so a damaged file is refused, not served.
pub fn save_updates(
    state_dir: &Path,
    view: View,
    written: &BTreeMap<Name, RecordList>,
) -> std::io::Result<()> {
    let mut out = UPDATES_MAGIC.to_vec();
    out.extend_from_slice(&(written.len() as u32).to_be_bytes());
    for (key, list) in written {
        let key = crate::dname::name_wire(key);
        out.push(key.len() as u8);
        out.extend_from_slice(&key);
        list.write_to(&mut out);
    }
    let sum = <sha2::Sha256 as sha2::Digest>::digest(&out);
    out.extend_from_slice(&sum);
    write_atomically(&updates_path(state_dir, view), &out)
}

/// What updates wrote in `view`, as last kept (empty when nothing was, or the file is
/// damaged: logged).
pub fn load_updates(state_dir: &Path, view: View) -> BTreeMap<Name, RecordList> {
    let path = updates_path(state_dir, view);
    let Some(bytes) = read_if_there(&path, "cannot read the records updates wrote") else {
        return BTreeMap::new();
    };
    let read = || -> Option<BTreeMap<Name, RecordList>> {
        let body = bytes.get(..bytes.len().checked_sub(32)?)?;
        let sum = <sha2::Sha256 as sha2::Digest>::digest(body);
        if sum.as_slice() != &bytes[body.len()..] || !body.starts_with(UPDATES_MAGIC) {
            return None;
        }
        let mut at = UPDATES_MAGIC.len();
        let count = u32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        let mut out = BTreeMap::new();
        for _ in 0..count {
            let len = usize::from(*body.get(at)?);
            let key = crate::dname::wire_name(body.get(at + 1..at + 1 + len)?);
            at += 1 + len;
            out.insert(key, RecordList::read_from(body, &mut at)?);
        }
        (at == body.len()).then_some(out)
    };
    read().unwrap_or_else(|| {
        tracing::error!(file = %path.display(), "ignoring a damaged file of records updates wrote: they are not served (restore it, or have the tools write them again)");
        BTreeMap::new()
    })
}

/// Temp file, fsync, rename: a crash leaves the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace(path, bytes, true)?;
    sync_directory(path);
    Ok(())
}

/// Temp file, rename: readers see the old file or the new one, never half of one. With
/// `durable` the temp file reaches the disk before the rename.
fn replace(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    if durable {
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Makes a file written by [`show_serials`] survive a crash: its data, then its name.
pub fn make_durable(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()?;
    sync_directory(path);
    Ok(())
}

fn sync_directory(path: &Path) {
    if let Ok(d) = std::fs::File::open(path.parent().unwrap_or(Path::new("."))) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_books_round_trip_per_view() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            load_serials(dir.path(), View::Backhaul),
            SerialBook::default()
        );
        std::fs::write(serials_path(dir.path(), View::Public), "not json").unwrap();
        assert_eq!(
            load_serials(dir.path(), View::Public),
            SerialBook::default()
        );
        let book = SerialBook::default();
        show_serials(dir.path(), View::Backhaul, &book).unwrap();
        make_durable(&serials_path(dir.path(), View::Backhaul)).unwrap();
        assert!(serials_path(dir.path(), View::Backhaul).exists());
        assert_eq!(load_serials(dir.path(), View::Backhaul), book);
    }
}
