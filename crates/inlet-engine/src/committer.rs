//! The committer: a thread that owns the destination and commits the transactions the writer
//! hands it, so that the writer converts the next transaction's records meanwhile.
//!
//! At most one transaction commits at a time and they commit in the order they were handed
//! over: the hand-over waits until the previous commit is done. After a failed commit the
//! committer takes nothing more, and the writer learns the error at its next hand-over, at
//! its next batch, or when it finishes.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
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
pub(crate) struct Committed {
    pub rows: usize,
    pub state: State,
}

pub(crate) struct Committer {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Result<Committed, DestinationError>>,
    /// Transactions handed over whose result is not yet received.
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
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
        Committer { jobs: Some(jobs), results, in_flight: 0, thread: Some(thread) }
    }

    /// Hands `job` over, once the previous commit is done; `done` receives each commit that
    /// finished. Fails with the error of a failed commit.
    pub(crate) fn send(&mut self, job: Job, done: &mut impl FnMut(Committed)) -> Result<(), DestinationError> {
        self.poll(done)?;
        let handed = self.jobs.as_ref().is_some_and(|jobs| jobs.send(job).is_ok());
        if handed {
            self.in_flight += 1;
        } else {
            // The thread stopped after a failed commit: its error says why.
            self.finish(done)?;
            return Err(DestinationError::new(
                DestinationErrorKind::Write,
                "the commit thread stopped before taking a transaction",
            ));
        }
        Ok(())
    }

    /// Passes the commits finished so far to `done`, without waiting.
    pub(crate) fn poll(&mut self, done: &mut impl FnMut(Committed)) -> Result<(), DestinationError> {
        loop {
            match self.results.try_recv() {
                Ok(result) => {
                    self.in_flight -= 1;
                    done(result?);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return Ok(()),
            }
        }
    }

    /// Waits until every commit handed over is done, passing each to `done`.
    pub(crate) fn wait(&mut self, done: &mut impl FnMut(Committed)) -> Result<(), DestinationError> {
        while self.in_flight > 0 {
            let Ok(result) = self.results.recv() else {
                // The thread died without answering: a panic, raised here.
                return self.finish(done);
            };
            self.in_flight -= 1;
            done(result?);
        }
        Ok(())
    }

    /// Waits for every commit handed over, passing each to `done`; the thread then ends.
    pub(crate) fn finish(&mut self, done: &mut impl FnMut(Committed)) -> Result<(), DestinationError> {
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
        {
            std::panic::resume_unwind(panic);
        }
        self.poll(done)
    }
}
