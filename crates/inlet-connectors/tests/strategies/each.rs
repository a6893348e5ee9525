//! For every strategy: the first sync equals the truth; a second sync with no change reads
//! only what the strategy must; after updates, inserts and deletes (as tombstones, the only
//! deletes an incremental reader can see) the next sync picks them up.

use std::ops::RangeInclusive;
use std::time::Duration;

use inlet_engine::MemoryWarehouse;
use inlet_playground::{ChangeBatch, DeleteMode, PlaygroundConfig};

use crate::support::*;

struct Expect {
    /// Requests a sync with nothing new may send.
    quiet_requests: RangeInclusive<u64>,
    /// Whether the warehouse keys users by step id.
    by_step_id: bool,
}

async fn cycle(strategy: &str, extra: serde_json::Value, expect: Expect) {
    let p = playground(PlaygroundConfig { delete_mode: DeleteMode::Tombstone, ..recent(300) }).await;
    let configuration = configuration(&p, strategy, extra);
    let warehouse = MemoryWarehouse::new();

    let first = run(&configuration, &warehouse).await.unwrap();
    assert_matches_truth(&warehouse, &p.truth(), expect.by_step_id);
    assert!(first.operations.upserts >= 300, "{strategy}: {} upserts", first.operations.upserts);

    let before = requests_to(&p, endpoint(strategy));
    let quiet = run(&configuration, &warehouse).await.unwrap();
    let sent = requests_to(&p, endpoint(strategy)) - before;
    assert!(
        expect.quiet_requests.contains(&sent),
        "{strategy}: a sync with nothing new sent {sent} requests, expected {:?}",
        expect.quiet_requests
    );
    assert_matches_truth(&warehouse, &p.truth(), expect.by_step_id);
    assert_eq!(quiet.operations.deletes, 0);

    p.advance_clock(Duration::from_secs(10));
    let changed = p.change(ChangeBatch { updates: 5, inserts: 3, deletes: 2 });
    assert_eq!((changed.updated.len(), changed.inserted.len(), changed.deleted.len()), (5, 3, 2));
    p.advance_clock(Duration::from_secs(1));
    let after = run(&configuration, &warehouse).await.unwrap();
    assert_matches_truth(&warehouse, &p.truth(), expect.by_step_id);
    assert_eq!(after.operations.deletes, 2, "{strategy}: both tombstones became deletes");
    let stored = stored(&warehouse);
    for user in &changed.deleted {
        let id = if expect.by_step_id { user.step_id.to_string() } else { user.uuid.clone() };
        assert!(stored[&id].1, "{strategy}: deleted user {id} is flagged deleted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset() {
    cycle("keyset", serde_json::json!({}), Expect { quiet_requests: 1..=1, by_step_id: false }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset() {
    cycle("offset", serde_json::json!({}), Expect { quiet_requests: 1..=1, by_step_id: false }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp() {
    cycle("timestamp", serde_json::json!({}), Expect { quiet_requests: 1..=1, by_step_id: false }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay() {
    cycle("replay", serde_json::json!({"buffer_hours": "2"}), Expect { quiet_requests: 1..=1, by_step_id: false })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_size_with_full_rescan() {
    let extra = serde_json::json!({"step_size": "100", "max_id": "1000", "full_rescan": "true"});
    cycle("step_size", extra, Expect { quiet_requests: 10..=10, by_step_id: true }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_first() {
    cycle(
        "priority_first",
        serde_json::json!({"historical_limit": "2020-01-01T00:00:00Z"}),
        Expect { quiet_requests: 1..=1, by_step_id: false },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_size_picks_up_new_ids_incrementally() {
    let p = playground(recent(300)).await;
    let configuration = configuration(&p, "step_size", serde_json::json!({"step_size": "100", "max_id": "1000"}));
    let warehouse = MemoryWarehouse::new();
    run(&configuration, &warehouse).await.unwrap();
    assert_matches_truth(&warehouse, &p.truth(), true);
    assert_eq!(saved_state(&warehouse), serde_json::json!({"current_id": 201}), "the last window with rows");
    let before = requests_to(&p, "/incremental/step");
    run(&configuration, &warehouse).await.unwrap();
    assert_eq!(requests_to(&p, "/incremental/step") - before, 8, "windows 201-300 to 901-1000");
    p.change(ChangeBatch { inserts: 150, ..Default::default() });
    run(&configuration, &warehouse).await.unwrap();
    assert_matches_truth(&warehouse, &p.truth(), true);
    assert_eq!(saved_state(&warehouse), serde_json::json!({"current_id": 401}));
}
