//! `inlet bench playground`: how fast the playground serves, how fast it starts, and how much
//! memory it holds, measured on the real `inlet playground` process over loopback.

use std::time::{Duration, Instant};

use clap::Args;

use super::{Lcg, Server, peak_memory};
use crate::cli::progress::group;
use crate::cli::{Exit, Failure};

/// Arguments of `inlet bench playground`.
#[derive(Args, Debug)]
pub struct PlaygroundBench {
    /// Users served during the throughput runs.
    #[arg(long, default_value_t = 1_000_000)]
    users: u32,
    /// Seconds each throughput run lasts.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Requests in flight at once (the client runs on one thread).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    connections: u16,
    /// Server worker threads (1: the figures are per core).
    #[arg(long, default_value_t = 1)]
    threads: u16,
    /// User counts whose start-up time and memory are measured, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    startup_users: Vec<u32>,
}

/// Counts the records of a body without parsing it: the client must not be the bottleneck.
fn count_records(body: &str) -> u64 {
    body.matches("\"createdAt\": ").count() as u64
}

fn scroll_token(body: &str) -> Option<String> {
    let at = body.rfind("\"scroll_param\": \"")? + "\"scroll_param\": \"".len();
    let end = body[at..].find('"')?;
    Some(body[at..at + end].to_owned())
}

struct Throughput {
    records: u64,
    pages: u64,
    bytes: u64,
    elapsed: Duration,
}

/// Runs `args.connections` request loops for `args.seconds` against one endpoint shape;
/// keyset walks start at random instants of `range`, offset pages at random offsets.
async fn measure(
    url: &str,
    keyset: bool,
    page: u32,
    range: (i64, i64),
    args: &PlaygroundBench,
) -> Result<Throughput, Failure> {
    let (users, connections, seconds, (first, last)) = (args.users, args.connections, args.seconds, range);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| Failure::from(anyhow::Error::new(e)))?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut rng = Lcg(u64::from(connection) + 1);
            let (mut records, mut pages, mut bytes) = (0u64, 0u64, 0u64);
            let mut token: Option<String> = None;
            while Instant::now() < deadline {
                let request = if keyset {
                    match token.take() {
                        Some(t) => format!("{url}/pagination/keyset?scroll_param={}", form_encode(&t)),
                        None => {
                            let since = first + rng.below((last - first).max(1) as u64) as i64;
                            format!(
                                "{url}/pagination/keyset?updated_since={}",
                                inlet_playground::format_timestamp(since)
                            )
                        }
                    }
                } else {
                    let offset = rng.below(u64::from(users.saturating_sub(page)).max(1));
                    format!("{url}/pagination/offset?limit={page}&offset={offset}")
                };
                let body = client.get(&request).send().await?.text().await?;
                records += count_records(&body);
                pages += 1;
                bytes += body.len() as u64;
                if keyset {
                    token = scroll_token(&body);
                }
            }
            Ok::<_, reqwest::Error>((records, pages, bytes))
        }));
    }
    let mut total = Throughput { records: 0, pages: 0, bytes: 0, elapsed: Duration::ZERO };
    for task in tasks {
        let (records, pages, bytes) = task
            .await
            .expect("a client task")
            .map_err(|e| Failure::from(anyhow::Error::new(e).context("a benchmark request failed")))?;
        total.records += records;
        total.pages += pages;
        total.bytes += bytes;
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

fn form_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The first and last `updatedAt` a server holds, for random keyset starting points.
async fn time_range(url: &str, users: u32) -> (i64, i64) {
    let client = reqwest::Client::new();
    let mut edges = Vec::new();
    for offset in [0, users.saturating_sub(1)] {
        let body = match client.get(format!("{url}/pagination/offset?limit=1&offset={offset}")).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let stamp = body
            .find("\"updatedAt\": \"")
            .and_then(|at| inlet_playground::parse_timestamp(body.get(at + 14..at + 33)?, false));
        edges.push(stamp.unwrap_or_default());
    }
    (edges[0], edges[1].max(edges[0] + 1))
}

/// Runs the benchmark and prints its tables.
pub async fn run(args: PlaygroundBench) -> Result<Exit, Failure> {
    let exe = std::env::current_exe().map_err(|e| Failure::from(anyhow::Error::new(e)))?;
    println!(
        "inlet bench playground: {} users, {} server thread(s), {} requests in flight from one client thread, {:.0} s per run{}",
        group(args.users.into()),
        args.threads,
        args.connections,
        args.seconds,
        super::build_note()
    );
    println!("\n{:<10} {:>6} {:>14} {:>10} {:>9}", "endpoint", "page", "records/s", "pages/s", "MB/s");
    // The keyset page is the server's page-size limit, so each page size gets its own server.
    for page in [50u32, 1000] {
        let (server, _) = Server::start(&exe, args.users, args.threads, page).await?;
        let range = time_range(&server.url, args.users).await;
        for (name, keyset) in [("offset", false), ("keyset", true)] {
            let t = measure(&server.url, keyset, page, range, &args).await?;
            let secs = t.elapsed.as_secs_f64();
            println!(
                "{name:<10} {page:>6} {:>14} {:>10} {:>9.1}",
                group((t.records as f64 / secs) as u64),
                group((t.pages as f64 / secs) as u64),
                t.bytes as f64 / secs / 1e6
            );
        }
    }
    println!("\n{:<14} {:>10} {:>12} {:>14}", "users", "start-up", "memory", "peak memory");
    let client = reqwest::Client::new();
    for users in args.startup_users {
        let (server, startup) = Server::start(&exe, users, args.threads, 1000).await?;
        // Read both ends of the data, as a sync would, before looking at memory.
        for path in [
            "/pagination/offset?limit=1000&offset=0".to_owned(),
            "/pagination/keyset".to_owned(),
            format!("/pagination/offset?limit=1000&offset={}", users.saturating_sub(1000)),
        ] {
            let _ = client.get(format!("{}{path}", server.url)).send().await;
        }
        let (rss, peak) = server.pid().and_then(peak_memory).unwrap_or((0, 0));
        println!(
            "{:<14} {:>7} ms {:>9} MB {:>11} MB",
            group(users.into()),
            startup.as_millis(),
            rss / 1024,
            peak / 1024
        );
    }
    Ok(Exit::Success)
}
