//! A playground, a warehouse, and the real `inlet` binary between them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use inlet_engine::StoredRow;
use inlet_playground::{PlaygroundConfig, RunningPlayground, Truth, start};
use inlet_sdk::{ColumnType, Value};

/// Where syncs write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warehouse {
    DuckDb,
    Postgres,
}

/// The PostgreSQL server of the tests (trust authentication).
pub fn postgres_server() -> String {
    std::env::var("INLET_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A client of the tests' PostgreSQL server.
pub async fn postgres_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&postgres_server(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Runs `work` on a thread of its own: the PostgreSQL destination drives its own runtime,
/// which cannot run inside the test's.
fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(work).join().expect("the helper thread"))
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns the JSON summary.
    pub fn summary(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "the sync failed:\n{}", self.stderr);
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("not a JSON summary ({e}): {}", self.stdout))
    }
}

/// A playground and a fresh warehouse (a temporary DuckDB file, or a new PostgreSQL schema).
pub struct World {
    pub playground: RunningPlayground,
    pub dir: tempfile::TempDir,
    pub warehouse: Warehouse,
    pub schema: String,
}

impl World {
    pub async fn new(config: PlaygroundConfig, warehouse: Warehouse) -> World {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let playground = start(config, "127.0.0.1:0".parse().unwrap()).await.expect("the playground starts");
        let schema = match warehouse {
            Warehouse::DuckDb => "main".to_owned(),
            Warehouse::Postgres => format!(
                "e2e_{}_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed),
                jiff::Timestamp::now().as_millisecond()
            ),
        };
        World { playground, dir: tempfile::tempdir().unwrap(), warehouse, schema }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn duckdb_file(&self) -> PathBuf {
        self.path("files/warehouse.db")
    }

    /// Writes `configuration.json` for `strategy` with `extra` keys; returns its path.
    pub fn configuration(&self, strategy: &str, extra: serde_json::Value) -> PathBuf {
        let endpoint = match strategy {
            "keyset" | "priority_first" => "/pagination/keyset",
            "offset" => "/pagination/offset",
            "timestamp" | "replay" => "/incremental/timestamp",
            "step_size" => "/incremental/step",
            other => panic!("unknown strategy {other}"),
        };
        let mut json = serde_json::json!({
            "strategy": strategy,
            "base_url": format!("{}{endpoint}", self.playground.url()),
            "backoff_ms": "10",
            "max_id": "100000",
        });
        for (k, v) in extra.as_object().unwrap() {
            json[k] = v.clone();
        }
        let path = self.path("configuration.json");
        std::fs::write(&path, json.to_string()).unwrap();
        path
    }

    /// The destination flags of this world.
    pub fn target_args(&self) -> Vec<String> {
        match self.warehouse {
            Warehouse::DuckDb => vec!["--warehouse".into(), self.duckdb_file().display().to_string()],
            Warehouse::Postgres => {
                vec!["--destination".into(), postgres_server(), "--schema".into(), self.schema.clone()]
            }
        }
    }

    /// `inlet <args>` with this world's destination, from the world's directory.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_inlet"));
        command.args(args).args(self.target_args()).current_dir(self.dir.path()).env("INLET_LOG", "warn");
        for (k, v) in env {
            command.env(k, v);
        }
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        command
    }

    pub async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = tokio::time::timeout(Duration::from_secs(300), self.command(args, env).output())
            .await
            .expect("inlet finishes")
            .expect("inlet runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `inlet sync --config <config> --log-format json`.
    pub async fn sync(&self, config: &Path) -> Run {
        self.run(&["sync", "--config", &config.display().to_string(), "--log-format", "json"], &[]).await
    }

    pub fn rows(&self) -> Vec<StoredRow> {
        match self.warehouse {
            Warehouse::DuckDb => inlet_duckdb::read_rows(&self.duckdb_file(), &self.schema, "user").unwrap(),
            Warehouse::Postgres => off_runtime(|| {
                let mut destination =
                    inlet_postgres::PostgresDestination::open(&postgres_server(), &self.schema).unwrap();
                destination.rows("user").unwrap()
            }),
        }
    }

    pub fn state(&self) -> Option<serde_json::Value> {
        let saved = match self.warehouse {
            Warehouse::DuckDb => inlet_duckdb::saved_state(&self.duckdb_file(), &self.schema).unwrap(),
            Warehouse::Postgres => off_runtime(|| {
                use inlet_engine::Destination as _;
                let mut destination =
                    inlet_postgres::PostgresDestination::open(&postgres_server(), &self.schema).unwrap();
                destination.saved_state().unwrap()
            }),
        };
        saved.map(|s| s.state.to_json())
    }

    /// The saved state as stored, whatever it holds.
    pub async fn raw_state(&self) -> serde_json::Value {
        let sql = format!("SELECT state::text FROM \"{}\"._inlet_state WHERE id = 1", self.schema);
        let text: String = match self.warehouse {
            Warehouse::DuckDb => {
                let connection = duckdb::Connection::open(self.duckdb_file()).unwrap();
                connection.query_row(&sql, [], |r| r.get(0)).unwrap()
            }
            Warehouse::Postgres => postgres_client().await.query_one(&sql, &[]).await.unwrap().get(0),
        };
        serde_json::from_str(&text).unwrap()
    }

    /// The columns of the primary key of PostgreSQL table `user`, comma-separated; empty
    /// without one.
    pub async fn postgres_primary_key(&self) -> String {
        let sql = format!(
            "SELECT coalesce(string_agg(a.attname::text, ','), '') FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = to_regclass('\"{}\".\"user\"') AND i.indisprimary",
            self.schema
        );
        postgres_client().await.query_one(&sql, &[]).await.unwrap().get(0)
    }

    /// Overwrites the saved state with `json`, as a hand edit or a corruption would.
    pub async fn overwrite_state(&self, json: &str) {
        let sql = format!("UPDATE \"{}\"._inlet_state SET state = '{json}' WHERE id = 1", self.schema);
        match self.warehouse {
            Warehouse::DuckDb => {
                duckdb::Connection::open(self.duckdb_file()).unwrap().execute_batch(&sql).unwrap();
            }
            Warehouse::Postgres => postgres_client().await.batch_execute(&sql).await.unwrap(),
        }
    }

    /// Rows and state: what "exactly as before" compares.
    pub fn snapshot(&self) -> (Vec<(String, bool, String)>, Option<serde_json::Value>) {
        (self.snapshot_rows(), self.state())
    }

    /// Every row, with its deletion flag and values.
    pub fn snapshot_rows(&self) -> Vec<(String, bool, String)> {
        self.rows().into_iter().map(|r| (id_of(&r), r.deleted, format!("{:?}", r.record))).collect()
    }

    /// The warehouse equals the playground's truth (see `assert_matches`).
    pub fn assert_matches_truth(&self, by_step_id: bool) {
        assert_matches(&self.rows(), &self.playground.truth(), by_step_id);
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if self.warehouse == Warehouse::Postgres {
            let schema = self.schema.clone();
            off_runtime(move || {
                if let Ok(mut d) = inlet_postgres::PostgresDestination::open(&postgres_server(), &schema) {
                    let _ = d.drop_schema();
                }
            });
        }
    }
}

pub fn id_of(row: &StoredRow) -> String {
    row.record.get("id").and_then(Value::as_str).expect("a string id").to_owned()
}

/// Every live user stored as served and not deleted; every deleted user absent or flagged;
/// nothing else, and no duplicate.
pub fn assert_matches(rows: &[StoredRow], truth: &Truth, by_step_id: bool) {
    let mut stored: BTreeMap<String, &StoredRow> = BTreeMap::new();
    for row in rows {
        assert!(stored.insert(id_of(row), row).is_none(), "duplicate id {}", id_of(row));
    }
    let stamp = |s: &str| ColumnType::UtcDateTime.convert(s.into()).unwrap();
    let mut expected_ids = std::collections::BTreeSet::new();
    for row in &truth.rows {
        let r = &row.record;
        let id = if by_step_id { row.step_id.to_string() } else { r.id.clone() };
        expected_ids.insert(id.clone());
        match (stored.get(&id), row.deleted) {
            (Some(got), false) => {
                assert!(!got.deleted, "user {id} is live at the source, deleted in the warehouse");
                for (column, value) in [
                    ("name", Value::String(r.name.clone())),
                    ("email", Value::String(r.email.clone())),
                    ("address", Value::String(r.address.clone())),
                    ("company", Value::String(r.company.clone())),
                    ("job", Value::String(r.job.clone())),
                    ("createdAt", stamp(&r.created_at)),
                    ("updatedAt", stamp(&r.updated_at)),
                ] {
                    assert_eq!(got.record.get(column), Some(&value), "user {id}, column {column}");
                }
            }
            (None, false) => panic!("user {id} is missing from the warehouse"),
            (Some(got), true) => {
                assert!(got.deleted, "user {id} was deleted at the source but is live in the warehouse")
            }
            (None, true) => {}
        }
    }
    let unknown: Vec<&String> = stored.keys().filter(|id| !expected_ids.contains(*id)).collect();
    assert!(unknown.is_empty(), "users the source never had: {unknown:?}");
}

/// `step_size` keys users by step id.
pub fn by_step_id(strategy: &str) -> bool {
    strategy == "step_size"
}

pub fn extra(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap()
}

/// A reproducible playground whose data is recent (priority-first starts from the wall clock).
pub fn recent(users: u32) -> PlaygroundConfig {
    PlaygroundConfig {
        users,
        seed: 5,
        now: Some(jiff::Timestamp::now().as_second()),
        manual_clock: true,
        ..Default::default()
    }
}
