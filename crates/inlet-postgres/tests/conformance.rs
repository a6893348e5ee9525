//! The destination conformance suite against the real PostgreSQL server, a fresh schema per
//! check. `INLET_TEST_POSTGRES` overrides the server (default: postgres@127.0.0.1:5432/test).

use std::sync::atomic::{AtomicU32, Ordering};

use inlet_engine::conformance::{self, Harness, item};
use inlet_engine::{Destination, DestinationErrorKind, Row, SavedState, Segment, StoredRow};
use inlet_postgres::PostgresDestination;
use inlet_sdk::{State, Value};

fn server() -> String {
    std::env::var("INLET_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema no other test or run uses.
fn fresh_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "conformance_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        jiff::Timestamp::now().as_millisecond()
    )
}

struct Postgres {
    schema: String,
}

impl Postgres {
    fn new() -> Self {
        Postgres { schema: fresh_schema() }
    }

    fn reader(&self) -> PostgresDestination {
        PostgresDestination::open(&server(), &self.schema).expect("the PostgreSQL server on 127.0.0.1:5432 answers")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Ok(mut d) = PostgresDestination::open(&server(), &self.schema) {
            let _ = d.drop_schema();
        }
    }
}

impl Harness for Postgres {
    fn open(&mut self) -> Box<dyn Destination> {
        Box::new(self.reader())
    }

    fn rows(&mut self, table: &str) -> Vec<StoredRow> {
        self.reader().rows(table).expect("readable")
    }

    fn columns(&mut self, table: &str) -> Vec<String> {
        self.reader().columns(table).expect("readable")
    }
}

#[test]
fn postgres_conforms() {
    conformance::all(|| Box::new(Postgres::new()));
}

/// Not a test of its own: the body of the crashing child of the next test.
#[test]
fn crash_child() {
    if let Some(schema) = std::env::var_os(conformance::CHILD) {
        let mut destination = PostgresDestination::open(&server(), &schema.to_string_lossy()).expect("opens");
        conformance::crash_child(&mut destination);
    }
}

#[test]
fn a_crash_inside_a_commit_leaves_nothing_of_it() {
    let mut postgres = Postgres::new();
    assert!(
        conformance::crash_in_child("crash_child", "write.before_commit", std::path::Path::new(&postgres.schema)),
        "the child died at the failpoint"
    );
    conformance::after_a_crash_before_commit(&mut postgres);
}

#[test]
fn a_second_writer_on_the_same_schema_is_refused() {
    let postgres = Postgres::new();
    let first = postgres.reader();
    let second =
        PostgresDestination::open(&server(), &postgres.schema).err().expect("refused while the first holds the schema");
    assert_eq!(second.kind(), DestinationErrorKind::Busy);
    assert!(second.to_string().contains("in use by another sync"), "{second}");
    drop(first);
    drop(postgres.reader());
}

#[test]
fn an_unreachable_server_is_named_without_its_password() {
    let error = PostgresDestination::open("postgres://ann:s3cret@127.0.0.1:1/test", "x")
        .err()
        .expect("nothing listens on port 1");
    assert_eq!(error.kind(), DestinationErrorKind::Unavailable);
    let text = format!("{error} {error:?}");
    assert!(text.contains("postgres://ann:***@127.0.0.1:1/test") && !text.contains("s3cret"), "{text}");
}

/// Runs `sql` on the server through a connection of its own, as another client would, and
/// returns the rows of its last statement (simple protocol: values as text).
fn another_client(sql: &str) -> Vec<tokio_postgres::SimpleQueryRow> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&server(), tokio_postgres::NoTls).await.expect("connects");
        tokio::spawn(connection);
        let messages = client.simple_query(sql).await.expect("the statements run");
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .collect()
    })
}

/// The columns of the primary key of table `item`, as PostgreSQL lists them; empty without one.
fn primary_key(postgres: &Postgres) -> String {
    let rows = another_client(&format!(
        "SELECT coalesce(string_agg(a.attname, ','), '') FROM pg_index i \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
         WHERE i.indrelid = to_regclass('\"{}\".item') AND i.indisprimary",
        postgres.schema
    ));
    rows[0].get(0).expect("a value").to_owned()
}

fn upsert(destination: &mut PostgresDestination, rows: &[(i64, &str)]) {
    let updated = Value::Timestamp("2026-11-30T00:00:00Z".parse().unwrap());
    let rows = rows
        .iter()
        .map(|(id, name)| Row {
            values: vec![Value::Int(*id), Value::String((*name).into()), updated.clone()],
            deleted: false,
        })
        .collect();
    destination.begin(jiff::Timestamp::now()).unwrap();
    destination.write(&[item()], &[Segment::Upserts { table: 0, rows }]).unwrap();
    destination.commit(&SavedState { connector: "test".into(), state: State::new() }).unwrap();
}

/// Asserts that the `item` table holds exactly `expected`: each row's id and name, as values
/// print.
fn assert_names(postgres: &Postgres, expected: &[(&str, &str)]) {
    let rows = postgres.reader().rows("item").unwrap();
    let stored: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.record.get("id").unwrap().to_string(), r.record.get("name").unwrap().to_string()))
        .collect();
    let expected: Vec<(String, String)> = expected.iter().map(|(i, n)| ((*i).to_owned(), (*n).to_owned())).collect();
    assert_eq!(stored, expected);
}

/// New keys are copied straight into the table when the session knows every key it holds; a
/// key that another client wrote since then must be merged, not refused by the primary key.
#[test]
fn a_key_another_client_wrote_meanwhile_is_merged() {
    let postgres = Postgres::new();
    let mut destination = postgres.reader();
    upsert(&mut destination, &[(1, "a"), (2, "b")]);
    destination.finish().unwrap();
    another_client(&format!(
        "INSERT INTO \"{}\".item (id, name, updated, _inlet_synced) VALUES (3, 'by hand', '2026-01-01Z', now())",
        postgres.schema
    ));
    upsert(&mut destination, &[(3, "c"), (4, "d")]);
    drop(destination);
    assert_names(&postgres, &[("1", "\"a\""), ("2", "\"b\""), ("3", "\"c\""), ("4", "\"d\"")]);
}

/// A table the session creates is loaded without its primary key, which `finish` adds.
#[test]
fn a_created_table_gets_its_primary_key_when_the_session_finishes() {
    let postgres = Postgres::new();
    let mut destination = postgres.reader();
    upsert(&mut destination, &[(1, "a"), (2, "b")]);
    upsert(&mut destination, &[(3, "c")]);
    assert_eq!(primary_key(&postgres), "", "new keys alone are copied in before the key is built");
    destination.finish().unwrap();
    assert_eq!(primary_key(&postgres), "id");
    destination.finish().unwrap();
    drop(destination);
    assert_names(&postgres, &[("1", "\"a\""), ("2", "\"b\""), ("3", "\"c\"")]);
}

/// A row that must be merged needs the key first: it is added in that row's transaction.
#[test]
fn a_row_to_merge_gives_the_table_its_key_at_once() {
    let postgres = Postgres::new();
    let mut destination = postgres.reader();
    upsert(&mut destination, &[(1, "a"), (2, "b")]);
    upsert(&mut destination, &[(2, "b2"), (3, "c")]);
    assert_eq!(primary_key(&postgres), "id");
    drop(destination);
    assert_names(&postgres, &[("1", "\"a\""), ("2", "\"b2\""), ("3", "\"c\"")]);
}

/// A session that dies before `finish` leaves the table without its key: the next session
/// adds it before it writes, and merges into it.
#[test]
fn a_table_left_without_its_key_gets_it_in_the_next_session() {
    let postgres = Postgres::new();
    let mut first = postgres.reader();
    upsert(&mut first, &[(1, "a"), (2, "b")]);
    drop(first);
    assert_eq!(primary_key(&postgres), "");
    let mut next = postgres.reader();
    upsert(&mut next, &[(2, "b2"), (3, "c")]);
    assert_eq!(primary_key(&postgres), "id");
    drop(next);
    assert_names(&postgres, &[("1", "\"a\""), ("2", "\"b2\""), ("3", "\"c\"")]);
}

/// Rows another client writes into a table still without its key can repeat a key: when the
/// key is added, the row a merge would have kept (the newest version) stays.
#[test]
fn a_key_another_client_repeated_before_the_key_was_added_keeps_its_newest_row() {
    let postgres = Postgres::new();
    let mut destination = postgres.reader();
    upsert(&mut destination, &[(1, "a"), (2, "b")]);
    another_client(&format!(
        "INSERT INTO \"{0}\".item (id, name, updated, _inlet_synced) VALUES (3, 'old, by hand', '2026-01-01Z', now()), \
         (2, 'new, by hand', '2027-01-01Z', now())",
        postgres.schema
    ));
    upsert(&mut destination, &[(3, "c"), (4, "d")]);
    destination.finish().unwrap();
    assert_eq!(primary_key(&postgres), "id");
    drop(destination);
    assert_names(&postgres, &[("1", "\"a\""), ("2", "\"new, by hand\""), ("3", "\"c\""), ("4", "\"d\"")]);
}

/// A table whose key was created with another type than the connector's takes rows through
/// the merge, which converts them, as binary `COPY` can't.
#[test]
fn a_key_stored_with_another_type_is_updated_not_repeated() {
    let postgres = Postgres::new();
    another_client(&format!(
        "CREATE SCHEMA \"{0}\"; CREATE TABLE \"{0}\".item (id text PRIMARY KEY, name text, updated timestamptz, \
         _inlet_synced timestamptz NOT NULL, _inlet_deleted boolean NOT NULL DEFAULT false); \
         INSERT INTO \"{0}\".item VALUES ('1', 'stored as text', NULL, now(), false)",
        postgres.schema
    ));
    let mut destination = postgres.reader();
    upsert(&mut destination, &[(1, "a"), (2, "b")]);
    drop(destination);
    assert_names(&postgres, &[("\"1\"", "\"a\""), ("\"2\"", "\"b\"")]);
}

/// A table keyed by text: `code`, then `name`.
fn coded() -> inlet_engine::TableSpec {
    inlet_engine::conformance::table_spec(
        "coded",
        &[("code", inlet_sdk::ColumnType::String), ("name", inlet_sdk::ColumnType::String)],
        &[0],
        None,
    )
}

/// Writes `segments` into table `coded` in one transaction.
fn write_coded(destination: &mut PostgresDestination, segments: &[Segment]) {
    destination.begin(jiff::Timestamp::now()).unwrap();
    destination.write(&[coded()], segments).unwrap();
    destination.commit(&SavedState { connector: "test".into(), state: State::new() }).unwrap();
}

/// Upserts of `(code, name)` rows into table `coded`.
fn coded_rows(rows: &[(&str, &str)]) -> Segment {
    let rows = rows
        .iter()
        .map(|(code, name)| Row {
            values: vec![Value::String((*code).into()), Value::String((*name).into())],
            deleted: false,
        })
        .collect();
    Segment::Upserts { table: 0, rows }
}

/// A text key is collated "C" (its index compares bytes) and the other text columns keep the
/// database's collation; a join with a table of the database's collation still works, and the
/// key tells apart what bytes tell apart.
#[test]
fn a_text_key_is_collated_by_bytes_and_joins_tables_of_the_database_collation() {
    let postgres = Postgres::new();
    let mut destination = postgres.reader();
    write_coded(&mut destination, &[coded_rows(&[("b", "lower b"), ("B", "upper B"), ("é", "e acute")])]);
    destination.finish().unwrap();
    drop(destination);
    let collations = another_client(&format!(
        "SELECT column_name, coalesce(collation_name, 'default') FROM information_schema.columns \
         WHERE table_schema = '{}' AND table_name = 'coded' AND data_type = 'text' ORDER BY ordinal_position",
        postgres.schema
    ));
    let collations: Vec<(&str, &str)> = collations.iter().map(|r| (r.get(0).unwrap(), r.get(1).unwrap())).collect();
    assert_eq!(collations, [("code", "C"), ("name", "default")]);
    let joined = another_client(&format!(
        "CREATE TEMP TABLE wanted (code text); INSERT INTO wanted VALUES ('B'), ('é'), ('x'); \
         SELECT c.name FROM \"{}\".coded c JOIN wanted w ON c.code = w.code ORDER BY c.code",
        postgres.schema
    ));
    let names: Vec<&str> = joined.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(names, ["upper B", "e acute"]);
}

/// A text key of the database's collation, as inlet created it before keys were collated "C",
/// takes merges and deletes from the staging table, whose key is collated "C".
#[test]
fn a_text_key_of_the_database_collation_still_takes_merges_and_deletes() {
    let postgres = Postgres::new();
    another_client(&format!(
        "CREATE SCHEMA \"{0}\"; CREATE TABLE \"{0}\".coded (code text PRIMARY KEY, name text, \
         _inlet_synced timestamptz NOT NULL, _inlet_deleted boolean NOT NULL DEFAULT false); \
         INSERT INTO \"{0}\".coded VALUES ('a', 'stored a', now(), false), ('b', 'stored b', now(), false)",
        postgres.schema
    ));
    let mut destination = postgres.reader();
    let deletes = Segment::Deletes { table: 0, keys: vec![vec![Value::String("b".into())]] };
    write_coded(&mut destination, &[coded_rows(&[("a", "new a"), ("a", "newer a"), ("c", "new c")]), deletes]);
    destination.finish().unwrap();
    drop(destination);
    let stored = another_client(&format!(
        "SELECT code, name, _inlet_deleted::text FROM \"{}\".coded ORDER BY code",
        postgres.schema
    ));
    let stored: Vec<[&str; 3]> =
        stored.iter().map(|r| [r.get(0).unwrap(), r.get(1).unwrap(), r.get(2).unwrap()]).collect();
    assert_eq!(stored, [["a", "newer a", "false"], ["b", "stored b", "true"], ["c", "new c", "false"]]);
}

/// Text holding a NUL, which PostgreSQL cannot store, fails the transaction whole, even when
/// its row went into a `COPY` left open across pieces and the server's refusal comes later:
/// the error names the table, the column and the row's line, and neither the rows before it
/// nor the state are committed.
#[test]
fn text_postgres_refuses_fails_its_transaction_whole_and_names_the_column() {
    let postgres = Postgres::new();
    let mut destination = postgres.reader();
    upsert(&mut destination, &[(1, "a")]);
    let updated = Value::Timestamp("2026-11-30T00:00:00Z".parse().unwrap());
    let row = |id: i64, name: &str| Row {
        values: vec![Value::Int(id), Value::String(name.into()), updated.clone()],
        deleted: false,
    };
    destination.begin(jiff::Timestamp::now()).unwrap();
    let pieces = [vec![row(2, "b")], vec![row(3, "nul \0 inside")], vec![row(4, "d")]];
    let mut failure = None;
    for piece in pieces {
        if let Err(e) = destination.write(&[item()], &[Segment::Upserts { table: 0, rows: piece }]) {
            failure = Some(e);
            break;
        }
    }
    let state = SavedState { connector: "failed".into(), state: State::new() };
    let failure = match failure {
        Some(e) => e,
        None => destination.commit(&state).expect_err("the NUL is refused by the commit at the latest"),
    };
    let message = failure.to_string();
    assert!(message.contains("item") && message.contains("column name") && message.contains("line"), "{message}");
    assert_eq!(destination.saved_state().unwrap().map(|s| s.connector), Some("test".into()), "the earlier state");
    upsert(&mut destination, &[(5, "e")]);
    drop(destination);
    assert_names(&postgres, &[("1", "\"a\""), ("5", "\"e\"")]);
}
