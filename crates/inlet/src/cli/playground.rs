//! `inlet playground`: serve the mock API, or dump its ground truth.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use inlet_playground::{
    AuthScheme, ChangeBatch, ChangesConfig, DeleteMode, FaultsConfig, GapsConfig, MAX_USERS, PlaygroundConfig,
    RateLimit, TiesConfig,
};

use super::{Exit, Failure};

/// Arguments of `inlet playground`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PlaygroundArgs {
    #[command(subcommand)]
    command: Option<PlaygroundCommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum PlaygroundCommand {
    /// Print the ground truth as NDJSON: one line per user ever created,
    /// `{"step_id": N, "deleted": false, "record": {...}}`.
    ///
    /// Without --from, the initial dataset of the given data flags (no server needed);
    /// with --from, the current dataset of a running playground (GET /_truth).
    #[command(verbatim_doc_comment)]
    Dump(DumpArgs),
}

#[derive(Args, Debug)]
struct DumpArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Read the truth of a running playground at this base URL instead.
    #[arg(long, value_name = "URL", conflicts_with_all = ["users", "seed", "now", "ties", "gaps"])]
    from: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// What the dataset holds before any change.
#[derive(Args, Debug, Clone)]
struct DataArgs {
    /// Number of initial users (up to 100,000,000; no per-user memory is kept).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_USERS)))]
    users: u32,
    /// Seeds every random choice: data, credentials, live changes and faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The instant the data was generated, RFC 3339 (e.g. 2026-11-20T00:00:00Z); every initial
    /// updatedAt is before it and the playground's clock starts there. Default: the wall clock.
    #[arg(long, value_name = "INSTANT", value_parser = parse_instant)]
    now: Option<i64>,
    /// Largest `limit`/`per_page` accepted, and the keyset page size (the reference: 50).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    page_size_limit: u32,
    /// Hostile: this fraction of users (0 to 1) sits in groups sharing one updatedAt, from 2
    /// users to more than a page, straddling page boundaries.
    #[arg(long, value_name = "FRACTION", help_heading = "Hostile modes")]
    ties: Option<f64>,
    /// Largest tie group.
    #[arg(long, default_value_t = 150, value_name = "USERS", help_heading = "Hostile modes")]
    tie_max_group: u32,
    /// Hostile: a hole in the ids of /incremental/step precedes a user with this probability;
    /// holes are short (1 to 10 ids) or long (up to --gap-max-len).
    #[arg(long, value_name = "RATE", help_heading = "Hostile modes")]
    gaps: Option<f64>,
    /// Longest id hole.
    #[arg(long, default_value_t = 5000, value_name = "IDS", help_heading = "Hostile modes")]
    gap_max_len: u64,
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 5001)]
    port: u16,
    /// Worker threads serving requests. Default: one per core.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Do not log each request.
    #[arg(long)]
    quiet: bool,
    /// Token-bucket rate limiting as the reference's: 429 with Retry-After once the bucket is
    /// empty. `--rate-limit` alone turns it on.
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true", value_parser = parse_switch, help_heading = "Rate limiting")]
    rate_limit: Option<bool>,
    /// Bucket size: the largest burst.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Rate limiting")]
    capacity: u32,
    /// Tokens added per second.
    #[arg(long, default_value_t = 10.0, help_heading = "Rate limiting")]
    refill_per_second: f64,
    /// Hostile: make this many changes per second while serving (updates move updatedAt to now).
    #[arg(long, value_name = "RATE", help_heading = "Hostile modes")]
    changes_per_second: Option<f64>,
    /// Relative weights of updates, inserts and deletes among the changes.
    #[arg(long, default_value = "70:20:10", value_name = "U:I:D", value_parser = parse_mix, help_heading = "Hostile modes")]
    change_mix: (u32, u32, u32),
    /// What a delete does: `vanish` (the row disappears) or `tombstone` (it stays, with a
    /// `deletedAt` field, so incremental readers see the delete).
    #[arg(long, default_value = "vanish", value_parser = parse_delete_mode, help_heading = "Hostile modes")]
    deletes: DeleteMode,
    /// Hostile: before answering each request to /pagination or /incremental, make these
    /// changes, so that rows move while a client pages (deterministic, unlike a rate).
    #[arg(long, value_name = "U:I:D", value_parser = parse_mix, help_heading = "Hostile modes")]
    changes_per_request: Option<(u32, u32, u32)>,
    /// Make /pagination and /incremental demand the credentials of this scheme, as the
    /// /auth endpoints do (the reference's data endpoints take none).
    #[arg(long, value_name = "SCHEME", value_parser = parse_scheme, help_heading = "Authentication")]
    require_auth: Option<AuthScheme>,
    /// Hostile: readers see a replica on which each change appears after its own seeded delay
    /// of 0 to SECONDS seconds, so rows show up out of updatedAt order (initial users newer
    /// than SECONDS are hidden until then); /_truth shows the primary.
    #[arg(long, default_value_t = 0, value_name = "SECONDS", help_heading = "Hostile modes")]
    replica_lag: u32,
    /// Hostile: fault this fraction of user-endpoint requests, spread evenly over 500s, 429
    /// bursts, cut connections, malformed JSON and bad records. Each kind can be set below.
    #[arg(long, value_name = "RATE", help_heading = "Faults")]
    faults: Option<f64>,
    /// Rate of `500` responses.
    #[arg(long = "fault-500", value_name = "RATE", help_heading = "Faults")]
    fault_500: Option<f64>,
    /// Rate of 429 bursts (see --burst-length).
    #[arg(long = "fault-429", value_name = "RATE", help_heading = "Faults")]
    fault_429: Option<f64>,
    /// Consecutive 429s in a burst.
    #[arg(long, default_value_t = 3, help_heading = "Faults")]
    burst_length: u32,
    /// Retry-After of a burst's 429s, in seconds.
    #[arg(long, default_value_t = 1, value_name = "SECONDS", help_heading = "Faults")]
    burst_retry_after: u32,
    /// Rate of connections cut half-way through the body.
    #[arg(long, value_name = "RATE", help_heading = "Faults")]
    fault_cut: Option<f64>,
    /// Rate of `200` responses whose body is not valid JSON.
    #[arg(long, value_name = "RATE", help_heading = "Faults")]
    fault_malformed: Option<f64>,
    /// Rate of responses with one record missing a field or with a wrongly typed one.
    #[arg(long, value_name = "RATE", help_heading = "Faults")]
    fault_bad_record: Option<f64>,
    /// Latency added to each user-endpoint response (±50%, seeded).
    #[arg(long, default_value_t = 0, value_name = "MS", help_heading = "Faults")]
    latency_ms: u64,
}

fn parse_instant(text: &str) -> Result<i64, String> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|e| format!("expected an RFC 3339 instant such as 2026-11-20T00:00:00Z ({e})"))
}

fn parse_switch(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn parse_mix(text: &str) -> Result<(u32, u32, u32), String> {
    let parts: Vec<&str> = text.split(':').collect();
    let weights: Result<Vec<u32>, _> = parts.iter().map(|p| p.trim().parse::<u32>()).collect();
    match weights.as_deref() {
        Ok([u, i, d]) => Ok((*u, *i, *d)),
        _ => Err("expected three whole weights, updates:inserts:deletes, such as 70:20:10".into()),
    }
}

fn parse_scheme(text: &str) -> Result<AuthScheme, String> {
    match text {
        "api_key" => Ok(AuthScheme::ApiKey),
        "bearer" => Ok(AuthScheme::Bearer),
        "basic" => Ok(AuthScheme::Basic),
        "session_token" => Ok(AuthScheme::SessionToken),
        _ => Err("expected api_key, bearer, basic or session_token".into()),
    }
}

fn parse_delete_mode(text: &str) -> Result<DeleteMode, String> {
    match text {
        "vanish" => Ok(DeleteMode::Vanish),
        "tombstone" => Ok(DeleteMode::Tombstone),
        _ => Err("expected vanish or tombstone".into()),
    }
}

impl DataArgs {
    fn config(&self) -> PlaygroundConfig {
        PlaygroundConfig {
            users: self.users,
            seed: self.seed,
            now: self.now,
            page_size_limit: self.page_size_limit,
            ties: self.ties.map(|fraction| TiesConfig { fraction, max_group: self.tie_max_group }),
            gaps: self.gaps.map(|rate| GapsConfig { rate, max_len: self.gap_max_len }),
            ..PlaygroundConfig::default()
        }
    }
}

impl ServeArgs {
    fn config(&self) -> PlaygroundConfig {
        let mut faults = self.faults.map(FaultsConfig::evenly).unwrap_or_default();
        for (flag, slot) in [
            (self.fault_500, &mut faults.server_errors),
            (self.fault_429, &mut faults.throttle_bursts),
            (self.fault_cut, &mut faults.cut_bodies),
            (self.fault_malformed, &mut faults.malformed_bodies),
            (self.fault_bad_record, &mut faults.bad_records),
        ] {
            if let Some(rate) = flag {
                *slot = rate;
            }
        }
        faults.burst_length = self.burst_length;
        faults.burst_retry_after = self.burst_retry_after;
        faults.latency = Duration::from_millis(self.latency_ms);
        let (updates, inserts, deletes) = self.change_mix;
        PlaygroundConfig {
            rate_limit: (self.rate_limit == Some(true))
                .then_some(RateLimit { capacity: self.capacity, refill_per_second: self.refill_per_second }),
            changes: self.changes_per_second.map(|per_second| ChangesConfig { per_second, updates, inserts, deletes }),
            changes_per_request: self.changes_per_request.map(|(updates, inserts, deletes)| ChangeBatch {
                updates,
                inserts,
                deletes,
            }),
            require_auth: self.require_auth,
            delete_mode: self.deletes,
            replica_lag_seconds: self.replica_lag,
            faults,
            ..self.data.config()
        }
    }
}

impl PlaygroundArgs {
    /// Whether request logging was turned off.
    pub fn is_quiet(&self) -> bool {
        self.command.is_none() && self.serve.quiet
    }
}

/// Runs `inlet playground`.
pub fn run(args: PlaygroundArgs) -> Result<Exit, Failure> {
    match args.command {
        Some(PlaygroundCommand::Dump(dump)) => run_dump(dump),
        None => serve(args.serve),
    }
}

fn serve(args: ServeArgs) -> Result<Exit, Failure> {
    let config = args.config();
    config.validate().map_err(Failure::usage)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(usize::from(threads));
    }
    let runtime = runtime.enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let addr = SocketAddr::new(args.host, args.port);
        let playground = inlet_playground::start(config.clone(), addr).await.map_err(|e| match e {
            inlet_playground::StartError::Config(e) => Failure::usage(e),
            other => Failure::from(anyhow::Error::new(other).context("the playground could not start")),
        })?;
        print_banner(&playground, &config, args.quiet);
        playground
            .serve_until(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        eprintln!("inlet playground: stopped");
        Ok(Exit::Success)
    })
}

fn print_banner(playground: &inlet_playground::RunningPlayground, config: &PlaygroundConfig, quiet: bool) {
    let url = playground.url();
    let c = playground.credentials();
    let now = inlet_playground::format_timestamp(playground.now());
    let mut out = String::new();
    out.push_str(&format!(
        "inlet playground: {} users, seed {}, now {now}, pages of at most {}\n\n",
        config.users, config.seed, config.page_size_limit
    ));
    let rows = [
        ("Keyset pagination", format!("GET  {url}/pagination/keyset"), String::new()),
        ("Offset pagination", format!("GET  {url}/pagination/offset"), String::new()),
        ("Page number pagination", format!("GET  {url}/pagination/page_number"), String::new()),
        ("Next page URL pagination", format!("GET  {url}/pagination/next_page_url"), String::new()),
        ("Timestamp incremental", format!("GET  {url}/incremental/timestamp"), String::new()),
        ("Step-size incremental", format!("GET  {url}/incremental/step"), String::new()),
        (
            "HTTP Basic",
            format!("GET  {url}/auth/http_basic"),
            format!("username {}  password {}", c.basic_username, c.basic_password),
        ),
        ("HTTP Bearer", format!("GET  {url}/auth/http_bearer"), format!("token {}", c.bearer_token)),
        ("API key", format!("GET  {url}/auth/api_key"), format!("Authorization: apiKey {}", c.api_key)),
        (
            "Session token login",
            format!("POST {url}/auth/session_token/login"),
            format!("username {}  password {}", c.session_username, c.session_password),
        ),
        ("Session token data", format!("GET  {url}/auth/session_token/data"), "Authorization: Token <token>".into()),
        ("Ground truth (NDJSON)", format!("GET  {url}/_truth"), String::new()),
    ];
    for (name, endpoint, credentials) in rows {
        out.push_str(&format!("  {name:<26} {endpoint:<58} {credentials}\n"));
    }
    let mut modes = Vec::new();
    if let Some(r) = &config.rate_limit {
        modes.push(format!("rate limit {} tokens, {}/s", r.capacity, r.refill_per_second));
    }
    if let Some(t) = &config.ties {
        modes.push(format!("ties {} (groups up to {})", t.fraction, t.max_group));
    }
    if let Some(g) = &config.gaps {
        modes.push(format!("gaps {} (holes up to {} ids)", g.rate, g.max_len));
    }
    if let Some(c) = &config.changes {
        modes.push(format!(
            "{} changes/s ({}:{}:{}), deletes {:?}",
            c.per_second, c.updates, c.inserts, c.deletes, config.delete_mode
        ));
    }
    if config.replica_lag_seconds > 0 {
        modes.push(format!("replica lag {} s", config.replica_lag_seconds));
    }
    if config.faults.total_rate() > 0.0 || !config.faults.latency.is_zero() {
        modes.push(format!(
            "faults {:.3} of requests, latency {:?}",
            config.faults.total_rate(),
            config.faults.latency
        ));
    }
    if !modes.is_empty() {
        out.push_str(&format!("\n  hostile: {}\n", modes.join("; ")));
    }
    let logging = if quiet { "" } else { ", requests are logged on stderr" };
    out.push_str(&format!("\nServing on {url} (Ctrl-C to stop{logging})\n"));
    print!("{out}");
    let _ = std::io::stdout().flush();
}

fn run_dump(args: DumpArgs) -> Result<Exit, Failure> {
    let mut output: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match &args.from {
        None => {
            let config = args.data.config();
            inlet_playground::write_initial_truth(&config, |chunk| output.write_all(chunk)).map_err(|e| match e {
                inlet_playground::DumpError::Config(e) => Failure::usage(e),
                other => Failure::from(anyhow::Error::new(other)),
            })?;
        }
        Some(url) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(fetch_truth(url, &mut output))?;
        }
    }
    output.flush().context("cannot write the dump")?;
    Ok(Exit::Success)
}

async fn fetch_truth(base_url: &str, output: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let url = format!("{}/_truth", base_url.trim_end_matches('/'));
    let mut response = reqwest::get(&url).await.with_context(|| format!("cannot reach {url}"))?;
    if !response.status().is_success() {
        bail!("{url} answered {}: is it an inlet playground?", response.status());
    }
    while let Some(chunk) = response.chunk().await.with_context(|| format!("reading {url}"))? {
        output.write_all(&chunk).context("cannot write the dump")?;
    }
    Ok(())
}
