//! Build script: the git commit that `backhaul-dns --version` prints next to the version.

use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    // A build from a tarball or a Docker context without .git says so instead of guessing.
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BACKHAUL_DNS_COMMIT={commit}");
    // Again when the checked-out commit moves (not on every source change). Only files
    // that exist are named: cargo reruns a build script on every build while a path it was
    // told to watch is missing (a clone without packed-refs would rebuild the crate each time).
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let branch = git(&["symbolic-ref", "-q", "HEAD"]);
        let watched = ["HEAD", "packed-refs"]
            .into_iter()
            .map(String::from)
            .chain(branch);
        for path in watched {
            let path = format!("{dir}/{path}");
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}
