//! Deployment files: the systemd unit passes `systemd-analyze verify`.

use std::process::Command;

#[test]
fn systemd_unit_verifies() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/backhaul-dns.service"),
    )
    .unwrap();
    // verify checks that ExecStart's binary exists: point it at the one under test.
    let unit = unit.replace("/usr/bin/backhaul-dns", crate::common::binary());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backhaul-dns.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd) is needed; .ci/run installs it");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown keys are only warnings to systemd (exit 0): any output is a failure here.
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}
