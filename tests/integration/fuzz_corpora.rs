//! Every fuzz corpus and every regression file (inputs that once crashed or misbehaved),
//! replayed through the checks the fuzz targets run: on stable, in every `cargo test`.

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// Feeds every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` to `check`;
/// returns how many there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            // A fuzzer running meanwhile replaces files of its corpus: one gone is skipped.
            let Ok(data) = std::fs::read(&path) else {
                continue;
            };
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {} fails its check",
                path.display()
            );
            n += 1;
        }
    }
    n
}

#[test]
fn fuzz_corpora_and_regressions_replay_cleanly() {
    for (target, check) in [
        ("query", checks::query as fn(&[u8])),
        ("tcp_stream", checks::tcp_stream),
        ("zone_file", checks::zone_file),
        ("members", checks::members),
        ("config", checks::config),
        ("webhook", checks::webhook),
        ("journal", checks::journal),
        ("snapshot", checks::snapshot),
        ("include", checks::include),
        ("http", checks::http),
        ("update", checks::update),
    ] {
        let n = replay(target, check);
        assert!(n > 0, "{target}: no corpus in fuzz/corpus/{target}");
    }
}
