//! The PostgreSQL destination, with the same contract as DuckDB's.
//!
//! Each transaction of the engine is one PostgreSQL transaction: tables are created or grown,
//! each piece of rows is written with binary `COPY`, and at the end the state row is written;
//! then `COMMIT`. Rows whose key the table certainly lacks (`keys.rs`), and that their piece
//! holds once, are copied straight into the table; the others into a temporary staging table,
//! merged into the table with `INSERT … SELECT DISTINCT ON (key) … ON CONFLICT DO UPDATE` (one
//! row per key, the newest, never replacing a newer version). A session advisory lock on the
//! schema refuses a second sync while one runs; PostgreSQL releases it if the process dies.
//!
//! A table the session creates gets its primary key at the end of the session
//! ([`Destination::finish`]), or before the first write that is not new rows copied straight
//! in: building the index once from the loaded rows takes a fraction of inserting every key
//! into it as it comes (docs/performance.md). Until then the key set alone keeps one row per
//! key, and no row can clash with a stored one, so one `COPY` takes the new rows of piece after
//! piece, left open until another statement must run ([`OpenCopy`]). A session that dies first
//! leaves the table without its key, and the next one adds it before it writes.
//!
//! Types: `boolean`, `smallint`, `integer`, `bigint`, `real`, `double precision`,
//! `numeric(p,s)`, `date`, `timestamp`, `timestamptz`, `bytea`, `text` (strings and XML, so that
//! malformed XML from a source is kept rather than refused) and `jsonb`, spelled as PostgreSQL
//! prints them (`format_type`), so that a table's stored types can be compared with them. Text
//! in the primary key is collated `"C"` ([`declared_type`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{SinkExt, TryStreamExt, pin_mut};
use inlet_engine::keys::{KeyHashes, rows_where, worth_reading_keys};
use inlet_engine::sql::{UpsertClauses, key_list, key_matches, quote};
use inlet_engine::{
    ColumnSpec, Destination, DestinationError, DestinationErrorKind, Patch, Row, SavedState, Segment, StoredRow,
    TableSpec, columns, failpoint,
};
use inlet_sdk::{ColumnType, Record, State, Value};
use postgres_types::{ToSql, Type};
use tokio::runtime::Runtime;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, CopyInSink, NoTls};

mod copy;
mod keys;
pub use copy::{CopyRows, wire_type};

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.rsplit_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// The PostgreSQL type of a column type, as `format_type` prints it.
fn sql_type(ty: ColumnType) -> String {
    match ty {
        ColumnType::Boolean => "boolean".into(),
        ColumnType::Short => "smallint".into(),
        ColumnType::Int => "integer".into(),
        ColumnType::Long => "bigint".into(),
        ColumnType::Float => "real".into(),
        ColumnType::Double => "double precision".into(),
        ColumnType::Decimal { precision, scale } => format!("numeric({precision},{scale})"),
        ColumnType::NaiveDate => "date".into(),
        ColumnType::NaiveDateTime => "timestamp without time zone".into(),
        ColumnType::UtcDateTime => SYNCED_TYPE.into(),
        ColumnType::Binary => "bytea".into(),
        ColumnType::Xml | ColumnType::String => "text".into(),
        ColumnType::Json => "jsonb".into(),
    }
}

/// A column's declared type: its [`sql_type`], and text in the primary key collated `"C"`.
/// Equality, and so what the key identifies, is the same under every deterministic collation
/// (they compare bytes for it), but the key's index is built and searched by comparing bytes
/// instead of under the database's locale: building it for 1,000,000 UUIDs takes about 60% of
/// the time. The price is that `ORDER BY` on the key sorts by code point (docs/performance.md).
pub fn declared_type(ty: ColumnType, in_key: bool) -> String {
    match ty {
        ColumnType::Xml | ColumnType::String if in_key => "text COLLATE \"C\"".into(),
        _ => sql_type(ty),
    }
}

/// `column` of `spec` as `CREATE TABLE` declares it: its quoted name and [`declared_type`].
fn column_definition(spec: &TableSpec, column: &ColumnSpec) -> String {
    let in_key = spec.primary_key.iter().any(|&k| spec.columns[k].name == column.name);
    format!("{} {}", quote(&column.name), declared_type(column.ty, in_key))
}

/// A table's stored keys are read once this session has written one row to it for every this
/// many it holds: reading 1,000,000 keys back takes about half a second, and each new row
/// copied straight into the table instead of merged saves about 3 µs (docs/performance.md).
const KEYS_READ_AT: u64 = 4;

/// The type of the sync-time column, as `format_type` prints it.
const SYNCED_TYPE: &str = "timestamp with time zone";

/// A value ready to be a statement's parameter, typed for its column.
fn sql_value(value: &Value, ty: ColumnType) -> Box<dyn ToSql + Sync + Send> {
    macro_rules! nullable {
        ($t:ty, $v:expr) => {
            Box::new(Option::<$t>::from($v))
        };
    }
    match (ty, value) {
        (ColumnType::Boolean, Value::Bool(b)) => Box::new(Some(*b)),
        (ColumnType::Short, Value::Int(i)) => Box::new(i16::try_from(*i).ok()),
        (ColumnType::Int, Value::Int(i)) => Box::new(i32::try_from(*i).ok()),
        (ColumnType::Long, Value::Int(i)) => Box::new(Some(*i)),
        (ColumnType::Float, Value::Float(f)) => Box::new(Some(*f as f32)),
        (ColumnType::Double, Value::Float(f)) => Box::new(Some(*f)),
        (ColumnType::Decimal { .. }, Value::Decimal(d)) => Box::new(Some(*d)),
        (ColumnType::NaiveDate, Value::Date(d)) => Box::new(Some(*d)),
        (ColumnType::NaiveDateTime, Value::DateTime(d)) => Box::new(Some(*d)),
        (ColumnType::UtcDateTime, Value::Timestamp(t)) => Box::new(Some(*t)),
        (ColumnType::Binary, Value::Bytes(b)) => Box::new(Some(b.clone())),
        (ColumnType::Xml | ColumnType::String, Value::String(s)) => Box::new(Some(s.clone())),
        (ColumnType::Json, Value::Json(j)) => Box::new(Some(j.clone())),
        (ColumnType::Boolean, _) => nullable!(bool, None),
        (ColumnType::Short, _) => nullable!(i16, None),
        (ColumnType::Int, _) => nullable!(i32, None),
        (ColumnType::Long, _) => nullable!(i64, None),
        (ColumnType::Float, _) => nullable!(f32, None),
        (ColumnType::Double, _) => nullable!(f64, None),
        (ColumnType::Decimal { .. }, _) => nullable!(inlet_sdk::Decimal, None),
        (ColumnType::NaiveDate, _) => nullable!(jiff::civil::Date, None),
        (ColumnType::NaiveDateTime, _) => nullable!(jiff::civil::DateTime, None),
        (ColumnType::UtcDateTime, _) => nullable!(jiff::Timestamp, None),
        (ColumnType::Binary, _) => nullable!(Vec<u8>, None),
        (ColumnType::Xml | ColumnType::String, _) => nullable!(String, None),
        (ColumnType::Json, _) => nullable!(serde_json::Value, None),
    }
}

fn failure(
    kind: DestinationErrorKind,
    what: impl Into<String>,
) -> impl FnOnce(tokio_postgres::Error) -> DestinationError {
    let what = what.into();
    move |e| {
        // The server's context names what it was doing: for a refused row of a `COPY`, the
        // table, the row's line and the column.
        let detail = e.as_db_error().map_or_else(
            || e.to_string(),
            |db| {
                let context = db.where_().map(|w| format!(" ({w})")).unwrap_or_default();
                format!("{}: {}{context}", db.code().code(), db.message())
            },
        );
        DestinationError::new(kind, format!("{what}: {detail}")).with_source(e)
    }
}

fn write_error(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> DestinationError {
    failure(DestinationErrorKind::Write, what)
}

/// What this session knows of a target table.
struct KnownTable {
    /// How many of the connector's columns the table has.
    columns: usize,
    /// Every column the connector writes has the type it would be created with, which binary
    /// `COPY` straight into the table needs.
    copies_in: bool,
    /// The primary key of a table this session created without it, not yet added.
    deferred_key: Option<DeferredKey>,
}

/// A primary key to add to a table that has none.
struct DeferredKey {
    /// The key's columns, quoted, comma-separated.
    columns: String,
    /// An `ORDER BY` list that puts first, of stored rows sharing a key, the one a merge would
    /// have kept: the highest version, then the last synced.
    newest: String,
}

impl DeferredKey {
    fn of(spec: &TableSpec) -> Self {
        let version = spec.version.map(|v| format!("{} DESC NULLS LAST, ", quote(&spec.columns[v].name)));
        DeferredKey {
            columns: key_list(spec),
            newest: format!("{}{} DESC", version.unwrap_or_default(), columns::SYNCED),
        }
    }
}

/// A binary `COPY` of new rows into a table this session created, left open from one piece to
/// the next of a transaction: the server takes in the rows sent while the next piece is hashed
/// and encoded, instead of waiting out a round of statements for each piece.
struct OpenCopy {
    /// The table's name. Growing the table ends the `COPY`, as every other statement does.
    table: String,
    sink: Pin<Box<CopyInSink<Bytes>>>,
    rows: CopyRows,
}

/// A PostgreSQL database and the schema a connector writes to.
pub struct PostgresDestination {
    /// Its one worker sends what the commit thread hands the connection, while that thread
    /// goes on encoding.
    runtime: Runtime,
    /// Statements go through [`sql`](Self::sql), which first ends the `COPY` left open.
    client: Client,
    /// The `COPY` left open, if any ([`OpenCopy`]).
    open_copy: RefCell<Option<OpenCopy>>,
    server: String,
    schema: String,
    /// Tables as looked up or made in this session.
    known: HashMap<String, KnownTable>,
    staging: HashMap<String, usize>,
    /// The hashes of the keys each table holds, by table, once read in this session. A set
    /// only grows: after a rolled-back transaction it holds keys the table lacks, which is safe.
    held: HashMap<String, KeyHashes>,
    /// Where the sets in `held` keep their hashes, in files without names: the system's
    /// temporary directory (`TMPDIR`).
    spill: PathBuf,
    /// Rows written to each table in this session: when they are many next to the table, its
    /// key hashes are worth reading.
    upserted: HashMap<String, usize>,
    /// The sync time of the open transaction's rows; `None` when none is open.
    synced: Option<jiff::Timestamp>,
}

impl PostgresDestination {
    /// Connects to `url` and takes the schema's lock; `Busy` if another sync holds it.
    pub fn open(url: &str, schema: &str) -> Result<Self, DestinationError> {
        let server = redact(url);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("inlet-postgres")
            .enable_all()
            .build()
            .map_err(|e| {
                DestinationError::new(DestinationErrorKind::Unavailable, "cannot start the PostgreSQL client's runtime")
                    .with_source(e)
            })?;
        let (client, connection) = runtime
            .block_on(tokio_postgres::connect(url, NoTls))
            .map_err(failure(DestinationErrorKind::Unavailable, format!("cannot connect to {server}")))?;
        runtime.spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!("PostgreSQL connection lost: {e}");
            }
        });
        let destination = PostgresDestination {
            runtime,
            client,
            open_copy: RefCell::new(None),
            server,
            schema: schema.to_owned(),
            known: HashMap::new(),
            staging: HashMap::new(),
            held: HashMap::new(),
            spill: std::env::temp_dir(),
            upserted: HashMap::new(),
            synced: None,
        };
        // A session that just died (a killed sync) releases its lock when the server notices:
        // allow it a moment before calling the schema busy.
        let mut locked = false;
        for attempt in 0..10 {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            let row = destination
                .runtime
                .block_on(destination.client.query_one(
                    "SELECT pg_try_advisory_lock(hashtextextended('inlet:' || $1, 0))",
                    &[&destination.schema],
                ))
                .map_err(failure(DestinationErrorKind::Unavailable, "cannot take the schema's lock"))?;
            locked = row.get(0);
            if locked {
                break;
            }
        }
        if !locked {
            return Err(DestinationError::new(
                DestinationErrorKind::Busy,
                format!(
                    "schema {} on {} is in use by another sync: a second sync of the same schema at the same time is refused; wait for it to finish",
                    destination.schema, destination.server
                ),
            ));
        }
        Ok(destination)
    }

    fn target(&self, table: &str) -> String {
        format!("{}.{}", quote(&self.schema), quote(table))
    }

    /// The client, for a statement: the `COPY` left open, if any, is ended first.
    fn sql(&self) -> Result<&Client, DestinationError> {
        self.end_copy()?;
        Ok(&self.client)
    }

    /// Ends the `COPY` left open, if any: the server takes its last rows.
    fn end_copy(&self) -> Result<(), DestinationError> {
        let Some(OpenCopy { table, mut sink, rows }) = self.open_copy.borrow_mut().take() else { return Ok(()) };
        self.runtime
            .block_on(async {
                sink.send(rows.finish()).await?;
                sink.as_mut().finish().await
            })
            .map(drop)
            .map_err(write_error(format!("cannot copy rows into {}", self.target(&table))))
    }

    fn execute(&self, sql: &str, what: &str) -> Result<(), DestinationError> {
        self.runtime.block_on(self.sql()?.batch_execute(sql)).map_err(write_error(what))
    }

    /// The names and types of `table`'s columns, in order; none if it does not exist.
    fn stored_columns(&self, table: &str) -> Result<Vec<(String, String)>, DestinationError> {
        let rows = self
            .runtime
            .block_on(self.sql()?.query(
                "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
                 WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                &[&self.target(table)],
            ))
            .map_err(failure(DestinationErrorKind::Unavailable, "cannot read the catalog"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn existing_columns(&self, table: &str) -> Result<Vec<String>, DestinationError> {
        Ok(self.stored_columns(table)?.into_iter().map(|(name, _)| name).collect())
    }

    fn ensure_table(&mut self, spec: &TableSpec) -> Result<(), DestinationError> {
        if self.known.get(&spec.name).is_some_and(|t| t.columns >= spec.columns.len()) {
            return Ok(());
        }
        let existing = self.stored_columns(&spec.name)?;
        let target = self.target(&spec.name);
        let type_of = |name: &str| existing.iter().find(|(n, _)| n == name).map(|(_, ty)| ty.as_str());
        let copies_in = existing.is_empty()
            || (type_of(columns::SYNCED) == Some(SYNCED_TYPE)
                && type_of(columns::DELETED) == Some("boolean")
                && spec.columns.iter().all(|c| type_of(&c.name).is_none_or(|ty| ty == sql_type(c.ty))));
        // A table this session created and grows keeps its key deferred.
        let mut deferred_key = self.known.get_mut(&spec.name).and_then(|t| t.deferred_key.take());
        if existing.is_empty() {
            // Only rows copied straight in can do without the key: with keys that can't be
            // hashed, every row is merged.
            deferred_key = keys::hashable(spec).then(|| DeferredKey::of(spec));
            let mut sql = format!("CREATE TABLE {target} (");
            for c in &spec.columns {
                let _ = write!(sql, "{}, ", column_definition(spec, c));
            }
            let _ = write!(
                sql,
                "{} timestamptz NOT NULL, {} boolean NOT NULL DEFAULT false",
                columns::SYNCED,
                columns::DELETED
            );
            if deferred_key.is_none() {
                let _ = write!(sql, ", PRIMARY KEY ({})", key_list(spec));
            }
            sql.push(')');
            self.execute(&sql, &format!("cannot create table {target}"))?;
            if deferred_key.is_some() {
                // An empty table: every key is new. (A set left by a rolled-back creation only
                // holds more keys, which is safe.)
                self.held.entry(spec.name.clone()).or_insert_with(|| KeyHashes::new(&self.spill));
            }
        } else {
            for c in spec.columns.iter().filter(|c| type_of(&c.name).is_none()) {
                let sql =
                    format!("ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {} {}", quote(&c.name), sql_type(c.ty));
                self.execute(&sql, &format!("cannot add column `{}` to {target}", c.name))?;
            }
            if deferred_key.is_none() && !self.has_primary_key(&target)? {
                // Left so by a session that died before it finished.
                self.add_key(&spec.name, &DeferredKey::of(spec))?;
            }
        }
        self.known.insert(spec.name.clone(), KnownTable { columns: spec.columns.len(), copies_in, deferred_key });
        Ok(())
    }

    /// Whether `target` (qualified and quoted) has a primary key.
    fn has_primary_key(&self, target: &str) -> Result<bool, DestinationError> {
        self.runtime
            .block_on(self.sql()?.query_one(
                "SELECT EXISTS (SELECT FROM pg_index WHERE indrelid = to_regclass($1) AND indisprimary)",
                &[&target],
            ))
            .map(|row| row.get(0))
            .map_err(failure(DestinationErrorKind::Unavailable, "cannot read the catalog"))
    }

    /// Gives `table` its primary key, in the open transaction. Should rows repeat a key (another
    /// client wrote the table while it had none), the one a merge would have kept stays and the
    /// others are deleted.
    fn add_key(&self, table: &str, key: &DeferredKey) -> Result<(), DestinationError> {
        let target = self.target(table);
        let what = format!(
            "cannot give {target} its primary key ({}); the rows and the state committed are kept, and the next sync tries again",
            key.columns
        );
        let add = format!("ALTER TABLE {target} ADD PRIMARY KEY ({})", key.columns);
        self.execute("SAVEPOINT inlet_key", "cannot set a savepoint")?;
        match self.runtime.block_on(self.sql()?.batch_execute(&add)) {
            Ok(()) => return self.execute("RELEASE SAVEPOINT inlet_key", "cannot release a savepoint"),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                tracing::warn!(
                    "{target} holds rows sharing a key, written by another client while it had no primary key: keeping the newest of each"
                );
                self.execute("ROLLBACK TO SAVEPOINT inlet_key", "cannot roll back to a savepoint")?;
            }
            Err(e) => return Err(write_error(what)(e)),
        }
        let deduplicate = format!(
            "DELETE FROM {target} WHERE ctid IN (SELECT ctid FROM (SELECT ctid, row_number() OVER (PARTITION BY {keys} ORDER BY {newest}) AS n FROM {target}) t WHERE n > 1)",
            keys = key.columns,
            newest = key.newest,
        );
        self.execute(&deduplicate, &what)?;
        self.execute(&add, &what)
    }

    /// Adds the primary key this session put off on `table`, before a write that needs it.
    fn keyed(&mut self, table: &str) -> Result<(), DestinationError> {
        match self.known.get_mut(table).and_then(|t| t.deferred_key.take()) {
            Some(key) => self.add_key(table, &key),
            None => Ok(()),
        }
    }

    /// An empty temporary staging table for `columns` of `spec` (plus sequence and flag).
    fn stage(&mut self, spec: &TableSpec, columns: &[&ColumnSpec], kind: &str) -> Result<String, DestinationError> {
        let name = format!("_inlet_{kind}_{}", spec.name);
        if self.staging.get(&name) != Some(&columns.len()) {
            let mut sql = format!("DROP TABLE IF EXISTS pg_temp.{0}; CREATE TEMP TABLE {0} (", quote(&name));
            for c in columns {
                let _ = write!(sql, "{}, ", column_definition(spec, c));
            }
            sql.push_str("_inlet_seq bigint, _inlet_row_deleted boolean)");
            self.execute(&sql, &format!("cannot create the staging table for `{}`", spec.name))?;
            self.staging.insert(name.clone(), columns.len());
        } else {
            self.execute(&format!("TRUNCATE pg_temp.{}", quote(&name)), "cannot empty a staging table")?;
        }
        Ok(name)
    }

    /// Binary `COPY` of `rows` into `table` (qualified and quoted): `encoded` writes the values
    /// of `columns`, then the two fields `trailer` names.
    fn copy<'a>(
        &self,
        client: &Client,
        table: &str,
        columns: &[&ColumnSpec],
        (mut encoded, trailer): (CopyRows, [&str; 2]),
        rows: impl Iterator<Item = (&'a [Value], bool)>,
    ) -> Result<(), CopyFailure> {
        let sql = copy_statement(table, columns, trailer);
        self.runtime.block_on(async {
            let sink = client.copy_in::<_, Bytes>(&sql).await?;
            pin_mut!(sink);
            send_rows(sink.as_mut(), &mut encoded, rows).await?;
            sink.send(encoded.finish()).await?;
            sink.finish().await?;
            Ok(())
        })
    }

    /// Binary `COPY` of `rows` into the staging table `stage`, numbered in order.
    fn copy_staged<'a>(
        &self,
        stage: &str,
        columns: &[&ColumnSpec],
        rows: impl Iterator<Item = (&'a [Value], bool)>,
    ) -> Result<(), DestinationError> {
        let table = format!("pg_temp.{}", quote(stage));
        let encoded = CopyRows::new(columns);
        self.copy(self.sql()?, &table, columns, (encoded, ["_inlet_seq", "_inlet_row_deleted"]), rows)
            .map_err(|e| e.into_destination_error(&table))
    }

    /// Copies rows whose keys the table certainly lacks straight into it. `false`, with nothing
    /// written, when a key was stored after all (by another client, since the keys were read):
    /// the caller then merges the rows.
    fn copy_new<'a>(
        &self,
        spec: &TableSpec,
        rows: impl Iterator<Item = (&'a [Value], bool)>,
        synced: jiff::Timestamp,
    ) -> Result<bool, DestinationError> {
        let all: Vec<&ColumnSpec> = spec.columns.iter().collect();
        let encoded = CopyRows::synced_at(&all, synced);
        let target = self.target(&spec.name);
        self.execute("SAVEPOINT inlet_new_rows", "cannot set a savepoint")?;
        match self.copy(self.sql()?, &target, &all, (encoded, [columns::SYNCED, columns::DELETED]), rows) {
            Ok(()) => self.execute("RELEASE SAVEPOINT inlet_new_rows", "cannot release a savepoint").map(|()| true),
            Err(CopyFailure::Server(e)) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                tracing::debug!("a key of {target} was written by another client; merging the rows instead");
                self.execute("ROLLBACK TO SAVEPOINT inlet_new_rows", "cannot roll back to a savepoint").map(|()| false)
            }
            Err(e) => Err(e.into_destination_error(&target)),
        }
    }

    /// Copies rows whose keys the table certainly lacks into a table still without its primary
    /// key, where none can clash, through the `COPY` left open for it (opened if none is).
    fn stream_new<'a>(
        &self,
        spec: &TableSpec,
        rows: impl Iterator<Item = (&'a [Value], bool)>,
        synced: jiff::Timestamp,
    ) -> Result<(), DestinationError> {
        let target = self.target(&spec.name);
        let open = self.open_copy.borrow().as_ref().is_some_and(|o| o.table == spec.name);
        if !open {
            let all: Vec<&ColumnSpec> = spec.columns.iter().collect();
            let sql = copy_statement(&target, &all, [columns::SYNCED, columns::DELETED]);
            let sink = self
                .runtime
                .block_on(self.sql()?.copy_in::<_, Bytes>(&sql))
                .map_err(write_error(format!("cannot copy rows into {target}")))?;
            *self.open_copy.borrow_mut() = Some(OpenCopy {
                table: spec.name.clone(),
                sink: Box::pin(sink),
                rows: CopyRows::synced_at(&all, synced),
            });
        }
        let mut slot = self.open_copy.borrow_mut();
        let OpenCopy { sink, rows: encoded, .. } = slot.as_mut().expect("opened above");
        self.runtime
            .block_on(async {
                send_rows(sink.as_mut(), encoded, rows).await?;
                if let Some(rest) = encoded.rest() {
                    sink.send(rest).await?;
                }
                Ok(())
            })
            .map_err(|e: CopyFailure| e.into_destination_error(&target))
    }

    /// The hashes of the keys `spec`'s table holds, read from the table the first time, unless
    /// its keys can't be hashed ([`keys::hashable`]), its columns don't take binary `COPY` as
    /// the connector types them, or the rows written to it in this session, `rows` included,
    /// are too few to make reading them worth it ([`worth_reading_keys`]).
    fn held_keys(&mut self, spec: &TableSpec, rows: usize) -> Result<Option<&mut KeyHashes>, DestinationError> {
        if !keys::hashable(spec) || !self.known.get(&spec.name).is_some_and(|t| t.copies_in) {
            return Ok(None);
        }
        let upserted = {
            let total = self.upserted.entry(spec.name.clone()).or_default();
            *total += rows;
            *total
        };
        if !self.held.contains_key(&spec.name) {
            let target = self.target(&spec.name);
            // Counting stops once the answer is known: a few changes to a big table count a
            // few hundred rows, not the table.
            let enough = i64::try_from((upserted as u64).saturating_mul(KEYS_READ_AT)).unwrap_or(i64::MAX - 1) + 1;
            let sql = format!("SELECT count(*) FROM (SELECT FROM {target} LIMIT $1) t");
            let stored: i64 = self
                .runtime
                .block_on(self.sql()?.query_one(&sql, &[&enough]))
                .map_err(write_error(format!("cannot count the rows of {target}")))?
                .get(0);
            if !worth_reading_keys(upserted, stored.unsigned_abs(), KEYS_READ_AT) {
                return Ok(None);
            }
            let sql = format!("SELECT {} FROM {target}", key_list(spec));
            let client = self.sql()?;
            let mut held = KeyHashes::new(&self.spill);
            self.runtime.block_on(async {
                let read_error = || write_error(format!("cannot read the keys of {target}"));
                let rows = client.query_raw(&sql, std::iter::empty::<i32>()).await.map_err(read_error())?;
                pin_mut!(rows);
                let mut hashes = Vec::new();
                while let Some(row) = rows.try_next().await.map_err(read_error())? {
                    hashes.extend(keys::stored_hash(spec, &row).map_err(read_error())?);
                    if hashes.len() >= KeyHashes::STORED_AT_ONCE {
                        held.insert_stored(&mut hashes)?;
                    }
                }
                held.insert_stored(&mut hashes)
            })?;
            self.held.insert(spec.name.clone(), held);
        }
        Ok(self.held.get_mut(&spec.name))
    }

    /// Writes `rows` into the table: the newest row per key, never replacing a newer stored
    /// one. Rows whose key the table certainly lacks, and that the piece holds once, are copied
    /// straight into the table; the others are staged and merged.
    fn upsert(&mut self, spec: &TableSpec, rows: &[Row], synced: jiff::Timestamp) -> Result<(), DestinationError> {
        let mut direct = match self.held_keys(spec, rows.len())? {
            None => vec![false; rows.len()],
            Some(held) => {
                let hashes: Vec<Option<u64>> = rows.iter().map(|r| keys::row_hash(spec, &r.values)).collect();
                held.admit(&hashes)?
            }
        };
        if direct.contains(&true) {
            if self.known.get(&spec.name).is_some_and(|t| t.deferred_key.is_some()) {
                self.stream_new(spec, rows_where(rows, &direct, true), synced)?;
            } else if !self.copy_new(spec, rows_where(rows, &direct, true), synced)? {
                direct.fill(false);
            }
        }
        if direct.contains(&false) {
            self.keyed(&spec.name)?;
            self.merge(spec, rows_where(rows, &direct, false), synced)?;
        }
        Ok(())
    }

    /// Stages `rows` and merges them into the table: a stored row is replaced unless newer.
    fn merge<'a>(
        &mut self,
        spec: &TableSpec,
        rows: impl Iterator<Item = (&'a [Value], bool)>,
        synced: jiff::Timestamp,
    ) -> Result<(), DestinationError> {
        let all: Vec<&ColumnSpec> = spec.columns.iter().collect();
        let stage = self.stage(spec, &all, "rows")?;
        self.copy_staged(&stage, &all, rows)?;
        let target = self.target(&spec.name);
        let merge = UpsertClauses::new(spec, &target, "excluded");
        let sql = format!(
            "INSERT INTO {target} ({cols}, {synced}, {deleted}) \
             SELECT DISTINCT ON ({keys}) {cols}, $1::timestamptz, _inlet_row_deleted FROM pg_temp.{stage} ORDER BY {keys}, {newest} \
             ON CONFLICT ({keys}) DO UPDATE SET {sets} WHERE {guard}",
            cols = merge.columns,
            synced = columns::SYNCED,
            deleted = columns::DELETED,
            stage = quote(&stage),
            keys = merge.keys,
            sets = merge.sets,
            newest = merge.newest,
            guard = merge.guard,
        );
        self.runtime
            .block_on(self.sql()?.execute(&sql, &[&synced]))
            .map_err(write_error(format!("cannot merge rows into {target}")))?;
        Ok(())
    }

    fn delete(
        &mut self,
        spec: &TableSpec,
        keys: &[Vec<Value>],
        synced: jiff::Timestamp,
    ) -> Result<(), DestinationError> {
        self.keyed(&spec.name)?;
        let key_columns: Vec<&ColumnSpec> = spec.primary_key.iter().map(|&k| &spec.columns[k]).collect();
        let stage = self.stage(spec, &key_columns, "keys")?;
        self.copy_staged(&stage, &key_columns, keys.iter().map(|k| (k.as_slice(), true)))?;
        let target = self.target(&spec.name);
        let sql = format!(
            "UPDATE {target} t SET {deleted} = true, {synced} = $1::timestamptz FROM (SELECT DISTINCT {keys} FROM pg_temp.{stage}) k WHERE {matches}",
            deleted = columns::DELETED,
            synced = columns::SYNCED,
            keys = key_list(spec),
            stage = quote(&stage),
            matches = key_matches(spec, "t", "k"),
        );
        self.runtime
            .block_on(self.sql()?.execute(&sql, &[&synced]))
            .map_err(write_error(format!("cannot mark rows of {target} deleted")))?;
        Ok(())
    }

    fn patch(&mut self, spec: &TableSpec, patches: &[Patch], synced: jiff::Timestamp) -> Result<(), DestinationError> {
        self.keyed(&spec.name)?;
        let target = self.target(&spec.name);
        for patch in patches {
            let mut sets: Vec<String> = patch
                .columns
                .iter()
                .enumerate()
                .map(|(i, (c, _))| format!("{} = ${}", quote(&spec.columns[*c].name), i + 1))
                .collect();
            sets.push(format!("{} = ${}", columns::SYNCED, patch.columns.len() + 1));
            let wheres: Vec<String> = spec
                .primary_key
                .iter()
                .enumerate()
                .map(|(i, &k)| format!("{} = ${}", quote(&spec.columns[k].name), patch.columns.len() + 2 + i))
                .collect();
            let sql = format!("UPDATE {target} SET {} WHERE {}", sets.join(", "), wheres.join(" AND "));
            let mut params: Vec<Box<dyn ToSql + Sync + Send>> =
                patch.columns.iter().map(|(c, v)| sql_value(v, spec.columns[*c].ty)).collect();
            params.push(Box::new(synced));
            params.extend(spec.primary_key.iter().zip(&patch.key).map(|(&k, v)| sql_value(v, spec.columns[k].ty)));
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
            self.runtime
                .block_on(self.sql()?.execute(&sql, &refs))
                .map_err(write_error(format!("cannot update a row of {target}")))?;
        }
        Ok(())
    }

    fn apply(
        &mut self,
        tables: &[TableSpec],
        segments: &[Segment],
        synced: jiff::Timestamp,
    ) -> Result<(), DestinationError> {
        for spec in tables {
            self.ensure_table(spec)?;
        }
        for segment in segments {
            match segment {
                Segment::Upserts { table, rows } => self.upsert(&tables[*table], rows, synced)?,
                Segment::Deletes { table, keys } => self.delete(&tables[*table], keys, synced)?,
                Segment::Patches { table, patches } => self.patch(&tables[*table], patches, synced)?,
                Segment::Truncate { table } => {
                    let target = self.target(&tables[*table].name);
                    let sql = format!(
                        "UPDATE {target} SET {deleted} = true, {synced} = $1 WHERE NOT {deleted}",
                        deleted = columns::DELETED,
                        synced = columns::SYNCED
                    );
                    self.runtime
                        .block_on(self.sql()?.execute(&sql, &[&synced]))
                        .map_err(write_error(format!("cannot truncate {target}")))?;
                }
            }
        }
        Ok(())
    }

    fn write_state(&mut self, state: &SavedState, synced: jiff::Timestamp) -> Result<(), DestinationError> {
        let table = self.target(columns::STATE_TABLE);
        self.execute(
            &format!("CREATE TABLE IF NOT EXISTS {table} (id integer PRIMARY KEY, connector text NOT NULL, state jsonb NOT NULL, committed_at timestamptz NOT NULL)"),
            "cannot create the state table",
        )?;
        let sql = format!(
            "INSERT INTO {table} VALUES (1, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET connector = excluded.connector, state = excluded.state, committed_at = excluded.committed_at"
        );
        let json = state.state.to_json();
        self.runtime
            .block_on(self.sql()?.execute(&sql, &[&state.connector, &json, &synced]))
            .map_err(write_error("cannot save the state"))?;
        Ok(())
    }

    /// The open transaction's sync time, or an error if none is open.
    fn open_transaction(&self) -> Result<jiff::Timestamp, DestinationError> {
        self.synced.ok_or_else(DestinationError::no_transaction)
    }

    /// Passes `result` on; on an error, first rolls back the open transaction.
    fn or_roll_back<T>(&mut self, result: Result<T, DestinationError>) -> Result<T, DestinationError> {
        if result.is_err() {
            // Dropped unfinished, the `COPY` left open is abandoned.
            self.open_copy.get_mut().take();
            let _ = self.runtime.block_on(self.client.batch_execute("ROLLBACK"));
            self.synced = None;
            // Tables and staging created by the failed transaction are gone with it.
            self.known.clear();
            self.staging.clear();
        }
        result
    }
}

impl Destination for PostgresDestination {
    fn describe(&self) -> String {
        format!("PostgreSQL {}, schema {}", self.server, self.schema)
    }

    /// Each piece into a table that has its key is a `COPY` whose end waits for the server to
    /// take every row: with a `COPY` a piece, pieces of 3,125 rows made loading 1,000,000 users a
    /// fifth slower than pieces of 12,500. (A first load, whose pieces share one `COPY`, takes
    /// the same time with either.)
    fn piece_rows(&self) -> usize {
        12_500
    }

    fn saved_state(&mut self) -> Result<Option<SavedState>, DestinationError> {
        let table = format!("{}.{}", quote(&self.schema), quote(columns::STATE_TABLE));
        let exists: Option<String> = self
            .runtime
            .block_on(self.sql()?.query_one("SELECT to_regclass($1)::text", &[&table]))
            .map_err(failure(DestinationErrorKind::Unavailable, "cannot read the catalog"))?
            .get(0);
        if exists.is_none() {
            return Ok(None);
        }
        let row = self
            .runtime
            .block_on(self.sql()?.query_opt(&format!("SELECT connector, state FROM {table} WHERE id = 1"), &[]))
            .map_err(failure(DestinationErrorKind::Unavailable, "cannot read the saved state"))?;
        let Some(row) = row else { return Ok(None) };
        let state = State::from_json(row.get::<_, serde_json::Value>(1))
            .map_err(|e| DestinationError::bad_state(&self.schema, e.message()))?;
        Ok(Some(SavedState { connector: row.get(0), state }))
    }

    fn begin(&mut self, synced_at: jiff::Timestamp) -> Result<(), DestinationError> {
        self.execute("BEGIN", "cannot begin a transaction")?;
        self.synced = Some(synced_at);
        let created = self.execute(
            &format!("CREATE SCHEMA IF NOT EXISTS {}", quote(&self.schema)),
            &format!("cannot create schema {}", self.schema),
        );
        self.or_roll_back(created)
    }

    fn write(&mut self, tables: &[TableSpec], segments: &[Segment]) -> Result<(), DestinationError> {
        let written = self.open_transaction().and_then(|synced| self.apply(tables, segments, synced));
        self.or_roll_back(written)
    }

    fn commit(&mut self, state: &SavedState) -> Result<(), DestinationError> {
        let committed = self.open_transaction().and_then(|synced| {
            self.write_state(state, synced)?;
            failpoint::hit("write.before_commit");
            self.execute("COMMIT", "cannot commit")
        });
        self.synced = None;
        self.or_roll_back(committed)
    }

    fn clear_state(&mut self) -> Result<(), DestinationError> {
        if self.existing_columns(columns::STATE_TABLE)?.is_empty() {
            return Ok(());
        }
        self.execute(&format!("DELETE FROM {}", self.target(columns::STATE_TABLE)), "cannot clear the state")
    }

    /// Adds the primary keys put off on the tables this session created, in one transaction.
    fn finish(&mut self) -> Result<(), DestinationError> {
        let deferred: Vec<(String, DeferredKey)> = self
            .known
            .iter_mut()
            .filter_map(|(table, known)| Some((table.clone(), known.deferred_key.take()?)))
            .collect();
        if deferred.is_empty() {
            return Ok(());
        }
        self.execute("BEGIN", "cannot begin a transaction")?;
        let added = deferred
            .iter()
            .try_for_each(|(table, key)| {
                tracing::info!(
                    "adding the primary key ({}) to {}, built once from the rows loaded",
                    key.columns,
                    self.target(table)
                );
                self.add_key(table, key)
            })
            .and_then(|()| self.execute("COMMIT", "cannot commit the primary keys"));
        self.or_roll_back(added)
    }
}

impl PostgresDestination {
    /// Every row of `table`, ordered by primary key: for tests and tools.
    pub fn rows(&mut self, table: &str) -> Result<Vec<StoredRow>, DestinationError> {
        if self.existing_columns(table)?.is_empty() {
            return Ok(Vec::new());
        }
        let target = self.target(table);
        let keys: Vec<String> = self
            .runtime
            .block_on(self.sql()?.query(
                "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
                &[&target],
            ))
            .map_err(failure(DestinationErrorKind::Unavailable, "cannot read the primary key"))?
            .iter()
            .map(|r| quote(r.get::<_, &str>(0)))
            .collect();
        let order = if keys.is_empty() { "1".to_owned() } else { keys.join(", ") };
        let sql = format!("SELECT * FROM {target} ORDER BY {order}");
        let rows = self
            .runtime
            .block_on(self.sql()?.query(&sql, &[]))
            .map_err(failure(DestinationErrorKind::Unavailable, format!("cannot read {table}")))?;
        Ok(rows
            .iter()
            .map(|row| {
                let mut record = Record::new();
                let (mut deleted, mut synced_at) = (false, jiff::Timestamp::UNIX_EPOCH);
                for (i, column) in row.columns().iter().enumerate() {
                    let value = read_value(row, i, column.type_());
                    match column.name() {
                        columns::DELETED => deleted = value == Value::Bool(true),
                        columns::SYNCED => {
                            if let Value::Timestamp(t) = value {
                                synced_at = t;
                            }
                        }
                        name => record.set(name, value),
                    }
                }
                StoredRow { record, deleted, synced_at }
            })
            .collect())
    }

    /// The names of `table`'s columns, in order.
    pub fn columns(&self, table: &str) -> Result<Vec<String>, DestinationError> {
        self.existing_columns(table)
    }

    /// Drops the schema and everything in it (`inlet reset`).
    pub fn drop_schema(&mut self) -> Result<(), DestinationError> {
        self.known.clear();
        self.staging.clear();
        self.held.clear();
        self.upserted.clear();
        self.execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(&self.schema)), "cannot drop the schema")
    }
}

/// Encodes `rows` and sends them into `sink` a full chunk at a time; the bytes short of a chunk
/// stay in `encoded`.
async fn send_rows<'a>(
    mut sink: Pin<&mut CopyInSink<Bytes>>,
    encoded: &mut CopyRows,
    rows: impl Iterator<Item = (&'a [Value], bool)>,
) -> Result<(), CopyFailure> {
    for (values, deleted) in rows {
        encoded.push(values, deleted).map_err(CopyFailure::Row)?;
        if let Some(chunk) = encoded.full_chunk() {
            sink.send(chunk).await?;
        }
    }
    Ok(())
}

/// `COPY` of `columns` and the two fields of `trailer` into `table` (qualified and quoted).
fn copy_statement(table: &str, columns: &[&ColumnSpec], trailer: [&str; 2]) -> String {
    let names: Vec<String> = columns.iter().map(|c| quote(&c.name)).chain(trailer.map(str::to_owned)).collect();
    format!("COPY {table} ({}) FROM STDIN (FORMAT binary)", names.join(", "))
}

/// Why a `COPY` failed.
enum CopyFailure {
    /// A row's value does not fit its column.
    Row(String),
    /// The server refused the rows, or the connection broke.
    Server(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for CopyFailure {
    fn from(e: tokio_postgres::Error) -> Self {
        CopyFailure::Server(e)
    }
}

impl CopyFailure {
    fn into_destination_error(self, table: &str) -> DestinationError {
        match self {
            CopyFailure::Row(e) => {
                DestinationError::new(DestinationErrorKind::Write, format!("cannot copy a row into {table}: {e}"))
            }
            CopyFailure::Server(e) => write_error(format!("cannot copy rows into {table}"))(e),
        }
    }
}

fn read_value(row: &tokio_postgres::Row, i: usize, ty: &Type) -> Value {
    fn get<'a, T: postgres_types::FromSql<'a>>(row: &'a tokio_postgres::Row, i: usize) -> Option<T> {
        row.try_get::<_, Option<T>>(i).ok().flatten()
    }
    match *ty {
        Type::BOOL => get::<bool>(row, i).map_or(Value::Null, Value::Bool),
        Type::INT2 => get::<i16>(row, i).map_or(Value::Null, |v| Value::Int(v.into())),
        Type::INT4 => get::<i32>(row, i).map_or(Value::Null, |v| Value::Int(v.into())),
        Type::INT8 => get::<i64>(row, i).map_or(Value::Null, Value::Int),
        Type::FLOAT4 => get::<f32>(row, i).map_or(Value::Null, |v| Value::Float(v.into())),
        Type::FLOAT8 => get::<f64>(row, i).map_or(Value::Null, Value::Float),
        Type::NUMERIC => get::<inlet_sdk::Decimal>(row, i).map_or(Value::Null, Value::Decimal),
        Type::DATE => get::<jiff::civil::Date>(row, i).map_or(Value::Null, Value::Date),
        Type::TIMESTAMP => get::<jiff::civil::DateTime>(row, i).map_or(Value::Null, Value::DateTime),
        Type::TIMESTAMPTZ => get::<jiff::Timestamp>(row, i).map_or(Value::Null, Value::Timestamp),
        Type::BYTEA => get::<Vec<u8>>(row, i).map_or(Value::Null, Value::Bytes),
        Type::JSONB | Type::JSON => get::<serde_json::Value>(row, i).map_or(Value::Null, Value::Json),
        _ => get::<String>(row, i).map_or(Value::Null, Value::String),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://ann:s3cret@db:5432/x"), "postgres://ann:***@db:5432/x");
        assert_eq!(redact("postgres://ann@db/x"), "postgres://ann@db/x");
        assert_eq!(redact("postgres://ann:p@ss@db/x"), "postgres://ann:***@db/x");
    }
}
