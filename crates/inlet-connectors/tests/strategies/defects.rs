//! Each seed defect, reproduced where the seed's behaviour fails, and fixed.

use std::collections::BTreeSet;
use std::sync::Arc;

use inlet_engine::MemoryWarehouse;
use inlet_playground::{ChangeBatch, GapsConfig, PlaygroundConfig, RunningPlayground, TiesConfig};

use crate::support::*;

/// Ids a client following the reference's strict keyset scroll collects (the seed's walk).
async fn seed_keyset_walk(p: &RunningPlayground) -> BTreeSet<String> {
    inlet_connectors::install_tls_provider();
    let client = reqwest::Client::new();
    let mut seen = BTreeSet::new();
    let mut url = format!("{}/pagination/keyset?updated_since=1970-01-01T00:00:00Z", p.url());
    loop {
        let page: serde_json::Value =
            serde_json::from_str(&client.get(&url).send().await.unwrap().text().await.unwrap()).unwrap();
        seen.extend(page["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match page["scroll_param"].as_str() {
            Some(token) => {
                url = format!(
                    "{}/pagination/keyset?scroll_param={}",
                    p.url(),
                    form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
                )
            }
            None => return seen,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_reads_tie_groups_cut_by_a_page_end() {
    let ties = TiesConfig { fraction: 0.5, max_group: 45 };
    let p = playground(PlaygroundConfig { ties: Some(ties), ..recent(2000) }).await;
    let lost_by_seed = 2000 - seed_keyset_walk(&p).await.len();
    assert!(lost_by_seed > 0, "the seed's walk loses rows here");

    let warehouse = MemoryWarehouse::new();
    let warnings = Arc::new(Warnings::default());
    run_watched(&configuration(&p, "keyset", serde_json::json!({})), &warehouse, warnings.clone()).await.unwrap();
    assert_matches_truth(&warehouse, &p.truth(), false);
    assert!(warnings.0.lock().unwrap().is_empty(), "no group exceeds a page: nothing at risk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_reads_a_tie_group_larger_than_a_page_through_the_offset_endpoint_and_ends() {
    let ties = TiesConfig { fraction: 0.4, max_group: 150 };
    let p = playground(PlaygroundConfig { ties: Some(ties), ..recent(1500) }).await;
    let warehouse = MemoryWarehouse::new();
    let warnings = Arc::new(Warnings::default());
    run_watched(&configuration(&p, "keyset", serde_json::json!({})), &warehouse, warnings.clone()).await.unwrap();
    assert_matches_truth(&warehouse, &p.truth(), false);
    let notes = warnings.0.lock().unwrap().clone();
    assert!(
        !notes.is_empty() && notes.iter().all(|w| w.contains("were read through the offset endpoint")),
        "{notes:?}"
    );
    assert!(requests_to(&p, "/pagination/offset") > 0);

    // Without an offset endpoint the rest of such a group cannot be read: the loss is reported.
    let warehouse = MemoryWarehouse::new();
    let warnings = Arc::new(Warnings::default());
    run_watched(&configuration(&p, "keyset", serde_json::json!({"offset_url": ""})), &warehouse, warnings.clone())
        .await
        .unwrap();
    let notes = warnings.0.lock().unwrap().clone();
    assert!(!notes.is_empty() && notes.iter().all(|w| w.contains("rows at risk")), "{notes:?}");
    assert!(warehouse.rows("user").len() < 1500, "rows were lost, as reported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_keeps_rows_that_move_while_paging() {
    let moving = PlaygroundConfig {
        changes_per_request: Some(ChangeBatch { updates: 3, ..Default::default() }),
        ..recent(1000)
    };

    // The seed's walk: fixed cursor, offset += len while offset + len < total.
    let p = playground(moving.clone()).await;
    inlet_connectors::install_tls_provider();
    let client = reqwest::Client::new();
    let (mut offset, mut seen) = (0, BTreeSet::new());
    loop {
        let url = format!(
            "{}/pagination/offset?order_by=updatedAt&order_type=asc&updated_since=1970-01-01T00:00:00Z&limit=50&offset={offset}",
            p.url()
        );
        let page: serde_json::Value =
            serde_json::from_str(&client.get(&url).send().await.unwrap().text().await.unwrap()).unwrap();
        let data = page["data"].as_array().unwrap();
        seen.extend(data.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        if offset + data.len() as u64 >= page["total"].as_u64().unwrap() {
            break;
        }
        offset += data.len() as u64;
    }
    let skipped = p.truth().live().filter(|r| !seen.contains(&r.record.id)).count();
    assert!(skipped > 0, "the seed's walk skips rows that moved up a page");

    // One request at a time, so that no request (and no change) follows the last page read.
    let p = playground(moving).await;
    let warehouse = MemoryWarehouse::new();
    run(&configuration(&p, "offset", serde_json::json!({"concurrency": "1"})), &warehouse).await.unwrap();
    assert_matches_truth(&warehouse, &p.truth(), false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp_ends_and_does_not_write_unchanged_rows_again() {
    let p = playground(recent(500)).await;
    let configuration = configuration(&p, "timestamp", serde_json::json!({}));
    let warehouse = MemoryWarehouse::new();
    let first = run(&configuration, &warehouse).await.unwrap();
    assert_eq!(
        (requests_to(&p, "/incremental/timestamp"), first.operations.upserts),
        (1, 500),
        "one request, every row once"
    );
    for _ in 0..3 {
        let again = run(&configuration, &warehouse).await.unwrap();
        assert_eq!(again.operations.upserts, 0, "the newest row, already written, is not written again");
    }
    assert_eq!(requests_to(&p, "/incremental/timestamp"), 4);
    let state = saved_state(&warehouse);
    let newest = p.truth().live().map(|r| r.record.updated_at.clone()).max().unwrap();
    assert_eq!(state["last_timestamp"], newest.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_size_walks_through_gaps_wider_than_a_window() {
    let gapped = PlaygroundConfig { gaps: Some(GapsConfig { rate: 0.05, max_len: 5000 }), ..recent(400) };
    let p = playground(gapped).await;
    let truth = p.truth();
    let ids: Vec<u64> = truth.rows.iter().map(|r| r.step_id).collect();
    assert!(ids.windows(2).any(|w| w[1] - w[0] > 1000), "a gap wider than a window");
    let max_id = ids.last().unwrap() + 2000;
    let configuration =
        configuration(&p, "step_size", serde_json::json!({"step_size": "1000", "max_id": max_id.to_string()}));
    let warehouse = MemoryWarehouse::new();
    run(&configuration, &warehouse).await.unwrap();
    assert_matches_truth(&warehouse, &truth, true);
    let windows = requests_to(&p, "/incremental/step");
    assert_eq!(windows, max_id.div_ceil(1000), "one request per window up to max_id, then it stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_size_without_max_id_stops_after_empty_windows() {
    let p = playground(recent(250)).await;
    let configuration = configuration(
        &p,
        "step_size",
        serde_json::json!({"step_size": "100", "max_id": null, "max_empty_windows": "3", "concurrency": "1"}),
    );
    let warehouse = MemoryWarehouse::new();
    run(&configuration, &warehouse).await.unwrap();
    assert_matches_truth(&warehouse, &p.truth(), true);
    assert_eq!(requests_to(&p, "/incremental/step"), 3 + 3, "three windows with rows, three empty ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_moves_the_request_back_not_the_cursor_and_keeps_the_api_format() {
    let p = playground(recent(300)).await;
    let configuration = configuration(&p, "replay", serde_json::json!({"buffer_hours": "3"}));
    let warehouse = MemoryWarehouse::new();
    run(&configuration, &warehouse).await.unwrap();
    let cursor = saved_state(&warehouse)["last_timestamp"].as_str().unwrap().to_owned();
    assert!(
        inlet_playground::parse_timestamp(cursor.trim_end_matches('Z'), false).is_some()
            && cursor.ends_with('Z')
            && cursor.len() == 20,
        "API format: {cursor}"
    );
    for _ in 0..3 {
        run(&configuration, &warehouse).await.unwrap();
        assert_eq!(saved_state(&warehouse)["last_timestamp"], cursor.as_str(), "the cursor does not drift back");
    }
    let log = p.request_log();
    let cursor_seconds = cursor.parse::<jiff::Timestamp>().unwrap().as_second();
    let expected_since = inlet_playground::format_timestamp(cursor_seconds - 3 * 3600);
    assert_eq!(log.last().unwrap(), &format!("/incremental/timestamp?since={}", expected_since.replace(':', "%3A")));
    assert_eq!(warehouse.rows("user").len(), 300, "replayed rows leave no duplicate");
    assert_matches_truth(&warehouse, &p.truth(), false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_first_commits_recent_data_first_and_fails_on_errors() {
    let p = playground(recent(400)).await;
    let configuration = configuration(
        &p,
        "priority_first",
        serde_json::json!({"window_hours": "24", "historical_limit": "2020-01-01T00:00:00Z"}),
    );
    let warehouse = MemoryWarehouse::new();
    let connector = inlet_connectors::Builtin::new();
    let (mut operations, mut batches) = inlet_sdk::Operations::channel(1000, 100_000);
    inlet_sdk::Connector::update(&connector, &configuration, &inlet_sdk::State::new(), &mut operations).await.unwrap();
    drop(operations);
    let mut window_newest = Vec::new();
    while let Some(batch) = batches.recv().await {
        let stamps: Vec<jiff::Timestamp> = batch
            .changes
            .iter()
            .filter_map(|c| match c {
                inlet_sdk::Change::Upsert { record, .. } => match record.get("updatedAt") {
                    Some(inlet_sdk::Value::Timestamp(at)) => Some(*at),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        if let Some(newest) = stamps.iter().max() {
            window_newest.push(*newest);
        }
    }
    assert!(window_newest.len() > 3, "several windows");
    assert!(
        window_newest.windows(2).all(|w| w[0] > w[1]),
        "each window is older than the one before: {window_newest:?}"
    );
    let newest = p.truth().live().map(|r| r.record.updated_at.parse::<jiff::Timestamp>().unwrap()).max().unwrap();
    assert_eq!(window_newest[0], newest, "the most recent data comes first");

    run(&configuration, &warehouse).await.unwrap();
    assert_matches_truth(&warehouse, &p.truth(), false);
    assert_eq!(saved_state(&warehouse)["is_incremental_sync"], true, "history is complete");

    let broken = playground(PlaygroundConfig {
        faults: inlet_playground::FaultsConfig { server_errors: 1.0, ..Default::default() },
        ..recent(10)
    })
    .await;
    let failing = crate::support::configuration(&broken, "priority_first", serde_json::json!({"max_attempts": "2"}));
    let error = run(&failing, &MemoryWarehouse::new()).await.unwrap_err();
    assert!(
        error.to_string().contains("500 Internal Server Error"),
        "the seed swallows errors; here the sync fails: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_first_does_not_lose_changes_when_the_api_clock_trails_this_machine() {
    // The API's clock is ten minutes behind ours: a first sync that saved its own `now` as
    // the incremental cursor would never ask for rows the API changes after it.
    let behind = jiff::Timestamp::now().as_second() - 600;
    let p = playground(PlaygroundConfig { now: Some(behind), ..recent(300) }).await;
    let warehouse = MemoryWarehouse::new();
    let configuration =
        configuration(&p, "priority_first", serde_json::json!({"historical_limit": "2020-01-01T00:00:00Z"}));
    run(&configuration, &warehouse).await.unwrap();
    p.advance_clock(std::time::Duration::from_secs(60));
    let changed = p.change(ChangeBatch { updates: 4, inserts: 2, ..Default::default() });
    assert_eq!(changed.updated.len() + changed.inserted.len(), 6);
    run(&configuration, &warehouse).await.unwrap();
    assert_matches_truth(&warehouse, &p.truth(), false);
}

/// Syncs `configuration` every minute for half an hour while users change on a replica that
/// lags up to ten minutes; then waits out the lag and syncs once more. Returns the users changed.
async fn sync_through_lag(
    p: &RunningPlayground,
    configuration: &inlet_sdk::Configuration,
    warehouse: &MemoryWarehouse,
) -> BTreeSet<String> {
    let mut changed = BTreeSet::new();
    for _ in 0..30 {
        p.advance_clock(std::time::Duration::from_secs(60));
        let report = p.change(ChangeBatch { updates: 3, inserts: 1, ..Default::default() });
        changed.extend(report.updated.into_iter().chain(report.inserted).map(|u| u.uuid));
        run(configuration, warehouse).await.unwrap();
    }
    p.advance_clock(std::time::Duration::from_secs(700));
    run(configuration, warehouse).await.unwrap();
    changed
}

fn lagging() -> PlaygroundConfig {
    PlaygroundConfig { replica_lag_seconds: 600, ..recent(300) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_with_a_buffer_at_least_the_lag_loses_nothing() {
    let p = playground(lagging()).await;
    let warehouse = MemoryWarehouse::new();
    sync_through_lag(&p, &configuration(&p, "replay", serde_json::json!({"buffer_hours": "0.2"})), &warehouse).await;
    assert_matches_truth(&warehouse, &p.truth(), false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_with_a_smaller_buffer_keeps_stale_rows_that_appeared_late() {
    for (strategy, buffer) in [("replay", "0.05"), ("timestamp", "0")] {
        let p = playground(lagging()).await;
        let warehouse = MemoryWarehouse::new();
        let configuration = configuration(&p, strategy, serde_json::json!({"buffer_hours": buffer}));
        let start = p.now();
        let mut late = sync_through_lag(&p, &configuration, &warehouse).await;
        // Initial users updated within the lag before the start appear late too.
        let lagged_at_start = inlet_playground::format_timestamp(start - 600);
        late.extend(
            p.truth().rows.iter().filter(|r| r.record.updated_at > lagged_at_start).map(|r| r.record.id.clone()),
        );
        let stored = stored(&warehouse);
        let truth = p.truth();
        let stale: Vec<&str> = truth
            .live()
            .filter(|r| {
                let version = inlet_sdk::ColumnType::UtcDateTime.convert(r.record.updated_at.as_str().into()).unwrap();
                stored.get(&r.record.id).is_none_or(|(values, _)| values.get("updatedAt") != Some(&version))
            })
            .map(|r| r.record.id.as_str())
            .collect();
        assert!(
            !stale.is_empty(),
            "{strategy} with a {buffer} h buffer misses rows that became visible more than the buffer late"
        );
        assert!(stale.iter().all(|id| late.contains(*id)), "only rows that appeared late on the replica are affected");
    }
}
