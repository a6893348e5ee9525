//! The destination conformance suite against real DuckDB files.

use std::path::PathBuf;

use inlet_duckdb::{DuckDbDestination, read_rows, table_columns};
use inlet_engine::conformance::{self, Harness};
use inlet_engine::{ColumnSpec, Destination, Row, SavedState, Segment, StoredRow, TableSpec};
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
    let spec = TableSpec {
        name: "item".into(),
        columns: vec![
            ColumnSpec { name: "id".into(), ty: ColumnType::String },
            ColumnSpec { name: "name".into(), ty: ColumnType::String },
        ],
        primary_key: vec![0],
        version: None,
    };
    // Keys spread over the whole index, as random UUIDs are.
    let spread = |i: u128| format!("{:032x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835));
    let rows: Vec<Row> = (0..1_000)
        .map(|i| Row { values: vec![Value::String(spread(i)), Value::String("new".into())], deleted: false })
        .collect();
    let mut destination = DuckDbDestination::open(&duckdb.path, "main").unwrap();
    destination.begin(jiff::Timestamp::now()).unwrap();
    destination.write(std::slice::from_ref(&spec), &[Segment::Upserts { table: 0, rows }]).unwrap();
    destination.commit(&SavedState { connector: "test".into(), state: State::new() }).unwrap();
    drop(destination);
    let connection = duckdb::Connection::open(&duckdb.path).unwrap();
    let counts: (i64, i64) = connection
        .query_row("SELECT count(*), count(*) FILTER (name = 'new') FROM main.item", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(counts, (401_000, 1_000));
}
