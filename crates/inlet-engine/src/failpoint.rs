//! Named crash points for crash tests, compiled in only with the `failpoints` feature.
//!
//! `INLET_FAILPOINT=<name>[:<n>]` makes the process abort the `n`-th time (default: first)
//! it reaches `<name>`, as a `kill -9` would, leaving whatever the warehouse holds at that
//! instant. The points sit at every commit boundary:
//!
//! | name | where |
//! |---|---|
//! | `write.after_rows` | a piece of rows is written into the open transaction, no state yet |
//! | `write.before_commit` | the transaction's data and state are written, not yet committed |
//! | `commit.after` | a commit has returned; the writer may be building the next one |
//! | `batch.mid` | half of a batch's changes are converted, the rest not |
//! | `session.before_finish` | the sync's last commit is done, the destination's session not finished (PostgreSQL: tables it created still lack their key) |

/// Names of the failpoints, for documentation and tests.
pub const NAMES: [&str; 5] =
    ["write.after_rows", "write.before_commit", "commit.after", "batch.mid", "session.before_finish"];

/// Aborts the process here if `INLET_FAILPOINT` names this point and its count is reached.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEEN: Mutex<Option<(String, u64)>> = Mutex::new(None);
    static HITS: AtomicU64 = AtomicU64::new(0);
    let mut armed = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if armed.is_none() {
        let spec = std::env::var("INLET_FAILPOINT").unwrap_or_default();
        let (point, count) = spec.split_once(':').unwrap_or((&spec, "1"));
        *armed = Some((point.to_owned(), count.parse().unwrap_or(1)));
    }
    let (point, count) = armed.as_ref().expect("set above");
    if point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *count {
        eprintln!("inlet: failpoint {name} reached, aborting");
        std::process::abort();
    }
}

/// Without the `failpoints` feature, failpoints cost nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
