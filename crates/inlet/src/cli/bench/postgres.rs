//! `inlet bench postgres`: the PostgreSQL destination's binary `COPY` and merge against the
//! usual way of loading, multi-row `INSERT … ON CONFLICT DO UPDATE`, on the same users in the
//! same run.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use inlet_connectors::user_table;
use inlet_engine::{Silent, SyncOptions};
use inlet_sdk::{ColumnType, Configuration, Record, Table, Value};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
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
    let drop_schemas =
        format!("DROP SCHEMA IF EXISTS {BENCH_SCHEMA} CASCADE; DROP SCHEMA IF EXISTS {INSERT_SCHEMA} CASCADE");
    client.batch_execute(&drop_schemas).await.map_err(sql_failure)?;

    let copy = copy_load(&args).await?;
    let insert = insert_load(&client, &args).await?;
    let (copy_transfer, insert_transfer) = transfers(&client, &args).await?;
    for table in [
        format!("{BENCH_SCHEMA}.\"user\""),
        format!("{INSERT_SCHEMA}.\"user\""),
        format!("{INSERT_SCHEMA}.copied"),
        format!("{INSERT_SCHEMA}.inserted"),
    ] {
        let count: i64 =
            client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.map_err(sql_failure)?.get(0);
        if count != i64::from(args.users) {
            return Err(Failure::from(anyhow::anyhow!("{table} holds {count} users of {}", args.users)));
        }
    }
    client.batch_execute(&drop_schemas).await.map_err(sql_failure)?;

    let rate = |took: Duration| group((f64::from(args.users) / took.as_secs_f64()) as u64);
    let line = |method: String, took: Duration| {
        println!("  {method:<52} {:>10} {:>9.2}", rate(took), took.as_secs_f64());
    };
    println!("{:<54} {:>10} {:>9}", "method", "rows/s", "seconds");
    println!("into the table with its primary key, as a sync writes:");
    line("inlet: binary COPY into staging, then merge".into(), copy);
    line(format!("INSERT … ON CONFLICT, {} rows a statement", args.insert_rows), insert);
    println!("transfer only, into a table without key or merge:");
    line("binary COPY".into(), copy_transfer);
    line(format!("INSERT, {} rows a statement", args.insert_rows), insert_transfer);
    println!(
        "\nCOPY is {:.1}x faster into the keyed table, {:.1}x faster in transfer only; every table holds the {} users.",
        insert.as_secs_f64() / copy.as_secs_f64(),
        insert_transfer.as_secs_f64() / copy_transfer.as_secs_f64(),
        group(args.users.into())
    );
    Ok(Exit::Success)
}

fn sql_failure(e: tokio_postgres::Error) -> Failure {
    Failure::new(Exit::Destination, anyhow::Error::new(e))
}

/// inlet's own path: the engine writing into the PostgreSQL destination, a checkpoint every
/// 1,000 rows.
async fn copy_load(args: &PostgresBench) -> Result<Duration, Failure> {
    let connector = Preloaded::new(initial_pages(args.users, 1000)?);
    // The PostgreSQL destination drives a runtime of its own: it is opened off this one.
    let url = args.postgres.clone();
    let destination = std::thread::spawn(move || inlet_postgres::PostgresDestination::open(&url, BENCH_SCHEMA))
        .join()
        .expect("the thread opening the destination")
        .map_err(Failure::destination)?;
    let started = Instant::now();
    inlet_engine::sync(
        &connector,
        &Configuration::default(),
        Box::new(destination),
        &SyncOptions::default(),
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
        let _ = write!(sql, "{quoted} {}, ", inlet_postgres::sql_type(column.ty));
    }
    let _ = write!(sql, "_inlet_synced timestamptz NOT NULL DEFAULT now(){extra}); ");
    sql
}

/// The baseline: the same table, the same conversions and the same rule (a row never moves
/// back to an older `updatedAt`), written with prepared multi-row INSERT statements.
async fn insert_load(client: &Client, args: &PostgresBench) -> Result<Duration, Failure> {
    let names = quoted_names(&user_table());
    let pages = initial_pages(args.users, args.insert_rows)?;
    let started = Instant::now();
    let create = format!(
        "CREATE SCHEMA {INSERT_SCHEMA}; {}",
        create_table("\"user\"", ", _inlet_deleted boolean NOT NULL DEFAULT false, PRIMARY KEY (\"id\")")
    );
    client.batch_execute(&create).await.map_err(sql_failure)?;
    let updates: Vec<String> = names.iter().map(|n| format!("{n} = EXCLUDED.{n}")).collect();
    let on_conflict = format!(
        " ON CONFLICT (\"id\") DO UPDATE SET {}, _inlet_synced = now() WHERE t.\"updatedAt\" <= EXCLUDED.\"updatedAt\"",
        updates.join(", ")
    );
    insert_pages(client, args, pages, "\"user\"", &on_conflict).await?;
    Ok(started.elapsed())
}

/// Writes `pages` into `table` (aliased `t`) with prepared multi-row INSERTs ending in
/// `tail`, committing every `--transaction-rows` rows.
async fn insert_pages(
    client: &Client,
    args: &PostgresBench,
    pages: Vec<Vec<Record>>,
    table: &str,
    tail: &str,
) -> Result<(), Failure> {
    let user = user_table();
    let names = quoted_names(&user);
    let statement = |rows: usize| {
        let mut sql = format!("INSERT INTO {INSERT_SCHEMA}.{table} AS t ({}) VALUES ", names.join(", "));
        for row in 0..rows {
            let placeholders: Vec<String> = (1..=names.len()).map(|c| format!("${}", row * names.len() + c)).collect();
            let _ = write!(sql, "{}({})", if row == 0 { "" } else { ", " }, placeholders.join(", "));
        }
        sql.push_str(tail);
        sql
    };
    let full = client.prepare(&statement(args.insert_rows as usize)).await.map_err(sql_failure)?;
    let mut in_transaction = 0usize;
    client.batch_execute("BEGIN").await.map_err(sql_failure)?;
    for page in pages {
        let params = parameters(page, &user)?;
        let rows = params.len() / names.len();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        if rows == args.insert_rows as usize {
            client.execute(&full, &refs).await.map_err(sql_failure)?;
        } else {
            client.execute(statement(rows).as_str(), &refs).await.map_err(sql_failure)?;
        }
        in_transaction += rows;
        if in_transaction >= args.transaction_rows as usize {
            client.batch_execute("COMMIT; BEGIN").await.map_err(sql_failure)?;
            in_transaction = 0;
        }
    }
    client.batch_execute("COMMIT").await.map_err(sql_failure)
}

/// Binary COPY and multi-row INSERT of the same rows into tables without key or merge: what
/// each costs on the wire and in parsing, apart from index maintenance.
async fn transfers(client: &Client, args: &PostgresBench) -> Result<(Duration, Duration), Failure> {
    let table = user_table();
    let names = quoted_names(&table);
    let create = format!("{}{}", create_table("copied", ""), create_table("inserted", ""));
    client.batch_execute(&create).await.map_err(sql_failure)?;

    let pages = initial_pages(args.users, args.insert_rows)?;
    let wire: Vec<Type> = table
        .columns
        .iter()
        .map(|c| if c.ty == ColumnType::UtcDateTime { Type::TIMESTAMPTZ } else { Type::TEXT })
        .collect();
    let started = Instant::now();
    client.batch_execute("BEGIN").await.map_err(sql_failure)?;
    let sink = client
        .copy_in(&format!("COPY {INSERT_SCHEMA}.copied ({}) FROM STDIN (FORMAT binary)", names.join(", ")))
        .await
        .map_err(sql_failure)?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &wire));
    for page in pages {
        let params = parameters(page, &table)?;
        for row in params.chunks(names.len()) {
            let refs: Vec<&(dyn ToSql + Sync)> = row.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
            writer.as_mut().write(&refs).await.map_err(sql_failure)?;
        }
    }
    writer.finish().await.map_err(sql_failure)?;
    client.batch_execute("COMMIT").await.map_err(sql_failure)?;
    let copied = started.elapsed();

    let pages = initial_pages(args.users, args.insert_rows)?;
    let started = Instant::now();
    insert_pages(client, args, pages, "inserted", "").await?;
    Ok((copied, started.elapsed()))
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
