//! `inlet bench sync`: how close a sync comes to its limits.
//!
//! For each dataset size and page size, three measurements, each in its own process so that
//! its peak memory is its own: **fetch only** (every page requested, received and parsed into
//! records, nothing written), **load only** (the same users, already in memory, written by
//! the engine into the warehouse) and **sync** (the real thing, from the playground into the
//! warehouse). A sync can be no faster than the slower of its halves; the ratio says how much
//! of the faster one the pipeline fails to hide. Then a sync that finds nothing new, timed
//! end to end as the user runs it: `inlet sync`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::{Args, ValueEnum};
use inlet_connectors::{Builtin, user_table};
use inlet_engine::{Destination, Silent, SyncOptions};
use inlet_sdk::{Configuration, Connector, Error, Operations, Record, State, Table};
use serde::{Deserialize, Serialize};

use super::{NOW, Server};
use crate::cli::demo::STRATEGIES;
use crate::cli::progress::group;
use crate::cli::target::Choice;
use crate::cli::{Exit, Failure};

/// Arguments of `inlet bench sync`.
#[derive(Args, Debug)]
pub struct SyncBench {
    /// Dataset sizes, comma-separated (load only holds the whole dataset in memory: about
    /// 0.7 GB per million users).
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000",
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    users: Vec<u32>,
    /// Page sizes, comma-separated (each gets a playground with that page-size limit).
    #[arg(long, value_delimiter = ',', default_value = "50,1000",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    page_sizes: Vec<u32>,
    /// Warehouses, comma-separated.
    #[arg(long, value_delimiter = ',', value_enum, default_value = "duckdb,postgres")]
    destinations: Vec<Warehouse>,
    /// The strategy that syncs; its endpoint is chosen to match.
    #[arg(long, default_value = "offset")]
    strategy: String,
    /// Requests in flight, for the strategies that fetch ahead (`concurrency` in the
    /// configuration).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    concurrency: u32,
    /// The PostgreSQL server; the benchmark writes to schema `inlet_bench` and drops it.
    #[arg(long, value_name = "URL", env = "INLET_BENCH_POSTGRES", default_value = DEFAULT_POSTGRES)]
    postgres: String,
    /// Server worker threads of the playground.
    #[arg(long, default_value_t = 1)]
    server_threads: u16,
    /// Let DuckDB compress text, as `duckdb_compress_text` in a configuration does.
    #[arg(long)]
    compress_text: bool,
    /// Runs of each measurement: the table shows the median time and the highest peak
    /// memory (a shared machine's timings move by 10 to 40% from one run to the next).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    runs: u32,
}

/// The local server of the README's set-up.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The schema the benchmarks write to in PostgreSQL, dropped before and after each use.
pub const BENCH_SCHEMA: &str = "inlet_bench";

/// A warehouse the benchmark writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Warehouse {
    /// A DuckDB file in a temporary directory.
    Duckdb,
    /// Schema `inlet_bench` of `--postgres`.
    Postgres,
}

/// What one measurement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Phase {
    /// Request, receive and parse every page; write nothing.
    Fetch,
    /// Write the dataset, already in memory, through the engine.
    Load,
    /// Sync from the playground into the warehouse.
    Sync,
}

/// Arguments of the hidden `inlet bench measure`.
#[derive(Args, Debug)]
pub struct MeasureArgs {
    #[arg(long, value_enum)]
    phase: Phase,
    /// The strategy's configuration (fetch, sync).
    #[arg(long)]
    config: PathBuf,
    /// Users of the playground's initial dataset (load).
    #[arg(long)]
    users: u32,
    /// Records per checkpoint (load).
    #[arg(long)]
    page_size: u32,
    /// DuckDB file to write to (load, sync); deleted first, so that each measurement starts
    /// from nothing.
    #[arg(long, conflicts_with = "postgres")]
    warehouse: Option<PathBuf>,
    /// PostgreSQL server to write to instead (load, sync); schema `inlet_bench` is dropped
    /// first.
    #[arg(long)]
    postgres: Option<String>,
    /// Let DuckDB compress text.
    #[arg(long)]
    compress_text: bool,
}

/// One measurement, as the hidden child prints it.
#[derive(Debug, Serialize, Deserialize)]
struct Measured {
    rows: u64,
    seconds: f64,
    /// Peak resident memory of the process.
    peak_kib: u64,
    /// Memory holding the dataset before the measured work began (load only).
    held_kib: u64,
}

impl Measured {
    fn rate(&self) -> u64 {
        (self.rows as f64 / self.seconds.max(1e-9)) as u64
    }

    /// Peak memory of the process, not counting a preloaded dataset, in MB.
    fn peak_mb(&self) -> u64 {
        self.peak_kib.saturating_sub(self.held_kib) / 1024
    }
}

/// Runs the benchmark and prints its table.
pub async fn run(args: SyncBench) -> Result<Exit, Failure> {
    let exe = std::env::current_exe().map_err(|e| Failure::from(anyhow::Error::new(e)))?;
    let endpoint =
        STRATEGIES.iter().find(|(name, _, _)| *name == args.strategy).map(|(_, path, _)| *path).ok_or_else(|| {
            Failure::usage(anyhow::anyhow!(
                "--strategy {:?}: expected one of {}",
                args.strategy,
                STRATEGIES.map(|(name, _, _)| name).join(", ")
            ))
        })?;
    let dir = std::env::temp_dir().join(format!("inlet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::from(anyhow::Error::new(e).context(format!("cannot create {}", dir.display()))))?;
    let outcome = run_in(&args, &exe, endpoint, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

async fn run_in(args: &SyncBench, exe: &Path, endpoint: &str, dir: &Path) -> Result<Exit, Failure> {
    println!(
        "inlet bench sync: strategy {}, concurrency {}, playground on {} thread(s), {} cores, DuckDB text {}{}",
        args.strategy,
        args.concurrency,
        args.server_threads,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if args.compress_text { "compressed" } else { "uncompressed" },
        super::build_note()
    );
    println!(
        "\n{:>9} {:>5} {:<9} {:>11} {:>5} {:>11} {:>5} {:>11} {:>5} {:>10} {:>8}",
        "users", "page", "warehouse", "fetch r/s", "MB", "load r/s", "MB", "sync r/s", "MB", "sync/limit", "nothing"
    );
    for &users in &args.users {
        for &page in &args.page_sizes {
            let (server, _) = Server::start(exe, users, args.server_threads, page).await?;
            let config = dir.join(format!("config-{users}-{page}.json"));
            let json = serde_json::json!({
                "strategy": args.strategy,
                "base_url": format!("{}{endpoint}", server.url),
                "page_size": page,
                "concurrency": args.concurrency,
            });
            std::fs::write(&config, json.to_string()).map_err(|e| Failure::from(anyhow::Error::new(e)))?;
            let fetch = median(args.runs, || measure_in_child(exe, Phase::Fetch, &config, users, page, None))?;
            for &warehouse in &args.destinations {
                let target = match warehouse {
                    Warehouse::Duckdb => Choice::DuckDb {
                        path: dir.join(format!("bench-{users}-{page}.db")),
                        schema: "main".into(),
                        compress_text: args.compress_text,
                    },
                    Warehouse::Postgres => Choice::Postgres { url: args.postgres.clone(), schema: BENCH_SCHEMA.into() },
                };
                let measure_anew =
                    |phase| median(args.runs, || measure_in_child(exe, phase, &config, users, page, Some(&target)));
                let load = measure_anew(Phase::Load)?;
                let sync = measure_anew(Phase::Sync)?;
                // `inlet sync` reads the text compression from its configuration.
                let quiet_config = match &target {
                    Choice::DuckDb { compress_text: true, .. } => {
                        let mut json = json.clone();
                        json["duckdb_compress_text"] = true.into();
                        let path = dir.join(format!("config-{users}-{page}-compressed.json"));
                        std::fs::write(&path, json.to_string()).map_err(|e| Failure::from(anyhow::Error::new(e)))?;
                        path
                    }
                    _ => config.clone(),
                };
                let mut quiet: Vec<std::time::Duration> =
                    (0..args.runs).map(|_| quiet_sync(exe, &quiet_config, &target)).collect::<Result<_, _>>()?;
                quiet.sort();
                let nothing_new = quiet[quiet.len() / 2];
                target.discard()?;
                let limit = fetch.seconds.max(load.seconds);
                println!(
                    "{:>9} {:>5} {:<9} {:>11} {:>5} {:>11} {:>5} {:>11} {:>5} {:>10.2} {:>5} ms",
                    group(users.into()),
                    page,
                    format!("{warehouse:?}").to_lowercase(),
                    group(fetch.rate()),
                    fetch.peak_mb(),
                    group(load.rate()),
                    load.peak_mb(),
                    group(sync.rate()),
                    sync.peak_mb(),
                    sync.seconds / limit,
                    nothing_new.as_millis()
                );
            }
            drop(server);
        }
    }
    println!(
        "\nr/s: rows per second, the run of median time of {runs}. MB: the highest peak resident memory of the\n\
         process in those runs (for load only, not counting the dataset it holds ready in memory). sync/limit:\n\
         the sync's time over the slower of fetch only and load only. nothing: `inlet sync` run again when\n\
         nothing changed, wall time end to end (median of {runs}).",
        runs = args.runs
    );
    Ok(Exit::Success)
}

/// The run of median time among `runs` runs of `measure`, with the highest peak memory of
/// them all.
fn median(runs: u32, mut measure: impl FnMut() -> Result<Measured, Failure>) -> Result<Measured, Failure> {
    let mut all: Vec<Measured> = (0..runs).map(|_| measure()).collect::<Result<_, _>>()?;
    let peak_kib = all.iter().map(|m| m.peak_kib.saturating_sub(m.held_kib)).max().unwrap_or(0);
    all.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let middle = all.swap_remove(all.len() / 2);
    Ok(Measured { peak_kib, held_kib: 0, ..middle })
}

/// Runs one measurement in a child process, into `target` (emptied first) unless it
/// fetches only, and checks that it moved every user.
fn measure_in_child(
    exe: &Path,
    phase: Phase,
    config: &Path,
    users: u32,
    page: u32,
    target: Option<&Choice>,
) -> Result<Measured, Failure> {
    let output = Command::new(exe)
        .args(["bench", "measure", "--phase", &format!("{phase:?}").to_lowercase()])
        .arg("--config")
        .arg(config)
        .args(["--users", &users.to_string(), "--page-size", &page.to_string()])
        .args(match target {
            None => Vec::new(),
            Some(Choice::DuckDb { path, compress_text, .. }) => {
                let mut args = vec!["--warehouse".to_owned(), path.display().to_string()];
                if *compress_text {
                    args.push("--compress-text".to_owned());
                }
                args
            }
            Some(Choice::Postgres { url, .. }) => vec!["--postgres".to_owned(), url.clone()],
        })
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Failure::from(anyhow::Error::new(e).context("cannot start a measurement")))?;
    if !output.status.success() {
        return Err(Failure::from(anyhow::anyhow!("the {phase:?} measurement failed ({})", output.status)));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let measured: Measured = serde_json::from_str(text.lines().last().unwrap_or_default())
        .map_err(|e| Failure::from(anyhow::anyhow!("the {phase:?} measurement printed {text:?}: {e}")))?;
    if measured.rows != u64::from(users) {
        return Err(Failure::from(anyhow::anyhow!(
            "the {phase:?} measurement moved {} rows of {users}: its figures would mean nothing",
            measured.rows
        )));
    }
    Ok(measured)
}

/// `inlet sync` on a warehouse that is up to date, timed from start to exit.
fn quiet_sync(exe: &Path, config: &Path, target: &Choice) -> Result<std::time::Duration, Failure> {
    let started = Instant::now();
    let output = Command::new(exe)
        .arg("sync")
        .arg("--config")
        .arg(config)
        .args(target.command_args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Failure::from(anyhow::Error::new(e).context("cannot start `inlet sync`")))?;
    let took = started.elapsed();
    if !output.status.success() {
        return Err(Failure::from(anyhow::anyhow!(
            "`inlet sync` with nothing new failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(took)
}

/// The hidden child: one measurement, printed as one JSON line.
pub fn measure(args: MeasureArgs) -> Result<Exit, Failure> {
    let target = match (&args.warehouse, &args.postgres) {
        (_, Some(url)) => Some(Choice::Postgres { url: url.clone(), schema: BENCH_SCHEMA.into() }),
        (Some(path), None) => {
            Some(Choice::DuckDb { path: path.clone(), schema: "main".into(), compress_text: args.compress_text })
        }
        (None, None) => None,
    };
    let configuration = super::super::read_configuration(&args.config)?;
    // Opened before the runtime starts: the PostgreSQL destination drives a runtime of its own.
    let destination = match (args.phase, target) {
        (Phase::Fetch, _) => None,
        (Phase::Load | Phase::Sync, Some(target)) => {
            target.discard()?;
            Some(target.open()?)
        }
        (phase, None) => {
            return Err(Failure::usage(anyhow::anyhow!(
                "--phase {}: give the warehouse to write to, --warehouse FILE or --postgres URL",
                format!("{phase:?}").to_lowercase()
            )));
        }
    };
    let empty_kib = own_memory().0;
    let pages = match args.phase {
        Phase::Load => initial_pages(args.users, args.page_size)?,
        Phase::Fetch | Phase::Sync => Vec::new(),
    };
    let held_kib = own_memory().0.saturating_sub(empty_kib);
    let runtime = super::super::runtime()?;
    let started = Instant::now();
    let rows = runtime.block_on(async {
        match (args.phase, destination) {
            (Phase::Load, Some(destination)) => {
                engine_sync(Preloaded::new(pages), Configuration::default(), destination).await
            }
            (Phase::Sync, Some(destination)) => engine_sync(Builtin::new(), configuration, destination).await,
            _ => fetch_only(configuration).await,
        }
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let measured = Measured { rows, seconds, peak_kib: own_memory().1, held_kib };
    println!("{}", serde_json::to_string(&measured).expect("plain numbers"));
    Ok(Exit::Success)
}

/// This process's resident and peak resident memory, in KiB.
fn own_memory() -> (u64, u64) {
    super::peak_memory(std::process::id()).unwrap_or((0, 0))
}

/// Every page requested, received and parsed by the strategy, on a runtime task as
/// [`inlet_engine::spawn_sync`] runs it; the records are counted and dropped.
async fn fetch_only(configuration: Configuration) -> Result<u64, Failure> {
    let options = SyncOptions::default();
    let (mut operations, mut batches) = Operations::channel(options.queue_changes, options.batch_changes);
    let counting = tokio::spawn(async move {
        let mut rows = 0u64;
        while let Some(batch) = batches.recv().await {
            rows += batch.changes.len() as u64;
        }
        rows
    });
    let fetching = tokio::spawn(async move {
        Builtin::new().update(&configuration, &State::new(), &mut operations).await?;
        operations.flush().await
    });
    fetching.await.expect("the fetching task").map_err(Failure::connector)?;
    Ok(counting.await.expect("the counting task"))
}

/// One sync through the engine into `destination`; returns the rows upserted.
async fn engine_sync<C: Connector>(
    connector: C,
    configuration: Configuration,
    destination: Box<dyn Destination>,
) -> Result<u64, Failure> {
    let report = inlet_engine::spawn_sync(
        Arc::new(connector),
        configuration,
        destination,
        SyncOptions::default(),
        Arc::new(Silent),
        std::future::pending(),
    )
    .await
    .map_err(Failure::sync)?;
    Ok(report.operations.upserts)
}

/// The playground's initial dataset for `users` (as the benchmark's playgrounds serve it),
/// as parsed records in pages of `page_size`.
pub fn initial_pages(users: u32, page_size: u32) -> Result<Vec<Vec<Record>>, Failure> {
    #[derive(Deserialize)]
    struct Line {
        record: Record,
    }
    let now = NOW.parse::<jiff::Timestamp>().expect("a valid instant").as_second();
    let config = inlet_playground::PlaygroundConfig { users, now: Some(now), ..Default::default() };
    let mut records = Vec::with_capacity(users as usize);
    let mut failure = None;
    inlet_playground::write_initial_truth(&config, |chunk| {
        for line in chunk.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<Line>(line) {
                Ok(line) => records.push(line.record),
                Err(e) => failure = Some(e),
            }
        }
        Ok(())
    })
    .map_err(|e| Failure::from(anyhow::Error::new(e)))?;
    if let Some(e) = failure {
        return Err(Failure::from(anyhow::Error::new(e).context("the playground's dump did not parse")));
    }
    let page_size = page_size.max(1) as usize;
    let mut pages = Vec::with_capacity(records.len().div_ceil(page_size));
    let mut rest = records.into_iter().peekable();
    while rest.peek().is_some() {
        pages.push(rest.by_ref().take(page_size).collect());
    }
    Ok(pages)
}

/// A connector whose records are already in memory: each page is emitted and checkpointed,
/// as a strategy does, so that only the engine and the warehouse are measured.
pub struct Preloaded {
    pages: Mutex<Vec<Vec<Record>>>,
    table: Table,
}

impl Preloaded {
    /// Emits `pages` (in order) on its first sync.
    pub fn new(pages: Vec<Vec<Record>>) -> Self {
        Preloaded { pages: Mutex::new(pages), table: user_table() }
    }
}

impl Connector for Preloaded {
    fn name(&self, _: &Configuration) -> String {
        "bench-preloaded".into()
    }

    fn schema(&self, _: &Configuration) -> Result<Vec<Table>, Error> {
        Ok(vec![self.table.clone()])
    }

    async fn update(&self, _: &Configuration, _: &State, operations: &mut Operations) -> Result<(), Error> {
        let pages = std::mem::take(&mut *self.pages.lock().unwrap_or_else(|p| p.into_inner()));
        let mut emitted = 0u64;
        for page in pages {
            for record in page {
                operations.upsert("user", record).await?;
                emitted += 1;
            }
            operations.checkpoint(&serde_json::json!({ "rows": emitted })).await?;
        }
        Ok(())
    }
}
