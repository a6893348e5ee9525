//! The operations a connector emits: upsert, update, delete, truncate, checkpoint, warning.
//!
//! Operations travel to the engine in [`Batch`]es over a queue bounded in changes: a connector
//! that fetches faster than the warehouse writes waits in these calls (back-pressure), so
//! memory stays flat whatever the number of records. A checkpoint ends a batch; the engine
//! commits the batch's data and that state in one transaction.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Semaphore, mpsc};

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
    sender: mpsc::UnboundedSender<Queued>,
    /// Changes the queue may still take; a batch takes room for its changes until received.
    room: Arc<Semaphore>,
    capacity: u32,
    pending: Batch,
    flush_at: usize,
    counts: OperationCounts,
}

/// A batch on its way, and the room it takes in the queue.
type Queued = (Batch, u32);

/// The engine's end of the queue: the batches of an [`Operations`], in order.
pub struct Batches {
    receiver: mpsc::UnboundedReceiver<Queued>,
    room: Arc<Semaphore>,
}

impl Operations {
    /// Operations and the engine's end of their queue, which holds up to `capacity` changes
    /// (a larger batch waits until the queue is empty); a batch is sent at least every
    /// `flush_at` changes. Counting changes, not batches, gives a connector the same lead
    /// whether its pages hold 50 records or 1,000.
    pub fn channel(capacity: usize, flush_at: usize) -> (Operations, Batches) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX).max(1);
        let room = Arc::new(Semaphore::new(capacity as usize));
        let operations = Operations {
            sender,
            room: room.clone(),
            capacity,
            pending: Batch::default(),
            flush_at: flush_at.max(1),
            counts: OperationCounts::default(),
        };
        (operations, Batches { receiver, room })
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
        // The next batch is likely as long as this one (a page's worth): room for it up front,
        // rather than growing a vector from nothing for each page.
        let room_for_next = Batch { changes: Vec::with_capacity(self.pending.changes.len()), ..Batch::default() };
        let batch = std::mem::replace(&mut self.pending, room_for_next);
        if batch == Batch::default() {
            return Ok(());
        }
        let room = u32::try_from(batch.changes.len()).unwrap_or(u32::MAX).clamp(1, self.capacity);
        // The engine closes the queue when it stops listening.
        self.room.acquire_many(room).await.map_err(|_| Error::stopped())?.forget();
        self.sender.send((batch, room)).map_err(|_| Error::stopped())
    }

    async fn push(&mut self, change: Change) -> Result<(), Error> {
        self.pending.changes.push(change);
        if self.pending.changes.len() >= self.flush_at {
            self.flush().await?;
        }
        Ok(())
    }
}

impl Batches {
    /// The next batch, waiting for it; `None` once the connector's side is gone and every
    /// batch was received.
    pub async fn recv(&mut self) -> Option<Batch> {
        self.receiver.recv().await.map(|queued| self.free(queued))
    }

    /// The next batch, without waiting.
    pub fn try_recv(&mut self) -> Result<Batch, TryRecvError> {
        self.receiver.try_recv().map(|queued| self.free(queued))
    }

    /// The next batch, blocking the thread until it comes (not to be called on a runtime).
    pub fn blocking_recv(&mut self) -> Option<Batch> {
        self.receiver.blocking_recv().map(|queued| self.free(queued))
    }

    fn free(&self, (batch, room): Queued) -> Batch {
        self.room.add_permits(room as usize);
        batch
    }
}

impl Drop for Batches {
    /// A connector waiting for room stops at once.
    fn drop(&mut self) {
        self.room.close();
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
    async fn the_queue_holds_changes_not_batches() {
        let pause = || tokio::time::sleep(std::time::Duration::from_millis(30));
        let (mut ops, mut rx) = Operations::channel(3, 100);
        for i in 0..3 {
            ops.upsert("user", Record::new().with("id", i)).await.unwrap();
            ops.checkpoint(&serde_json::json!({ "cursor": i })).await.unwrap();
        }
        let fourth = tokio::spawn(async move {
            ops.upsert("user", Record::new().with("id", 3)).await?;
            ops.checkpoint(&serde_json::json!({ "cursor": 3 })).await?;
            for _ in 0..10 {
                ops.upsert("user", Record::new()).await?;
            }
            ops.flush().await
        });
        pause().await;
        assert!(!fourth.is_finished(), "three changes wait in the queue: the fourth waits for room");
        assert_eq!(rx.recv().await.unwrap().changes.len(), 1);
        pause().await;
        assert!(!fourth.is_finished(), "a batch larger than the queue waits until it is empty");
        for _ in 0..3 {
            assert_eq!(rx.recv().await.unwrap().changes.len(), 1);
        }
        fourth.await.unwrap().unwrap();
        assert_eq!(rx.recv().await.unwrap().changes.len(), 10);
    }

    #[tokio::test]
    async fn a_stopped_engine_stops_the_connector() {
        let (mut ops, rx) = Operations::channel(1, 1);
        ops.upsert("user", Record::new()).await.unwrap();
        let waiting = tokio::spawn(async move { ops.upsert("user", Record::new()).await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        drop(rx);
        let e = waiting.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Stopped, "a connector waiting for room stops");
    }
}
