//! The operations a connector emits: upsert, update, delete, truncate, checkpoint, warning.
//!
//! Operations travel to the engine in [`Batch`]es over a bounded channel: a connector that
//! fetches faster than the warehouse writes waits in these calls (back-pressure), so memory
//! stays flat whatever the number of records. A checkpoint ends a batch; the engine commits
//! the batch's data and that state in one transaction.

use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::Error;
use crate::state::State;
use crate::value::{ColumnName, Record, intern};

/// A table name, shared between the operations on that table.
pub type TableName = ColumnName;

/// One change to a table.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Insert the row, or replace it if its primary key exists.
    Upsert {
        /// The table.
        table: TableName,
        /// The whole row.
        record: Record,
    },
    /// Change some columns of an existing row (found by primary key); others keep their values.
    Update {
        /// The table.
        table: TableName,
        /// The primary key and the columns to change.
        record: Record,
    },
    /// Mark the row deleted (a soft delete: the row stays, flagged).
    Delete {
        /// The table.
        table: TableName,
        /// The primary key.
        keys: Record,
    },
    /// Mark every row of the table written before this point deleted.
    Truncate {
        /// The table.
        table: TableName,
    },
}

/// Changes on their way to the engine, with the state that ends them, if any.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Changes, in the order the connector made them.
    pub changes: Vec<Change>,
    /// Warnings the connector raised along the way.
    pub warnings: Vec<String>,
    /// The state these changes (and all before them) prove; `None` for a batch sent because
    /// it grew large, before the connector checkpointed.
    pub checkpoint: Option<State>,
}

/// Counts of what a connector emitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OperationCounts {
    /// Upserts.
    pub upserts: u64,
    /// Partial updates.
    pub updates: u64,
    /// Deletes.
    pub deletes: u64,
    /// Truncates.
    pub truncates: u64,
    /// Checkpoints.
    pub checkpoints: u64,
    /// Warnings.
    pub warnings: u64,
}

/// Where a connector sends its operations. Every call may wait while the engine catches
/// up, and fails with [`crate::ErrorKind::Stopped`] once the engine has stopped listening.
pub struct Operations {
    sender: mpsc::Sender<Batch>,
    pending: Batch,
    flush_at: usize,
    counts: OperationCounts,
}

impl Operations {
    /// Operations sending batches on `sender`, a batch at least every `flush_at` changes.
    pub fn new(sender: mpsc::Sender<Batch>, flush_at: usize) -> Self {
        Operations { sender, pending: Batch::default(), flush_at: flush_at.max(1), counts: OperationCounts::default() }
    }

    /// A connected pair for tests and tools: operations and the receiving end.
    pub fn channel(capacity: usize, flush_at: usize) -> (Operations, mpsc::Receiver<Batch>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Operations::new(tx, flush_at), rx)
    }

    /// Inserts `record` into `table`, or replaces the row with the same primary key.
    pub async fn upsert(&mut self, table: &str, record: Record) -> Result<(), Error> {
        self.counts.upserts += 1;
        self.push(Change::Upsert { table: intern(table), record }).await
    }

    /// Changes the columns of `record` in the row with its primary key (a partial update).
    pub async fn update(&mut self, table: &str, record: Record) -> Result<(), Error> {
        self.counts.updates += 1;
        self.push(Change::Update { table: intern(table), record }).await
    }

    /// Marks the row with primary key `keys` deleted.
    pub async fn delete(&mut self, table: &str, keys: Record) -> Result<(), Error> {
        self.counts.deletes += 1;
        self.push(Change::Delete { table: intern(table), keys }).await
    }

    /// Marks every row of `table` written so far deleted; later upserts bring rows back.
    pub async fn truncate(&mut self, table: &str) -> Result<(), Error> {
        self.counts.truncates += 1;
        self.push(Change::Truncate { table: intern(table) }).await
    }

    /// Saves `state` as the proof of everything emitted so far: the engine commits these
    /// changes and this state together, and the next sync starts from it.
    pub async fn checkpoint<S: Serialize + ?Sized>(&mut self, state: &S) -> Result<(), Error> {
        let state = State::from_serializable(state)?;
        self.counts.checkpoints += 1;
        self.pending.checkpoint = Some(state);
        self.flush().await
    }

    /// Reports something the user should know that does not stop the sync.
    pub fn warning(&mut self, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!("{message}");
        self.counts.warnings += 1;
        self.pending.warnings.push(message);
    }

    /// What was emitted so far.
    pub fn counts(&self) -> OperationCounts {
        self.counts
    }

    /// Sends what is pending, checkpoint or not; the engine calls it when the connector returns.
    pub async fn flush(&mut self) -> Result<(), Error> {
        let batch = std::mem::take(&mut self.pending);
        if batch == Batch::default() {
            return Ok(());
        }
        self.sender.send(batch).await.map_err(|_| Error::stopped())
    }

    async fn push(&mut self, change: Change) -> Result<(), Error> {
        self.pending.changes.push(change);
        if self.pending.changes.len() >= self.flush_at {
            self.flush().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checkpoints_end_batches_and_large_batches_go_early() {
        let (mut ops, mut rx) = Operations::channel(8, 3);
        for i in 0..4 {
            ops.upsert("user", Record::new().with("id", i)).await.unwrap();
        }
        ops.warning("careful");
        ops.checkpoint(&serde_json::json!({"cursor": 4})).await.unwrap();
        let early = rx.recv().await.unwrap();
        assert_eq!((early.changes.len(), early.checkpoint.is_none()), (3, true));
        let last = rx.recv().await.unwrap();
        assert_eq!(last.changes.len(), 1);
        assert_eq!(last.warnings, ["careful"]);
        assert_eq!(last.checkpoint.unwrap().to_json(), serde_json::json!({"cursor": 4}));
        assert_eq!(ops.counts().upserts, 4);
        ops.flush().await.unwrap();
        assert!(rx.try_recv().is_err(), "nothing pending, nothing sent");
    }

    #[tokio::test]
    async fn a_stopped_engine_stops_the_connector() {
        let (mut ops, rx) = Operations::channel(1, 1);
        drop(rx);
        let e = ops.upsert("user", Record::new()).await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Stopped);
    }
}
