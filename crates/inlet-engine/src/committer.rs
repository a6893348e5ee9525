//! The committer: a thread that owns the destination and writes into it what the writer
//! hands over, so that the writer converts the next records meanwhile.
//!
//! Rows arrive in pieces and are written into the open transaction as they come, so neither
//! thread holds a whole transaction; the last piece comes with the state, and the
//! transaction is committed after it. Jobs are done one at a time, in the order they were
//! handed over: the hand-over waits until the previous job is done. After a failure the committer takes nothing more, and the writer
//! learns the error at its next hand-over, at its next batch, or when it finishes. When the
//! writer hangs up after its last commit, the committer finishes the destination's session.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use inlet_sdk::State;

use crate::destination::{Destination, DestinationError, DestinationErrorKind, SavedState, Segment, TableSpec};
use crate::failpoint;
use crate::sync::Observer;

/// What the writer hands over: changes to write into the open transaction (opened if none
/// is), with every table as it stands, and whether to commit it then.
pub(crate) struct Job {
    pub tables: Vec<TableSpec>,
    pub segments: Vec<Segment>,
    /// Commit the transaction with this state once the segments are written. The last piece
    /// and the commit go together, so that the writer is not kept waiting for the piece.
    pub commit: Option<SavedState>,
}

/// A commit that succeeded.
struct Committed {
    rows: usize,
    state: State,
}

/// A job's outcome: a commit reports what it committed.
type Outcome = Result<Option<Committed>, DestinationError>;

/// The transaction open in the destination.
#[derive(Default)]
struct Open {
    rows: usize,
    /// Time spent in the destination for it so far.
    busy: Duration,
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
    results: Receiver<Outcome>,
    /// Jobs handed over whose outcome is not yet received.
    in_flight: usize,
    /// Ends with the destination's [`finish`](Destination::finish).
    thread: Option<JoinHandle<Result<(), DestinationError>>>,
    report: CommitReport,
}

impl Committer {
    /// Starts the thread that writes into `destination`, telling `observer` of each commit.
    pub(crate) fn start(mut destination: Box<dyn Destination>, observer: Arc<dyn Observer>) -> Self {
        // No buffer: a hand-over completes only when the thread is free to take it.
        let (jobs, inbox) = std::sync::mpsc::sync_channel::<Job>(0);
        let (outbox, results) = std::sync::mpsc::channel();
        // No buffer either: rows wait to be freed only while the previous piece is.
        let (spent, bin) = std::sync::mpsc::sync_channel::<Vec<Segment>>(0);
        std::thread::Builder::new()
            .name("inlet-free".into())
            .spawn(move || bin.into_iter().for_each(drop))
            .expect("the thread freeing written rows starts");
        let thread = std::thread::Builder::new()
            .name("inlet-commit".into())
            .spawn(move || serve(destination.as_mut(), observer.as_ref(), inbox, outbox, spent))
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
                "the commit thread stopped before taking the next rows",
            ));
        }
        Ok(())
    }

    /// Counts the jobs finished so far, without waiting; fails with a job's error.
    pub(crate) fn poll(&mut self) -> Result<(), DestinationError> {
        while let Ok(result) = self.results.try_recv() {
            self.count(result)?;
        }
        Ok(())
    }

    /// Waits until every job handed over is done.
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

    /// Waits for every job handed over; the thread then finishes the destination's session
    /// and ends (a transaction still open is abandoned with the destination). Fails with a
    /// job's error first, then with the session's.
    pub(crate) fn finish(&mut self) -> Result<(), DestinationError> {
        self.jobs = None;
        let session = match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(session)) => session,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
        };
        self.poll()?;
        session
    }

    /// What was committed, once [`finish`](Committer::finish) has returned.
    pub(crate) fn into_report(self) -> CommitReport {
        self.report
    }

    fn count(&mut self, outcome: Outcome) -> Result<(), DestinationError> {
        self.in_flight -= 1;
        let Some(committed) = outcome? else { return Ok(()) };
        self.report.commits += 1;
        self.report.rows += committed.rows as u64;
        self.report.last_state = Some(committed.state);
        Ok(())
    }
}

/// The commit thread: does each job until the writer hangs up or a job fails (whose error
/// goes out with its outcome); once every job succeeded and no transaction is left open,
/// finishes the destination's session.
///
/// Written rows go to `spent` to be freed on another thread: they were allocated on the threads
/// that fetched and converted them, and freeing them took a tenth of this thread's time, the
/// sync's bottleneck (docs/performance.md). They go as soon as they are written, before the
/// commit: a commit that checkpoints keeps this thread longest, while the connector fills the
/// queue, and the memory peaks then.
fn serve(
    destination: &mut dyn Destination,
    observer: &dyn Observer,
    inbox: Receiver<Job>,
    outbox: Sender<Outcome>,
    spent: SyncSender<Vec<Segment>>,
) -> Result<(), DestinationError> {
    let mut open = None;
    for job in inbox {
        let outcome = perform(destination, observer, &mut open, job, &spent);
        let failed = outcome.is_err();
        let _ = outbox.send(outcome);
        if failed {
            return Ok(());
        }
    }
    if open.is_some() {
        return Ok(());
    }
    failpoint::hit("session.before_finish");
    destination.finish()
}

fn perform(
    destination: &mut dyn Destination,
    observer: &dyn Observer,
    open: &mut Option<Open>,
    Job { tables, segments, commit }: Job,
    spent: &SyncSender<Vec<Segment>>,
) -> Outcome {
    let started = Instant::now();
    if open.is_none() {
        destination.begin(jiff::Timestamp::now())?;
    }
    let transaction = open.get_or_insert_with(Open::default);
    destination.write(&tables, &segments)?;
    failpoint::hit("write.after_rows");
    transaction.rows += segments.iter().map(Segment::row_count).sum::<usize>();
    // Cannot fail: the freeing thread runs until `spent` is dropped. (Rows of a failed job
    // are freed here: the thread stops after it.)
    let _ = spent.send(segments);
    let Some(saved) = commit else {
        transaction.busy += started.elapsed();
        return Ok(None);
    };
    let Open { rows, busy } = open.take().unwrap_or_default();
    destination.commit(&saved)?;
    failpoint::hit("commit.after");
    observer.committed(rows, busy + started.elapsed(), &saved.state);
    Ok(Some(Committed { rows, state: saved.state }))
}
