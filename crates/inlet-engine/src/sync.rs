//! One sync: the connector fetching on the async runtime, the writer committing on its own
//! thread, a bounded channel between them.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use inlet_sdk::{Configuration, Connector, ErrorKind, OperationCounts, Operations, State};

use crate::destination::{Destination, DestinationError};
use crate::tables::Tables;
use crate::writer::{CommitPolicy, Ending, Writer};

/// Tuning of a sync. The defaults suit pages of 50 to 1,000 records.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Changes the connector may run ahead of the writer before it waits, about 530 bytes
    /// each. Three eighths of the default took 5 MB off the peak of a first sync of 1,000,000
    /// users into DuckDB in the same time with pages of 1,000, but made it 1.12 times slower
    /// with pages of 50 (docs/performance.md, twelfth round).
    pub queue_changes: usize,
    /// Changes after which a batch is sent even without a checkpoint.
    pub batch_changes: usize,
    /// Rows after which the writer commits without waiting to catch up.
    pub commit_rows: usize,
    /// Proven rows the writer hands over together, to be written into the open transaction
    /// ahead of its commit: with `queue_changes`, what bounds the rows held in memory. `None`:
    /// the destination's [`piece_rows`](Destination::piece_rows).
    pub piece_rows: Option<usize>,
    /// Longest a checkpoint waits for its commit while the writer is behind.
    pub commit_delay: Duration,
    /// Shortest life of a transaction committed because the writer caught up with the
    /// connector: with small pages, the checkpoints of this long share one transaction
    /// instead of paying a commit each. `None`: the destination's
    /// [`commit_interval`](Destination::commit_interval).
    pub commit_interval: Option<Duration>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            queue_changes: 16_000,
            batch_changes: 5_000,
            commit_rows: 50_000,
            piece_rows: None,
            commit_delay: Duration::from_secs(2),
            commit_interval: None,
        }
    }
}

/// What a sync did.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    /// Operations the connector emitted.
    pub operations: OperationCounts,
    /// Transactions committed.
    pub commits: u64,
    /// Rows written by those transactions.
    pub rows_written: u64,
    /// The state committed last (`None` if nothing was committed).
    pub final_state: Option<State>,
    /// Whether the sync was stopped (Ctrl-C) before the connector finished.
    pub stopped: bool,
    /// Wall time.
    pub duration: Duration,
}

/// Why a sync failed. In every case the warehouse holds exactly what the last successful
/// commit left: data and state together.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The connector failed: configuration, saved state or source (see its kind).
    #[error(transparent)]
    Connector(inlet_sdk::Error),
    /// The connector declared an impossible schema.
    #[error("the connector's schema is invalid: {0}")]
    Schema(String),
    /// A record cannot be written to its table.
    #[error("a record cannot be written: {0}")]
    Data(String),
    /// The destination failed.
    #[error(transparent)]
    Destination(DestinationError),
}

/// Follows a sync as it goes; the engine calls it from its threads.
pub trait Observer: Send + Sync {
    /// A transaction of `rows` rows and `state` was committed; writing and committing it
    /// took `took` in the destination.
    fn committed(&self, rows: usize, took: Duration, state: &State) {
        let _ = (rows, took, state);
    }

    /// The connector raised a warning.
    fn warning(&self, message: &str) {
        let _ = message;
    }
}

/// An observer that watches nothing.
pub struct Silent;

impl Observer for Silent {}

/// Runs one sync of `connector` into `destination`, until the connector returns, fails, or
/// `stop` completes (the data received so far is then committed and the report says
/// `stopped`).
pub async fn sync<C: Connector>(
    connector: &C,
    configuration: &Configuration,
    destination: Box<dyn Destination>,
    options: &SyncOptions,
    observer: Arc<dyn Observer>,
    stop: impl Future<Output = ()>,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let declared = connector.schema(configuration).map_err(SyncError::Connector)?;
    let tables = Tables::new(&declared).map_err(SyncError::Schema)?;
    let name = connector.name(configuration);

    let (operations, batches) = Operations::channel(options.queue_changes, options.batch_changes);
    let ending = Arc::new(Mutex::new(Ending::Failed));
    let (saved_tx, saved_rx) = tokio::sync::oneshot::channel();
    // Fires if the writer fails, so that a connector waiting on its source stops at once.
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<()>();
    let policy = CommitPolicy {
        max_rows: options.commit_rows,
        piece_rows: options.piece_rows.unwrap_or_else(|| destination.piece_rows()),
        max_delay: options.commit_delay,
        min_delay: options.commit_interval.unwrap_or_else(|| destination.commit_interval()),
    };
    let writer_ending = ending.clone();
    let writer_observer = observer.clone();
    let writer_name = name.clone();
    let writer = std::thread::Builder::new()
        .name("inlet-writer".into())
        .spawn(move || {
            let mut destination = destination;
            let saved = match destination.saved_state() {
                Ok(saved) => saved,
                Err(e) => {
                    let _ = saved_tx.send(Err(()));
                    return Err(SyncError::Destination(e));
                }
            };
            let _ = saved_tx.send(Ok(saved.clone()));
            let state = saved.map(|s| s.state).unwrap_or_default();
            let result = Writer::new(destination, tables, writer_name, state, policy, writer_observer, writer_ending)
                .run(batches);
            if result.is_err() {
                let _ = failed_tx.send(());
            }
            result
        })
        .expect("the writer thread starts");

    let saved_read = saved_rx.await.unwrap_or(Err(()));
    let saved = saved_read.clone().ok().flatten();
    let outcome = match saved_read {
        Err(()) => None,
        Ok(_) => {
            let state = saved.as_ref().map(|s| s.state.clone()).unwrap_or_default();
            let mut operations = operations;
            let writer_failed = async {
                if failed_rx.await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            let outcome = tokio::select! {
                result = run_update(connector, configuration, &state, &mut operations) => Some(result),
                () = writer_failed => Some(Err(inlet_sdk::Error::stopped())),
                () = stop => None,
            };
            if outcome.is_none() {
                // Stopped: what the connector emitted but had not sent yet goes to the writer too.
                let _ = operations.flush().await;
            }
            let ending_now = match &outcome {
                Some(Ok(())) => Ending::Completed,
                None => Ending::Stopped,
                Some(Err(_)) => Ending::Failed,
            };
            *ending.lock().unwrap_or_else(|p| p.into_inner()) = ending_now;
            let counts = operations.counts();
            drop(operations);
            Some((outcome, counts))
        }
    };
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await
        .expect("joining the writer")
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));

    let (outcome, counts) = match outcome {
        Some(pair) => pair,
        // The saved state could not be read: the writer's error says why.
        None => return Err(written.expect_err("the writer stopped before reading the state")),
    };
    // The writer's failure is the root cause when the connector merely saw it stop.
    let report = written?;
    if let Some(Err(mut e)) = outcome {
        if e.kind() == ErrorKind::State
            && let Some(saved) = &saved
            && saved.connector != name
        {
            e = inlet_sdk::Error::state(format!(
                "{} (the saved state was written by `{}`, this configuration runs `{name}`: reset it with `inlet state reset`, or sync into another schema)",
                e.message(),
                saved.connector
            ));
        }
        return Err(SyncError::Connector(e));
    }
    Ok(SyncReport {
        operations: counts,
        commits: report.commits,
        rows_written: report.rows,
        final_state: report.last_state,
        stopped: outcome.is_none(),
        duration: started.elapsed(),
    })
}

/// Runs [`sync`] as a task of the current multi-threaded runtime and waits for it: what a
/// command that blocks on a runtime should call. The connector's future is woken once per
/// page it receives; polled by `Runtime::block_on` it lives on the blocked thread, so each
/// page's answer, and each request it starts, crosses to a worker thread and back. On a task
/// those hops stay among the workers: a first sync of 1,000,000 users in pages of 50 switched
/// threads a third less often and took a tenth less time (docs/performance.md, sixteenth round).
/// With one worker, as `inlet` runs it, they cross no thread at all.
pub async fn spawn_sync<C: Connector>(
    connector: Arc<C>,
    configuration: Configuration,
    destination: Box<dyn Destination>,
    options: SyncOptions,
    observer: Arc<dyn Observer>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<SyncReport, SyncError> {
    let run = async move { sync(connector.as_ref(), &configuration, destination, &options, observer, stop).await };
    match tokio::spawn(run).await {
        Ok(result) => result,
        // Only a runtime shutting down cancels a task, and it cannot while this waits on it.
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

async fn run_update<C: Connector>(
    connector: &C,
    configuration: &Configuration,
    state: &State,
    operations: &mut Operations,
) -> Result<(), inlet_sdk::Error> {
    connector.update(configuration, state, operations).await?;
    operations.flush().await
}
