#!/usr/bin/env bash
# Builds the Debian package: the release binary, the man pages and completions generated from
# the clap definitions (examples/assets.rs), then cargo-deb (`cargo install cargo-deb`).
# Prints the path of the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
cargo run --quiet --release --example assets -- target/assets >&2
cargo deb --no-build --strip 2>&1 | tail -1
