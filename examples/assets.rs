//! Writes the man page and the shell completions from the clap definitions, for the Debian
//! package (`packaging/build-deb.sh`) or a manual install:
//!
//!   cargo run --example assets -- target/assets
//!
//! Generated, never edited: they follow `src/cli.rs` and cannot drift from `--help`.

use std::path::PathBuf;

use backhaul_dns::cli::Cli;
use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/assets".into()),
    );
    std::fs::create_dir_all(&out)?;
    let mut cmd = Cli::command();
    // backhaul-dns(1), and backhaul-dns-run(1) and so on for each subcommand's options.
    clap_mangen::generate_to(cmd.clone(), &out)?;
    for (shell, file) in [
        (Shell::Bash, "backhaul-dns.bash"),
        (Shell::Zsh, "_backhaul-dns"),
        (Shell::Fish, "backhaul-dns.fish"),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cmd, "backhaul-dns", &mut text);
        std::fs::write(out.join(file), text)?;
    }
    println!("wrote the man page and completions to {}", out.display());
    Ok(())
}
