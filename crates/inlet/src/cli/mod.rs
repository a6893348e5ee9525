//! The `inlet` command line: argument parsing, logging and exit codes over the library crates.

mod bench;
mod demo;
mod playground;
mod progress;
mod soak;
mod state;
mod sync;
mod target;

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use inlet_connectors::SourceStats;
use inlet_sdk::Connector;

/// How `inlet` ends, as documented in `inlet --help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked was done.
    Success = 0,
    /// The sync failed: the source, the connector or a record.
    Failed = 1,
    /// The command line, the configuration or the saved state is wrong.
    Usage = 2,
    /// The warehouse failed or cannot be reached.
    Destination = 3,
    /// Another sync holds the warehouse.
    Busy = 4,
    /// Stopped by Ctrl-C after committing what had been received.
    Interrupted = 130,
}

const EXIT_CODES: &str = "\
Exit codes:
    0  success
    1  the sync failed (source, connector or record); the warehouse and the saved state are
       exactly as the last commit left them, and the next sync resumes from there
    2  bad command line, configuration or saved state; nothing was written
    3  the warehouse failed or cannot be reached
    4  another sync is using the same warehouse and schema; nothing was written
  130  stopped by Ctrl-C after committing what had been received";

/// A failure with the exit code it deserves.
pub struct Failure {
    exit: Exit,
    error: anyhow::Error,
}

impl Failure {
    /// A failure with this exit code.
    pub fn new(exit: Exit, error: anyhow::Error) -> Self {
        Failure { exit, error }
    }

    /// A command-line or configuration mistake.
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Failure { exit: Exit::Usage, error: error.into() }
    }

    /// A connector failure: its kind decides the exit code.
    pub fn connector(error: inlet_sdk::Error) -> Self {
        let exit = match error.kind() {
            inlet_sdk::ErrorKind::Configuration | inlet_sdk::ErrorKind::State => Exit::Usage,
            inlet_sdk::ErrorKind::Source | inlet_sdk::ErrorKind::Stopped => Exit::Failed,
        };
        Failure { exit, error: error.into() }
    }

    /// A failed sync.
    pub fn sync(error: inlet_engine::SyncError) -> Self {
        use inlet_engine::SyncError;
        match error {
            SyncError::Connector(e) => Failure::connector(e),
            SyncError::Destination(e) => Failure::destination(e),
            SyncError::Schema(_) => Failure::usage(error),
            SyncError::Data(_) => Failure::new(Exit::Failed, error.into()),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure { exit: Exit::Failed, error }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:#}", self.exit, self.error)
    }
}

/// Incremental data sync: pull what changed from REST APIs into DuckDB or PostgreSQL,
/// exactly once.
///
/// Quick start: `inlet demo` runs the built-in playground and syncs it with each of the six
/// strategies. Then write a configuration.json ({"strategy": "keyset", "base_url": ...}) and
/// run `inlet check`, then `inlet sync`.
#[derive(Parser, Debug)]
#[command(name = "inlet", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text or as JSON objects (on stderr); JSON also turns the final summary
    /// into one JSON object on stdout.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sync once: read what changed since the saved state and commit it, with the new state.
    Sync(sync::SyncArgs),
    /// Check the configuration, reach the source, and check the saved state; writes nothing.
    Check(sync::CheckArgs),
    /// Show, set or reset the saved state.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Delete the warehouse (or the PostgreSQL schema) and its saved state, after a prompt.
    Reset(state::ResetArgs),
    /// Run the playground and sync it with each strategy into DuckDB (files/demo.db).
    Demo(demo::DemoArgs),
    /// Rounds of syncs killed at random while the playground changes and fails, each finished
    /// and compared with the source; prints kills, faults, rows compared, lost and duplicated.
    Soak(soak::SoakArgs),
    /// Measure: print figures of throughput, memory and start-up on this machine.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Serve a deterministic, fast, hostile-capable mock of the seeds' API.
    ///
    /// A drop-in replacement for fivetran-api-playground 1.1.9. With no hostile flag it behaves
    /// like the reference: 200 users, pages of at most 50, the same endpoints, parameters,
    /// errors and response keys. Every random choice comes from --seed, and with a fixed --now
    /// every response is reproducible byte for byte.
    ///
    /// Examples:
    ///   inlet playground                                  the reference's 200 users on :5001
    ///   inlet playground --users 1000000 --page-size-limit 1000 --threads 1
    ///   inlet playground --ties 0.3 --gaps 0.05 --changes-per-second 5 --faults 0.1
    ///   inlet playground dump --users 10 --now 2026-11-20T00:00:00Z
    #[command(verbatim_doc_comment)]
    Playground(Box<playground::PlaygroundArgs>),
}

/// What the running binary is: inlet itself, or a user's connector built on it.
struct Flavor {
    builtin: bool,
    stats: Option<Arc<SourceStats>>,
}

/// Runs the `inlet` command line with the six built-in strategies.
pub fn main() -> ExitCode {
    let connector = inlet_connectors::Builtin::new();
    let stats = Some(connector.stats());
    run_with(Arc::new(connector), Flavor { builtin: true, stats })
}

/// Runs the `inlet` command line for `connector`: `sync`, `check`, `state`, `reset` and
/// `playground` work as they do for the built-in strategies.
pub fn run<C: Connector>(connector: C) -> ExitCode {
    run_with(Arc::new(connector), Flavor { builtin: false, stats: None })
}

fn run_with<C: Connector>(connector: Arc<C>, flavor: Flavor) -> ExitCode {
    inlet_connectors::install_tls_provider();
    let mut command = Cli::command();
    if !flavor.builtin {
        let name = std::env::args()
            .next()
            .and_then(|a| std::path::Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()));
        command = command
            .bin_name(name.unwrap_or_else(|| "connector".into()))
            .mut_subcommand("demo", |c| c.hide(true))
            .mut_subcommand("soak", |c| c.hide(true))
            .mut_subcommand("bench", |c| c.hide(true));
    }
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging(cli.log_format, &cli.command);
    let outcome = match cli.command {
        Command::Sync(args) => sync::run(connector, args, cli.log_format, flavor.stats),
        Command::Check(args) => sync::check(connector.as_ref(), args),
        Command::State(command) => state::run(connector.as_ref(), command),
        Command::Reset(args) => state::reset(args),
        Command::Demo(_) if !flavor.builtin => {
            Err(Failure::usage(anyhow::anyhow!("`demo` runs inlet's built-in strategies; use the inlet binary")))
        }
        Command::Demo(args) => demo::run(args),
        Command::Bench(command) => bench::run(command),
        Command::Soak(_) if !flavor.builtin => {
            Err(Failure::usage(anyhow::anyhow!("`soak` runs inlet's built-in strategies; use the inlet binary")))
        }
        Command::Soak(args) => soak::run(args),
        Command::Playground(args) => playground::run(*args),
    };
    match outcome {
        Ok(Exit::Success) => ExitCode::SUCCESS,
        Ok(exit) => ExitCode::from(exit as u8),
        Err(failure) => {
            if cli.log_format == LogFormat::Json {
                tracing::error!(exit_code = failure.exit as u8, "{:#}", failure.error);
            } else {
                eprintln!("error: {:#}", failure.error);
            }
            ExitCode::from(failure.exit as u8)
        }
    }
}

fn init_logging(format: LogFormat, command: &Command) {
    use tracing_subscriber::EnvFilter;
    let default = match command {
        Command::Playground(args) if args.is_quiet() => "warn",
        Command::Playground(_) => "info",
        Command::Demo(_) | Command::Bench(_) | Command::Soak(_) => "warn",
        _ => "info",
    };
    let filter = EnvFilter::try_from_env("INLET_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// The runtime for the async parts of a command, with one worker thread. A sync's requests
/// mostly wait on the network, and its rows are converted and written on threads of their
/// own; one worker parses about a million records a second, more than a warehouse takes. Two
/// workers slept and woke for almost every answer: with the playground on the same two cores,
/// fetching 1,000,000 users took a fifth to a third longer, and a sync in pages of 1,000 held 2
/// to 4 MB more at its peak in the same time (docs/performance.md, twenty-first round).
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Failure::from(anyhow::Error::new(e).context("cannot start the async runtime")))
}

/// Reads `configuration.json`.
fn read_configuration(path: &std::path::Path) -> Result<inlet_sdk::Configuration, Failure> {
    inlet_sdk::Configuration::from_file(path).map_err(Failure::connector)
}
