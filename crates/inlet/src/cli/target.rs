//! Where a sync writes: a DuckDB file by default, or PostgreSQL, and the schema within.

use std::path::PathBuf;

use clap::Args;
use inlet_duckdb::DuckDbDestination;
use inlet_engine::{Destination, DestinationError, DestinationErrorKind};
use inlet_sdk::Configuration;

use super::Failure;

/// Keys of `configuration.json` that choose the destination; they are not the connector's.
const DESTINATION_KEYS: [&str; 3] = ["destination", "destination_schema", "duckdb_compress_text"];

/// The destination arguments shared by every command that touches the warehouse.
#[derive(Args, Clone, Debug)]
pub struct Target {
    /// The DuckDB file to write to (the default destination).
    #[arg(long, value_name = "PATH", default_value = "files/warehouse.db", global = true)]
    warehouse: PathBuf,
    /// Write to PostgreSQL instead, e.g. postgres://user@127.0.0.1:5432/test. Also settable
    /// as `destination` in the configuration; the password is never printed.
    #[arg(long, value_name = "URL", global = true)]
    destination: Option<String>,
    /// The schema holding the tables and the saved state (DuckDB: main; PostgreSQL: public).
    /// Also settable as `destination_schema` in the configuration. One connector per schema.
    #[arg(long, value_name = "NAME", global = true)]
    schema: Option<String>,
}

/// A resolved destination choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// A DuckDB file and schema, and whether DuckDB compresses the text it stores.
    DuckDb { path: PathBuf, schema: String, compress_text: bool },
    /// A PostgreSQL server and schema.
    Postgres { url: String, schema: String },
}

impl Choice {
    /// Where the data goes, for people (passwords hidden).
    pub fn describe(&self) -> String {
        match self {
            Choice::DuckDb { path, schema, .. } => format!("DuckDB {}, schema {schema}", path.display()),
            Choice::Postgres { url, schema } => format!("PostgreSQL {}, schema {schema}", inlet_postgres::redact(url)),
        }
    }

    /// Opens it for writing; `Busy` when another sync holds it.
    pub fn open(&self) -> Result<Box<dyn Destination>, Failure> {
        match self {
            Choice::DuckDb { path, schema, compress_text } => {
                let mut destination = DuckDbDestination::open(path, schema);
                if *compress_text {
                    destination = destination.and_then(DuckDbDestination::compress_text);
                }
                Ok(Box::new(destination.map_err(Failure::destination)?))
            }
            Choice::Postgres { url, schema } => {
                Ok(Box::new(inlet_postgres::PostgresDestination::open(url, schema).map_err(Failure::destination)?))
            }
        }
    }
}

impl Choice {
    /// The flags that select this destination on `inlet`'s command line.
    pub fn command_args(&self) -> Vec<String> {
        let (flag, place, schema) = match self {
            Choice::DuckDb { path, schema, .. } => ("--warehouse", path.display().to_string(), schema),
            Choice::Postgres { url, schema } => ("--destination", url.clone(), schema),
        };
        vec![flag.into(), place, "--schema".into(), schema.clone()]
    }

    /// Every row of `table`, read without taking the destination's lock.
    pub fn rows(&self, table: &str) -> Result<Vec<inlet_engine::StoredRow>, Failure> {
        match self {
            Choice::DuckDb { path, schema, .. } => inlet_duckdb::read_rows(path, schema, table),
            Choice::Postgres { url, schema } => {
                off_runtime(|| inlet_postgres::PostgresDestination::open(url, schema).and_then(|mut d| d.rows(table)))
            }
        }
        .map_err(Failure::destination)
    }

    /// Deletes everything: the DuckDB file and its write-ahead log, or the PostgreSQL schema.
    pub fn discard(&self) -> Result<(), Failure> {
        match self {
            Choice::DuckDb { path, .. } => {
                for file in [path.clone(), PathBuf::from(format!("{}.wal", path.display()))] {
                    if file.exists() {
                        std::fs::remove_file(&file).map_err(|e| {
                            Failure::new(
                                super::Exit::Destination,
                                anyhow::Error::new(e).context(format!("cannot delete {}", file.display())),
                            )
                        })?;
                    }
                }
                Ok(())
            }
            Choice::Postgres { url, schema } => {
                off_runtime(|| inlet_postgres::PostgresDestination::open(url, schema).and_then(|mut d| d.drop_schema()))
                    .map_err(Failure::destination)
            }
        }
    }
}

/// Runs `work` on a thread of its own: the PostgreSQL destination drives a runtime of its
/// own, which cannot start inside the caller's.
fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(work).join().expect("a destination thread"))
}

impl Target {
    /// Takes the destination keys out of `configuration` and decides where to write: flags
    /// win over the configuration, which wins over the defaults.
    pub fn resolve(&self, configuration: &mut Configuration) -> Result<Choice, Failure> {
        let mut values = configuration.values().clone();
        let mut taken = |key: &str| -> Result<Option<String>, Failure> {
            match values.remove(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s)),
                Some(other) => {
                    Err(Failure::usage(anyhow::anyhow!("configuration key `{key}`: expected a string, got {other}")))
                }
            }
        };
        let configured_url = taken(DESTINATION_KEYS[0])?;
        let configured_schema = taken(DESTINATION_KEYS[1])?;
        let compress_text = match values.remove(DESTINATION_KEYS[2]) {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(on)) => on,
            Some(serde_json::Value::String(text)) if text == "true" || text == "false" => text == "true",
            Some(other) => {
                return Err(Failure::usage(anyhow::anyhow!(
                    "configuration key `{}`: expected true or false, got {other}",
                    DESTINATION_KEYS[2]
                )));
            }
        };
        *configuration = Configuration::from_map(values);
        let url = self.destination.clone().or(configured_url);
        let schema = self.schema.clone().or(configured_schema);
        if let Some(schema) = &schema
            && (schema.trim().is_empty() || schema.len() > 63)
        {
            return Err(Failure::usage(anyhow::anyhow!("the schema name {schema:?} must have 1 to 63 characters")));
        }
        match url {
            Some(url) if compress_text && (url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
                Err(Failure::usage(anyhow::anyhow!(
                    "configuration key `{}` is for DuckDB warehouses; PostgreSQL compresses large values itself: remove the key",
                    DESTINATION_KEYS[2]
                )))
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Choice::Postgres { url, schema: schema.unwrap_or_else(|| "public".into()) })
            }
            Some(other) => Err(Failure::usage(anyhow::anyhow!(
                "destination {:?} is not a postgres:// URL; for DuckDB use --warehouse PATH",
                inlet_postgres::redact(&other)
            ))),
            None => Ok(Choice::DuckDb {
                path: self.warehouse.clone(),
                schema: schema.unwrap_or_else(|| "main".into()),
                compress_text,
            }),
        }
    }
}

impl Failure {
    /// A destination failure: exit code 4 when another sync holds it, 2 when its saved state
    /// is unusable, 3 otherwise.
    pub fn destination(error: DestinationError) -> Failure {
        let exit = match error.kind() {
            DestinationErrorKind::Busy => super::Exit::Busy,
            DestinationErrorKind::BadState => super::Exit::Usage,
            DestinationErrorKind::Unavailable | DestinationErrorKind::Write => super::Exit::Destination,
        };
        Failure::new(exit, anyhow::Error::new(error))
    }
}
