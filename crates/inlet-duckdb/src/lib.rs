//! The DuckDB destination: an embedded warehouse in one file.
//!
//! Each transaction of the engine is one DuckDB transaction: tables are created or grown, each
//! piece of rows is appended with the Appender, in Arrow batches (never row-by-row
//! `INSERT`s), and at the end the state row is written, then `COMMIT`. A crash at any instant
//! leaves either the whole transaction or none of it. DuckDB locks the file, so a second sync
//! on the same warehouse is refused while one runs.
//!
//! Tables declare no `PRIMARY KEY`: DuckDB's key index made loading four times slower and the
//! file five times larger. inlet keeps one row per key itself: it knows the hashes of the keys
//! each table holds (`keys.rs`), appends the rows whose key is certainly new straight into the
//! table, and stages the others in a temporary table and merges them with an exact join. The
//! key columns are `NOT NULL` and named in the table's comment, as JSON:
//! `{"primary_key":["id"]}`.
//!
//! The connection runs DuckDB on one thread, with 32 MB of memory, text stored uncompressed
//! unless asked, and row groups of 61,440 rows, each large transaction written into the file as
//! it commits: [`DuckDbDestination::open`] says why, docs/performance.md with figures.
//!
//! Types: `BOOLEAN`, `SMALLINT`, `INTEGER`, `BIGINT`, `FLOAT`, `DOUBLE`, `DECIMAL(p,s)`, `DATE`,
//! `TIMESTAMP` (naive), `TIMESTAMPTZ` (UTC instants), `BLOB`, `VARCHAR` (strings, XML) and
//! `JSON`. Every table also has `_inlet_synced TIMESTAMPTZ` and `_inlet_deleted BOOLEAN`;
//! `_inlet_state` holds the saved state. Times are stored to the microsecond.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use duckdb::types::{TimeUnit, Value as Db};
use duckdb::{Connection, params_from_iter};
use inlet_engine::keys::{KeyHashes, rows_where, worth_reading_keys};
use inlet_engine::sql::{UpsertClauses, key_list, key_matches, literal, quote};
use inlet_engine::{
    ColumnSpec, Destination, DestinationError, DestinationErrorKind, SavedState, Segment, StoredRow, TableSpec,
    columns, failpoint,
};
use inlet_sdk::{ColumnType, Decimal, Record, State, Value};

mod batch;
mod keys;
use batch::{BATCH_ROWS, RowBatch, Trailer, epoch_days, epoch_micros};

/// A DuckDB warehouse file, and the schema a connector writes to.
pub struct DuckDbDestination {
    connection: Connection,
    path: PathBuf,
    schema: String,
    /// Columns each target table has (none: it does not exist), as looked up or made in this
    /// session.
    known: HashMap<String, Vec<String>>,
    /// Staging tables created in this session, by name, with their column count.
    staging: HashMap<String, usize>,
    /// The hashes of the keys each table holds, by table, once read in this session. A set
    /// only grows: after a rolled-back commit it holds keys the table lacks, which is safe.
    held: HashMap<String, KeyHashes>,
    /// Where the sets in `held` keep their hashes: the warehouse's directory, in files without
    /// names.
    spill: PathBuf,
    /// Rows staged for each table in this session: when they are many next to the table, its
    /// key hashes are worth reading.
    staged_rows: HashMap<String, usize>,
    /// DuckDB's memory limit was lifted for a table with a key index.
    memory_unlimited: bool,
    /// The file was created by this session and no transaction has ended yet: it holds no
    /// table, so none is looked up. DuckDB reports a missing table with a C++ exception, and
    /// the first one maps about 3 MB of the binary (its unwinding tables and DuckDB's error
    /// paths) into a first sync's memory (docs/performance.md).
    fresh: bool,
    /// DuckDB's transaction has begun (it begins with the first write of the open one).
    started: bool,
    /// The sync time of the open transaction's rows; `None` when none is open.
    synced: Option<jiff::Timestamp>,
    /// Rows the open transaction has written: a large one is checkpointed as it commits.
    written: usize,
    /// DuckDB's settings are those of a large commit (see [`BULK_COMMIT_ROWS`]), to be restored
    /// before the next transaction begins.
    bulk_settings: bool,
}

/// A column as the warehouse has it.
struct StoredColumn {
    name: String,
    /// Its DuckDB type.
    ty: String,
    /// It belongs to a `PRIMARY KEY` constraint (tables created by earlier versions of inlet).
    in_key_index: bool,
}

/// A table rows are appended to.
#[derive(Clone, Copy)]
enum Place<'a> {
    /// A table of the warehouse's schema.
    Target(&'a str),
    /// A temporary staging table.
    Staging(&'a str),
}

impl<'a> Place<'a> {
    fn name(self) -> &'a str {
        match self {
            Place::Target(name) | Place::Staging(name) => name,
        }
    }
}

/// DuckDB's memory limit. Without one DuckDB keeps every block it writes cached, up to 80% of
/// the machine's memory, so a sync's memory grew with the table. What exceeds the limit
/// spills to a temporary file beside the warehouse, which stays in the page cache: a first
/// sync of 1,000,000 users runs as fast at 32 MB as at 64 and peaks 30 MB lower; at 16 MB it
/// saves little more (docs/performance.md).
const MEMORY_LIMIT: &str = "32MB";

/// The memory limit that [`evict_written_blocks`](DuckDbDestination::evict_written_blocks)
/// sets for a moment, so that DuckDB evicts what it caches.
const EVICTION_LIMIT: &str = "1MB";

/// The size of DuckDB's log at which a commit also writes the committed rows into the file
/// (a checkpoint); until then DuckDB holds them in memory. At DuckDB's default, 16 MB, the
/// small commits of a writer that keeps catching up with pages of 50 piled up three deep and
/// overflowed the memory limit into a temporary file; at 12 MB a 1,000,000-user sync with pages
/// of 50 took 4.6-5.5 s instead of 5.3-6.6, with pages of 1,000 as long as before. Each
/// checkpoint leaves the rows it writes in row groups of their own, and DuckDB merges
/// neighbouring row groups that fit in fewer: at 4 MB every checkpoint rewrote the rows of the
/// one before, and syncs took half again as long (docs/performance.md, nineteenth round).
const CHECKPOINT_THRESHOLD: &str = "12MB";

/// Rows in a row group, DuckDB's unit of storage and of merging (122,880 by default): room for
/// a transaction of the engine's (50,000 rows and the checkpoint that passes them), so that a
/// transaction checkpointed as it commits fills most of one row group (see
/// [`BULK_COMMIT_ROWS`]). A multiple of 2,048, as DuckDB requires. DuckDB takes it when it
/// attaches the file; row groups already written keep their size.
const ROW_GROUP_ROWS: usize = 61_440;

/// The name the warehouse is attached under. DuckDB cannot tell a catalog from a schema of the
/// same name in `schema.table`; opened, the file's catalog was named after the file, so a
/// schema named `warehouse` in `warehouse.db` was refused as ambiguous.
const CATALOG: &str = "_inlet_warehouse";

/// A transaction that writes at least this many rows is written into the file as it commits
/// (a checkpoint) instead of into DuckDB's log first: logging 50,000 users took 50 to 75 ms
/// of each commit that did not checkpoint, and the next checkpoint wrote them again. Its rows
/// form row groups of their own, which DuckDB merges when neighbours fit in fewer (at most
/// three): above three quarters of [`ROW_GROUP_ROWS`] they never do, so the work is
/// not merely put off to a later checkpoint. Smaller transactions, such as the few rows of an
/// incremental sync, go to the log and are checkpointed together at [`CHECKPOINT_THRESHOLD`]
/// (docs/performance.md, nineteenth round).
const BULK_COMMIT_ROWS: usize = ROW_GROUP_ROWS / 4 * 3 + 1;

/// A table's stored keys are read once this session has staged one row for every this many it
/// holds: reading them costs about one join of the staged rows against the table.
const KEYS_READ_AT: u64 = 100;

/// The key of the table's comment (a JSON object) that lists its primary-key columns.
const KEY_COMMENT: &str = "primary_key";

/// The DuckDB type of a column type.
pub fn sql_type(ty: ColumnType) -> String {
    match ty {
        ColumnType::Boolean => "BOOLEAN".into(),
        ColumnType::Short => "SMALLINT".into(),
        ColumnType::Int => "INTEGER".into(),
        ColumnType::Long => "BIGINT".into(),
        ColumnType::Float => "FLOAT".into(),
        ColumnType::Double => "DOUBLE".into(),
        ColumnType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
        ColumnType::NaiveDate => "DATE".into(),
        ColumnType::NaiveDateTime => "TIMESTAMP".into(),
        ColumnType::UtcDateTime => "TIMESTAMPTZ".into(),
        ColumnType::Binary => "BLOB".into(),
        ColumnType::Xml | ColumnType::String => "VARCHAR".into(),
        ColumnType::Json => "JSON".into(),
    }
}

fn failure(kind: DestinationErrorKind, what: impl Into<String>, error: duckdb::Error) -> DestinationError {
    DestinationError::new(kind, format!("{}: {error}", what.into())).with_source(error)
}

fn write_error(what: impl Into<String>) -> impl FnOnce(duckdb::Error) -> DestinationError {
    let what = what.into();
    move |e| failure(DestinationErrorKind::Write, what, e)
}

impl DuckDbDestination {
    /// Opens (creating if needed) the warehouse at `path`, writing to `schema`.
    ///
    /// The connection never downloads an extension (they are bundled or absent), stores text
    /// uncompressed (see [`compress_text`](Self::compress_text)), bounds DuckDB's memory to
    /// 32 MB (so that it does not keep every block it writes), checkpoints at 12 MB of log
    /// rather than 16 (so that small commits do not pile up in memory; a large commit is
    /// checkpointed at once, see `BULK_COMMIT_ROWS`) and runs DuckDB on one
    /// thread: a sync keeps the cores busy with its own threads (fetching, converting,
    /// committing), and DuckDB's workers only competed with them (a first sync of 1,000,000
    /// users took a quarter less CPU with one, and spilled nothing to disk).
    pub fn open(path: &Path, schema: &str) -> Result<Self, DestinationError> {
        if schema.trim().is_empty() {
            return Err(DestinationError::new(DestinationErrorKind::Unavailable, "the schema name is empty"));
        }
        let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(directory).map_err(|e| {
            DestinationError::new(
                DestinationErrorKind::Unavailable,
                format!("cannot create the directory {}", directory.display()),
            )
            .with_source(e)
        })?;
        // A new file holds no table: DuckDB discards a write-ahead log left without its file.
        let fresh = !path.exists();
        let attached = path.to_str().ok_or_else(|| {
            DestinationError::new(
                DestinationErrorKind::Unavailable,
                format!("the warehouse path {} is not valid UTF-8; choose another with --warehouse", path.display()),
            )
        })?;
        // Attached rather than opened, to give it its row group size. What exceeds the memory
        // limit spills beside the warehouse, as for a file DuckDB opens; for a database in
        // memory DuckDB would spill to `.tmp` in the working directory.
        let opened = Connection::open_in_memory().and_then(|c| {
            c.execute_batch(&format!(
                "SET temp_directory = {}; ATTACH {} AS {CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_ROWS}); USE {CATALOG}",
                literal(&format!("{attached}.tmp")),
                literal(attached)
            ))?;
            Ok(c)
        });
        let connection = opened.map_err(|e| {
            let text = e.to_string();
            if text.contains("Could not set lock") || text.contains("Conflicting lock") {
                let holder = text.split("(PID ").nth(1).and_then(|rest| rest.split(')').next()).map(|pid| format!(" (PID {pid})")).unwrap_or_default();
                DestinationError::new(
                    DestinationErrorKind::Busy,
                    format!("the warehouse {} is in use by another process{holder}: a second sync on the same warehouse at the same time is refused; wait for it to finish", path.display()),
                )
                .with_source(e)
            } else {
                failure(DestinationErrorKind::Unavailable, format!("cannot open the DuckDB warehouse {}", path.display()), e)
            }
        })?;
        connection
            .execute_batch(&format!(
                "SET autoinstall_known_extensions = false; SET autoload_known_extensions = false; \
                 SET disabled_compression_methods = 'dict_fsst'; SET memory_limit = '{MEMORY_LIMIT}'; SET threads = 1; \
                 SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}';"
            ))
            .map_err(|e| failure(DestinationErrorKind::Unavailable, "cannot configure DuckDB", e))?;
        Ok(DuckDbDestination {
            connection,
            path: path.to_owned(),
            schema: schema.to_owned(),
            known: HashMap::new(),
            staging: HashMap::new(),
            held: HashMap::new(),
            spill: directory.to_owned(),
            staged_rows: HashMap::new(),
            memory_unlimited: false,
            fresh,
            started: false,
            synced: None,
            written: 0,
            bulk_settings: false,
        })
    }

    /// Lets DuckDB compress text (dictionary and FSST encoding) when it writes rows to the
    /// file. By default inlet stores text uncompressed: compressing it was half of DuckDB's
    /// work in a load, and text-heavy tables take about twice the space without it
    /// (docs/performance.md has the figures). Numbers, times and repeated values are compressed
    /// either way.
    pub fn compress_text(self) -> Result<Self, DestinationError> {
        self.connection
            .execute_batch("RESET disabled_compression_methods")
            .map_err(|e| failure(DestinationErrorKind::Unavailable, "cannot configure DuckDB", e))?;
        Ok(self)
    }

    fn target(&self, table: &str) -> String {
        format!("{}.{}", quote(&self.schema), quote(table))
    }

    /// The columns of `table` in order; none when it does not exist.
    ///
    /// Outside a transaction this asks `pragma_table_info`, which answers in a millisecond but
    /// fails for a missing table; the first query of DuckDB's catalog functions
    /// (`information_schema`, `duckdb_columns()`), which never fail, takes 10 to 20 ms in a new
    /// process. Inside a transaction a failed statement would abort it, so there the catalog
    /// functions answer: [`start`](Self::start) looks tables up before it begins one.
    fn columns_of(&self, table: &str) -> Result<Vec<StoredColumn>, DestinationError> {
        if self.fresh {
            return Ok(Vec::new());
        }
        let read = || -> Result<Vec<StoredColumn>, duckdb::Error> {
            let column =
                |r: &duckdb::Row<'_>| Ok(StoredColumn { name: r.get(0)?, ty: r.get(1)?, in_key_index: r.get(2)? });
            if self.started {
                let sql = "SELECT c.column_name, c.data_type, coalesce(list_contains(k.constraint_column_names, c.column_name), false) \
                           FROM duckdb_columns() c LEFT JOIN duckdb_constraints() k ON k.schema_name = c.schema_name \
                           AND k.table_name = c.table_name AND k.constraint_type = 'PRIMARY KEY' \
                           WHERE c.schema_name = ? AND c.table_name = ? ORDER BY c.column_index";
                let mut statement = self.connection.prepare(sql)?;
                let rows = statement.query_map([self.schema.as_str(), table], column)?;
                rows.collect()
            } else {
                let mut statement = self.connection.prepare("SELECT name, type, pk FROM pragma_table_info(?)")?;
                let rows = statement.query_map([self.target(table)], column)?;
                rows.collect()
            }
        };
        match read() {
            Err(e) if missing_table(&e) => Ok(Vec::new()),
            other => {
                other.map_err(|e| failure(DestinationErrorKind::Unavailable, "cannot read the warehouse's catalog", e))
            }
        }
    }

    /// Looks up `table` and remembers its columns (none if it does not exist). A table with a
    /// key index (created by an earlier version of inlet) lifts DuckDB's memory limit: the
    /// index must fit in memory.
    fn inspect(&mut self, table: &str) -> Result<(), DestinationError> {
        let stored = self.columns_of(table)?;
        if stored.iter().any(|c| c.in_key_index) {
            self.lift_memory_limit()
                .map_err(write_error(format!("cannot lift DuckDB's memory limit for the key index of `{table}`")))?;
        }
        self.known.insert(table.to_owned(), stored.into_iter().map(|c| c.name).collect());
        Ok(())
    }

    /// Lifts DuckDB's memory limit for good, for what DuckDB must hold in memory whole.
    fn lift_memory_limit(&mut self) -> Result<(), duckdb::Error> {
        if !self.memory_unlimited {
            self.connection.execute_batch("RESET memory_limit")?;
            self.memory_unlimited = true;
        }
        Ok(())
    }

    /// Begins the DuckDB transaction of the open one, unless it has begun: the tables of
    /// `tables` not known yet are looked up first, outside it (see [`columns_of`](Self::columns_of)).
    fn start(&mut self, tables: &[TableSpec]) -> Result<(), DestinationError> {
        if self.started {
            return Ok(());
        }
        if self.bulk_settings {
            let sql = format!("SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'");
            self.connection.execute_batch(&sql).map_err(write_error("cannot restore DuckDB's checkpoint settings"))?;
            self.bulk_settings = false;
            self.evict_written_blocks()?;
        }
        for spec in tables {
            if !self.known.contains_key(&spec.name) {
                self.inspect(&spec.name)?;
            }
        }
        self.connection.execute_batch("BEGIN TRANSACTION").map_err(write_error("cannot begin a transaction"))?;
        self.started = true;
        let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", quote(&self.schema));
        self.connection.execute_batch(&sql).map_err(write_error(format!("cannot create schema {}", self.schema)))
    }

    /// Drops from DuckDB's cache the blocks a large commit wrote into the file. DuckDB keeps the
    /// blocks it writes until its memory limit forces them out, so from the third large commit
    /// on the limit was full of them when the next commit wrote its rows, and a long sync
    /// peaked higher than a short one (docs/performance.md, twentieth round). Lowering the limit
    /// evicts them without writing anything, since they are in the file, and returns their
    /// memory to the system; the limit is then restored. Taking the memory back for the next
    /// transaction costs page faults, no time that could be measured. A table with a key index
    /// keeps DuckDB unlimited, and its blocks.
    fn evict_written_blocks(&self) -> Result<(), DestinationError> {
        if self.memory_unlimited {
            return Ok(());
        }
        // DuckDB refuses a limit it cannot evict down to, and keeps the one it had: then the
        // blocks stay cached, as they did before, and nothing is to be undone.
        if let Err(e) = self.connection.execute_batch(&format!("SET memory_limit = '{EVICTION_LIMIT}'")) {
            tracing::debug!("DuckDB kept the blocks it wrote cached: {e}");
        }
        let sql = format!("SET memory_limit = '{MEMORY_LIMIT}'");
        self.connection.execute_batch(&sql).map_err(write_error("cannot restore DuckDB's memory limit"))
    }

    /// Bytes in DuckDB's buffer pool: the blocks it caches and the rows of the open transaction.
    pub fn memory_in_use(&self) -> Result<u64, DestinationError> {
        let sql = "SELECT coalesce(sum(memory_usage_bytes), 0)::UBIGINT FROM duckdb_memory()";
        self.connection
            .query_row(sql, [], |r| r.get(0))
            .map_err(|e| failure(DestinationErrorKind::Unavailable, "cannot read DuckDB's memory use", e))
    }

    /// The primary-key columns of `table`: from the table's comment, or from the constraint
    /// that tables created by earlier versions of inlet declare.
    fn primary_key(&self, table: &str) -> Result<Vec<String>, DestinationError> {
        let sql = "SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?";
        let comment: Option<String> = self
            .connection
            .query_row(sql, [&self.schema, table], |r| r.get(0))
            .map_err(write_error("cannot read the primary key"))?;
        if let Some(keys) = comment
            .and_then(|c| serde_json::from_str::<serde_json::Value>(&c).ok())
            .and_then(|c| serde_json::from_value::<Vec<String>>(c[KEY_COMMENT].clone()).ok())
        {
            return Ok(keys);
        }
        let sql = "SELECT unnest(constraint_column_names) FROM duckdb_constraints() WHERE schema_name = ? AND table_name = ? AND constraint_type = 'PRIMARY KEY'";
        let mut statement = self.connection.prepare(sql).map_err(write_error("cannot read the primary key"))?;
        statement
            .query_map([&self.schema, table], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(write_error("cannot read the primary key"))
    }

    /// Creates the table, or adds the columns it lacks.
    fn ensure_table(&mut self, spec: &TableSpec) -> Result<(), DestinationError> {
        if !self.known.contains_key(&spec.name) {
            self.inspect(&spec.name)?;
        }
        let known = &self.known[&spec.name];
        let missing: Vec<&ColumnSpec> = spec.columns.iter().filter(|c| !known.contains(&c.name)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let target = self.target(&spec.name);
        if known.is_empty() {
            let mut sql = format!("CREATE TABLE {target} (");
            for (i, c) in spec.columns.iter().enumerate() {
                let required = if spec.primary_key.contains(&i) { " NOT NULL" } else { "" };
                let _ = write!(sql, "{} {}{required}, ", quote(&c.name), sql_type(c.ty));
            }
            let key: Vec<&str> = spec.primary_key.iter().map(|&k| spec.columns[k].name.as_str()).collect();
            let _ = write!(
                sql,
                "{} TIMESTAMPTZ NOT NULL, {} BOOLEAN NOT NULL DEFAULT false); COMMENT ON TABLE {target} IS {}",
                columns::SYNCED,
                columns::DELETED,
                literal(&serde_json::json!({ KEY_COMMENT: key }).to_string()),
            );
            self.connection.execute_batch(&sql).map_err(write_error(format!("cannot create table {target}")))?;
        } else {
            for c in &missing {
                let sql = format!("ALTER TABLE {target} ADD COLUMN {} {}", quote(&c.name), sql_type(c.ty));
                self.connection
                    .execute_batch(&sql)
                    .map_err(write_error(format!("cannot add column `{}` to {target}", c.name)))?;
            }
        }
        let added: Vec<String> = missing.iter().map(|c| c.name.clone()).collect();
        let known = self.known.entry(spec.name.clone()).or_default();
        if known.is_empty() {
            known.extend(spec.columns.iter().map(|c| c.name.clone()));
            known.extend([columns::SYNCED.to_owned(), columns::DELETED.to_owned()]);
        } else {
            known.extend(added);
        }
        Ok(())
    }

    /// A temporary table for `spec`'s rows (`key_only`: its primary key only), empty, and the
    /// columns it stages.
    fn stage<'s>(
        &mut self,
        spec: &'s TableSpec,
        key_only: bool,
    ) -> Result<(String, Vec<&'s ColumnSpec>), DestinationError> {
        let name = format!("_inlet_{}_{}", if key_only { "keys" } else { "rows" }, spec.name);
        let columns: Vec<&ColumnSpec> = if key_only {
            spec.primary_key.iter().map(|&k| &spec.columns[k]).collect()
        } else {
            spec.columns.iter().collect()
        };
        if self.staging.get(&name) == Some(&columns.len()) {
            return Ok((name, columns));
        }
        let mut sql = format!("DROP TABLE IF EXISTS temp.{0}; CREATE TEMP TABLE {0} (", quote(&name));
        for c in &columns {
            let _ = write!(sql, "{} {}, ", quote(&c.name), sql_type(c.ty));
        }
        sql.push_str("_inlet_seq BIGINT, _inlet_row_deleted BOOLEAN)");
        self.connection
            .execute_batch(&sql)
            .map_err(write_error(format!("cannot create the staging table for `{}`", spec.name)))?;
        self.staging.insert(name.clone(), columns.len());
        Ok((name, columns))
    }

    /// Appends `rows` (values, deleted) of `columns` to `table` (in the warehouse's schema, or
    /// a staging table) as record batches with `trailer`'s columns, named `trailer_names`;
    /// short rows end with `NULL`s.
    fn append<'a>(
        &self,
        table: Place,
        columns: Vec<&ColumnSpec>,
        (trailer, trailer_names): (Trailer, [&str; 2]),
        rows: impl Iterator<Item = (&'a [Value], bool)>,
    ) -> Result<(), DestinationError> {
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).chain(trailer_names).collect();
        let appender = match table {
            Place::Target(table) => self.connection.appender_with_columns_to_db(table, &self.schema, &names),
            Place::Staging(table) => {
                self.connection.appender_with_columns_to_catalog_and_db(table, "temp", "main", &names)
            }
        };
        let table = table.name();
        let mut appender = appender.map_err(write_error(format!("cannot append to `{table}`")))?;
        let mut batch = RowBatch::new(columns, trailer);
        for (values, deleted) in rows {
            batch.push(values, deleted).map_err(|e| {
                DestinationError::new(DestinationErrorKind::Write, format!("cannot write a row of `{table}`: {e}"))
            })?;
            if batch.len() == BATCH_ROWS {
                appender.append_record_batch(batch.take()).map_err(write_error(format!("cannot write `{table}`")))?;
            }
        }
        if batch.len() > 0 {
            appender.append_record_batch(batch.take()).map_err(write_error(format!("cannot write `{table}`")))?;
        }
        appender.flush().map_err(write_error(format!("cannot write `{table}`")))
    }

    /// Appends `rows` to the staging table `stage`, numbered in order.
    fn append_staged<'a>(
        &self,
        stage: &str,
        columns: Vec<&ColumnSpec>,
        rows: impl Iterator<Item = (&'a [Value], bool)>,
    ) -> Result<(), DestinationError> {
        self.append(Place::Staging(stage), columns, (Trailer::Staging, ["_inlet_seq", "_inlet_row_deleted"]), rows)
    }

    /// The hashes of the keys `spec`'s table holds, read from the table the first time, unless
    /// its keys can't be hashed (see [`keys::hashable`]) or the rows staged for it in this
    /// session, `staged` included, are too few to make reading them worth it
    /// ([`worth_reading_keys`]).
    fn held_keys(&mut self, spec: &TableSpec, staged: usize) -> Result<Option<&mut KeyHashes>, DestinationError> {
        if !keys::hashable(spec) {
            return Ok(None);
        }
        let staged = {
            let total = self.staged_rows.entry(spec.name.clone()).or_default();
            *total += staged;
            *total
        };
        if !self.held.contains_key(&spec.name) {
            let sql = format!("SELECT count(*) FROM {}", self.target(&spec.name));
            let stored: i64 = self
                .connection
                .query_row(&sql, [], |r| r.get(0))
                .map_err(write_error("cannot count the rows of a table"))?;
            if !worth_reading_keys(staged, stored.unsigned_abs(), KEYS_READ_AT) {
                return Ok(None);
            }
            let target = self.target(&spec.name);
            // Read as the connector types them, which a table created by another version of
            // the connector may not share; a stored key that does not convert cannot equal a
            // staged one.
            let keys: Vec<String> = spec
                .primary_key
                .iter()
                .map(|&k| format!("TRY_CAST({} AS {})", quote(&spec.columns[k].name), sql_type(spec.columns[k].ty)))
                .collect();
            let sql = format!("SELECT {} FROM {target}", keys.join(", "));
            let read_error = || write_error(format!("cannot read the keys of {target}"));
            let mut statement = self.connection.prepare(&sql).map_err(read_error())?;
            let mut held = KeyHashes::new(&self.spill);
            let mut hashes = Vec::new();
            for batch in statement.stream_arrow([]).map_err(read_error())? {
                // A key misread would be taken for a new one and written twice: no guessing.
                keys::stored_hashes(batch.map_err(read_error())?.columns(), &mut hashes).map_err(|e| {
                    DestinationError::new(DestinationErrorKind::Write, format!("cannot read the keys of {target}: {e}"))
                })?;
                if hashes.len() >= KeyHashes::STORED_AT_ONCE {
                    held.insert_stored(&mut hashes)?;
                }
            }
            held.insert_stored(&mut hashes)?;
            self.held.insert(spec.name.clone(), held);
        }
        Ok(self.held.get_mut(&spec.name))
    }

    /// Merges `rows` into the table: the newest row per key, never replacing a newer stored
    /// one. Rows whose key the table certainly lacks, and that the piece holds once, are
    /// appended to the table; the others are staged and compared with the stored rows, which
    /// costs a join over the table.
    fn upsert(
        &mut self,
        spec: &TableSpec,
        rows: &[inlet_engine::Row],
        synced: jiff::Timestamp,
    ) -> Result<(), DestinationError> {
        let direct: Vec<bool> = match self.held_keys(spec, rows.len())? {
            None => vec![false; rows.len()],
            Some(held) => {
                let hashes: Vec<Option<u64>> = rows.iter().map(|r| keys::row_hash(spec, &r.values)).collect();
                held.admit(&hashes)?
            }
        };
        let new_rows = direct.iter().filter(|d| **d).count();
        if new_rows > 0 {
            let names = [columns::SYNCED, columns::DELETED];
            let trailer = Trailer::Target { synced: synced.as_microsecond() };
            self.append(
                Place::Target(&spec.name),
                spec.columns.iter().collect(),
                (trailer, names),
                rows_where(rows, &direct, true),
            )?;
        }
        if new_rows < rows.len() {
            self.merge_staged(spec, rows_where(rows, &direct, false), synced)?;
        }
        Ok(())
    }

    /// Stages `rows` and merges them into the table: the stored rows are updated unless newer,
    /// the others added.
    fn merge_staged<'a>(
        &mut self,
        spec: &TableSpec,
        rows: impl Iterator<Item = (&'a [Value], bool)>,
        synced: jiff::Timestamp,
    ) -> Result<(), DestinationError> {
        let (stage, staged) = self.stage(spec, false)?;
        self.append_staged(&stage, staged, rows)?;
        let stage = format!("temp.{}", quote(&stage));
        let target = self.target(&spec.name);
        let merge = UpsertClauses::new(spec, &target, "staged");
        let merge_error = || write_error(format!("cannot merge rows into {target}"));
        let keys = key_list(spec);
        let superseded = format!(
            "DELETE FROM {stage} WHERE _inlet_seq IN (SELECT _inlet_seq FROM {stage} \
             QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {newest}) > 1)",
            newest = merge.newest
        );
        self.connection.execute_batch(&superseded).map_err(write_error("cannot drop superseded staged rows"))?;
        let candidates: usize = self
            .connection
            .query_row(&format!("SELECT count(*) FROM {stage}"), [], |r| r.get(0))
            .map_err(merge_error())?;
        let matches = key_matches(spec, &target, "staged");
        let staged = format!(
            "(SELECT {cols}, ?::TIMESTAMPTZ AS {synced}, _inlet_row_deleted AS {deleted} FROM {stage}) staged",
            cols = merge.columns,
            synced = columns::SYNCED,
            deleted = columns::DELETED,
        );
        let at = timestamp(synced);
        // Rows stored at the same version are replaced first: joining on the version too lets
        // DuckDB skip the row groups whose versions differ, so the rows a sync reads again at
        // its cursor cost a few row groups, not the whole table.
        let mut done = false;
        if let Some(version) = spec.version {
            let v = quote(&spec.columns[version].name);
            let same = format!(
                "UPDATE {target} SET {sets} FROM {staged} WHERE {matches} AND {target}.{v} = staged.{v}",
                sets = merge.sets
            );
            done = self.connection.execute(&same, [at.clone()]).map_err(merge_error())? == candidates;
        }
        // Every staged row whose key is stored counts as updated, even when the stored row is
        // newer and keeps its values: then only a count short of the staged rows needs the
        // second scan of the table, for the keys it lacks.
        if !done {
            let update = format!("UPDATE {target} SET {} FROM {staged} WHERE {matches}", merge.guarded_sets);
            if self.connection.execute(&update, [at.clone()]).map_err(merge_error())? < candidates {
                let missing = format!(
                    "INSERT INTO {target} ({cols}, {synced}, {deleted}) SELECT {cols}, ?::TIMESTAMPTZ, _inlet_row_deleted \
                     FROM {stage} staged WHERE NOT EXISTS (SELECT 1 FROM {target} WHERE {matches})",
                    cols = merge.columns,
                    synced = columns::SYNCED,
                    deleted = columns::DELETED,
                );
                self.connection.execute(&missing, [at]).map_err(merge_error())?;
            }
        }
        self.connection
            .execute_batch(&format!("DELETE FROM {stage}"))
            .map_err(write_error("cannot empty a staging table"))
    }

    fn delete(
        &mut self,
        spec: &TableSpec,
        keys: &[Vec<Value>],
        synced: jiff::Timestamp,
    ) -> Result<(), DestinationError> {
        let (stage, staged) = self.stage(spec, true)?;
        self.append_staged(&stage, staged, keys.iter().map(|k| (k.as_slice(), true)))?;
        let target = self.target(&spec.name);
        let sql = format!(
            "UPDATE {target} SET {deleted} = true, {synced} = ?::TIMESTAMPTZ FROM (SELECT DISTINCT {keys} FROM temp.{stage}) k WHERE {matches}",
            deleted = columns::DELETED,
            synced = columns::SYNCED,
            keys = key_list(spec),
            stage = quote(&stage),
            matches = key_matches(spec, &target, "k"),
        );
        self.connection
            .execute(&sql, [timestamp(synced)])
            .map_err(write_error(format!("cannot mark rows of {target} deleted")))?;
        self.connection
            .execute_batch(&format!("DELETE FROM temp.{}", quote(&stage)))
            .map_err(write_error("cannot empty a staging table"))
    }

    fn patch(
        &mut self,
        spec: &TableSpec,
        patches: &[inlet_engine::Patch],
        synced: jiff::Timestamp,
    ) -> Result<(), DestinationError> {
        let target = self.target(&spec.name);
        for patch in patches {
            let mut sets: Vec<String> =
                patch.columns.iter().map(|(c, _)| format!("{} = ?", quote(&spec.columns[*c].name))).collect();
            sets.push(format!("{} = ?::TIMESTAMPTZ", columns::SYNCED));
            let wheres: Vec<String> =
                spec.primary_key.iter().map(|&k| format!("{} = ?", quote(&spec.columns[k].name))).collect();
            let sql = format!("UPDATE {target} SET {} WHERE {}", sets.join(", "), wheres.join(" AND "));
            let mut params: Vec<Db> = patch.columns.iter().map(|(_, v)| to_duckdb(v)).collect();
            params.push(timestamp(synced));
            params.extend(patch.key.iter().map(to_duckdb));
            self.connection
                .execute(&sql, params_from_iter(params))
                .map_err(write_error(format!("cannot update a row of {target}")))?;
        }
        Ok(())
    }

    fn write_state(&mut self, state: &SavedState, synced: jiff::Timestamp) -> Result<(), DestinationError> {
        let table = self.target(columns::STATE_TABLE);
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, connector VARCHAR NOT NULL, state JSON NOT NULL, committed_at TIMESTAMPTZ NOT NULL); \
             INSERT INTO {table} VALUES (1, ?, ?, ?::TIMESTAMPTZ) ON CONFLICT (id) DO UPDATE SET connector = excluded.connector, state = excluded.state, committed_at = excluded.committed_at"
        );
        let (create, insert) = sql.split_once("; ").expect("two statements");
        self.connection.execute_batch(create).map_err(write_error("cannot create the state table"))?;
        let json = state.state.to_json().to_string();
        self.connection
            .execute(insert, duckdb::params![state.connector, json, timestamp(synced)])
            .map_err(write_error("cannot save the state"))?;
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
                        "UPDATE {target} SET {0} = true, {1} = ?::TIMESTAMPTZ WHERE NOT {0}",
                        columns::DELETED,
                        columns::SYNCED
                    );
                    self.connection
                        .execute(&sql, [timestamp(synced)])
                        .map_err(write_error(format!("cannot truncate {target}")))?;
                }
            }
        }
        Ok(())
    }

    /// The open transaction's sync time, or an error if none is open.
    fn open_transaction(&self) -> Result<jiff::Timestamp, DestinationError> {
        self.synced.ok_or_else(DestinationError::no_transaction)
    }

    /// Passes `result` on; on an error, first rolls back the open transaction.
    fn or_roll_back<T>(&mut self, result: Result<T, DestinationError>) -> Result<T, DestinationError> {
        if result.is_err() {
            if self.started {
                let _ = self.connection.execute_batch("ROLLBACK");
            }
            self.synced = None;
            self.started = false;
            self.fresh = false;
            self.written = 0;
            // Tables and staging created by the failed transaction are gone with it.
            self.known.clear();
            self.staging.clear();
        }
        result
    }
}

impl Destination for DuckDbDestination {
    fn describe(&self) -> String {
        format!("DuckDB {}, schema {}", self.path.display(), self.schema)
    }

    /// A commit smaller than [`CHECKPOINT_THRESHOLD`] leaves its rows in DuckDB's memory until a
    /// later commit checkpoints, and a few such commits overflow [`MEMORY_LIMIT`]: DuckDB then
    /// compresses blocks into a temporary file and reads them back to checkpoint them. At 200 ms a
    /// writer that kept catching up with pages of 50 committed 20,000 to 50,000 rows at a time,
    /// and the commit thread spent 5.0 to 6.7 CPU-seconds on 1,000,000 users instead of 4.3 to
    /// 4.7; at 1 s a fast sync's transactions reach the row limit first, as a load's do
    /// (docs/performance.md, fifteenth round).
    fn commit_interval(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn saved_state(&mut self) -> Result<Option<SavedState>, DestinationError> {
        if self.fresh {
            return Ok(None);
        }
        read_state(&self.connection, &self.schema)
    }

    /// DuckDB's own transaction begins with the first write, once the tables it needs were
    /// looked up outside it (a failed statement inside a DuckDB transaction aborts it).
    fn begin(&mut self, synced_at: jiff::Timestamp) -> Result<(), DestinationError> {
        if self.synced.is_some() {
            return Err(DestinationError::new(DestinationErrorKind::Write, "a transaction is already open"));
        }
        self.synced = Some(synced_at);
        Ok(())
    }

    fn write(&mut self, tables: &[TableSpec], segments: &[Segment]) -> Result<(), DestinationError> {
        let written = self.open_transaction().and_then(|synced| {
            self.start(tables)?;
            self.apply(tables, segments, synced)?;
            self.written += segments.iter().map(Segment::row_count).sum::<usize>();
            Ok(())
        });
        self.or_roll_back(written)
    }

    fn commit(&mut self, state: &SavedState) -> Result<(), DestinationError> {
        let committed = self.open_transaction().and_then(|synced| {
            self.start(&[])?;
            self.write_state(state, synced)?;
            if self.written >= BULK_COMMIT_ROWS {
                self.bulk_settings = true;
                self.connection
                    .execute_batch("SET checkpoint_threshold = '0B'")
                    .map_err(write_error("cannot set DuckDB to checkpoint this commit"))?;
            }
            failpoint::hit("write.before_commit");
            self.connection.execute_batch("COMMIT").map_err(write_error("cannot commit"))
        });
        let committed = self.or_roll_back(committed);
        self.synced = None;
        self.started = false;
        self.fresh = false;
        self.written = 0;
        committed
    }

    fn clear_state(&mut self) -> Result<(), DestinationError> {
        if !self.columns_of(columns::STATE_TABLE)?.is_empty() {
            let sql = format!("DELETE FROM {}", self.target(columns::STATE_TABLE));
            self.connection.execute_batch(&sql).map_err(write_error("cannot clear the state"))?;
        }
        Ok(())
    }
}

fn read_state(connection: &Connection, schema: &str) -> Result<Option<SavedState>, DestinationError> {
    let sql =
        format!("SELECT connector, state::VARCHAR FROM {}.{} WHERE id = 1", quote(schema), quote(columns::STATE_TABLE));
    let row = connection.query_row(&sql, [], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)));
    let (connector, text) = match row {
        Ok(row) => row,
        Err(duckdb::Error::QueryReturnedNoRows) => return Ok(None),
        Err(e) if missing_table(&e) => return Ok(None),
        Err(e) => return Err(failure(DestinationErrorKind::Unavailable, "cannot read the saved state", e)),
    };
    let state = serde_json::from_str(&text)
        .map_err(|e| e.to_string())
        .and_then(|json| State::from_json(json).map_err(|e| e.message().to_owned()))
        .map_err(|e| DestinationError::bad_state(schema, &e))?;
    Ok(Some(SavedState { connector, state }))
}

/// Whether `error` says that a table (or its schema) does not exist.
fn missing_table(error: &duckdb::Error) -> bool {
    let text = error.to_string();
    text.starts_with("Catalog Error: Table with name") && text.contains("does not exist")
}

/// An instant as a DuckDB parameter.
fn timestamp(at: jiff::Timestamp) -> Db {
    Db::Timestamp(TimeUnit::Microsecond, at.as_microsecond())
}

/// An inlet value as DuckDB takes it; the Appender and the parameters cast to the column type.
fn to_duckdb(value: &Value) -> Db {
    match value {
        Value::Null => Db::Null,
        Value::Bool(b) => Db::Boolean(*b),
        Value::Int(i) => Db::BigInt(*i),
        Value::Float(f) => Db::Double(*f),
        Value::String(s) => Db::Text(s.clone()),
        Value::Decimal(d) => Db::Text(d.to_string()),
        Value::Date(d) => Db::Date32(epoch_days(*d)),
        Value::DateTime(dt) => Db::Timestamp(TimeUnit::Microsecond, epoch_micros(*dt)),
        Value::Timestamp(t) => Db::Timestamp(TimeUnit::Microsecond, t.as_microsecond()),
        Value::Bytes(b) => Db::Blob(b.clone()),
        Value::Json(j) => Db::Text(j.to_string()),
    }
}

/// A DuckDB value read back, as the inlet value it was written from; `ty` is the column's
/// DuckDB type, which tells JSON from text and naive times from instants.
fn from_duckdb(value: Db, ty: &str) -> Value {
    let micros = |unit: TimeUnit, v: i64| match unit {
        TimeUnit::Second => v * 1_000_000,
        TimeUnit::Millisecond => v * 1_000,
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v / 1_000,
    };
    match value {
        Db::Null => Value::Null,
        Db::Boolean(b) => Value::Bool(b),
        Db::TinyInt(i) => Value::Int(i.into()),
        Db::SmallInt(i) => Value::Int(i.into()),
        Db::Int(i) => Value::Int(i.into()),
        Db::BigInt(i) => Value::Int(i),
        Db::Float(f) => Value::Float(f.into()),
        Db::Double(f) => Value::Float(f),
        Db::Decimal(d) => Value::Decimal(Decimal::from_i128_with_scale(d.value(), d.scale().into())),
        Db::Timestamp(unit, v) => {
            let instant = jiff::Timestamp::from_microsecond(micros(unit, v)).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            if ty == "TIMESTAMP" {
                Value::DateTime(instant.to_zoned(jiff::tz::TimeZone::UTC).datetime())
            } else {
                Value::Timestamp(instant)
            }
        }
        Db::Date32(days) => Value::Date(
            jiff::civil::date(1970, 1, 1)
                .checked_add(jiff::Span::new().days(days))
                .unwrap_or(jiff::civil::date(1970, 1, 1)),
        ),
        Db::Text(s) if ty == "JSON" => serde_json::from_str(&s).map_or(Value::String(s), Value::Json),
        Db::Text(s) => Value::String(s),
        Db::Blob(b) => Value::Bytes(b),
        other => Value::String(format!("{other:?}")),
    }
}

/// Reads back every row of `table` in `schema`, ordered by primary key, with its deleted flag
/// and sync time: for tests, the demo and tools. A missing warehouse or table has no rows.
pub fn read_rows(path: &Path, schema: &str, table: &str) -> Result<Vec<StoredRow>, DestinationError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut destination = DuckDbDestination::open(path, schema)?;
    // Every row is held in memory below anyway: DuckDB's limit would only fail a large table.
    destination
        .lift_memory_limit()
        .map_err(|e| failure(DestinationErrorKind::Unavailable, "cannot lift DuckDB's memory limit", e))?;
    let columns = destination.columns_of(table)?;
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    let keys = destination.primary_key(table)?;
    let order =
        if keys.is_empty() { "1".to_owned() } else { keys.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ") };
    let sql = format!("SELECT * FROM {} ORDER BY {order}", destination.target(table));
    let mut statement = destination.connection.prepare(&sql).map_err(write_error(format!("cannot read {table}")))?;
    let rows = statement
        .query_map([], |row| {
            let mut record = Record::new();
            let (mut deleted, mut synced_at) = (false, jiff::Timestamp::UNIX_EPOCH);
            for (i, column) in columns.iter().enumerate() {
                let value = from_duckdb(row.get::<_, Db>(i)?, &column.ty);
                match column.name.as_str() {
                    columns::DELETED => deleted = value == Value::Bool(true),
                    columns::SYNCED => {
                        if let Value::Timestamp(t) = value {
                            synced_at = t;
                        }
                    }
                    _ => record.set(&column.name, value),
                }
            }
            Ok(StoredRow { record, deleted, synced_at })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(write_error(format!("cannot read {table}")))?;
    Ok(rows)
}

/// The names of `table`'s columns in `schema`, in order (none if it does not exist).
pub fn table_columns(path: &Path, schema: &str, table: &str) -> Result<Vec<String>, DestinationError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let destination = DuckDbDestination::open(path, schema)?;
    Ok(destination.columns_of(table)?.into_iter().map(|c| c.name).collect())
}

/// Reads the saved state of `schema` in the warehouse at `path`, without writing anything (a
/// missing warehouse has none).
pub fn saved_state(path: &Path, schema: &str) -> Result<Option<SavedState>, DestinationError> {
    if !path.exists() {
        return Ok(None);
    }
    let destination = DuckDbDestination::open(path, schema)?;
    read_state(&destination.connection, schema)
}
