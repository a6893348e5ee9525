//! The committer: a thread that owns the destination and commits the transactions the writer
//! hands it, so that the writer converts the next transaction's records meanwhile.
//!
//! At most one transaction commits at a time and they commit in the order they were handed
//! over: the hand-over waits until the previous commit is done. After a failed commit the
//! committer takes nothing more, and the writer learns the error at its next hand-over, at
//! its next batch, or when it finishes.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Instant;

use inlet_sdk::State;

use crate::destination::{
    Destination, DestinationError, DestinationErrorKind, SavedState, Segment, TableSpec, Transaction,
};
use crate::failpoint;
use crate::sync::Observer;

/// A transaction, owned, as the writer hands it over.
pub(crate) struct Job {
    pub tables: Vec<TableSpec>,
    pub segments: Vec<Segment>,
    pub state: SavedState,
}

/// A commit that succeeded.
struct Committed {
    rows: usize,
    state: State,
}

/// What was committed.
#[derive(Clone, Debug, Default)]
pub(crate) struct CommitReport {
    pub commits: u64,
    pub rows: u64,
    pub last_state: Option<State>,
}

pub(crate) struct Committer {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Result<Committed, DestinationError>>,
    /// Transactions handed over whose result is not yet received.
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
    report: CommitReport,
}

impl Committer {
    /// Starts the thread that commits into `destination`, telling `observer` of each commit.
    pub(crate) fn start(mut destination: Box<dyn Destination>, observer: Arc<dyn Observer>) -> Self {
        // No buffer: a hand-over completes only when the thread is free to take it.
        let (jobs, inbox) = std::sync::mpsc::sync_channel::<Job>(0);
        let (outbox, results) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("inlet-commit".into())
            .spawn(move || {
                for job in inbox {
                    let transaction = Transaction {
                        tables: &job.tables,
                        segments: &job.segments,
                        state: &job.state,
                        synced_at: jiff::Timestamp::now(),
                    };
                    let rows = transaction.row_count();
                    let started = Instant::now();
                    let result = destination.commit(&transaction);
                    let failed = result.is_err();
                    if !failed {
                        failpoint::hit("commit.after");
                        observer.committed(rows, started.elapsed(), &job.state.state);
                    }
                    let _ = outbox.send(result.map(|()| Committed { rows, state: job.state.state }));
                    if failed {
                        break;
                    }
                }
            })
            .expect("the commit thread starts");
        Committer { jobs: Some(jobs), results, in_flight: 0, thread: Some(thread), report: CommitReport::default() }
    }

    /// Hands `job` over, once the previous commit is done. Fails with the error of a failed
    /// commit.
    pub(crate) fn send(&mut self, job: Job) -> Result<(), DestinationError> {
        self.poll()?;
        let handed = self.jobs.as_ref().is_some_and(|jobs| jobs.send(job).is_ok());
        if handed {
            self.in_flight += 1;
        } else {
            // The thread stopped after a failed commit: its error says why.
            self.finish()?;
            return Err(DestinationError::new(
                DestinationErrorKind::Write,
                "the commit thread stopped before taking a transaction",
            ));
        }
        Ok(())
    }

    /// Counts the commits finished so far, without waiting; fails with a commit's error.
    pub(crate) fn poll(&mut self) -> Result<(), DestinationError> {
        while let Ok(result) = self.results.try_recv() {
            self.count(result)?;
        }
        Ok(())
    }

    /// Waits until every commit handed over is done.
    pub(crate) fn wait(&mut self) -> Result<(), DestinationError> {
        while self.in_flight > 0 {
            let Ok(result) = self.results.recv() else {
                // The thread died without answering: a panic, raised here.
                return self.finish();
            };
            self.count(result)?;
        }
        Ok(())
    }

    /// Waits for every commit handed over; the thread then ends.
    pub(crate) fn finish(&mut self) -> Result<(), DestinationError> {
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
        {
            std::panic::resume_unwind(panic);
        }
        self.poll()
    }

    /// What was committed, once [`finish`](Committer::finish) has returned.
    pub(crate) fn into_report(self) -> CommitReport {
        self.report
    }

    fn count(&mut self, result: Result<Committed, DestinationError>) -> Result<(), DestinationError> {
        self.in_flight -= 1;
        let committed = result?;
        self.report.commits += 1;
        self.report.rows += committed.rows as u64;
        self.report.last_state = Some(committed.state);
        Ok(())
    }
}
