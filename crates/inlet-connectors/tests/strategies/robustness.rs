//! Authentication, faults, bad input and the seeds' saved states.

use std::time::Duration;

use inlet_engine::{MemoryWarehouse, SyncError, SyncOptions, sync};
use inlet_playground::{AuthScheme, FaultsConfig, PlaygroundConfig};
use inlet_sdk::{Configuration, ErrorKind};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_auth_scheme_reaches_protected_endpoints() {
    for scheme in [AuthScheme::ApiKey, AuthScheme::Bearer, AuthScheme::Basic, AuthScheme::SessionToken] {
        let p = playground(PlaygroundConfig { require_auth: Some(scheme), ..recent(120) }).await;
        let c = p.credentials().clone();
        let credentials = match scheme {
            AuthScheme::ApiKey => serde_json::json!({"auth": "api_key", "api_key": c.api_key}),
            AuthScheme::Bearer => serde_json::json!({"auth": "bearer", "bearer_token": c.bearer_token}),
            AuthScheme::Basic => {
                serde_json::json!({"auth": "basic", "username": c.basic_username, "password": c.basic_password})
            }
            AuthScheme::SessionToken => {
                serde_json::json!({"auth": "session_token", "username": c.session_username, "password": c.session_password})
            }
        };
        let warehouse = MemoryWarehouse::new();
        run(&configuration(&p, "keyset", credentials.clone()), &warehouse)
            .await
            .unwrap_or_else(|e| panic!("{scheme:?}: {e}"));
        assert_matches_truth(&warehouse, &p.truth(), false);

        let mut wrong = credentials;
        for key in ["api_key", "bearer_token", "password"] {
            if wrong.get(key).is_some() {
                wrong[key] = "wrong".into();
            }
        }
        let error =
            run(&configuration(&p, "keyset", wrong.clone()), &MemoryWarehouse::new()).await.unwrap_err().to_string();
        assert!(error.contains("401") || error.contains("check `username` and `password`"), "{scheme:?}: {error}");
        assert!(
            !error.contains(wrong.get("api_key").and_then(|v| v.as_str()).unwrap_or("\u{0}"))
                || scheme != AuthScheme::ApiKey
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_retried_until_the_data_is_right() {
    let mut faults_seen = 0;
    for strategy in ["keyset", "offset", "timestamp", "step_size", "replay"] {
        let faulty = PlaygroundConfig { faults: FaultsConfig::evenly(0.3), ..recent(400) };
        let p = playground(faulty).await;
        let extra = serde_json::json!({"max_attempts": "12", "step_size": "100", "max_id": "500"});
        let warehouse = MemoryWarehouse::new();
        let connector = inlet_connectors::Builtin::new();
        let configuration = configuration(&p, strategy, extra);
        sync(
            &connector,
            &configuration,
            warehouse.destination(),
            &SyncOptions::default(),
            std::sync::Arc::new(Warnings::default()),
            std::future::pending(),
        )
        .await
        .unwrap_or_else(|e| panic!("{strategy}: {e}"));
        assert_matches_truth(&warehouse, &p.truth(), strategy == "step_size");
        let i = p.faults_injected();
        let injected = i.server_errors + i.throttled + i.cut_bodies + i.malformed_bodies + i.bad_records;
        assert_eq!(connector.stats().retries(), injected, "{strategy}: each fault cost exactly one retry");
        faults_seen += injected;
    }
    assert!(faults_seen >= 5, "faults were injected: {faults_seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_slower_than_the_timeout_are_retried() {
    // 1.2 s of latency, ±50% seeded jitter: some answers come within the 1 s timeout, some not.
    let slow = FaultsConfig { latency: Duration::from_millis(1200), ..Default::default() };
    let p = playground(PlaygroundConfig { faults: slow, ..recent(30) }).await;
    let warehouse = MemoryWarehouse::new();
    let connector = inlet_connectors::Builtin::new();
    let extra =
        serde_json::json!({"timeout_seconds": "1", "max_attempts": "10", "page_size": "10", "concurrency": "1"});
    sync(
        &connector,
        &configuration(&p, "offset", extra),
        warehouse.destination(),
        &SyncOptions::default(),
        std::sync::Arc::new(Warnings::default()),
        std::future::pending(),
    )
    .await
    .expect("the sync outlasts the slow answers");
    assert_matches_truth(&warehouse, &p.truth(), false);
    let retries = connector.stats().retries();
    assert!(retries >= 1, "some answers took longer than the timeout");
    assert_eq!(connector.stats().requests(), requests_to(&p, "/pagination/offset"), "each timeout cost one request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_answer_is_too_slow_the_sync_fails_after_its_attempts() {
    let slow = FaultsConfig { latency: Duration::from_secs(4), ..Default::default() };
    let p = playground(PlaygroundConfig { faults: slow, ..recent(10) }).await;
    let warehouse = MemoryWarehouse::new();
    let extra = serde_json::json!({"timeout_seconds": "1", "max_attempts": "2"});
    let error = run(&configuration(&p, "timestamp", extra), &warehouse).await.unwrap_err().to_string();
    assert!(error.contains("/incremental/timestamp?since="), "{error}");
    assert!(error.contains("failed after 2 attempts: no answer in time"), "{error}");
    assert_eq!(requests_to(&p, "/incremental/timestamp"), 2);
    assert!(warehouse.saved_state().is_none() && warehouse.commits() == 0, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_retries_run_out_the_sync_fails_naming_the_url_and_body() {
    let p = playground(PlaygroundConfig {
        faults: FaultsConfig { server_errors: 1.0, ..Default::default() },
        ..recent(10)
    })
    .await;
    let warehouse = MemoryWarehouse::new();
    let error =
        run(&configuration(&p, "offset", serde_json::json!({"max_attempts": "3"})), &warehouse).await.unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with(&format!("GET {}/pagination/offset?order_by=updatedAt", p.url())), "{text}");
    assert!(text.contains("failed after 3 attempts: 500 Internal Server Error: { \"error\": \"Internal server error (injected by the playground)\" }"), "{text}");
    assert_eq!(requests_to(&p, "/pagination/offset"), 3);
    assert!(warehouse.saved_state().is_none() && warehouse.commits() == 0, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retryable_status_fails_at_once() {
    let p = playground(recent(10)).await;
    let configuration = configuration(&p, "offset", serde_json::json!({"page_size": "500"}));
    let error = run(&configuration, &MemoryWarehouse::new()).await.unwrap_err().to_string();
    assert!(
        error.contains(
            "answered 400 Bad Request: { \"error\": \"Invalid value for 'limit'. It should be between 1 and 50.\" }"
        ),
        "{error}"
    );
    assert_eq!(requests_to(&p, "/pagination/offset"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_names_the_key_and_touches_nothing() {
    let warehouse = MemoryWarehouse::new();
    let configuration = Configuration::from_json(r#"{"strategy": "offset", "page_size": "fifty"}"#).unwrap();
    let error = run(&configuration, &warehouse).await.unwrap_err();
    let SyncError::Connector(e) = &error else { panic!("{error}") };
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert!(e.to_string().contains("`page_size`"), "{e}");
    assert_eq!(warehouse.commits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_saved_by_the_seeds_are_used_as_they_are() {
    let p = playground(recent(200)).await;
    let truth = p.truth();
    let mut stamps: Vec<String> = truth.live().map(|r| r.record.updated_at.clone()).collect();
    stamps.sort();
    let cursor = stamps[150].clone();
    for (strategy, state) in [
        ("keyset", serde_json::json!({"last_updated_at": cursor})),
        ("offset", serde_json::json!({"last_updated_at": cursor})),
        ("timestamp", serde_json::json!({"last_timestamp": cursor})),
        // The replay seed wrote Python's isoformat; it is read, and written back in the API's.
        ("replay", serde_json::json!({"last_timestamp": cursor.replace('Z', "+00:00")})),
        ("step_size", serde_json::json!({"current_id": 151})),
    ] {
        let warehouse = MemoryWarehouse::new();
        let connector = inlet_connectors::Builtin::new();
        let configuration = configuration(&p, strategy, serde_json::json!({"buffer_hours": "0"}));
        let (mut operations, mut batches) = inlet_sdk::Operations::channel(10_000, 100_000);
        inlet_sdk::Connector::update(&connector, &configuration, &state_of(state.clone()), &mut operations)
            .await
            .unwrap();
        drop(operations);
        let mut upserts = 0;
        while let Some(batch) = batches.recv().await {
            upserts += batch.changes.len();
        }
        assert!((50..=51).contains(&upserts), "{strategy} resumed from {state}: {upserts} rows");
        let _ = warehouse;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_of_another_strategy_is_refused_with_its_key_named() {
    let p = playground(recent(10)).await;
    let warehouse = MemoryWarehouse::new();
    run(&configuration(&p, "step_size", serde_json::json!({"step_size": "100", "max_id": "100"})), &warehouse)
        .await
        .unwrap();
    let error = run(&configuration(&p, "keyset", serde_json::json!({})), &warehouse).await.unwrap_err().to_string();
    assert!(
        error.contains("unknown field `current_id`")
            && error.contains("written by `step_size`, this configuration runs `keyset`"),
        "{error}"
    );
    assert_eq!(saved_state(&warehouse), serde_json::json!({"current_id": 1}), "the saved state is untouched");
}
