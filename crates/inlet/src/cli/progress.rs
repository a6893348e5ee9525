//! Progress while a sync runs: a live line on a terminal, a log line every few seconds
//! otherwise; and the summary at the end.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use inlet_connectors::SourceStats;
use inlet_engine::{Observer, SyncReport};
use inlet_sdk::State;

use super::LogFormat;

/// Seconds between two progress lines when not on a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Follows a sync: counts commits and rows, and shows them.
pub struct Progress {
    started: Instant,
    rows: AtomicU64,
    commits: AtomicU64,
    warnings: AtomicU64,
    stats: Option<Arc<SourceStats>>,
    bar: Option<ProgressBar>,
    last_line: Mutex<Instant>,
}

impl Progress {
    /// A bar on a terminal (text logs only), log lines otherwise.
    pub fn new(format: LogFormat, stats: Option<Arc<SourceStats>>) -> Arc<Self> {
        let bar = (format == LogFormat::Text && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").expect("a valid template"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Arc::new(Progress {
            started: Instant::now(),
            rows: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            warnings: AtomicU64::new(0),
            stats,
            bar,
            last_line: Mutex::new(Instant::now()),
        })
    }

    fn line(&self) -> String {
        let rows = self.rows.load(Ordering::Relaxed);
        let rate = rows as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let mut line = format!(
            "{} rows committed ({:.0} rows/s), {} commits",
            group(rows),
            rate,
            self.commits.load(Ordering::Relaxed)
        );
        if let Some(stats) = &self.stats {
            line.push_str(&format!(", {} requests, {} retries", stats.requests(), stats.retries()));
        }
        line
    }

    /// Refreshes the live line (called on a timer, so fetching shows even between commits).
    pub fn tick(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(self.line());
        }
    }

    /// Removes the live line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Warnings raised by the connector.
    pub fn warnings(&self) -> u64 {
        self.warnings.load(Ordering::Relaxed)
    }
}

impl Observer for Progress {
    fn committed(&self, rows: usize, took: Duration, state: &State) {
        self.rows.fetch_add(rows as u64, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(rows, took_ms = took.as_millis() as u64, state = %state.to_json(), "committed");
        if self.bar.is_some() {
            self.tick();
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= LOG_EVERY {
            *last = Instant::now();
            tracing::info!("{}", self.line());
        }
    }

    fn warning(&self, message: &str) {
        self.warnings.fetch_add(1, Ordering::Relaxed);
        match &self.bar {
            Some(bar) => bar.suspend(|| tracing::warn!("{message}")),
            None => tracing::warn!("{message}"),
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a sync reports at its end.
pub struct Summary<'a> {
    pub connector: &'a str,
    pub destination: &'a str,
    pub report: &'a SyncReport,
    pub stats: Option<&'a SourceStats>,
    pub warnings: u64,
}

impl Summary<'_> {
    /// The summary as JSON.
    pub fn json(&self) -> serde_json::Value {
        let r = self.report;
        let o = r.operations;
        serde_json::json!({
            "connector": self.connector,
            "destination": self.destination,
            "outcome": if r.stopped { "stopped" } else { "completed" },
            "upserts": o.upserts, "updates": o.updates, "deletes": o.deletes, "truncates": o.truncates,
            "checkpoints": o.checkpoints, "warnings": self.warnings,
            "requests": self.stats.map(SourceStats::requests), "retries": self.stats.map(SourceStats::retries),
            "commits": r.commits, "rows_written": r.rows_written,
            "duration_seconds": r.duration.as_secs_f64(),
            "state": r.final_state.as_ref().map(State::to_json),
        })
    }

    /// The summary as a table for people.
    pub fn table(&self) -> String {
        let r = self.report;
        let o = r.operations;
        let outcome = if r.stopped { "stopped by Ctrl-C (what was received is committed)" } else { "completed" };
        let mut rows: Vec<(&str, String)> = vec![
            ("upserts", group(o.upserts)),
            ("updates", group(o.updates)),
            ("deletes", group(o.deletes)),
            ("truncates", group(o.truncates)),
            ("checkpoints", group(o.checkpoints)),
        ];
        if let Some(stats) = self.stats {
            rows.push(("requests", group(stats.requests())));
            rows.push(("retries", group(stats.retries())));
        }
        rows.push(("commits", group(r.commits)));
        rows.push(("warnings", group(self.warnings)));
        rows.push(("duration", format!("{:.2} s", r.duration.as_secs_f64())));
        let state = r.final_state.as_ref().map_or_else(|| "(none)".to_owned(), |s| s.to_json().to_string());
        let mut out = format!("inlet sync {outcome}: {} -> {}\n", self.connector, self.destination);
        for (name, value) in rows {
            out.push_str(&format!("  {name:<12} {value:>12}\n"));
        }
        out.push_str(&format!("  {:<12} {state}\n", "state"));
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(super::group(0), "0");
        assert_eq!(super::group(999), "999");
        assert_eq!(super::group(1000), "1,000");
        assert_eq!(super::group(1_234_567), "1,234,567");
    }
}
