//! The inlet sync engine: it runs a connector, writes what it emits, and commits each batch
//! together with the state that proves it, so that a crash at any instant loses nothing and
//! duplicates nothing.
//!
//! ```text
//! connector.update ──Batch──► bounded channel ──► writer thread ──pieces, commit──► commit thread ──► Destination
//!      (async, fetching ahead)                 (convert, coalesce)                            (data + state, atomic)
//! ```
//!
//! - [`Destination`] is the contract a warehouse implements; [`MemoryWarehouse`] is one in
//!   memory for tests, and the `conformance` feature ships the suite every destination passes.
//! - [`keys`] is the set of stored key hashes that lets SQL destinations write new rows
//!   straight into their tables.
//! - [`sync`] runs one sync and reports what it did; [`SyncError`] says why it failed.
//!   [`spawn_sync`] runs it as a runtime task, as a command that blocks on a runtime should.

mod committer;
#[cfg(feature = "conformance")]
pub mod conformance;
mod destination;
pub mod failpoint;
pub mod keys;
mod memory;
pub mod sql;
mod sync;
mod tables;
mod writer;

pub use destination::{
    ColumnSpec, Destination, DestinationError, DestinationErrorKind, Patch, Row, SavedState, Segment, TableSpec,
    columns,
};
pub use memory::{MemoryWarehouse, StoredRow};
pub use sync::{Observer, Silent, SyncError, SyncOptions, SyncReport, spawn_sync, sync};
pub use tables::DataError;
