//! Requests fetched ahead (`concurrency` above one): the same rows as one request at a time,
//! read and committed in the strategy's order, for at most `concurrency - 1` extra requests
//! per wrong guess, and rows that move while pages are fetched ahead are not skipped.

use std::sync::Arc;

use inlet_engine::MemoryWarehouse;
use inlet_playground::{ChangeBatch, PlaygroundConfig};

use crate::support::{
    Warnings, assert_matches_truth, configuration, endpoint, expected, playground, recent, requests_to, run,
    run_watched, saved_state, stored,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetching_ahead_reads_the_same_rows_for_a_few_extra_requests() {
    for strategy in ["offset", "step_size", "priority_first"] {
        let mut requests = Vec::new();
        for concurrency in ["1", "4"] {
            let p = playground(recent(2000)).await;
            let extra = serde_json::json!({"concurrency": concurrency, "max_id": null, "historical_limit": "2000-01-01T00:00:00Z"});
            let warehouse = MemoryWarehouse::new();
            run(&configuration(&p, strategy, extra), &warehouse).await.unwrap();
            assert_matches_truth(&warehouse, &p.truth(), strategy == "step_size");
            requests.push(requests_to(&p, endpoint(strategy)));
        }
        let (alone, ahead) = (requests[0], requests[1]);
        // One wrong guess (the last window, the first empty one) wastes at most 3 requests.
        assert!(
            (alone..=alone + 3).contains(&ahead),
            "{strategy}: {alone} requests one at a time, {ahead} fetching ahead"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_pages_fetched_ahead_skip_no_row_that_moved() {
    // Every request, guesses included, updates three rows first: the rows behind them move up
    // between pages fetched at different moments.
    let moving = PlaygroundConfig {
        changes_per_request: Some(ChangeBatch { updates: 3, ..Default::default() }),
        ..recent(1000)
    };
    let p = playground(moving).await;
    let warehouse = MemoryWarehouse::new();
    let warnings = Arc::new(Warnings::default());
    let configuration = configuration(&p, "offset", serde_json::json!({"concurrency": "4", "page_size": "50"}));
    run_watched(&configuration, &warehouse, warnings.clone()).await.unwrap();
    assert!(!warnings.0.lock().unwrap().is_empty(), "shifts were detected and read again");
    // Requests fetched ahead changed rows after the last page was read: the next sync reads
    // those. Every row updated before the saved cursor must be here, at its current version.
    let cursor = saved_state(&warehouse)["last_updated_at"].as_str().unwrap().to_owned();
    let proven: Vec<String> =
        p.truth().live().filter(|r| r.record.updated_at < cursor).map(|r| r.record.id.clone()).collect();
    assert!(proven.len() > 800, "most rows precede the cursor: {}", proven.len());
    let (stored, expected) = (stored(&warehouse), expected(&p.truth(), false));
    for id in proven {
        assert_eq!(stored.get(&id), expected.get(&id), "user {id}, proven by the cursor {cursor}");
    }
}
