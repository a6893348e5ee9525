//! Each hostile mode happens as documented, and the same seed makes it happen the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use inlet_playground::{
    ChangeBatch, ChangesConfig, DeleteMode, FaultsConfig, GapsConfig, PlaygroundConfig, TiesConfig,
};

use crate::contract::urlencode;
use crate::support::*;

fn tied(users: u32) -> PlaygroundConfig {
    PlaygroundConfig { users, ties: Some(TiesConfig { fraction: 0.3, max_group: 150 }), ..config() }
}

/// Ids a strict keyset walk (the reference's scroll) collects from the start.
async fn keyset_walk(p: &inlet_playground::RunningPlayground) -> Vec<String> {
    let mut seen = Vec::new();
    let mut request = "/pagination/keyset".to_owned();
    loop {
        let page = get(p, &request).await;
        seen.extend(ids(&page.data()));
        match page.json()["scroll_param"].as_str() {
            Some(token) => request = format!("/pagination/keyset?scroll_param={}", urlencode(token)),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn ties_share_timestamps_across_page_boundaries_and_a_strict_scroll_loses_rows() {
    let p = playground(tied(3000)).await;
    let truth = p.truth();
    let mut groups: BTreeMap<&str, usize> = BTreeMap::new();
    for row in truth.live() {
        *groups.entry(row.record.updated_at.as_str()).or_default() += 1;
    }
    let sizes: Vec<usize> = groups.values().copied().filter(|n| *n > 1).collect();
    assert!(sizes.iter().any(|n| *n > 50), "a group larger than a keyset page");
    assert!(sizes.iter().any(|n| *n <= 10), "small groups too");

    let edges = page_edges(&p, (0..60).map(|page| format!("/pagination/offset?limit=50&offset={}", page * 50))).await;
    let straddling = edges.windows(2).filter(|w| w[0].1 == w[1].0).count();
    assert!(straddling > 0, "some page ends inside a tie group that continues on the next page");

    let seen = keyset_walk(&p).await;
    let distinct: BTreeSet<_> = seen.iter().collect();
    assert!(distinct.len() < 3000, "the reference's strict scroll skips the rest of a group cut by a page end");

    let again = playground(tied(3000)).await;
    assert_eq!(get(&p, "/_truth").await.body, get(&again, "/_truth").await.body, "reproducible");
}

/// The first and last `updatedAt` of each requested page.
async fn page_edges(
    p: &inlet_playground::RunningPlayground,
    paths: impl Iterator<Item = String>,
) -> Vec<(String, String)> {
    let mut edges = Vec::new();
    for path in paths {
        let data = get(p, &path).await.data();
        let stamps = field(&data, "updatedAt");
        edges.push((stamps[0].to_owned(), stamps[stamps.len() - 1].to_owned()));
    }
    edges
}

#[tokio::test]
async fn gaps_leave_holes_wider_than_a_step_and_stall_the_seed() {
    let gapped = PlaygroundConfig { users: 400, gaps: Some(GapsConfig { rate: 0.05, max_len: 5000 }), ..config() };
    let p = playground(gapped.clone()).await;
    let step_ids: Vec<u64> = p.truth().rows.iter().map(|r| r.step_id).collect();
    assert_eq!(step_ids.len(), 400);
    let widest = step_ids.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(widest > 2000, "a hole spans several windows of 1000: {widest}");
    let last = *step_ids.last().unwrap();
    let served = ids(&get(&p, &format!("/incremental/step?start_id=1&end_id={last}")).await.data());
    assert_eq!(
        served,
        step_ids.iter().map(u64::to_string).collect::<Vec<_>>(),
        "the step endpoint serves exactly the ids with users"
    );

    // The seed's loop: windows of 1000 until the first empty one.
    let (mut current, mut read) = (1u64, 0);
    loop {
        let n = get(&p, &format!("/incremental/step?start_id={current}&end_id={}", current + 999)).await.data().len();
        if n == 0 {
            break;
        }
        read += n;
        current += 1000;
    }
    assert!(read < 400, "the seed stops at the first empty window and misses users after it ({read} read)");
    let again = playground(gapped).await;
    assert_eq!(again.truth(), p.truth(), "reproducible");
}

fn changing() -> PlaygroundConfig {
    PlaygroundConfig { manual_clock: true, changes: Some(ChangesConfig::at_rate(2.0)), ..config() }
}

#[tokio::test]
async fn live_changes_update_insert_and_delete_at_the_configured_rate() {
    let p = playground(changing()).await;
    let before = p.truth();
    p.advance_clock(Duration::from_secs(50));
    let after = p.truth();
    let updated = after
        .rows
        .iter()
        .filter(|r| r.step_id <= 200 && !r.deleted && before.rows[r.step_id as usize - 1].record != r.record)
        .count();
    let inserted = after.rows.len() - 200;
    let deleted = after.deleted().count();
    assert!(
        (55..=85).contains(&(updated)) && (10..=35).contains(&inserted) && (3..=20).contains(&deleted),
        "about 100 changes, 70/20/10: {updated}/{inserted}/{deleted}"
    );

    let served = get(&p, "/incremental/timestamp").await.data();
    assert_eq!(served.len(), after.live().count(), "deleted users vanish from the API");
    let now = inlet_playground::format_timestamp(NOW);
    let moved = served.iter().filter(|r| r["updatedAt"].as_str().unwrap() >= now.as_str()).count();
    let live_inserts = after.rows.iter().filter(|r| r.step_id > 200 && !r.deleted).count();
    assert_eq!(moved, updated + live_inserts, "every change moved updatedAt to the present, at the end of the order");
    let newest = get(&p, "/incremental/step?start_id=201&end_id=1000").await.data();
    assert_eq!(newest.len(), live_inserts, "inserts continue the step ids");

    let twin = playground(changing()).await;
    twin.advance_clock(Duration::from_secs(20));
    let _ = twin.truth();
    twin.advance_clock(Duration::from_secs(30));
    assert_eq!(twin.truth(), after, "the same seed and clock give the same changes, whoever looks in between");
}

#[tokio::test]
async fn tombstones_keep_deleted_users_visible_with_deleted_at() {
    let p = playground(PlaygroundConfig { manual_clock: true, delete_mode: DeleteMode::Tombstone, ..config() }).await;
    let report = p.change(ChangeBatch { deletes: 2, ..Default::default() });
    let newest =
        get(&p, &format!("/incremental/timestamp?since={}", inlet_playground::format_timestamp(NOW))).await.data();
    assert_eq!(
        ids(&newest).into_iter().collect::<BTreeSet<_>>(),
        report.deleted.iter().map(|u| u.uuid.clone()).collect()
    );
    assert!(newest.iter().all(|r| r["deletedAt"] == r["updatedAt"]));
    assert_eq!(get(&p, "/pagination/offset").await.json()["total"], 200, "tombstones are still rows");
}

#[tokio::test]
async fn replica_lag_shows_changes_late_and_out_of_order() {
    let lagging = PlaygroundConfig { manual_clock: true, replica_lag_seconds: 30, ..config() };
    let p = playground(lagging).await;
    let mut updated = Vec::new();
    for _ in 0..12 {
        p.advance_clock(Duration::from_secs(1));
        updated.extend(p.change(ChangeBatch { updates: 1, ..Default::default() }).updated.into_iter().map(|u| u.uuid));
    }
    assert_eq!(
        p.truth()
            .rows
            .iter()
            .filter(|r| updated.contains(&r.record.id) && r.record.updated_at > inlet_playground::format_timestamp(NOW))
            .count(),
        12,
        "the primary has every change"
    );
    let since = format!("/incremental/timestamp?since={}", inlet_playground::format_timestamp(NOW));
    let visible = || async { ids(&get(&p, &since).await.data()) };
    let early = visible().await;
    assert!(early.len() < 12, "the replica has not seen every change yet");
    p.advance_clock(Duration::from_secs(15));
    let middle = visible().await;
    let order: Vec<usize> = middle.iter().map(|id| updated.iter().position(|u| u == id).unwrap()).collect();
    let prefix = (0..order.len()).collect::<Vec<_>>();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_ne!(sorted, prefix, "rows became visible out of updatedAt order: {order:?}");
    p.advance_clock(Duration::from_secs(30));
    assert_eq!(visible().await.len(), 12, "after the lag every change is visible");
    let again = playground(PlaygroundConfig { manual_clock: true, replica_lag_seconds: 30, ..config() }).await;
    for _ in 0..12 {
        again.advance_clock(Duration::from_secs(1));
        again.change(ChangeBatch { updates: 1, ..Default::default() });
    }
    again.advance_clock(Duration::from_secs(15));
    assert_eq!(ids(&get(&again, &since).await.data()), middle, "reproducible");
}

#[tokio::test]
async fn replica_lag_hides_the_newest_initial_users_at_start() {
    let p = playground(PlaygroundConfig { manual_clock: true, replica_lag_seconds: 3 * 3600, ..config() }).await;
    let visible = get(&p, "/pagination/offset").await.json()["total"].as_i64().unwrap();
    assert!((197..=199).contains(&visible), "users updated in the last three hours are not replicated yet: {visible}");
    p.advance_clock(Duration::from_secs(3 * 3600));
    assert_eq!(get(&p, "/pagination/offset").await.json()["total"], 200);
}

fn faulty(faults: FaultsConfig) -> PlaygroundConfig {
    PlaygroundConfig { faults, ..config() }
}

#[tokio::test]
async fn server_errors_and_429_bursts() {
    let p = playground(faulty(FaultsConfig { server_errors: 1.0, ..Default::default() })).await;
    get(&p, "/pagination/keyset").await.assert_error(500, "Internal server error (injected by the playground)");
    assert_eq!(get(&p, "/_truth").await.status, 200, "tooling is never faulted");

    let bursts = FaultsConfig { throttle_bursts: 0.2, burst_length: 4, burst_retry_after: 2, ..Default::default() };
    let p = playground(faulty(bursts.clone())).await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let a = get(&p, "/pagination/offset").await;
        if a.status == 429 {
            assert_eq!(a.header("retry-after"), Some("2"));
        }
        statuses.push(a.status);
    }
    let first = statuses.iter().position(|s| *s == 429).expect("a burst in 40 requests");
    assert_eq!(statuses[first..first + 4], [429; 4], "a burst is four 429s in a row");
    assert!(statuses.contains(&200));
    let twin = playground(faulty(bursts)).await;
    let mut twin_statuses = Vec::new();
    for _ in 0..40 {
        twin_statuses.push(get(&twin, "/pagination/offset").await.status);
    }
    assert_eq!(statuses, twin_statuses, "the same seed faults the same requests");
    assert_eq!(p.faults_injected().throttled, statuses.iter().filter(|s| **s == 429).count() as u64);
}

#[tokio::test]
async fn bodies_cut_mid_way_and_malformed_json() {
    let p = playground(faulty(FaultsConfig { cut_bodies: 1.0, ..Default::default() })).await;
    let response =
        client().get(format!("{}/pagination/offset?limit=50", p.url())).send().await.expect("headers arrive");
    assert_eq!(response.status(), 200);
    assert!(response.text().await.is_err(), "the connection dies before the body is complete");

    let p = playground(faulty(FaultsConfig { malformed_bodies: 1.0, ..Default::default() })).await;
    let a = get(&p, "/pagination/keyset").await;
    assert_eq!(a.status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&a.body).is_err(), "a complete 200 that is not JSON");
    assert!(a.body.starts_with("{\"data\": ["));
}

#[tokio::test]
async fn bad_records_have_a_missing_or_mistyped_field() {
    let p = playground(faulty(FaultsConfig { bad_records: 1.0, ..Default::default() })).await;
    let mut kinds = BTreeSet::new();
    for _ in 0..30 {
        let data = get(&p, "/pagination/offset?limit=20").await.data();
        let bad: Vec<_> = data
            .iter()
            .filter(|r| r.get("id").is_none() || !r["updatedAt"].is_string() || r["createdAt"] == "yesterday")
            .collect();
        assert_eq!(bad.len(), 1, "exactly one bad record per response");
        kinds.insert(if bad[0].get("id").is_none() {
            "missing id"
        } else if bad[0]["updatedAt"].is_number() {
            "numeric updatedAt"
        } else {
            "bad createdAt"
        });
    }
    assert_eq!(kinds.len(), 3, "all three corruptions occur: {kinds:?}");
}

#[tokio::test]
async fn latency_is_added_to_user_endpoints() {
    let p = playground(faulty(FaultsConfig { latency: Duration::from_millis(200), ..Default::default() })).await;
    let started = Instant::now();
    assert_eq!(get(&p, "/incremental/step?start_id=1&end_id=2").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(100), "between 100 and 300 ms added");
    let started = Instant::now();
    get(&p, "/_truth").await;
    assert!(started.elapsed() < Duration::from_millis(100));
}
