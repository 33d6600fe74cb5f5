//! Transfer benchmark (issue 19): at N members, one member renamed per sync. What keeping
//! the IXFR journal costs a sync (the diff of the old and new records, the build with and
//! without journals, writing the journal), and what a secondary gets for the change: an IXFR
//! (bytes, messages, time to produce) against a full AXFR of the same zone.
//!
//!   cargo bench --bench transfer        (median of 7 runs; TRANSFER_MEMBERS, TRANSFER_RUNS)

#![allow(clippy::unwrap_used)] // a benchmark: a failure should stop it loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use backhaul_dns::dns::{transfer, wire};
use backhaul_dns::records::FileRecords;
use backhaul_dns::sync::builder::Builder;
use backhaul_dns::sync::Views;
use backhaul_dns::zerotier::{file, NetworkSnapshot};
use backhaul_dns::zone::journal;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};

mod common;
use common::{median, members_json, NETWORK};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Renames member `k` in the member list `doc` (one member's names and PTRs change) and
/// parses it as a sync would.
fn rename(doc: &mut serde_json::Value, k: usize, run: usize) -> NetworkSnapshot {
    doc["members"][k]["name"] = format!("renamed{k}-{run}").into();
    file::parse(&serde_json::to_vec(doc).unwrap(), NETWORK.parse().unwrap()).unwrap()
}

fn request(qtype: RecordType, serial: Option<u32>) -> Vec<u8> {
    let apex = Name::from_ascii("backhaul.").unwrap();
    let mut q = Message::new(7, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(apex.clone(), qtype));
    if let Some(serial) = serial {
        let soa = SOA::new(apex.clone(), apex.clone(), serial, 1, 1, 1, 1);
        q.add_authority(Record::from_rdata(apex, 0, RData::SOA(soa)));
    }
    q.to_vec().unwrap()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn serial_of(views: &Views) -> u32 {
    let zone = views.private.load();
    let (_, _, meta) = zone.zone_at_apex(b"\x08backhaul\x00").unwrap();
    meta.serial
}

fn main() {
    backhaul_dns::memory::configure();
    let _rt = tokio::runtime::Runtime::new().unwrap();
    let n: usize = std::env::var("TRANSFER_MEMBERS").map_or(100_000, |v| v.parse().unwrap());
    let runs: usize = std::env::var("TRANSFER_RUNS").map_or(7, |v| v.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let with = common::config_with(dir.path(), "[transfer]\nallow = [\"127.0.0.1\"]\n");
    let plain_dir = tempfile::tempdir().unwrap();
    let without = common::config(plain_dir.path());
    let mut journaled = Builder::new(&with, FileRecords::default(), Arc::default());
    let mut plain = Builder::new(&without, FileRecords::default(), Arc::default());
    let views = Views::new();
    let mut doc: serde_json::Value = serde_json::from_slice(&members_json(n, 0)).unwrap();
    let base = file::parse(&members_json(n, 0), NETWORK.parse().unwrap()).unwrap();
    journaled.set(base.clone());
    plain.set(base);
    let built = journaled.build();
    views.publish(&built);
    let mut old_records = all_records(&built);
    journaled.keep_published(built);
    plain.build();

    let (mut build_with, mut build_without, mut diffs, mut saves) =
        (vec![], vec![], vec![], vec![]);
    let (mut ixfr_times, mut axfr_times) = (vec![], vec![]);
    let mut kept = 0;
    let (mut ixfr_bytes, mut axfr_bytes, mut ixfr_messages, mut axfr_messages) = (0, 0, 0, 0);
    for run in 0..runs {
        let before = serial_of(&views);
        let change = rename(&mut doc, run * 997 % n, run);
        plain.set(change.clone());
        let t = Instant::now();
        plain.build();
        build_without.push(t.elapsed());
        journaled.set(change);
        let t = Instant::now();
        let built = journaled.build();
        build_with.push(t.elapsed());
        // The diffs alone, of every zone (forward and reverse), on the same lists the build
        // compared.
        let new_records = all_records(&built);
        let t = Instant::now();
        let changes: Vec<_> = (old_records.iter().zip(&new_records))
            .map(|(old, new)| journal::diff(old, new, before, 0).unwrap())
            .collect();
        diffs.push(t.elapsed());
        let change_set = &changes[0];
        kept = new_records.iter().map(|r| r.heap_bytes()).sum();
        assert_eq!(
            change_set.deleted.len(),
            3,
            "the old SOA, the old name's A and AAAA"
        );
        old_records = new_records;
        views.publish(&built);
        journaled.keep_published(built);
        let t = Instant::now();
        journaled.save_journals();
        saves.push(t.elapsed());

        let zone = views.private.load_full();
        let ixfr = request(RecordType::IXFR, Some(before));
        let t = Instant::now();
        let reply = transfer::reply(&zone, &wire::parse(&ixfr).expect("a request"), None);
        ixfr_times.push(t.elapsed());
        assert_eq!(reply.kind, transfer::Kind::Ixfr);
        ixfr_bytes = reply.messages.iter().map(Vec::len).sum::<usize>();
        ixfr_messages = reply.messages.len();
        let axfr = request(RecordType::AXFR, None);
        let t = Instant::now();
        let reply = transfer::reply(&zone, &wire::parse(&axfr).expect("a request"), None);
        axfr_times.push(t.elapsed());
        axfr_bytes = reply.messages.iter().map(Vec::len).sum::<usize>();
        axfr_messages = reply.messages.len();
    }
    let (with_ms, without_ms) = (median(build_with), median(build_without));
    println!(
        "{n} members, one member renamed per sync (median of {runs}):\n\
         \x20 build with journals {} | without {} | difference {}\n\
         \x20 the diffs of every zone (old vs new records) {} | records kept for the next diff {:.1} MB | journal written after the swap {}\n\
         \x20 IXFR for the change: {ixfr_bytes} bytes in {ixfr_messages} message(s), produced in {}\n\
         \x20 AXFR of the zone:    {axfr_bytes} bytes in {axfr_messages} messages, produced in {}",
        ms(with_ms),
        ms(without_ms),
        ms(with_ms.saturating_sub(without_ms)),
        ms(median(diffs)),
        kept as f64 / 1e6,
        ms(median(saves)),
        ms(median(ixfr_times)),
        ms(median(axfr_times)),
    );
}

/// A copy of the records of every zone of a build, `backhaul.` first.
fn all_records(built: &backhaul_dns::sync::publish::Built) -> Vec<backhaul_dns::zone::RecordList> {
    let mut zones: Vec<_> = built.private.zones.iter().collect();
    zones.sort_by_key(|z| z.apex.to_ascii() != "backhaul.");
    zones.iter().map(|z| z.records.clone()).collect()
}
