//! A destination in memory, for tests: it follows the whole [`Destination`] contract, so a
//! test of a connector or of the engine can check exactly what a warehouse would hold.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use inlet_sdk::{Record, Value};

use crate::destination::{
    ColumnSpec, DEFAULT_COMMIT_INTERVAL, Destination, DestinationError, DestinationErrorKind, SavedState, Segment,
    TableSpec,
};

/// One row as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRow {
    /// Columns and values.
    pub record: Record,
    /// Soft-deleted.
    pub deleted: bool,
    /// When it was last written.
    pub synced_at: jiff::Timestamp,
}

#[derive(Clone, Debug, Default)]
struct Table {
    columns: Vec<ColumnSpec>,
    rows: BTreeMap<String, StoredRow>,
}

#[derive(Clone, Debug, Default)]
struct Warehouse {
    tables: BTreeMap<String, Table>,
    state: Option<SavedState>,
    commits: u64,
    /// Rows of the largest `write` of the committed transactions.
    largest_write: usize,
    failing_commits: u64,
    /// What its destinations answer to [`Destination::commit_interval`]; `None`: the default.
    commit_interval: Option<Duration>,
}

/// A warehouse in memory, shared by the destinations made from it.
#[derive(Clone, Debug, Default)]
pub struct MemoryWarehouse {
    inner: Arc<Mutex<Warehouse>>,
}

impl MemoryWarehouse {
    /// An empty warehouse.
    pub fn new() -> Self {
        MemoryWarehouse::default()
    }

    /// A destination writing here.
    pub fn destination(&self) -> Box<dyn Destination> {
        Box::new(MemoryDestination { warehouse: self.clone(), open: None })
    }

    fn lock(&self) -> MutexGuard<'_, Warehouse> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The rows of `table`, ordered by primary key, deleted ones included.
    pub fn rows(&self, table: &str) -> Vec<StoredRow> {
        self.lock().tables.get(table).map(|t| t.rows.values().cloned().collect()).unwrap_or_default()
    }

    /// The names of the columns of `table`.
    pub fn columns(&self, table: &str) -> Vec<ColumnSpec> {
        self.lock().tables.get(table).map(|t| t.columns.clone()).unwrap_or_default()
    }

    /// The saved state.
    pub fn saved_state(&self) -> Option<SavedState> {
        self.lock().state.clone()
    }

    /// Commits so far.
    pub fn commits(&self) -> u64 {
        self.lock().commits
    }

    /// Rows of the largest call to `write` in the transactions committed so far.
    pub fn largest_write(&self) -> usize {
        self.lock().largest_write
    }

    /// Makes the next `n` commits fail (nothing of them is applied).
    pub fn fail_commits(&self, n: u64) {
        self.lock().failing_commits = n;
    }

    /// Makes its destinations ask for `interval` as their
    /// [`commit_interval`](Destination::commit_interval).
    pub fn ask_commit_interval(&self, interval: Duration) {
        self.lock().commit_interval = Some(interval);
    }
}

struct MemoryDestination {
    warehouse: MemoryWarehouse,
    /// The open transaction: its sync time and what it wrote, applied at commit.
    open: Option<(jiff::Timestamp, Vec<Write>)>,
}

/// One call to `write`: the tables as they stood, and the segments.
type Write = (Vec<TableSpec>, Vec<Segment>);

fn key_string(values: &[Value]) -> String {
    serde_json::Value::Array(values.iter().map(Value::to_json).collect()).to_string()
}

fn version_of(spec: &TableSpec, values: &[Value]) -> Option<Value> {
    spec.version.and_then(|v| values.get(v).cloned()).filter(|v| !v.is_null())
}

/// Whether `incoming` may replace `existing`: not when both versions are known and the
/// incoming one is older.
fn not_older(incoming: Option<&Value>, existing: Option<&Value>) -> bool {
    match (incoming, existing) {
        (Some(a), Some(b)) => compare(a, b) != Some(std::cmp::Ordering::Less),
        _ => true,
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
        (Value::Decimal(a), Value::Decimal(b)) => Some(a.cmp(b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
        (Value::DateTime(a), Value::DateTime(b)) => Some(a.cmp(b)),
        (Value::Timestamp(a), Value::Timestamp(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

impl Destination for MemoryDestination {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn commit_interval(&self) -> Duration {
        self.warehouse.lock().commit_interval.unwrap_or(DEFAULT_COMMIT_INTERVAL)
    }

    fn saved_state(&mut self) -> Result<Option<SavedState>, DestinationError> {
        Ok(self.warehouse.lock().state.clone())
    }

    fn clear_state(&mut self) -> Result<(), DestinationError> {
        self.warehouse.lock().state = None;
        Ok(())
    }

    fn begin(&mut self, synced_at: jiff::Timestamp) -> Result<(), DestinationError> {
        self.open = Some((synced_at, Vec::new()));
        Ok(())
    }

    fn write(&mut self, tables: &[TableSpec], segments: &[Segment]) -> Result<(), DestinationError> {
        let (_, writes) = self.open.as_mut().ok_or_else(DestinationError::no_transaction)?;
        writes.push((tables.to_vec(), segments.to_vec()));
        Ok(())
    }

    fn commit(&mut self, state: &SavedState) -> Result<(), DestinationError> {
        let (synced_at, writes) = self.open.take().ok_or_else(DestinationError::no_transaction)?;
        let mut guard = self.warehouse.lock();
        if guard.failing_commits > 0 {
            guard.failing_commits -= 1;
            return Err(DestinationError::new(DestinationErrorKind::Write, "commit refused (test)"));
        }
        // Work on a copy: either all of the transaction lands, or none of it.
        let mut next = guard.clone();
        for (tables, segments) in writes {
            let rows = segments.iter().map(Segment::row_count).sum();
            next.largest_write = next.largest_write.max(rows);
            for spec in &tables {
                let table = next.tables.entry(spec.name.clone()).or_default();
                for column in &spec.columns[table.columns.len().min(spec.columns.len())..] {
                    table.columns.push(column.clone());
                }
            }
            for segment in &segments {
                apply(&mut next, &tables, synced_at, segment);
            }
        }
        next.state = Some(state.clone());
        next.commits += 1;
        *guard = next;
        Ok(())
    }
}

fn apply(warehouse: &mut Warehouse, tables: &[TableSpec], synced_at: jiff::Timestamp, segment: &Segment) {
    let spec_of = |t: usize| &tables[t];
    match segment {
        Segment::Upserts { table, rows } => {
            let spec = spec_of(*table);
            let stored = warehouse.tables.get_mut(&spec.name).expect("created above");
            for row in rows {
                let key: Vec<Value> = spec.primary_key.iter().map(|&k| row.values[k].clone()).collect();
                let key = key_string(&key);
                let existing = stored.rows.get(&key).map(|r| version_of(spec, &record_values(spec, &r.record)));
                if let Some(existing) = existing
                    && !not_older(version_of(spec, &row.values).as_ref(), existing.as_ref())
                {
                    continue;
                }
                let mut record = Record::new();
                for (i, column) in spec.columns.iter().enumerate() {
                    record.set(&column.name, row.values.get(i).cloned().unwrap_or(Value::Null));
                }
                stored.rows.insert(key, StoredRow { record, deleted: row.deleted, synced_at });
            }
        }
        Segment::Patches { table, patches } => {
            let spec = spec_of(*table);
            let stored = warehouse.tables.get_mut(&spec.name).expect("created above");
            for patch in patches {
                if let Some(row) = stored.rows.get_mut(&key_string(&patch.key)) {
                    for (position, value) in &patch.columns {
                        row.record.set(&spec.columns[*position].name, value.clone());
                    }
                    row.synced_at = synced_at;
                }
            }
        }
        Segment::Deletes { table, keys } => {
            let stored = warehouse.tables.get_mut(&spec_of(*table).name).expect("created above");
            for key in keys {
                if let Some(row) = stored.rows.get_mut(&key_string(key)) {
                    row.deleted = true;
                    row.synced_at = synced_at;
                }
            }
        }
        Segment::Truncate { table } => {
            let stored = warehouse.tables.get_mut(&spec_of(*table).name).expect("created above");
            for row in stored.rows.values_mut().filter(|r| !r.deleted) {
                row.deleted = true;
                row.synced_at = synced_at;
            }
        }
    }
}

fn record_values(spec: &TableSpec, record: &Record) -> Vec<Value> {
    spec.columns.iter().map(|c| record.get(&c.name).cloned().unwrap_or(Value::Null)).collect()
}
