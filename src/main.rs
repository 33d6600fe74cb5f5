//! The `backhaul-dns` binary: parse the command line, run the subcommand, turn the outcome
//! into an exit code. Everything else lives in the library ([`backhaul_dns::run`]).

use std::process::ExitCode;

use backhaul_dns::cli::{Cli, Command, CommonArgs, LogFormat};
use backhaul_dns::config::Config;
use backhaul_dns::{records, run};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc: a sync allocates and frees millions of small buffers, which glibc's malloc
/// handled at nearly half the sync's time (measured with `cargo bench --bench sync`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a configuration the server refuses to start with (`check` and every
/// other subcommand alike).
const EXIT_CONFIG: u8 = 2;
/// Exit code for anything that goes wrong once the configuration was accepted.
const EXIT_FAILURE: u8 = 1;

/// Why the process ends unsuccessfully, and with which exit code.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    fn config(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: EXIT_CONFIG,
            error: error.into(),
        }
    }

    fn runtime(error: anyhow::Error) -> Failure {
        Failure {
            code: EXIT_FAILURE,
            error,
        }
    }
}

fn main() -> ExitCode {
    backhaul_dns::memory::configure();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // Printed once, here, whatever failed (the log may not be set up yet).
            eprintln!("backhaul-dns: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let args = cli.command.common();
    init_logging(args).map_err(Failure::config)?;
    let config = Config::load(&args.config).map_err(Failure::config)?;
    // Records files are part of the configuration: a mistake in one stops start-up here,
    // while a running server rejects it and keeps its previous records.
    let files = records::load_files(&config).map_err(Failure::config)?;
    let outcome = match cli.command {
        Command::Check(_) => {
            run::check_tags(&config).map_err(|e| Failure::config(anyhow::anyhow!(e)))?;
            println!("{}", run::summary(&config));
            Ok(())
        }
        Command::Run(_) => runtime().and_then(|rt| rt.block_on(run::serve(config, files))),
        Command::Health(_) => runtime().and_then(|rt| rt.block_on(run::health(&config))),
        Command::Zone(_) => runtime()
            .and_then(|rt| rt.block_on(run::zone_text(&config, files)))
            .and_then(|text| print_all(&text)),
        Command::ClientSetup(a) => runtime()
            .and_then(|rt| rt.block_on(run::client_setup::gather(&config, files)))
            .map(|setup| run::client_setup::text(&setup, a.os))
            .and_then(|text| print_all(&text)),
        Command::Hosts(_) => runtime()
            .and_then(|rt| rt.block_on(run::hosts_text(&config, files)))
            .and_then(|text| print_all(&text)),
    };
    outcome.map_err(Failure::runtime)
}

/// Writes to stdout; a reader that stopped early (`| head`) is not an error.
fn print_all(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `--log-level` wins over `RUST_LOG`; the default is `info`. Logs go to stderr so that
/// `zone` output on stdout stays a clean master file.
fn init_logging(args: &CommonArgs) -> anyhow::Result<()> {
    let filter = match &args.log_level {
        Some(level) => {
            EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("--log-level {level}: {e}"))?
        }
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    // Colours only on a terminal: not in files or the journal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}
