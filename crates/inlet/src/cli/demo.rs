//! `inlet demo`: the playground, the six strategies, a DuckDB file, and proof that each ends
//! equal to the source.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use inlet_connectors::Builtin;
use inlet_duckdb::{DuckDbDestination, read_rows};
use inlet_engine::{Silent, SyncOptions, SyncReport};
use inlet_playground::{ChangeBatch, DeleteMode, PlaygroundConfig, RunningPlayground, Stored, Truth};
use inlet_sdk::{Configuration, Value};

use super::progress::group;
use super::target::Choice;
use super::{Exit, Failure, runtime};

/// Arguments of `inlet demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Users in the playground.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    users: u32,
    /// The demo's own DuckDB file, made anew at each run (one schema per strategy).
    #[arg(long, value_name = "PATH", default_value = "files/demo.db")]
    warehouse: PathBuf,
}

/// The six strategies, their endpoints, and what each adds to the configuration.
pub(crate) const STRATEGIES: [(&str, &str, &str); 6] = [
    ("keyset", "/pagination/keyset", "{}"),
    ("offset", "/pagination/offset", r#"{"page_size": "50"}"#),
    ("timestamp", "/incremental/timestamp", "{}"),
    ("step_size", "/incremental/step", r#"{"step_size": "100", "full_rescan": "true", "max_empty_windows": "3"}"#),
    ("replay", "/incremental/timestamp", r#"{"buffer_hours": "2"}"#),
    ("priority_first", "/pagination/keyset", r#"{"historical_limit": "2020-01-01T00:00:00Z"}"#),
];

struct Outcome {
    report: SyncReport,
    requests: u64,
    matches: String,
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<Exit, Failure> {
    // Made anew at each run.
    Choice::DuckDb { path: args.warehouse.clone(), schema: "main".into(), compress_text: false }.discard()?;
    runtime()?.block_on(async {
        let config = PlaygroundConfig { users: args.users, seed: 7, delete_mode: DeleteMode::Tombstone, ..Default::default() };
        let playground = inlet_playground::start(config, "127.0.0.1:0".parse().expect("an address")).await.map_err(|e| Failure::from(anyhow::Error::new(e)))?;
        println!(
            "inlet demo: the playground serves {} users at {}; each strategy syncs them into {}, schema = strategy name\n",
            args.users,
            playground.url(),
            args.warehouse.display()
        );
        println!("First sync: everything     upserts  requests     time  warehouse = source");
        for (strategy, endpoint, extra) in STRATEGIES {
            let o = sync_one(&playground, &args.warehouse, strategy, endpoint, extra).await?;
            println!("  {strategy:<24} {:>9} {:>9} {:>7.2} s  {}", group(o.report.operations.upserts), o.requests, o.report.duration.as_secs_f64(), o.matches);
        }
        let changed = playground.change(ChangeBatch { updates: 5, inserts: 3, deletes: 2 });
        println!(
            "\nThe playground changes: {} updates, {} inserts, {} deletes (as tombstones, so readers see them)\n",
            changed.updated.len(),
            changed.inserted.len(),
            changed.deleted.len()
        );
        println!("Second sync: what changed   upserts  deletes  requests     time  warehouse = source");
        for (strategy, endpoint, extra) in STRATEGIES {
            let o = sync_one(&playground, &args.warehouse, strategy, endpoint, extra).await?;
            let ops = o.report.operations;
            println!("  {strategy:<24} {:>9} {:>8} {:>9} {:>7.2} s  {}", ops.upserts, ops.deletes, o.requests, o.report.duration.as_secs_f64(), o.matches);
        }
        println!(
            "\nThe data is in {}: `SELECT * FROM keyset.\"user\"` with DuckDB, or `inlet state show --warehouse {} --schema keyset`.",
            args.warehouse.display(),
            args.warehouse.display()
        );
        println!("step_size reads every window again (full_rescan) to see updates; the others read only what changed.");
        playground.stop().await;
        Ok(Exit::Success)
    })
}

async fn sync_one(
    playground: &RunningPlayground,
    warehouse: &Path,
    strategy: &str,
    endpoint: &str,
    extra: &str,
) -> Result<Outcome, Failure> {
    let mut json: serde_json::Value = serde_json::from_str(extra).expect("valid JSON above");
    json["strategy"] = strategy.into();
    json["base_url"] = format!("{}{endpoint}", playground.url()).into();
    let configuration = Configuration::from_map(json.as_object().expect("an object").clone());
    let destination = DuckDbDestination::open(warehouse, strategy).map_err(Failure::destination)?;
    let connector = Arc::new(Builtin::new());
    let report = inlet_engine::spawn_sync(
        connector.clone(),
        configuration,
        Box::new(destination),
        SyncOptions::default(),
        Arc::new(Silent),
        std::future::pending(),
    )
    .await
    .map_err(Failure::sync)?;
    let matches = compare(warehouse, strategy, &playground.truth(), strategy == "step_size")?;
    Ok(Outcome { report, requests: connector.stats().requests(), matches })
}

/// What a warehouse's rows say of each user, for [`Truth::compare`].
pub(crate) fn stored_facts(rows: &[inlet_engine::StoredRow]) -> Vec<Stored> {
    rows.iter()
        .map(|r| Stored {
            id: r.record.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
            updated_at: match r.record.get("updatedAt") {
                Some(Value::Timestamp(t)) => Some(t.as_second()),
                _ => None,
            },
            deleted: r.deleted,
        })
        .collect()
}

/// "yes" when the schema holds exactly the source's users (deleted ones flagged), else what differs.
fn compare(warehouse: &Path, schema: &str, truth: &Truth, by_step_id: bool) -> Result<String, Failure> {
    let rows = read_rows(warehouse, schema, "user").map_err(Failure::destination)?;
    let comparison = truth.compare(stored_facts(&rows), by_step_id);
    Ok(if comparison.is_exact() {
        "yes".into()
    } else {
        format!("NO: {} lost, {} unknown", comparison.lost(), comparison.extra.len())
    })
}
