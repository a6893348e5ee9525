//! The engine's guarantees, checked with a scripted connector and the in-memory warehouse.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use inlet_engine::{MemoryWarehouse, Silent, SyncError, SyncOptions, spawn_sync, sync};
use inlet_sdk::{ColumnType, Configuration, Connector, Error, ErrorKind, Operations, Record, State, Table, Value};

/// One step of a scripted connector.
#[derive(Clone)]
enum Step {
    Upsert(i64, &'static str),
    Delete(i64),
    Truncate,
    Checkpoint(i64),
    Fail,
    /// The connector has a bug.
    Panic,
    Hang,
    /// The source takes this long to answer.
    Pause(std::time::Duration),
}

struct Scripted {
    steps: Vec<Step>,
    name: &'static str,
    seen_state: Arc<std::sync::Mutex<Option<State>>>,
    calls: AtomicUsize,
}

fn scripted(steps: Vec<Step>) -> Scripted {
    Scripted { steps, name: "scripted", seen_state: Default::default(), calls: AtomicUsize::new(0) }
}

impl Connector for Scripted {
    fn name(&self, _: &Configuration) -> String {
        self.name.into()
    }

    fn schema(&self, _: &Configuration) -> Result<Vec<Table>, Error> {
        Ok(vec![
            Table::new("item")
                .primary_key(["id"])
                .column("id", ColumnType::Long)
                .column("updatedAt", ColumnType::UtcDateTime)
                .version_column("updatedAt"),
        ])
    }

    async fn update(&self, _: &Configuration, state: &State, ops: &mut Operations) -> Result<(), Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        *self.seen_state.lock().unwrap() = Some(state.clone());
        for step in &self.steps {
            match step {
                Step::Upsert(id, at) => {
                    ops.upsert("item", Record::new().with("id", *id).with("updatedAt", *at)).await?
                }
                Step::Delete(id) => ops.delete("item", Record::new().with("id", *id)).await?,
                Step::Truncate => ops.truncate("item").await?,
                Step::Checkpoint(n) => ops.checkpoint(&serde_json::json!({ "cursor": n })).await?,
                Step::Fail => return Err(Error::source("the source answered 500")),
                Step::Panic => panic!("the connector's own bug"),
                Step::Pause(how_long) => tokio::time::sleep(*how_long).await,
                Step::Hang => std::future::pending::<()>().await,
            }
        }
        Ok(())
    }
}

const T1: &str = "2026-01-01T00:00:01Z";
const T2: &str = "2026-01-01T00:00:02Z";

async fn run(connector: &Scripted, warehouse: &MemoryWarehouse) -> Result<inlet_engine::SyncReport, SyncError> {
    run_with(connector, warehouse, &SyncOptions::default()).await
}

async fn run_with(
    connector: &Scripted,
    warehouse: &MemoryWarehouse,
    options: &SyncOptions,
) -> Result<inlet_engine::SyncReport, SyncError> {
    sync(
        connector,
        &Configuration::default(),
        warehouse.destination(),
        options,
        Arc::new(Silent),
        std::future::pending(),
    )
    .await
}

fn live_ids(warehouse: &MemoryWarehouse) -> Vec<i64> {
    warehouse
        .rows("item")
        .iter()
        .filter(|r| !r.deleted)
        .map(|r| match r.record.get("id") {
            Some(Value::Int(id)) => *id,
            other => panic!("id {other:?}"),
        })
        .collect()
}

fn cursor(warehouse: &MemoryWarehouse) -> serde_json::Value {
    warehouse.saved_state().expect("a saved state").state.to_json()["cursor"].clone()
}

#[tokio::test]
async fn commits_data_and_state_and_hands_the_state_back_next_time() {
    let warehouse = MemoryWarehouse::new();
    let first = scripted(vec![
        Step::Upsert(1, T1),
        Step::Upsert(2, T1),
        Step::Checkpoint(2),
        Step::Upsert(3, T1),
        Step::Checkpoint(3),
    ]);
    let report = run(&first, &warehouse).await.unwrap();
    assert_eq!((report.operations.upserts, report.operations.checkpoints, report.stopped), (3, 2, false));
    assert_eq!(live_ids(&warehouse), [1, 2, 3]);
    assert_eq!(cursor(&warehouse), 3);
    assert!(report.commits >= 1 && report.commits <= 2, "checkpoints may share a commit");

    let second = scripted(vec![Step::Checkpoint(3)]);
    run(&second, &warehouse).await.unwrap();
    assert_eq!(second.seen_state.lock().unwrap().clone().unwrap().to_json(), serde_json::json!({"cursor": 3}));
}

#[tokio::test]
async fn a_failed_connector_keeps_what_was_checkpointed_and_drops_the_rest() {
    let warehouse = MemoryWarehouse::new();
    let failing =
        scripted(vec![Step::Upsert(1, T1), Step::Checkpoint(1), Step::Upsert(2, T1), Step::Upsert(3, T1), Step::Fail]);
    let error = run(&failing, &warehouse).await.unwrap_err();
    assert!(matches!(&error, SyncError::Connector(e) if e.kind() == ErrorKind::Source), "{error}");
    assert_eq!(live_ids(&warehouse), [1], "rows after the last checkpoint are not written");
    assert_eq!(cursor(&warehouse), 1);
}

#[tokio::test]
async fn a_record_that_does_not_fit_fails_the_sync_and_leaves_the_last_commit() {
    struct Bad;
    impl Connector for Bad {
        fn schema(&self, c: &Configuration) -> Result<Vec<Table>, Error> {
            scripted(vec![]).schema(c)
        }
        async fn update(&self, _: &Configuration, _: &State, ops: &mut Operations) -> Result<(), Error> {
            ops.upsert("item", Record::new().with("id", 1).with("updatedAt", T1)).await?;
            ops.checkpoint(&serde_json::json!({"cursor": 1})).await?;
            ops.upsert("item", Record::new().with("id", 2).with("updatedAt", "yesterday")).await?;
            ops.checkpoint(&serde_json::json!({"cursor": 2})).await?;
            // The engine stops the connector once the writer has failed.
            loop {
                ops.upsert("item", Record::new().with("id", 3).with("updatedAt", T1)).await?;
                ops.flush().await?;
                tokio::task::yield_now().await;
            }
        }
    }
    let warehouse = MemoryWarehouse::new();
    let error = sync(
        &Bad,
        &Configuration::default(),
        warehouse.destination(),
        &SyncOptions::default(),
        Arc::new(Silent),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("table `item`, column `updatedAt`: \"yesterday\" is not a valid UTC_DATETIME"),
        "{error}"
    );
    assert_eq!(live_ids(&warehouse), [1]);
    assert_eq!(cursor(&warehouse), 1);
}

#[tokio::test]
async fn a_failed_commit_changes_nothing_and_stops_the_connector() {
    let warehouse = MemoryWarehouse::new();
    warehouse.fail_commits(1);
    let connector = scripted(vec![Step::Upsert(1, T1), Step::Checkpoint(1), Step::Hang]);
    let error = run(&connector, &warehouse).await.unwrap_err();
    assert!(matches!(error, SyncError::Destination(_)), "{error}");
    assert!(warehouse.rows("item").is_empty() && warehouse.saved_state().is_none());
}

#[tokio::test]
async fn stopping_commits_what_was_received() {
    let warehouse = MemoryWarehouse::new();
    let connector = scripted(vec![Step::Upsert(1, T1), Step::Checkpoint(1), Step::Upsert(2, T1), Step::Hang]);
    let stop = tokio::time::sleep(std::time::Duration::from_millis(100));
    let report = sync(
        &connector,
        &Configuration::default(),
        warehouse.destination(),
        &SyncOptions::default(),
        Arc::new(Silent),
        stop,
    )
    .await
    .unwrap();
    assert!(report.stopped);
    assert_eq!(live_ids(&warehouse), [1, 2], "the change after the checkpoint was received, so it is kept");
    assert_eq!(cursor(&warehouse), 1, "but the state claims only what the checkpoint proved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_spawned_on_the_runtime_stops_and_commits_as_one_awaited_in_place() {
    let warehouse = MemoryWarehouse::new();
    let connector = scripted(vec![Step::Upsert(1, T1), Step::Checkpoint(1), Step::Upsert(2, T1), Step::Hang]);
    let report = spawn_sync(
        Arc::new(connector),
        Configuration::default(),
        warehouse.destination(),
        SyncOptions::default(),
        Arc::new(Silent),
        tokio::time::sleep(std::time::Duration::from_millis(100)),
    )
    .await
    .unwrap();
    assert!(report.stopped);
    assert_eq!((report.operations.upserts, report.operations.checkpoints), (2, 1));
    assert_eq!(live_ids(&warehouse), [1, 2]);
    assert_eq!(cursor(&warehouse), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_panics_in_a_spawned_sync_panics_its_caller_with_its_own_message() {
    let warehouse = MemoryWarehouse::new();
    let connector = scripted(vec![Step::Upsert(1, T1), Step::Checkpoint(1), Step::Panic]);
    let caller = tokio::spawn(spawn_sync(
        Arc::new(connector),
        Configuration::default(),
        warehouse.destination(),
        SyncOptions::default(),
        Arc::new(Silent),
        std::future::pending(),
    ));
    let panic = caller.await.expect_err("the caller panics").into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"the connector's own bug"));
}

#[tokio::test]
async fn versions_never_go_backwards_and_tombstones_fold_into_their_upsert() {
    let warehouse = MemoryWarehouse::new();
    let connector = scripted(vec![
        Step::Upsert(1, T2),
        Step::Upsert(1, T1),
        Step::Upsert(2, T1),
        Step::Delete(2),
        Step::Checkpoint(1),
    ]);
    run(&connector, &warehouse).await.unwrap();
    let rows = warehouse.rows("item");
    assert_eq!(
        rows[0].record.get("updatedAt"),
        Some(&Value::Timestamp(T2.parse().unwrap())),
        "the older version is ignored"
    );
    assert!(rows[1].deleted && rows[1].record.get("updatedAt").is_some(), "a deleted row keeps its values");
}

#[tokio::test]
async fn truncate_deletes_what_came_before_it_only() {
    let warehouse = MemoryWarehouse::new();
    run(&scripted(vec![Step::Upsert(1, T1), Step::Upsert(2, T1), Step::Checkpoint(1)]), &warehouse).await.unwrap();
    run(&scripted(vec![Step::Upsert(3, T1), Step::Truncate, Step::Upsert(2, T2), Step::Checkpoint(2)]), &warehouse)
        .await
        .unwrap();
    assert_eq!(live_ids(&warehouse), [2]);
    assert_eq!(warehouse.rows("item").len(), 3, "deleted rows stay, flagged");
}

#[tokio::test]
async fn a_state_from_another_connector_is_named_in_the_error() {
    struct Picky;
    impl Connector for Picky {
        fn name(&self, _: &Configuration) -> String {
            "picky".into()
        }
        fn schema(&self, c: &Configuration) -> Result<Vec<Table>, Error> {
            scripted(vec![]).schema(c)
        }
        async fn update(&self, _: &Configuration, state: &State, _: &mut Operations) -> Result<(), Error> {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            #[allow(dead_code)]
            struct Mine {
                page: u32,
            }
            state.parse::<Mine>().map(|_| ())
        }
    }
    let warehouse = MemoryWarehouse::new();
    run(&scripted(vec![Step::Checkpoint(9)]), &warehouse).await.unwrap();
    let error = sync(
        &Picky,
        &Configuration::default(),
        warehouse.destination(),
        &SyncOptions::default(),
        Arc::new(Silent),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("written by `scripted`, this configuration runs `picky`") && text.contains("inlet state reset"),
        "{text}"
    );
}

/// Upserts of ids `0..rows`, with a checkpoint after every 100th.
fn upserts_checkpointed_every_100(rows: i64) -> Vec<Step> {
    let mut steps = Vec::new();
    for id in 0..rows {
        steps.push(Step::Upsert(id, T1));
        if id % 100 == 99 {
            steps.push(Step::Checkpoint(id));
        }
    }
    steps
}

#[tokio::test]
async fn small_batches_and_commits_keep_memory_bounded_without_losing_anything() {
    let warehouse = MemoryWarehouse::new();
    let steps = upserts_checkpointed_every_100(5000);
    let options = SyncOptions {
        queue_changes: 128,
        batch_changes: 64,
        commit_rows: 500,
        piece_rows: Some(150),
        commit_delay: std::time::Duration::from_millis(10),
        commit_interval: Some(std::time::Duration::ZERO),
    };
    let report = run_with(&scripted(steps), &warehouse, &options).await.unwrap();
    assert_eq!(live_ids(&warehouse).len(), 5000);
    assert_eq!(cursor(&warehouse), 4999);
    assert!(report.commits >= 10, "commits of at most 500 rows: {}", report.commits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_transaction_is_written_in_pieces() {
    let warehouse = MemoryWarehouse::new();
    let steps = upserts_checkpointed_every_100(5000);
    // Commits only when 2,000 rows are pending, or at the end.
    let hour = std::time::Duration::from_secs(3600);
    let options = SyncOptions {
        batch_changes: 64,
        commit_rows: 2000,
        piece_rows: Some(150),
        commit_delay: hour,
        commit_interval: Some(hour),
        ..SyncOptions::default()
    };
    let report = run_with(&scripted(steps), &warehouse, &options).await.unwrap();
    assert_eq!(live_ids(&warehouse).len(), 5000);
    assert_eq!(cursor(&warehouse), 4999);
    assert_eq!(report.commits, 3, "transactions of 2,000 rows, then the rest");
    // A piece is handed over at 150 proven rows; a checkpoint proves up to 100 more at once.
    assert!(warehouse.largest_write() < 250, "pieces, not transactions: {} rows", warehouse.largest_write());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_piece_size_of_its_own_a_sync_writes_the_pieces_its_destination_asks_for() {
    let warehouse = MemoryWarehouse::new();
    let asked = warehouse.destination().piece_rows();
    let steps = upserts_checkpointed_every_100(4 * asked as i64);
    let hour = std::time::Duration::from_secs(3600);
    let options = SyncOptions {
        commit_rows: 10 * asked,
        piece_rows: None,
        commit_delay: hour,
        commit_interval: Some(hour),
        ..SyncOptions::default()
    };
    let report = run_with(&scripted(steps), &warehouse, &options).await.unwrap();
    assert_eq!(live_ids(&warehouse).len(), 4 * asked);
    assert_eq!(report.commits, 1);
    // Handed over once `asked` rows are proven, checkpoints proving 100 at a time.
    let largest = warehouse.largest_write();
    assert!((asked..asked + 100).contains(&largest), "pieces of {asked} rows asked, {largest} written");
}

/// `pages` pages of 2 rows, each checkpointed, 2 ms apart: a source so slow that the writer
/// catches up after every page.
fn pages_of_two_rows_2_ms_apart(pages: i64) -> Vec<Step> {
    let mut steps = Vec::new();
    for page in 0..pages {
        steps.extend([Step::Upsert(2 * page, T1), Step::Upsert(2 * page + 1, T1), Step::Checkpoint(2 * page + 1)]);
        steps.push(Step::Pause(std::time::Duration::from_millis(2)));
    }
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_checkpoints_from_a_slow_source_share_transactions() {
    let steps = pages_of_two_rows_2_ms_apart(200);
    let mut commits = Vec::new();
    for interval in [Some(std::time::Duration::ZERO), None] {
        let warehouse = MemoryWarehouse::new();
        let options = SyncOptions { commit_interval: interval, ..SyncOptions::default() };
        let report = run_with(&scripted(steps.clone()), &warehouse, &options).await.unwrap();
        assert_eq!(live_ids(&warehouse).len(), 400, "every row, whatever the interval");
        assert_eq!(cursor(&warehouse), 399, "and the last state");
        commits.push(report.commits);
    }
    assert!(commits[0] >= 100, "without an interval, a commit per page or close to it: {commits:?}");
    assert!(commits[1] <= 10, "with the default interval, pages share transactions: {commits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_interval_of_its_own_a_sync_commits_as_seldom_as_its_destination_asks() {
    let steps = pages_of_two_rows_2_ms_apart(100);
    let hour = std::time::Duration::from_secs(3600);
    let mut commits = Vec::new();
    for interval in [Some(std::time::Duration::ZERO), None] {
        let warehouse = MemoryWarehouse::new();
        warehouse.ask_commit_interval(hour);
        let options = SyncOptions { commit_interval: interval, commit_delay: hour, ..SyncOptions::default() };
        let report = run_with(&scripted(steps.clone()), &warehouse, &options).await.unwrap();
        assert_eq!(live_ids(&warehouse).len(), 200, "every row, whatever the interval");
        assert_eq!(cursor(&warehouse), 199, "and the last state");
        commits.push(report.commits);
    }
    assert!(commits[0] >= 50, "the sync's own interval overrides the destination's: {commits:?}");
    assert_eq!(commits[1], 1, "asked for an hour, the sync commits once, at its end: {commits:?}");
}
