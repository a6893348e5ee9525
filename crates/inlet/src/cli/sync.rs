//! `inlet sync` and `inlet check`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use inlet_connectors::SourceStats;
use inlet_engine::SyncOptions;
use inlet_sdk::Connector;

use super::progress::{Progress, Summary};
use super::target::Target;
use super::{Exit, Failure, LogFormat, read_configuration, runtime};

/// Arguments of `inlet sync`.
#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The connector's configuration: a JSON object of settings; values may be strings
    /// ("100") or numbers. For the built-in strategies see docs/strategies.md.
    #[arg(long, short, value_name = "FILE", default_value = "configuration.json")]
    config: PathBuf,
    #[command(flatten)]
    target: Target,
}

/// Arguments of `inlet check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The connector's configuration.
    #[arg(long, short, value_name = "FILE", default_value = "configuration.json")]
    config: PathBuf,
    #[command(flatten)]
    target: Target,
}

/// Runs one sync; a second Ctrl-C exits at once.
pub fn run<C: Connector>(
    connector: Arc<C>,
    args: SyncArgs,
    format: LogFormat,
    stats: Option<Arc<SourceStats>>,
) -> Result<Exit, Failure> {
    let mut configuration = read_configuration(&args.config)?;
    let choice = args.target.resolve(&mut configuration)?;
    // A bad configuration fails before the warehouse is opened.
    connector.schema(&configuration).map_err(Failure::connector)?;
    let name = connector.name(&configuration);
    let destination = choice.open()?;
    let described = destination.describe();
    tracing::info!("syncing {name} into {described}");
    let progress = Progress::new(format, stats.clone());
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let ticker = {
            let progress = progress.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    progress.tick();
                }
            })
        };
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::warn!("stopping: committing what was received (Ctrl-C again to quit at once)");
            tokio::spawn(async {
                let _ = tokio::signal::ctrl_c().await;
                std::process::exit(Exit::Interrupted as i32);
            });
        };
        let result = inlet_engine::spawn_sync(
            connector,
            configuration,
            destination,
            SyncOptions::default(),
            progress.clone(),
            stop,
        )
        .await;
        ticker.abort();
        result
    });
    progress.finish();
    let report = result.map_err(Failure::sync)?;
    let summary = Summary {
        connector: &name,
        destination: &described,
        report: &report,
        stats: stats.as_deref(),
        warnings: progress.warnings(),
    };
    match format {
        LogFormat::Text => print!("{}", summary.table()),
        LogFormat::Json => println!("{}", summary.json()),
    }
    Ok(if report.stopped { Exit::Interrupted } else { Exit::Success })
}

/// Checks the configuration, the source and the saved state, writing nothing.
pub fn check<C: Connector>(connector: &C, args: CheckArgs) -> Result<Exit, Failure> {
    let mut configuration = read_configuration(&args.config)?;
    let choice = args.target.resolve(&mut configuration)?;
    connector.schema(&configuration).map_err(Failure::connector)?;
    println!("configuration  {} is valid ({})", args.config.display(), connector.name(&configuration));
    let reached = runtime()?.block_on(connector.check(&configuration)).map_err(Failure::connector)?;
    println!("source         {reached}");
    let saved = super::state::read_saved(&choice)?;
    match saved {
        None => println!("destination    {}: no saved state, the next sync starts from scratch", choice.describe()),
        Some(saved) => {
            connector.check_state(&configuration, &saved.state).map_err(|e| {
                Failure::connector(inlet_sdk::Error::state(format!(
                    "{} (the saved state in {} was written by `{}`: reset it with `inlet state reset`, or use another schema)",
                    e.message(),
                    choice.describe(),
                    saved.connector
                )))
            })?;
            println!("destination    {}: saved state {} resumes cleanly", choice.describe(), saved.state.to_json());
        }
    }
    Ok(Exit::Success)
}
