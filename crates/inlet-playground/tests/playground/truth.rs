//! The ground truth agrees with what the API serves, and with itself over HTTP.

use inlet_playground::{ChangeBatch, PlaygroundConfig, Truth};

use crate::support::*;

#[tokio::test]
async fn truth_over_http_equals_truth_in_process_and_lists_deletions() {
    let p = playground(PlaygroundConfig { manual_clock: true, ..config() }).await;
    let report = p.change(ChangeBatch { updates: 3, inserts: 2, deletes: 4 });
    let answer = get(&p, "/_truth").await;
    assert_eq!(answer.header("content-type"), Some("application/x-ndjson"));
    let over_http = Truth::from_ndjson(&answer.body).expect("NDJSON of truth rows");
    assert_eq!(over_http, p.truth());
    assert_eq!(over_http.rows.len(), 202);
    let deleted: Vec<_> = over_http.deleted().map(|r| r.record.id.clone()).collect();
    let mut expected: Vec<_> = report.deleted.iter().map(|u| u.uuid.clone()).collect();
    expected.sort_by_key(|id| over_http.rows.iter().position(|r| &r.record.id == id));
    assert_eq!(deleted, expected);
}

#[tokio::test]
async fn every_live_truth_row_is_served_exactly_as_recorded() {
    let p = playground(PlaygroundConfig { manual_clock: true, ..config() }).await;
    p.change(ChangeBatch { updates: 10, inserts: 5, deletes: 5 });
    let truth = p.truth();
    let served = get(&p, "/incremental/timestamp").await.data();
    let mut served_records: Vec<inlet_playground::Record> =
        served.into_iter().map(|v| serde_json::from_value(v).unwrap()).collect();
    let mut live: Vec<_> = truth.live().map(|r| r.record.clone()).collect();
    served_records.sort_by(|a, b| a.id.cmp(&b.id));
    live.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(served_records, live);
    let by_step = get(&p, "/incremental/step?start_id=1&end_id=300").await.data();
    let step_ids: Vec<u64> = by_step.iter().map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect();
    assert_eq!(step_ids, truth.live().map(|r| r.step_id).collect::<Vec<_>>());
}

#[test]
fn initial_truth_can_be_written_without_a_server() {
    let mut out = Vec::new();
    inlet_playground::write_initial_truth(&config(), |chunk| {
        out.extend_from_slice(chunk);
        Ok(())
    })
    .unwrap();
    let truth = Truth::from_ndjson(std::str::from_utf8(&out).unwrap()).unwrap();
    assert_eq!(truth.rows.len(), 200);
    assert!(truth.rows.iter().enumerate().all(|(i, r)| r.step_id == i as u64 + 1 && !r.deleted));
}
