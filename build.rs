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
    // Again when the checked-out commit moves (not on every source change).
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        for path in ["HEAD", "refs/heads", "packed-refs"] {
            println!("cargo:rerun-if-changed={dir}/{path}");
        }
    } else {
        println!("cargo:rerun-if-changed=build.rs");
    }
}
