//! The `inlet` command line: a thin layer of argument parsing, logging and exit codes over
//! the library crates.

mod playground;

use std::fmt;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// How `inlet` ends, as documented in `inlet --help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked was done.
    Success = 0,
    /// The work failed: the source, the connector or the network (state and warehouse are as
    /// they were after the last commit).
    Failed = 1,
    /// The command line or the configuration is wrong; nothing was done.
    Usage = 2,
}

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the work failed (source, connector or network); the warehouse and the saved state are
     exactly as they were after the last commit
  2  bad command line or configuration; nothing was done";

/// A failure with the exit code it deserves.
pub struct Failure {
    exit: Exit,
    error: anyhow::Error,
}

impl Failure {
    /// A configuration or usage mistake.
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Failure { exit: Exit::Usage, error: error.into() }
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
#[derive(Parser, Debug)]
#[command(name = "inlet", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text or as JSON objects (one per line, on stderr).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a deterministic, fast, hostile-capable mock of the seeds' API.
    ///
    /// A drop-in replacement for fivetran-api-playground 1.1.9. With no hostile flag it behaves like the reference: 200 users, pages of at most 50,
    /// the same endpoints, parameters, errors and response keys. Every random choice comes
    /// from --seed, and with a fixed --now every response is reproducible byte for byte.
    ///
    /// Examples:
    ///   inlet playground                                  the reference's 200 users on :5001
    ///   inlet playground --users 1000000 --page-size-limit 1000 --threads 1
    ///   inlet playground --ties 0.3 --gaps 0.05 --changes-per-second 5 --faults 0.1
    ///   inlet playground dump --users 10 --now 2026-11-20T00:00:00Z
    #[command(verbatim_doc_comment)]
    Playground(playground::PlaygroundArgs),
}

/// Runs the `inlet` command line and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.command);
    let outcome = match cli.command {
        Command::Playground(args) => playground::run(args),
    };
    match outcome {
        Ok(()) => ExitCode::from(Exit::Success as u8),
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            ExitCode::from(failure.exit as u8)
        }
    }
}

fn init_logging(format: LogFormat, command: &Command) {
    use tracing_subscriber::EnvFilter;
    let default = match command {
        Command::Playground(args) if args.is_quiet() => "warn",
        Command::Playground(_) => "info",
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
