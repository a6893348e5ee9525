//! `inlet bench`: benchmarks that print figures, run on this machine against the real parts.

mod playground;
mod postgres;
mod sync;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Subcommand;

use super::{Exit, Failure};

/// `inlet bench …`
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Records served per second over loopback (offset and keyset, pages of 50 and 1,000), and
    /// start-up time and memory for large datasets.
    Playground(playground::PlaygroundBench),
    /// Fetch only, load only and the real sync, for 100,000 and 1,000,000 users, pages of 50
    /// and 1,000, into DuckDB and PostgreSQL: rows per second, peak memory, and how close the
    /// sync comes to the slower of its two halves; then a sync with nothing new.
    Sync(sync::SyncBench),
    /// Loading users into PostgreSQL: inlet's binary COPY and merge against multi-row
    /// INSERT … ON CONFLICT statements, in the same run.
    Postgres(postgres::PostgresBench),
    /// One measurement of `inlet bench sync`, in its own process so that its peak memory is
    /// its own; prints one JSON line.
    #[command(hide = true)]
    Measure(sync::MeasureArgs),
}

/// Runs a benchmark.
pub fn run(command: BenchCommand) -> Result<Exit, Failure> {
    match command {
        // One client thread: the other core is the server's.
        BenchCommand::Playground(args) => current_thread()?.block_on(playground::run(args)),
        BenchCommand::Sync(args) => current_thread()?.block_on(sync::run(args)),
        BenchCommand::Postgres(args) => super::runtime()?.block_on(postgres::run(args)),
        BenchCommand::Measure(args) => sync::measure(args),
    }
}

fn current_thread() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Failure::from(anyhow::Error::new(e)))
}

/// A note for the header of a benchmark's output.
fn build_note() -> &'static str {
    if cfg!(debug_assertions) { "  (debug build: build with --release for real figures)" } else { "" }
}

/// The fixed instant the benchmarks' playgrounds start at, so every run serves the same bytes.
const NOW: &str = "2026-11-20T00:00:00Z";

/// A small seeded generator: benchmark choices are reproducible.
pub struct Lcg(pub u64);

impl Lcg {
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// A TCP port free at this instant on 127.0.0.1.
pub fn free_port() -> Result<u16, Failure> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Failure::from(anyhow::Error::new(e)))?;
    Ok(listener.local_addr().map_err(|e| Failure::from(anyhow::Error::new(e)))?.port())
}

/// Resident and peak resident memory of process `pid`, in KiB (`VmRSS`, `VmHWM`; Linux).
pub fn peak_memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field =
        |name: &str| status.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse::<u64>().ok();
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// A real `inlet playground` process on a free port, killed when dropped.
struct Server {
    child: tokio::process::Child,
    url: String,
}

impl Server {
    /// Starts one serving `users` users on `threads` worker threads, pages up to
    /// `page_size_limit`, and waits until it answers; returns it and how long that took.
    async fn start(exe: &Path, users: u32, threads: u16, page_size_limit: u32) -> Result<(Server, Duration), Failure> {
        let port = free_port()?;
        let started = Instant::now();
        let child = tokio::process::Command::new(exe)
            .args(["playground", "--quiet", "--now", NOW, "--page-size-limit", &page_size_limit.to_string()])
            .args(["--users", &users.to_string(), "--threads", &threads.to_string(), "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Failure::from(anyhow::Error::new(e).context("cannot start the playground")))?;
        let server = Server { child, url: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        let probe = format!("{}/pagination/offset?limit=1", server.url);
        loop {
            if client.get(&probe).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok((server, started.elapsed()));
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err(Failure::from(anyhow::anyhow!("the playground did not answer within 2 minutes")));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}
