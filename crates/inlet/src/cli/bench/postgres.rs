//! `inlet bench postgres`: the PostgreSQL destination's binary `COPY` and merge against the
//! usual way of loading, multi-row `INSERT … ON CONFLICT DO UPDATE`, on the same users in the
//! same run.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use futures_util::SinkExt;
use inlet_connectors::user_table;
use inlet_engine::ColumnSpec;
use inlet_engine::{Silent, SyncOptions};
use inlet_postgres::CopyRows;
use inlet_sdk::{ColumnType, Configuration, Record, Table, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

use super::sync::{BENCH_SCHEMA, DEFAULT_POSTGRES, Preloaded, initial_pages};
use crate::cli::progress::group;
use crate::cli::{Exit, Failure};

/// Arguments of `inlet bench postgres`.
#[derive(Args, Debug)]
pub struct PostgresBench {
    /// Users loaded by each method.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    users: u32,
    /// Rows per INSERT statement of the baseline (9 parameters a row; PostgreSQL takes at
    /// most 65,535 parameters a statement).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=7000))]
    insert_rows: u32,
    /// Rows per transaction of the baseline (inlet commits up to 100,000 rows at once).
    #[arg(long, default_value_t = 100_000)]
    transaction_rows: u32,
    /// Runs of every method, alternating: the table shows each method's median time (a shared
    /// machine's timings move by 10 to 50% from one run to the next).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    runs: u32,
    /// The PostgreSQL server; the benchmark writes to schemas `inlet_bench` and
    /// `inlet_bench_insert` and drops them.
    #[arg(long, value_name = "URL", env = "INLET_BENCH_POSTGRES", default_value = DEFAULT_POSTGRES)]
    postgres: String,
}

/// The baseline's schema.
const INSERT_SCHEMA: &str = "inlet_bench_insert";

/// Runs the benchmark and prints its figures.
pub async fn run(args: PostgresBench) -> Result<Exit, Failure> {
    println!(
        "inlet bench postgres: {} users into {}{}\n",
        group(args.users.into()),
        inlet_postgres::redact(&args.postgres),
        super::build_note()
    );
    let (client, connection) = tokio_postgres::connect(&args.postgres, NoTls).await.map_err(|e| {
        Failure::new(
            Exit::Destination,
            anyhow::Error::new(e).context(format!("cannot connect to {}", inlet_postgres::redact(&args.postgres))),
        )
    })?;
    tokio::spawn(connection);
    let checkpoints = match client.batch_execute("CHECKPOINT").await {
        Ok(()) => true,
        Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
            eprintln!(
                "note: this role cannot run CHECKPOINT (it takes a superuser or pg_checkpoint): each method may pay for writing out what the one before it left"
            );
            false
        }
        Err(e) => return Err(sql_failure(e)),
    };
    let mut rounds = Vec::new();
    for run in 1..=args.runs {
        if args.runs > 1 {
            eprintln!("run {run} of {}", args.runs);
        }
        rounds.push(round(&client, &args, checkpoints).await?);
    }
    // Each method's run of median time; the ratios are taken within each run, whose methods
    // met the same state of the machine.
    let median = |method: fn(&Round) -> Duration| {
        let mut times: Vec<Duration> = rounds.iter().map(method).collect();
        times.sort();
        times[times.len() / 2]
    };
    let rate = |took: Duration| group((f64::from(args.users) / took.as_secs_f64()) as u64);
    let line = |method: String, took: Duration| {
        println!("  {method:<60} {:>10} {:>9.2}", rate(took), took.as_secs_f64());
    };
    let rows = args.insert_rows;
    println!("{:<62} {:>10} {:>9}", "method", "rows/s", "seconds");
    println!("into a table with its primary key, each row the newest version of its key:");
    line("inlet: binary COPY, the key built once at the end".into(), median(|r| r.copy));
    line(format!("INSERT … ON CONFLICT, {rows} rows a statement, values as text"), median(|r| r.upsert_text));
    line(format!("INSERT … ON CONFLICT, {rows} rows a prepared statement"), median(|r| r.upsert_prepared));
    println!("transfer only, into a table without key or merge:");
    line("binary COPY, inlet's encoder".into(), median(|r| r.copy_transfer));
    line(format!("INSERT, {rows} rows a statement, values as text"), median(|r| r.insert_text));
    line(format!("INSERT, {rows} rows a prepared statement"), median(|r| r.insert_prepared));
    let ratios = |insert: fn(&Round) -> Duration, copy: fn(&Round) -> Duration| {
        let each: Vec<String> =
            rounds.iter().map(|r| format!("{:>5.1}x", insert(r).as_secs_f64() / copy(r).as_secs_f64())).collect();
        each.join(" ")
    };
    println!("\nCOPY faster than INSERT, run by run:");
    println!("  into the keyed table, against values as text    {}", ratios(|r| r.upsert_text, |r| r.copy));
    println!("  into the keyed table, against prepared          {}", ratios(|r| r.upsert_prepared, |r| r.copy));
    println!("  transfer only, against values as text           {}", ratios(|r| r.insert_text, |r| r.copy_transfer));
    println!(
        "  transfer only, against prepared                 {}",
        ratios(|r| r.insert_prepared, |r| r.copy_transfer)
    );
    println!(
        "Seconds: each method's run of median time of {}; every table held the {} users.",
        args.runs,
        group(args.users.into())
    );
    Ok(Exit::Success)
}

/// The times of one run of every method.
struct Round {
    copy: Duration,
    upsert_text: Duration,
    upsert_prepared: Duration,
    copy_transfer: Duration,
    insert_text: Duration,
    insert_prepared: Duration,
}

/// Runs every method once, on fresh schemas, and checks that each table holds every user.
/// With `checkpoints`, each method starts after a `CHECKPOINT`, so that none pays for writing
/// out the pages the one before it left dirty.
async fn round(client: &Client, args: &PostgresBench, checkpoints: bool) -> Result<Round, Failure> {
    let drop_schemas =
        format!("DROP SCHEMA IF EXISTS {BENCH_SCHEMA} CASCADE; DROP SCHEMA IF EXISTS {INSERT_SCHEMA} CASCADE");
    client.batch_execute(&drop_schemas).await.map_err(sql_failure)?;
    client.batch_execute(&format!("CREATE SCHEMA {INSERT_SCHEMA}")).await.map_err(sql_failure)?;
    let settle = async || match checkpoints {
        true => client.batch_execute("CHECKPOINT").await.map_err(sql_failure),
        false => Ok(()),
    };
    settle().await?;
    let copy = copy_load(args).await?;
    settle().await?;
    let upsert_prepared = insert_load(client, args, Statements::Prepared).await?;
    settle().await?;
    let upsert_text = insert_load(client, args, Statements::Text).await?;
    settle().await?;
    let copy_transfer = copy_transfer(client, args).await?;
    settle().await?;
    let insert_prepared = insert_transfer(client, args, Statements::Prepared).await?;
    settle().await?;
    let insert_text = insert_transfer(client, args, Statements::Text).await?;
    let times = Round { copy, upsert_text, upsert_prepared, copy_transfer, insert_prepared, insert_text };
    let baselines = ["upserted_text", "upserted_prepared", "copied", "text", "prepared"];
    for table in
        std::iter::once(format!("{BENCH_SCHEMA}.\"user\"")).chain(baselines.map(|t| format!("{INSERT_SCHEMA}.{t}")))
    {
        let count: i64 =
            client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.map_err(sql_failure)?.get(0);
        if count != i64::from(args.users) {
            return Err(Failure::from(anyhow::anyhow!("{table} holds {count} users of {}", args.users)));
        }
    }
    client.batch_execute(&drop_schemas).await.map_err(sql_failure)?;
    Ok(times)
}

/// How the baseline sends its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Statements {
    /// Multi-row `INSERT`s with the values written into the SQL as literals, as loaders
    /// commonly build them (psycopg2's `execute_values`, most ORMs' bulk inserts).
    Text,
    /// One prepared multi-row `INSERT` with binary parameters: the fastest `INSERT` there is.
    Prepared,
}

fn sql_failure(e: tokio_postgres::Error) -> Failure {
    Failure::new(Exit::Destination, anyhow::Error::new(e))
}

/// inlet's own path: the engine writing into the PostgreSQL destination, a checkpoint every
/// 1,000 rows.
async fn copy_load(args: &PostgresBench) -> Result<Duration, Failure> {
    let connector = Preloaded::new(conformed_pages(args.users, 1000)?);
    // The PostgreSQL destination drives a runtime of its own: it is opened off this one.
    let url = args.postgres.clone();
    let destination = std::thread::spawn(move || inlet_postgres::PostgresDestination::open(&url, BENCH_SCHEMA))
        .join()
        .expect("the thread opening the destination")
        .map_err(Failure::destination)?;
    let started = Instant::now();
    inlet_engine::spawn_sync(
        Arc::new(connector),
        Configuration::default(),
        Box::new(destination),
        SyncOptions::default(),
        Arc::new(Silent),
        std::future::pending(),
    )
    .await
    .map_err(Failure::sync)?;
    Ok(started.elapsed())
}

/// The quoted names of `table`'s columns.
fn quoted_names(table: &Table) -> Vec<String> {
    table.columns.iter().map(|c| format!("\"{}\"", c.name)).collect()
}

/// `CREATE TABLE` for the `user` columns and the sync-time column, then `extra` columns.
fn create_table(name: &str, extra: &str) -> String {
    let table = user_table();
    let mut sql = format!("CREATE TABLE {INSERT_SCHEMA}.{name} (");
    for (quoted, column) in quoted_names(&table).iter().zip(&table.columns) {
        let in_key = table.primary_key.contains(&column.name);
        let _ = write!(sql, "{quoted} {}, ", inlet_postgres::declared_type(column.ty, in_key));
    }
    let _ = write!(sql, "_inlet_synced timestamptz NOT NULL DEFAULT now(){extra}); ");
    sql
}

/// An `INSERT … ON CONFLICT` baseline: a table like inlet's, the same conversions and the
/// same rule (a row never moves back to an older `updatedAt`).
async fn insert_load(client: &Client, args: &PostgresBench, statements: Statements) -> Result<Duration, Failure> {
    let names = quoted_names(&user_table());
    let pages = conformed_pages(args.users, args.insert_rows)?;
    let table = match statements {
        Statements::Text => "upserted_text",
        Statements::Prepared => "upserted_prepared",
    };
    let started = Instant::now();
    let create = create_table(table, ", _inlet_deleted boolean NOT NULL DEFAULT false, PRIMARY KEY (\"id\")");
    client.batch_execute(&create).await.map_err(sql_failure)?;
    let updates: Vec<String> = names.iter().map(|n| format!("{n} = EXCLUDED.{n}")).collect();
    let on_conflict = format!(
        " ON CONFLICT (\"id\") DO UPDATE SET {}, _inlet_synced = now() WHERE t.\"updatedAt\" <= EXCLUDED.\"updatedAt\"",
        updates.join(", ")
    );
    insert_pages(client, args, pages, table, &on_conflict, statements).await?;
    Ok(started.elapsed())
}

/// Writes `pages` into `table` (aliased `t`) with multi-row INSERTs ending in `tail`,
/// committing every `--transaction-rows` rows.
async fn insert_pages(
    client: &Client,
    args: &PostgresBench,
    pages: Vec<Vec<Record>>,
    table: &str,
    tail: &str,
    statements: Statements,
) -> Result<(), Failure> {
    let user = user_table();
    let names = quoted_names(&user);
    let head = format!("INSERT INTO {INSERT_SCHEMA}.{table} AS t ({}) VALUES ", names.join(", "));
    let placeholders = |rows: usize| {
        let mut sql = head.clone();
        for row in 0..rows {
            let row: Vec<String> = (1..=names.len()).map(|c| format!("${}", row * names.len() + c)).collect();
            let _ = write!(sql, "{}({})", if sql.ends_with("VALUES ") { "" } else { ", " }, row.join(", "));
        }
        sql.push_str(tail);
        sql
    };
    let full = match statements {
        Statements::Prepared => {
            Some(client.prepare(&placeholders(args.insert_rows as usize)).await.map_err(sql_failure)?)
        }
        Statements::Text => None,
    };
    let mut in_transaction = 0usize;
    client.batch_execute("BEGIN").await.map_err(sql_failure)?;
    for page in pages {
        let rows = page.len();
        match (statements, &full) {
            (Statements::Text, _) => {
                let mut sql = head.clone();
                for (i, record) in page.into_iter().enumerate() {
                    sql.push_str(if i == 0 { "(" } else { ", (" });
                    for (c, column) in user.columns.iter().enumerate() {
                        if c > 0 {
                            sql.push_str(", ");
                        }
                        literal(&mut sql, record.get(&column.name).unwrap_or(&Value::Null));
                    }
                    sql.push(')');
                }
                sql.push_str(tail);
                client.batch_execute(&sql).await.map_err(sql_failure)?;
            }
            (Statements::Prepared, Some(full)) if rows == args.insert_rows as usize => {
                let params = parameters(page, &user)?;
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
                client.execute(full, &refs).await.map_err(sql_failure)?;
            }
            (Statements::Prepared, _) => {
                let params = parameters(page, &user)?;
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
                client.execute(placeholders(rows).as_str(), &refs).await.map_err(sql_failure)?;
            }
        }
        in_transaction += rows;
        if in_transaction >= args.transaction_rows as usize {
            client.batch_execute("COMMIT; BEGIN").await.map_err(sql_failure)?;
            in_transaction = 0;
        }
    }
    client.batch_execute("COMMIT").await.map_err(sql_failure)
}

/// `value` as an SQL literal: text quoted, `NULL` bare.
fn literal(sql: &mut String, value: &Value) {
    match value {
        Value::Null => sql.push_str("NULL"),
        Value::String(s) => sql.push_str(&inlet_engine::sql::literal(s)),
        other => sql.push_str(&inlet_engine::sql::literal(other.to_json().to_string().trim_matches('"'))),
    }
}

/// Binary COPY of the users, with inlet's encoder, into a table without key: what COPY costs
/// on the wire and in parsing, apart from index maintenance.
async fn copy_transfer(client: &Client, args: &PostgresBench) -> Result<Duration, Failure> {
    let table = user_table();
    let mut names = quoted_names(&table);
    names.extend(["_inlet_seq".to_owned(), "_inlet_deleted".to_owned()]);
    let create = create_table("copied", ", _inlet_seq bigint, _inlet_deleted boolean");
    client.batch_execute(&create).await.map_err(sql_failure)?;
    let pages = conformed_pages(args.users, args.insert_rows)?;
    let specs: Vec<ColumnSpec> = table.columns.iter().map(|c| ColumnSpec { name: c.name.clone(), ty: c.ty }).collect();
    let columns: Vec<&ColumnSpec> = specs.iter().collect();
    let started = Instant::now();
    client.batch_execute("BEGIN").await.map_err(sql_failure)?;
    let sink = client
        .copy_in::<_, Bytes>(&format!("COPY {INSERT_SCHEMA}.copied ({}) FROM STDIN (FORMAT binary)", names.join(", ")))
        .await
        .map_err(sql_failure)?;
    let mut sink = std::pin::pin!(sink);
    let mut rows = CopyRows::new(&columns);
    for page in pages {
        for mut record in page {
            let mut values = Vec::with_capacity(columns.len());
            for column in &columns {
                let value = record.remove(&column.name).unwrap_or(Value::Null);
                values.push(
                    column
                        .ty
                        .convert(value)
                        .map_err(|e| Failure::from(anyhow::anyhow!("column {}: {e}", column.name)))?,
                );
            }
            rows.push(&values, false).map_err(|e| Failure::from(anyhow::anyhow!(e)))?;
            if let Some(chunk) = rows.full_chunk() {
                sink.send(chunk).await.map_err(sql_failure)?;
            }
        }
    }
    sink.send(rows.finish()).await.map_err(sql_failure)?;
    sink.finish().await.map_err(sql_failure)?;
    client.batch_execute("COMMIT").await.map_err(sql_failure)?;
    Ok(started.elapsed())
}

/// Multi-row INSERTs of the users into a table without key.
async fn insert_transfer(client: &Client, args: &PostgresBench, statements: Statements) -> Result<Duration, Failure> {
    let table = match statements {
        Statements::Text => "text",
        Statements::Prepared => "prepared",
    };
    client.batch_execute(&create_table(table, "")).await.map_err(sql_failure)?;
    let pages = conformed_pages(args.users, args.insert_rows)?;
    let started = Instant::now();
    insert_pages(client, args, pages, table, "", statements).await?;
    Ok(started.elapsed())
}

/// The playground's users in pages of `page_size`, conformed to the `user` table as the
/// built-in connectors hand them over (timestamps parsed), so that every method starts from
/// the same values and times only its own work.
fn conformed_pages(users: u32, page_size: u32) -> Result<Vec<Vec<Record>>, Failure> {
    let table = user_table();
    let mut pages = initial_pages(users, page_size)?;
    let mut conformer = table.conformer();
    for record in pages.iter_mut().flatten() {
        conformer.conform(record).map_err(|e| Failure::from(anyhow::anyhow!(e)))?;
    }
    Ok(pages)
}

/// The statement parameters of `records`, each value converted to its column's type.
fn parameters(records: Vec<Record>, table: &Table) -> Result<Vec<Box<dyn ToSql + Sync + Send>>, Failure> {
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(records.len() * table.columns.len());
    for mut record in records {
        for column in &table.columns {
            let value = record.remove(&column.name).unwrap_or(Value::Null);
            let value =
                column.ty.convert(value).map_err(|e| Failure::from(anyhow::anyhow!("column {}: {e}", column.name)))?;
            params.push(match value {
                Value::Null if column.ty == ColumnType::UtcDateTime => Box::new(None::<jiff::Timestamp>),
                Value::Null => Box::new(None::<String>),
                Value::Timestamp(t) => Box::new(t),
                Value::String(s) => Box::new(s),
                other => return Err(Failure::from(anyhow::anyhow!("column {}: unexpected {other:?}", column.name))),
            });
        }
    }
    Ok(params)
}
