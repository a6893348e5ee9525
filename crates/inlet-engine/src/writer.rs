//! The writer: a thread that converts records to rows and decides what each commit holds;
//! the committer (see [`crate::committer`]) writes one piece of a transaction while the
//! writer converts the next.
//!
//! Batches arrive over a bounded channel while the connector keeps fetching. A checkpoint is
//! committed as soon as the writer has caught up with the connector, or once the open
//! transaction is large or old enough; under load several checkpoints share one transaction,
//! and the latest state proves them all. Rows proven by a checkpoint go to the committer in
//! pieces as they accumulate, so memory holds a few pieces, not a transaction. Data after the
//! last checkpoint is committed only when the sync ends normally or is stopped, never when it
//! fails: it stays with the writer until a checkpoint proves it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use inlet_sdk::{Batch, Batches, Change, State, Value};
use tokio::sync::mpsc::error::TryRecvError;

use crate::committer::{CommitReport, Committer, Job};
use crate::destination::{Destination, Row, SavedState, Segment};
use crate::failpoint;
use crate::sync::{Observer, SyncError};
use crate::tables::{DataError, Tables};

/// How the connector's side ended; decides what the writer commits of what is pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// `update` returned `Ok`: commit everything.
    Completed,
    /// Stopped on request (Ctrl-C): commit everything received.
    Stopped,
    /// `update` failed: commit up to the last checkpoint, drop the rest.
    Failed,
}

/// When to commit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CommitPolicy {
    pub max_rows: usize,
    /// Proven rows handed to the committer together, ahead of the commit.
    pub piece_rows: usize,
    pub max_delay: Duration,
    /// A caught-up writer commits only a transaction at least this old; a younger one waits
    /// this long for more batches first.
    pub min_delay: Duration,
}

#[derive(Default)]
struct Pending {
    segments: Vec<Segment>,
    rows: usize,
}

impl Pending {
    fn append(&mut self, other: Pending) {
        for segment in other.segments {
            push_segment(&mut self.segments, segment);
        }
        self.rows += other.rows;
    }
}

/// Appends `segment`, merging it into the last one when both have the same kind and table.
fn push_segment(segments: &mut Vec<Segment>, segment: Segment) {
    match (segments.last_mut(), segment) {
        (Some(Segment::Upserts { table: a, rows }), Segment::Upserts { table: b, rows: more }) if *a == b => {
            rows.extend(more)
        }
        (Some(Segment::Deletes { table: a, keys }), Segment::Deletes { table: b, keys: more }) if *a == b => {
            keys.extend(more)
        }
        (Some(Segment::Patches { table: a, patches }), Segment::Patches { table: b, patches: more }) if *a == b => {
            patches.extend(more)
        }
        (_, segment) => segments.push(segment),
    }
}

pub(crate) struct Writer {
    committer: Committer,
    tables: Tables,
    connector: String,
    policy: CommitPolicy,
    observer: Arc<dyn Observer>,
    ending: Arc<Mutex<Ending>>,
    /// State of the last transaction handed to the committer (or the saved one).
    committed: State,
    /// Data up to the latest checkpoint, not yet handed over, and that checkpoint.
    proven: Pending,
    checkpoint: Option<State>,
    /// Rows handed over into the open transaction, all proven by `checkpoint`.
    handed: usize,
    /// Data after the latest checkpoint.
    unproven: Pending,
    opened: Option<Instant>,
    tables_created: bool,
}

impl Writer {
    pub(crate) fn new(
        destination: Box<dyn Destination>,
        tables: Tables,
        connector: String,
        saved: State,
        policy: CommitPolicy,
        observer: Arc<dyn Observer>,
        ending: Arc<Mutex<Ending>>,
    ) -> Self {
        Writer {
            committer: Committer::start(destination, observer.clone()),
            tables,
            connector,
            policy,
            observer,
            ending,
            committed: saved,
            proven: Pending::default(),
            checkpoint: None,
            handed: 0,
            unproven: Pending::default(),
            opened: None,
            tables_created: false,
        }
    }

    /// Consumes batches until the connector side hangs up, then commits according to how it
    /// ended, and waits for the last commit. On an error the receiver is dropped, which stops
    /// the connector.
    pub(crate) fn run(mut self, batches: Batches) -> Result<CommitReport, SyncError> {
        let outcome = self.consume(batches);
        // Whatever happened, the commits already handed over finish (or fail) first.
        let finished = self.committer.finish().map_err(SyncError::Destination);
        outcome.and(finished).map(|()| self.committer.into_report())
    }

    fn consume(&mut self, mut batches: Batches) -> Result<(), SyncError> {
        // Waits for batches with a deadline; the writer runs on a thread of its own.
        let clock =
            tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a timer for the writer thread");
        loop {
            let batch = match batches.try_recv() {
                Ok(batch) => batch,
                Err(TryRecvError::Empty) => {
                    // Caught up with the connector: this is the moment to commit, once the
                    // transaction has lived long enough to be worth its cost.
                    if self.checkpoint.is_some() {
                        let age = self.opened.map_or(Duration::ZERO, |o| o.elapsed());
                        if age < self.policy.min_delay {
                            let wait = self.policy.min_delay - age;
                            match clock.block_on(async { tokio::time::timeout(wait, batches.recv()).await }) {
                                Ok(Some(batch)) => {
                                    self.absorb_or_fail(batch)?;
                                    continue;
                                }
                                Ok(None) => break,
                                Err(_) => {}
                            }
                        }
                        self.commit(true)?;
                    }
                    // Idle until the next batch: let the commit in flight finish first, so
                    // that its failure stops the connector at once.
                    self.committer.wait().map_err(SyncError::Destination)?;
                    match batches.blocking_recv() {
                        Some(batch) => batch,
                        None => break,
                    }
                }
                Err(TryRecvError::Disconnected) => break,
            };
            self.absorb_or_fail(batch)?;
        }
        let ending = *self.ending.lock().unwrap_or_else(|p| p.into_inner());
        if ending == Ending::Failed {
            self.unproven = Pending::default();
        }
        let pending = self.checkpoint.is_some()
            || self.handed + self.proven.rows + self.unproven.rows > 0
            || !self.proven.segments.is_empty()
            || !self.unproven.segments.is_empty();
        if pending || (ending == Ending::Completed && !self.tables_created) {
            self.commit(ending != Ending::Failed)?;
        }
        Ok(())
    }

    /// Absorbs `batch`; when one of its records cannot be written, commits the batches
    /// before it (they are whole) and fails.
    fn absorb_or_fail(&mut self, batch: Batch) -> Result<(), SyncError> {
        let Err(error) = self.absorb(batch) else { return Ok(()) };
        if matches!(error, SyncError::Data(_)) {
            self.unproven = Pending::default();
            if self.checkpoint.is_some() {
                self.commit(false)?;
            }
        }
        Err(error)
    }

    fn absorb(&mut self, batch: Batch) -> Result<(), SyncError> {
        self.committer.poll().map_err(SyncError::Destination)?;
        for warning in &batch.warnings {
            self.observer.warning(warning);
        }
        let half = batch.changes.len() / 2;
        for (i, change) in batch.changes.into_iter().enumerate() {
            if i == half && half > 0 {
                failpoint::hit("batch.mid");
            }
            self.convert(change).map_err(|e| SyncError::Data(e.0))?;
        }
        if let Some(state) = batch.checkpoint {
            let unproven = std::mem::take(&mut self.unproven);
            self.proven.append(unproven);
            self.checkpoint = Some(state);
        }
        let opened = *self.opened.get_or_insert_with(Instant::now);
        let large = self.handed + self.proven.rows + self.unproven.rows >= self.policy.max_rows;
        let old = self.checkpoint.is_some() && opened.elapsed() >= self.policy.max_delay;
        if large || old {
            self.commit(true)?;
        } else if self.proven.rows >= self.policy.piece_rows {
            let piece = std::mem::take(&mut self.proven);
            self.hand_over(piece, None)?;
        }
        Ok(())
    }

    fn convert(&mut self, change: Change) -> Result<(), DataError> {
        let pending = &mut self.unproven;
        pending.rows += 1;
        let segment = match change {
            Change::Upsert { table, record } => {
                let table = self.tables.table(&table)?;
                let row = Row { values: self.tables.row(table, record)?, deleted: false };
                // Most changes extend the segment before them: no vector of one row each.
                if let Some(rows) = last_upserts(&mut pending.segments, table) {
                    rows.push(row);
                    return Ok(());
                }
                Segment::Upserts { table, rows: vec![row] }
            }
            Change::Update { table, record } => {
                let table = self.tables.table(&table)?;
                Segment::Patches { table, patches: vec![self.tables.patch(table, record)?] }
            }
            Change::Delete { table, keys } => {
                let table = self.tables.table(&table)?;
                let key = self.tables.key(table, keys)?;
                // A delete right after the upsert of the same row (a tombstone) marks that row.
                if let Some(last) = last_upserts(&mut pending.segments, table).and_then(|rows| rows.last_mut())
                    && key_of(&self.tables, table, &last.values) == key
                {
                    last.deleted = true;
                    return Ok(());
                }
                Segment::Deletes { table, keys: vec![key] }
            }
            Change::Truncate { table } => {
                pending.rows -= 1;
                Segment::Truncate { table: self.tables.table(&table)? }
            }
        };
        push_segment(&mut self.unproven.segments, segment);
        Ok(())
    }

    /// Commits the proven data with its checkpoint, and the unproven data too if
    /// `include_unproven` (the state then proves a prefix of what is written, which is safe).
    fn commit(&mut self, include_unproven: bool) -> Result<(), SyncError> {
        let mut pending = std::mem::take(&mut self.proven);
        if include_unproven {
            pending.append(std::mem::take(&mut self.unproven));
        }
        let state = self.checkpoint.take().unwrap_or_else(|| self.committed.clone());
        let saved = SavedState { connector: self.connector.clone(), state };
        self.committed = saved.state.clone();
        // Handed over even without rows: the tables exist once a sync has committed.
        self.hand_over(pending, Some(saved))?;
        self.handed = 0;
        self.opened = None;
        Ok(())
    }

    /// Hands `pending` over to be written into the open transaction, and the transaction to
    /// be committed with `commit` if given.
    fn hand_over(&mut self, pending: Pending, commit: Option<SavedState>) -> Result<(), SyncError> {
        self.handed += pending.rows;
        let job = Job { tables: self.tables.specs(), segments: pending.segments, commit };
        self.committer.send(job).map_err(SyncError::Destination)?;
        // The committer creates the tables and columns in order: later pieces may rely on
        // them (if this one fails, so does the sync).
        self.tables.settle_all();
        self.tables_created = true;
        Ok(())
    }
}

/// The rows of the last segment, if it upserts into `table`: where the next upsert into it goes.
fn last_upserts(segments: &mut [Segment], table: usize) -> Option<&mut Vec<Row>> {
    match segments.last_mut() {
        Some(Segment::Upserts { table: t, rows }) if *t == table => Some(rows),
        _ => None,
    }
}

fn key_of(tables: &Tables, table: usize, values: &[Value]) -> Vec<Value> {
    tables.key_positions(table).iter().map(|&k| values.get(k).cloned().unwrap_or(Value::Null)).collect()
}
