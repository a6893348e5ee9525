//! `inlet soak`: rounds of syncs killed at random points while the source changes and fails,
//! each round finished and compared with the ground truth. Not part of CI: it runs as long as
//! it is asked to.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clap::Args;
use inlet_playground::{ChangesConfig, DeleteMode, FaultsConfig, PlaygroundConfig, RunningPlayground};

use super::bench::Lcg;
use super::demo::{STRATEGIES, stored_facts};
use super::progress::group;
use super::target::Choice;
use super::{Exit, Failure, runtime};

/// Arguments of `inlet soak`.
#[derive(Args, Debug)]
pub struct SoakArgs {
    /// Kill-and-resume rounds; they cycle through the six strategies.
    #[arg(long, default_value_t = 60)]
    rounds: u32,
    /// Seeds the playgrounds (data, changes, faults) and the kill points: a run can be repeated.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Users per round's playground.
    #[arg(long, default_value_t = 2000)]
    users: u32,
    /// Fraction of requests faulted: 500s, 429 bursts, cut bodies, malformed JSON, bad records.
    #[arg(long, default_value_t = 0.1)]
    faults: f64,
    /// Live changes per second of the playground's clock while the syncs run.
    #[arg(long, default_value_t = 20.0)]
    changes_per_second: f64,
    /// Write to PostgreSQL (a schema per round, dropped after) instead of DuckDB files.
    #[arg(long, value_name = "URL")]
    destination: Option<String>,
    /// Directory for the rounds' DuckDB files (each removed after its round).
    #[arg(long, value_name = "DIR", default_value = "files/soak")]
    dir: PathBuf,
}

#[derive(Default)]
struct Totals {
    rounds: u64,
    kills: u64,
    faults: u64,
    syncs: u64,
    compared: u64,
    lost: u64,
    duplicated: u64,
    extra: u64,
}

/// Runs the soak and prints a line per round and the totals; exit code 1 if anything was lost.
pub fn run(args: SoakArgs) -> Result<Exit, Failure> {
    std::fs::create_dir_all(&args.dir).map_err(|e| {
        Failure::new(Exit::Destination, anyhow::Error::new(e).context(format!("cannot create {}", args.dir.display())))
    })?;
    let exe = std::env::current_exe().map_err(|e| Failure::from(anyhow::Error::new(e)))?;
    println!(
        "inlet soak: {} rounds, seed {}, {} users, {} changes/s, faults {:.0}%, into {}",
        args.rounds,
        args.seed,
        group(args.users.into()),
        args.changes_per_second,
        args.faults * 100.0,
        args.destination
            .as_deref()
            .map_or_else(|| format!("DuckDB files in {}", args.dir.display()), inlet_postgres::redact)
    );
    let totals = runtime()?.block_on(async {
        let mut totals = Totals::default();
        for round in 0..args.rounds {
            let (strategy, endpoint, extra) = STRATEGIES[round as usize % STRATEGIES.len()];
            let outcome = soak_round(&args, &exe, round, strategy, endpoint, extra, &mut totals).await?;
            println!("round {round:>4} {strategy:<15} {outcome}");
        }
        Ok::<_, Failure>(totals)
    })?;
    println!(
        "\nsoak: {} rounds, {} kills, {} faults injected, {} syncs, {} rows compared: lost {}, duplicated {}, unknown {}",
        group(totals.rounds),
        group(totals.kills),
        group(totals.faults),
        group(totals.syncs),
        group(totals.compared),
        totals.lost,
        totals.duplicated,
        totals.extra
    );
    Ok(if totals.lost + totals.duplicated + totals.extra == 0 { Exit::Success } else { Exit::Failed })
}

/// Data requests the playground has served.
fn served(playground: &RunningPlayground) -> u64 {
    playground
        .requests()
        .iter()
        .filter(|(path, _)| path.starts_with("/pagination") || path.starts_with("/incremental"))
        .map(|(_, n)| n)
        .sum()
}

async fn soak_round(
    args: &SoakArgs,
    exe: &Path,
    round: u32,
    strategy: &str,
    endpoint: &str,
    extra: &str,
    totals: &mut Totals,
) -> Result<String, Failure> {
    let seed = args.seed * 100_000 + u64::from(round);
    let config = PlaygroundConfig {
        users: args.users,
        seed,
        manual_clock: true,
        delete_mode: DeleteMode::Tombstone,
        changes: Some(ChangesConfig::at_rate(args.changes_per_second)),
        faults: FaultsConfig { latency: Duration::from_millis(2), ..FaultsConfig::evenly(args.faults) },
        ..PlaygroundConfig::default()
    };
    config.validate().map_err(Failure::usage)?;
    let playground = inlet_playground::start(config, "127.0.0.1:0".parse().expect("an address"))
        .await
        .map_err(|e| Failure::from(anyhow::Error::new(e)))?;
    let place = match &args.destination {
        Some(url) => Choice::Postgres { url: url.clone(), schema: format!("soak_{}_{round}", args.seed) },
        None => Choice::DuckDb {
            path: args.dir.join(format!("round-{round}.db")),
            schema: "main".into(),
            compress_text: false,
        },
    };
    let _ = place.discard();
    let mut json: serde_json::Value = serde_json::from_str(extra).expect("valid JSON");
    json["strategy"] = strategy.into();
    json["base_url"] = format!("{}{endpoint}", playground.url()).into();
    json["max_attempts"] = "25".into();
    json["backoff_ms"] = "5".into();
    let config_path = args.dir.join(format!("round-{round}.json"));
    std::fs::write(&config_path, json.to_string()).map_err(|e| Failure::from(anyhow::Error::new(e)))?;

    let mut rng = Lcg(seed);
    let kills_planned = 1 + rng.below(3);
    let mut kills = 0;
    let mut syncs = 0;
    let sync = || {
        let mut command = tokio::process::Command::new(exe);
        command.arg("sync").arg("--config").arg(&config_path).args(place.command_args()).env("INLET_LOG", "off");
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
        command
    };
    // Syncs killed after a random number of requests, while the source changes.
    while kills < kills_planned && syncs < kills_planned * 4 {
        syncs += 1;
        let mut child = sync().spawn().map_err(|e| Failure::from(anyhow::Error::new(e)))?;
        let kill_after = served(&playground) + 1 + rng.below(12);
        loop {
            if child.try_wait().map_err(|e| Failure::from(anyhow::Error::new(e)))?.is_some() {
                break;
            }
            if served(&playground) >= kill_after {
                let _ = child.start_kill();
                let _ = child.wait().await;
                kills += 1;
                break;
            }
            playground.advance_clock(Duration::from_millis(100));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    // The source goes quiet (the clock stops), and syncs run to completion.
    let mut finished = false;
    for _ in 0..3 {
        syncs += 1;
        let status = sync().status().await.map_err(|e| Failure::from(anyhow::Error::new(e)))?;
        if status.success() {
            finished = true;
            break;
        }
    }
    if !finished {
        return Err(Failure::from(anyhow::anyhow!(
            "round {round} ({strategy}): three syncs in a row failed on a quiet source"
        )));
    }
    let comparison = playground.truth().compare(stored_facts(&place.rows("user")?), strategy == "step_size");
    let faults = playground.faults_injected();
    let injected =
        faults.server_errors + faults.throttled + faults.cut_bodies + faults.malformed_bodies + faults.bad_records;
    totals.rounds += 1;
    totals.kills += kills;
    totals.faults += injected;
    totals.syncs += syncs;
    totals.compared += comparison.compared as u64;
    totals.lost += comparison.lost() as u64;
    totals.duplicated += comparison.duplicated.len() as u64;
    totals.extra += comparison.extra.len() as u64;
    let verdict =
        if comparison.is_exact() { "equal to the source".to_owned() } else { format!("DIFFERS: {comparison:?}") };
    playground.stop().await;
    if comparison.is_exact() {
        let _ = place.discard();
        let _ = std::fs::remove_file(&config_path);
    }
    Ok(format!(
        "{kills} kills, {syncs} syncs, {injected:>4} faults, {:>6} rows: {verdict}",
        group(comparison.compared as u64)
    ))
}
