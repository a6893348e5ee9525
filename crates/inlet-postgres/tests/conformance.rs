//! The destination conformance suite against the real PostgreSQL server, a fresh schema per
//! check. `INLET_TEST_POSTGRES` overrides the server (default: postgres@127.0.0.1:5432/test).

use std::sync::atomic::{AtomicU32, Ordering};

use inlet_engine::conformance::{self, Harness};
use inlet_engine::{Destination, DestinationErrorKind, StoredRow};
use inlet_postgres::PostgresDestination;

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
