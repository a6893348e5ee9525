//! The destination contract: a warehouse that commits data and the state proving it in one
//! transaction.

use std::fmt;
use std::time::Duration;

use inlet_sdk::{ColumnType, State, Value};
use serde::{Deserialize, Serialize};

/// What [`Destination::commit_interval`] is unless a destination says otherwise.
pub(crate) const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(200);

/// A warehouse. Methods run on the engine's commit thread, one at a time.
///
/// A sync streams each transaction into the warehouse: [`begin`](Destination::begin), then
/// [`write`](Destination::write) as often as there are rows (the engine does not hold a whole
/// transaction in memory), then [`commit`](Destination::commit) with the state that proves
/// them; after the last commit of a sync, [`finish`](Destination::finish). The contract:
/// - A transaction is atomic and durable: when `commit` returns `Ok`, every change written
///   since `begin` and the state are stored; when `write` or `commit` returns `Err`, or the
///   process dies, or the destination is dropped before `commit`, none of them are. After an
///   `Err` no transaction is open and the destination can begin another.
/// - Writing the same changes twice leaves the same rows as writing them once.
/// - A row is never replaced by an older version of itself (see [`TableSpec::version`]).
/// - [`saved_state`](Destination::saved_state) changes nothing, and returns the state of
///   the last successful commit.
/// - Two destinations on the same warehouse and schema at the same time: the second one to
///   open fails with [`DestinationErrorKind::Busy`].
pub trait Destination: Send {
    /// Where the data goes, for messages: `DuckDB files/warehouse.db, schema main`.
    fn describe(&self) -> String;

    /// Rows the engine hands to one [`write`](Destination::write) while it fills a
    /// transaction (the last piece before a commit may be smaller); it holds a few pieces in
    /// memory at once. Pieces of 3,125 rows instead of 12,500 took 20 MB off the peak of a
    /// first sync of 1,000,000 users into DuckDB, in the same time; a warehouse whose every
    /// call costs a round of waiting asks for larger ones.
    fn piece_rows(&self) -> usize {
        3_125
    }

    /// How long a transaction lives at least before the engine commits it because the writer
    /// has caught up with the connector (one that reaches the row limit commits at once, and
    /// so does a sync's last). While the source is slower than the warehouse, as with small
    /// pages, checkpoints this close share one transaction instead of paying a commit each.
    fn commit_interval(&self) -> Duration {
        DEFAULT_COMMIT_INTERVAL
    }

    /// The state of the last commit, with the name of the connector that wrote it.
    fn saved_state(&mut self) -> Result<Option<SavedState>, DestinationError>;

    /// Opens a transaction; every row it writes gets `synced_at` as its sync time.
    fn begin(&mut self, synced_at: jiff::Timestamp) -> Result<(), DestinationError>;

    /// Creates the `tables` missing and adds the columns they lack, then applies `segments`
    /// (whose table positions index `tables`) in the open transaction, in order.
    fn write(&mut self, tables: &[TableSpec], segments: &[Segment]) -> Result<(), DestinationError>;

    /// Saves `state` and commits the open transaction (see the trait's contract).
    fn commit(&mut self, state: &SavedState) -> Result<(), DestinationError>;

    /// Forgets the saved state (the data stays): the next sync starts from scratch. Not
    /// called while a transaction is open.
    fn clear_state(&mut self) -> Result<(), DestinationError>;

    /// Ends a session whose commits all succeeded, with no transaction open: what the
    /// destination put off across the session's transactions is done now, in a transaction
    /// of its own (PostgreSQL gives a table it created its primary key). Data and state are
    /// committed already; a session that ends without `finish` (a crash) must leave the next
    /// session able to do the same work.
    fn finish(&mut self) -> Result<(), DestinationError> {
        Ok(())
    }
}

/// A saved state and the connector that wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedState {
    /// The connector's name (see `Connector::name`).
    pub connector: String,
    /// Its state.
    pub state: State,
}

/// A table as the destination must have it: declared and inferred columns, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct TableSpec {
    /// The table's name.
    pub name: String,
    /// Its columns; the list only grows (new columns are appended).
    pub columns: Vec<ColumnSpec>,
    /// Positions of the primary-key columns in `columns`.
    pub primary_key: Vec<usize>,
    /// Position of the version column: an upsert never replaces a row whose version is
    /// greater than its own (equal versions are replaced).
    pub version: Option<usize>,
}

/// A column and its type.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnSpec {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: ColumnType,
}

/// A whole row, values in the order of [`TableSpec::columns`], each already converted to
/// its column's type (see [`ColumnType::convert`]). A row may be shorter than the column list
/// (it was converted before the table grew); missing values are `NULL`.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The values.
    pub values: Vec<Value>,
    /// Written as a soft-deleted row (an upsert immediately followed by a delete).
    pub deleted: bool,
}

/// Columns to change in one existing row.
#[derive(Clone, Debug, PartialEq)]
pub struct Patch {
    /// The primary key, in the order of [`TableSpec::primary_key`].
    pub key: Vec<Value>,
    /// `(column position, new value)` pairs.
    pub columns: Vec<(usize, Value)>,
}

/// A run of changes of one kind to one table, applied in order within the transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Segment {
    /// Insert or replace rows by primary key. The same key may appear several times: the
    /// highest version wins, and among equal versions the last one.
    Upserts {
        /// Position of the table in the `tables` given to [`Destination::write`].
        table: usize,
        /// The rows.
        rows: Vec<Row>,
    },
    /// Change some columns of existing rows; a key with no row changes nothing.
    Patches {
        /// Position of the table.
        table: usize,
        /// The changes.
        patches: Vec<Patch>,
    },
    /// Mark rows deleted (soft delete) by primary key.
    Deletes {
        /// Position of the table.
        table: usize,
        /// Primary keys, in the order of [`TableSpec::primary_key`].
        keys: Vec<Vec<Value>>,
    },
    /// Mark every row of the table deleted.
    Truncate {
        /// Position of the table.
        table: usize,
    },
}

impl Segment {
    /// Rows this segment writes (upserts, patches and deletes; a truncate counts none).
    pub fn row_count(&self) -> usize {
        match self {
            Segment::Upserts { rows, .. } => rows.len(),
            Segment::Patches { patches, .. } => patches.len(),
            Segment::Deletes { keys, .. } => keys.len(),
            Segment::Truncate { .. } => 0,
        }
    }
}

/// What kind of failure a [`DestinationError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestinationErrorKind {
    /// Another process holds the warehouse (another sync is running).
    Busy,
    /// The warehouse cannot be reached or opened.
    Unavailable,
    /// The warehouse refused a write (schema conflict, constraint, full disk…).
    Write,
    /// The saved state is not a state (edited by hand, or corrupted): it must be replaced
    /// (`inlet state set`) or cleared (`inlet state reset`).
    BadState,
}

/// A destination failure.
pub struct DestinationError {
    kind: DestinationErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl DestinationError {
    /// A failure of `kind`.
    pub fn new(kind: DestinationErrorKind, message: impl Into<String>) -> Self {
        DestinationError { kind, message: message.into(), source: None }
    }

    /// Attaches the cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// `write` or `commit` was called with no transaction open: a broken caller.
    pub fn no_transaction() -> Self {
        DestinationError::new(DestinationErrorKind::Write, "no transaction is open: `begin` one first")
    }

    /// The saved state of `schema` cannot be read as a state, because `problem`.
    pub fn bad_state(schema: &str, problem: &str) -> Self {
        DestinationError::new(
            DestinationErrorKind::BadState,
            format!(
                "the saved state in schema {schema} is unusable ({problem}); nothing was changed: replace it with `inlet state set FILE`, or clear it with `inlet state reset` to sync again from scratch"
            ),
        )
    }

    /// The kind.
    pub fn kind(&self) -> DestinationErrorKind {
        self.kind
    }
}

impl fmt::Display for DestinationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for DestinationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DestinationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Names of the bookkeeping columns every table gets.
pub mod columns {
    /// When the row was last written by a sync (`TIMESTAMPTZ`).
    pub const SYNCED: &str = "_inlet_synced";
    /// Whether the row was deleted at the source (`BOOLEAN`, soft delete).
    pub const DELETED: &str = "_inlet_deleted";
    /// The table holding the saved state, in the same schema as the data.
    pub const STATE_TABLE: &str = "_inlet_state";
}
