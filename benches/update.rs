//! Dynamic update benchmark (issue 31): what one RFC 2136 UPDATE costs the server at N
//! members, against a full zone build. An update is worked out on the zone as served and
//! kept in state_dir (with its fsync), the zone patched and given the next serial, its IXFR
//! journal brought up to date, and its view's index patched and swapped in; no member is named
//! again. In the backhaul view the zone holds every member; the public view (certbot's
//! `_acme-challenge` names for public certificates) holds the public records only.
//!
//!   cargo bench --bench update      (1,000 and 100,000 members; UPDATE_RUNS, default 15)

#![allow(clippy::unwrap_used)] // a benchmark: a failure should stop it loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use backhaul_dns::dns::update::UpdateJob;
use backhaul_dns::sync::builder::Builder;
use backhaul_dns::sync::Views;
use backhaul_dns::view::View;
use backhaul_dns::zerotier::file;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordType};

mod common;
use common::{median, members_json, NETWORK};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `update add _acme-challenge.host<i>.backhaul. 60 TXT "token-<i>"`.
fn update(i: usize) -> Vec<u8> {
    let mut m = Message::new(9, MessageType::Query, OpCode::Update);
    let zone = Name::from_ascii("backhaul.").unwrap();
    m.add_query(Query::query(zone, RecordType::SOA));
    let owner = Name::from_ascii(format!("_acme-challenge.host{i}.backhaul.")).unwrap();
    let txt = RData::TXT(TXT::new(vec![format!("token-{i}")]));
    m.add_authority(Record::from_rdata(owner, 60, txt));
    m.to_vec().unwrap()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    backhaul_dns::memory::configure();
    let _rt = tokio::runtime::Runtime::new().unwrap();
    let runs: usize = std::env::var("UPDATE_RUNS").map_or(15, |v| v.parse().unwrap());
    println!("members  view      full build  | update: apply+keep  journal  patch+swap  total   updates/s");
    for (n, view) in [
        (1_000, View::Backhaul),
        (100_000, View::Backhaul),
        (1_000, View::Public),
        (100_000, View::Public),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.key"), "c2VjcmV0\n").unwrap();
        std::fs::write(
            dir.path().join("public.zone"),
            "www 300 IN A 203.0.113.10\n",
        )
        .unwrap();
        let config = common::config_with(
            dir.path(),
            &format!(
                "[public]\naddresses = [\"127.0.0.5\"]\nzone_file = \"public.zone\"\n\
                 [transfer]\nallow = [\"127.0.0.1\"]\n\
                 [[transfer.key]]\nname = \"k\"\nsecret_file = \"k.key\"\n\
                 [[update]]\nkey = \"k\"\nnames = [\"_acme-challenge.*\"]\nmax_records = 100000\nview = \"{}\"\n",
                if view == View::Public { "public" } else { "private" }
            ),
        );
        let files = backhaul_dns::records::load_files(&config).unwrap();
        let mut builder = Builder::new(&config, files, Arc::default());
        let views = Views::new();
        builder.set(file::parse(&members_json(n, 0), NETWORK.parse().unwrap()).unwrap());
        let t = Instant::now();
        let built = builder.build();
        let full = t.elapsed();
        views.publish(&built);
        builder.keep_published(built);
        let key = Name::from_ascii("k.").unwrap();
        let (mut apply, mut journal, mut compile, mut total): (
            Vec<Duration>,
            Vec<Duration>,
            Vec<Duration>,
            Vec<Duration>,
        ) = (vec![], vec![], vec![], vec![]);
        for i in 0..runs {
            let (done, _answer) = tokio::sync::oneshot::channel();
            let job = UpdateJob {
                view,
                key: key.clone(),
                message: update(i),
                done,
            };
            let t0 = Instant::now();
            let changed = builder.update(&job).unwrap();
            let (apex, owners) = changed.expect("the update changes the zone");
            let t1 = Instant::now();
            let last = builder.updated().unwrap();
            let t2 = Instant::now();
            let zones = match view {
                View::Backhaul => &last.private,
                View::Public => last.public.as_ref().unwrap(),
            };
            let zone = zones.zones.iter().find(|z| z.apex == apex).unwrap();
            views.patch_view(last, view, zone, &owners);
            let t3 = Instant::now();
            apply.push(t1 - t0);
            journal.push(t2 - t1);
            compile.push(t3 - t2);
            total.push(t3 - t0);
            let zone = match view {
                View::Backhaul => views.private.load(),
                View::Public => views.public.load(),
            };
            let name = format!("_acme-challenge.host{i}.backhaul.");
            let wire = backhaul_dns::dname::name_wire(&Name::from_ascii(&name).unwrap());
            assert!(zone.exact(&wire).is_some(), "{name} is served");
        }
        let per = median(total.clone());
        println!(
            "{n:>7}  {:<8}  {:>10}  | {:>16}  {:>7}  {:>12}  {:>7}  {:>8.0}",
            view.name(),
            ms(full),
            ms(median(apply.clone())),
            ms(median(journal.clone())),
            ms(median(compile.clone())),
            ms(per),
            1.0 / per.as_secs_f64()
        );
    }
}
