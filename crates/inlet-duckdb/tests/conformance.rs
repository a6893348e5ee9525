//! The destination conformance suite against real DuckDB files.

use std::path::PathBuf;

use inlet_duckdb::{DuckDbDestination, read_rows, table_columns};
use inlet_engine::conformance::{self, Harness};
use inlet_engine::{Destination, Row, SavedState, Segment, StoredRow, TableSpec};
use inlet_sdk::{ColumnType, State, Value};

struct DuckDb {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl DuckDb {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("files").join("warehouse.db");
        DuckDb { _dir: dir, path }
    }
}

impl Harness for DuckDb {
    fn open(&mut self) -> Box<dyn Destination> {
        Box::new(DuckDbDestination::open(&self.path, "main").expect("the warehouse opens"))
    }

    fn rows(&mut self, table: &str) -> Vec<StoredRow> {
        read_rows(&self.path, "main", table).expect("readable")
    }

    fn columns(&mut self, table: &str) -> Vec<String> {
        table_columns(&self.path, "main", table).expect("readable")
    }
}

/// A table `item` of a key `id` of type `id` and a text column `text`.
fn item(id: ColumnType, text: &str) -> TableSpec {
    conformance::table_spec("item", &[("id", id), (text, ColumnType::String)], &[0], None)
}

/// Rows of `item(ColumnType::Long, _)`: keys `ids`, each with the text `text(key)`.
fn item_rows(ids: std::ops::Range<i64>, text: impl Fn(i64) -> String) -> Vec<Row> {
    ids.map(|i| Row { values: vec![Value::Int(i), Value::String(text(i))], deleted: false }).collect()
}

/// The state the tests' transactions save.
fn saved_state() -> SavedState {
    SavedState { connector: "test".into(), state: State::new() }
}

/// Upserts `rows` into `spec` in one transaction.
fn commit(destination: &mut DuckDbDestination, spec: &TableSpec, rows: Vec<Row>) {
    let segments = vec![Segment::Upserts { table: 0, rows }];
    conformance::commit(destination, std::slice::from_ref(spec), segments, &saved_state());
}

#[test]
fn duckdb_conforms() {
    conformance::all(|| Box::new(DuckDb::new()));
}

/// Not a test of its own: the body of the crashing child of the next test.
#[test]
fn crash_child() {
    if let Some(location) = std::env::var_os(conformance::CHILD) {
        let mut destination = DuckDbDestination::open(std::path::Path::new(&location), "main").expect("opens");
        conformance::crash_child(&mut destination);
    }
}

#[test]
fn a_crash_inside_a_commit_leaves_nothing_of_it() {
    let mut duckdb = DuckDb::new();
    assert!(
        conformance::crash_in_child("crash_child", "write.before_commit", &duckdb.path),
        "the child died at the failpoint"
    );
    conformance::after_a_crash_before_commit(&mut duckdb);
}

#[test]
fn another_schema_is_another_connector() {
    let duckdb = DuckDb::new();
    let mut one = DuckDbDestination::open(&duckdb.path, "keyset").unwrap();
    conformance::crash_child(&mut one);
    drop(one);
    assert_eq!(read_rows(&duckdb.path, "keyset", "item").unwrap().len(), 2);
    assert!(read_rows(&duckdb.path, "offset", "item").unwrap().is_empty());
    assert!(inlet_duckdb::saved_state(&duckdb.path, "offset").unwrap().is_none());
    assert!(inlet_duckdb::saved_state(&duckdb.path, "keyset").unwrap().is_some());
}

#[test]
fn tables_from_earlier_versions_keep_their_key_constraint_and_merge_the_same() {
    let mut duckdb = DuckDb::new();
    std::fs::create_dir_all(duckdb.path.parent().unwrap()).unwrap();
    let connection = duckdb::Connection::open(&duckdb.path).unwrap();
    connection
        .execute_batch(
            "CREATE TABLE main.item (id BIGINT, name VARCHAR, updated TIMESTAMPTZ, _inlet_synced TIMESTAMPTZ NOT NULL, \
             _inlet_deleted BOOLEAN NOT NULL DEFAULT false, PRIMARY KEY (id))",
        )
        .unwrap();
    drop(connection);
    conformance::random_upserts_match_the_reference(&mut duckdb);
}

#[test]
fn a_key_stored_with_another_type_is_updated_not_repeated() {
    let duckdb = DuckDb::new();
    std::fs::create_dir_all(duckdb.path.parent().unwrap()).unwrap();
    let connection = duckdb::Connection::open(&duckdb.path).unwrap();
    connection
        .execute_batch(
            "CREATE TABLE main.item (id VARCHAR NOT NULL, name VARCHAR, updated TIMESTAMPTZ, \
             _inlet_synced TIMESTAMPTZ NOT NULL, _inlet_deleted BOOLEAN NOT NULL DEFAULT false); \
             INSERT INTO main.item VALUES ('1', 'stored as text', NULL, now(), false)",
        )
        .unwrap();
    drop(connection);
    let mut destination = DuckDbDestination::open(&duckdb.path, "main").unwrap();
    conformance::crash_child(&mut destination);
    drop(destination);
    let ids: Vec<String> = read_rows(&duckdb.path, "main", "item")
        .unwrap()
        .iter()
        .map(|r| r.record.get("id").unwrap().to_string())
        .collect();
    assert_eq!(ids, ["\"1\"", "\"2\""], "the key 1, written as a number, replaced the row stored as text");
}

/// DuckDB loads a table's whole key index to add a row; inlet lifts its memory limit for
/// tables of earlier versions that have one.
#[test]
fn a_key_index_larger_than_the_memory_limit_still_takes_rows() {
    let duckdb = DuckDb::new();
    std::fs::create_dir_all(duckdb.path.parent().unwrap()).unwrap();
    let connection = duckdb::Connection::open(&duckdb.path).unwrap();
    connection
        .execute_batch(
            "CREATE TABLE main.item (id VARCHAR, name VARCHAR, _inlet_synced TIMESTAMPTZ NOT NULL, \
             _inlet_deleted BOOLEAN NOT NULL DEFAULT false, PRIMARY KEY (id)); \
             INSERT INTO main.item SELECT uuid()::VARCHAR, 'stored', now(), false FROM range(400000)",
        )
        .unwrap();
    drop(connection);
    let spec = item(ColumnType::String, "name");
    // Keys spread over the whole index, as random UUIDs are.
    let spread = |i: u128| format!("{:032x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835));
    let rows: Vec<Row> = (0..1_000)
        .map(|i| Row { values: vec![Value::String(spread(i)), Value::String("new".into())], deleted: false })
        .collect();
    let mut destination = DuckDbDestination::open(&duckdb.path, "main").unwrap();
    commit(&mut destination, &spec, rows);
    drop(destination);
    let connection = duckdb::Connection::open(&duckdb.path).unwrap();
    let counts: (i64, i64) = connection
        .query_row("SELECT count(*), count(*) FILTER (name = 'new') FROM main.item", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(counts, (401_000, 1_000));
}

/// A commit of many rows is written into the file as it commits, not into DuckDB's log first,
/// in row groups that later checkpoints leave as they are; a small commit goes to the log.
#[test]
fn large_commits_go_into_the_file_in_row_groups_that_stay_and_a_small_one_into_the_log() {
    let duckdb = DuckDb::new();
    let log = PathBuf::from(format!("{}.wal", duckdb.path.display()));
    let log_size = || std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let spec = item(ColumnType::Long, "name");
    let mut destination = DuckDbDestination::open(&duckdb.path, "main").unwrap();
    let mut commit_ids = |ids| commit(&mut destination, &spec, item_rows(ids, |i| format!("item {i}")));
    commit_ids(0..50_000);
    assert_eq!(log_size(), 0, "50,000 rows were checkpointed as they committed");
    commit_ids(50_000..100_000);
    assert_eq!(log_size(), 0, "and 50,000 more");
    commit_ids(100_000..100_010);
    assert!(log_size() > 0, "10 rows went to the log: DuckDB's checkpoint settings were restored");
    drop(destination);
    assert_eq!(read_rows(&duckdb.path, "main", "item").unwrap().len(), 100_010);
    // Closing checkpointed the 10 rows, free to merge row groups: the large commits' stayed.
    let connection = duckdb::Connection::open(&duckdb.path).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT sum(count)::BIGINT FROM pragma_storage_info('main.item') \
             WHERE column_id = 0 AND segment_type <> 'VALIDITY' GROUP BY row_group_id ORDER BY row_group_id",
        )
        .unwrap();
    let row_groups: Vec<i64> = statement.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(row_groups, [50_000, 50_000, 10]);
}

/// The blocks a large commit wrote into the file are not kept in DuckDB's cache into the next
/// transaction, where the next large commit would write beside them.
#[test]
fn the_blocks_a_large_commit_wrote_are_not_kept_cached_for_the_next_transaction() {
    let duckdb = DuckDb::new();
    let spec = item(ColumnType::Long, "text");
    let rows = |ids| item_rows(ids, |i| format!("{i:0>100}"));
    let mut destination = DuckDbDestination::open(&duckdb.path, "main").unwrap();
    commit(&mut destination, &spec, rows(0..50_000));
    let cached = destination.memory_in_use().unwrap();
    assert!(cached > 4 << 20, "DuckDB caches the 5 MB it wrote, {cached} bytes of them");
    destination.begin(jiff::Timestamp::now()).unwrap();
    let next = [Segment::Upserts { table: 0, rows: rows(50_000..50_001) }];
    destination.write(std::slice::from_ref(&spec), &next).unwrap();
    let in_use = destination.memory_in_use().unwrap();
    assert!(in_use < 1 << 20, "the next transaction began with {in_use} bytes in DuckDB's cache");
    destination.commit(&saved_state()).unwrap();
    drop(destination);
    let stored = read_rows(&duckdb.path, "main", "item").unwrap();
    assert_eq!(stored.len(), 50_001);
    assert_eq!(stored[0].record.get("text"), Some(&Value::String(format!("{:0>100}", 0))));
}

/// A table larger than DuckDB's memory limit is written (what exceeds the limit spills beside
/// the warehouse) and read back whole (reading holds every row in memory anyway).
#[test]
fn a_table_larger_than_the_memory_limit_is_written_and_read_back() {
    let duckdb = DuckDb::new();
    let spec = item(ColumnType::Long, "text");
    // 60,000 rows of 1 KB, in an order the read sorts back: about twice the limit.
    let text = |i: i64| format!("{i:0>1000}");
    let mut rows = item_rows(0..60_000, text);
    rows.reverse();
    let mut destination = DuckDbDestination::open(&duckdb.path, "main").unwrap();
    commit(&mut destination, &spec, rows);
    drop(destination);
    let stored = read_rows(&duckdb.path, "main", "item").unwrap();
    assert_eq!(stored.len(), 60_000);
    assert_eq!(stored[59_999].record.get("text"), Some(&Value::String(text(59_999))));
}

/// A schema may share its name with the warehouse file, as `--schema warehouse` does with the
/// default `files/warehouse.db`.
#[test]
fn a_schema_named_like_the_warehouse_file_is_written_and_read() {
    let duckdb = DuckDb::new();
    assert_eq!(duckdb.path.file_stem().unwrap(), "warehouse");
    let mut destination = DuckDbDestination::open(&duckdb.path, "warehouse").unwrap();
    conformance::crash_child(&mut destination);
    drop(destination);
    assert_eq!(read_rows(&duckdb.path, "warehouse", "item").unwrap().len(), 2);
    assert!(inlet_duckdb::saved_state(&duckdb.path, "warehouse").unwrap().is_some());
}
