//! `inlet state show|set|reset` and `inlet reset`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use inlet_engine::SavedState;
use inlet_sdk::{Configuration, Connector, State};

use super::target::{Choice, Target};
use super::{Exit, Failure, read_configuration};

/// `inlet state …`
#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// Print the saved state and the connector that wrote it.
    Show(StateArgs),
    /// Save a state by hand, e.g. one saved by the Python seeds ({"last_updated_at": …}); it
    /// is checked against the configuration first, and the data is not touched.
    Set(SetArgs),
    /// Forget the saved state: the data stays, the next sync starts from scratch.
    Reset(StateArgs),
}

/// Where the state is.
#[derive(Args, Debug)]
pub struct StateArgs {
    /// A configuration whose `destination` keys say where the state is.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    target: Target,
}

/// Arguments of `inlet state set`.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// A JSON file holding the state (an object).
    file: PathBuf,
    /// The configuration the state must suit.
    #[arg(long, short, value_name = "FILE", default_value = "configuration.json")]
    config: PathBuf,
    #[command(flatten)]
    target: Target,
}

/// Arguments of `inlet reset`.
#[derive(Args, Debug)]
pub struct ResetArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
    /// A configuration whose `destination` keys say what to reset.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    target: Target,
}

fn resolve(target: &Target, config: Option<&PathBuf>) -> Result<(Choice, Configuration), Failure> {
    let mut configuration = match config {
        Some(path) => read_configuration(path)?,
        None => Configuration::default(),
    };
    Ok((target.resolve(&mut configuration)?, configuration))
}

/// The saved state of `choice`, read without creating anything.
pub fn read_saved(choice: &Choice) -> Result<Option<SavedState>, Failure> {
    match choice {
        Choice::DuckDb { path, schema, .. } => inlet_duckdb::saved_state(path, schema).map_err(Failure::destination),
        Choice::Postgres { .. } => choice.open()?.saved_state().map_err(Failure::destination),
    }
}

/// Runs `inlet state …`.
pub fn run<C: Connector>(connector: &C, command: StateCommand) -> Result<Exit, Failure> {
    match command {
        StateCommand::Show(args) => {
            let (choice, _) = resolve(&args.target, args.config.as_ref())?;
            match read_saved(&choice)? {
                Some(saved) => {
                    println!("{}", serde_json::json!({ "connector": saved.connector, "state": saved.state.to_json() }))
                }
                None => eprintln!("no saved state in {}: the next sync starts from scratch", choice.describe()),
            }
        }
        StateCommand::Reset(args) => {
            let (choice, _) = resolve(&args.target, args.config.as_ref())?;
            choice.open()?.clear_state().map_err(Failure::destination)?;
            eprintln!(
                "saved state cleared in {}; the data stays, and the next sync starts from scratch",
                choice.describe()
            );
        }
        StateCommand::Set(args) => {
            let mut configuration = read_configuration(&args.config)?;
            let choice = args.target.resolve(&mut configuration)?;
            let text = std::fs::read_to_string(&args.file).map_err(|e| {
                Failure::usage(anyhow::Error::new(e).context(format!("cannot read {}", args.file.display())))
            })?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Failure::usage(anyhow::anyhow!("{} is not valid JSON: {e}", args.file.display())))?;
            let state = State::from_json(json).map_err(Failure::connector)?;
            connector.check_state(&configuration, &state).map_err(Failure::connector)?;
            let saved = SavedState { connector: connector.name(&configuration), state };
            let mut destination = choice.open()?;
            destination.begin(jiff::Timestamp::now()).map_err(Failure::destination)?;
            destination.commit(&saved).map_err(Failure::destination)?;
            eprintln!("saved state set in {}: {}", choice.describe(), saved.state.to_json());
        }
    }
    Ok(Exit::Success)
}

/// Runs `inlet reset`.
pub fn reset(args: ResetArgs) -> Result<Exit, Failure> {
    let (choice, _) = resolve(&args.target, args.config.as_ref())?;
    let what = match &choice {
        Choice::DuckDb { path, .. } if !path.exists() => {
            eprintln!("nothing to reset: {} does not exist", path.display());
            return Ok(Exit::Success);
        }
        Choice::DuckDb { path, .. } => {
            format!("the DuckDB warehouse {} with every table and saved state in it", path.display())
        }
        Choice::Postgres { .. } => format!("{} with every table and the saved state in it", choice.describe()),
    };
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::usage(anyhow::anyhow!("`inlet reset` deletes {what}; confirm with --yes")));
        }
        eprint!("This deletes {what}. Type `yes` to continue: ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).map_err(|e| Failure::from(anyhow::Error::new(e)))?;
        if answer.trim() != "yes" {
            eprintln!("nothing deleted");
            return Ok(Exit::Success);
        }
    }
    match &choice {
        Choice::DuckDb { path, .. } => {
            // Opening takes the lock: a running sync makes this fail instead of pulling the file from under it.
            drop(choice.open()?);
            for file in [path.clone(), PathBuf::from(format!("{}.wal", path.display()))] {
                if file.exists() {
                    std::fs::remove_file(&file).map_err(|e| {
                        Failure::new(
                            Exit::Destination,
                            anyhow::Error::new(e).context(format!("cannot delete {}", file.display())),
                        )
                    })?;
                }
            }
        }
        Choice::Postgres { url, schema } => {
            inlet_postgres::PostgresDestination::open(url, schema)
                .and_then(|mut d| d.drop_schema())
                .map_err(Failure::destination)?;
        }
    }
    eprintln!("deleted {what}");
    Ok(Exit::Success)
}
