//! Running a strategy and comparing the warehouse with the playground's truth.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use inlet_connectors::Builtin;
use inlet_engine::{MemoryWarehouse, Observer, SyncError, SyncOptions, SyncReport, sync};
use inlet_playground::{PlaygroundConfig, RunningPlayground, Truth, start};
use inlet_sdk::{ColumnType, Configuration, State, Value};

pub async fn playground(config: PlaygroundConfig) -> RunningPlayground {
    start(config, "127.0.0.1:0".parse().unwrap()).await.expect("the playground starts")
}

/// A reproducible playground whose data is recent (priority-first starts from the wall clock).
pub fn recent(users: u32) -> PlaygroundConfig {
    PlaygroundConfig {
        users,
        seed: 11,
        now: Some(jiff::Timestamp::now().as_second()),
        manual_clock: true,
        ..Default::default()
    }
}

/// The endpoint each strategy reads.
pub fn endpoint(strategy: &str) -> &'static str {
    match strategy {
        "keyset" | "priority_first" => "/pagination/keyset",
        "offset" => "/pagination/offset",
        "timestamp" | "replay" => "/incremental/timestamp",
        "step_size" => "/incremental/step",
        other => panic!("unknown strategy {other}"),
    }
}

/// A configuration for `strategy` against `p`, with `extra` keys.
pub fn configuration(p: &RunningPlayground, strategy: &str, extra: serde_json::Value) -> Configuration {
    let mut json = serde_json::json!({
        "strategy": strategy,
        "base_url": format!("{}{}", p.url(), endpoint(strategy)),
        "page_size": "50",
        "max_id": "100000",
        "backoff_ms": "10",
    });
    for (k, v) in extra.as_object().expect("extra keys").clone() {
        json[k] = v;
    }
    Configuration::from_map(json.as_object().unwrap().clone())
}

/// Warnings the connector raised.
#[derive(Default)]
pub struct Warnings(pub Mutex<Vec<String>>);

impl Observer for Warnings {
    fn warning(&self, message: &str) {
        self.0.lock().unwrap().push(message.to_owned());
    }
}

pub async fn run(configuration: &Configuration, warehouse: &MemoryWarehouse) -> Result<SyncReport, SyncError> {
    run_watched(configuration, warehouse, Arc::new(Warnings::default())).await
}

pub async fn run_watched(
    configuration: &Configuration,
    warehouse: &MemoryWarehouse,
    observer: Arc<Warnings>,
) -> Result<SyncReport, SyncError> {
    sync(
        &Builtin::new(),
        configuration,
        warehouse.destination(),
        &SyncOptions::default(),
        observer,
        std::future::pending(),
    )
    .await
}

/// The warehouse's `user` rows by id: record as JSON-ish values, and the deleted flag.
pub fn stored(warehouse: &MemoryWarehouse) -> BTreeMap<String, (BTreeMap<String, Value>, bool)> {
    warehouse
        .rows("user")
        .into_iter()
        .map(|row| {
            let id = row.record.get("id").and_then(Value::as_str).expect("string id").to_owned();
            let values =
                row.record.iter().filter(|(_, v)| !v.is_null()).map(|(c, v)| (c.to_string(), v.clone())).collect();
            (id, (values, row.deleted))
        })
        .collect()
}

/// The truth as the warehouse should hold it: ids by `step` or UUID, values typed.
pub fn expected(truth: &Truth, by_step_id: bool) -> BTreeMap<String, (BTreeMap<String, Value>, bool)> {
    truth
        .rows
        .iter()
        .map(|row| {
            let r = &row.record;
            let id = if by_step_id { row.step_id.to_string() } else { r.id.clone() };
            let stamp = |s: &str| ColumnType::UtcDateTime.convert(s.into()).unwrap();
            let mut values = BTreeMap::from([
                ("id".to_owned(), Value::String(id.clone())),
                ("name".to_owned(), Value::String(r.name.clone())),
                ("email".to_owned(), Value::String(r.email.clone())),
                ("address".to_owned(), Value::String(r.address.clone())),
                ("company".to_owned(), Value::String(r.company.clone())),
                ("job".to_owned(), Value::String(r.job.clone())),
                ("createdAt".to_owned(), stamp(&r.created_at)),
                ("updatedAt".to_owned(), stamp(&r.updated_at)),
            ]);
            if let Some(deleted_at) = &r.deleted_at {
                values.insert("deletedAt".to_owned(), stamp(deleted_at));
            }
            (id, (values, row.deleted))
        })
        .collect()
}

/// The warehouse equals the truth: every live user stored as served and not deleted; every
/// deleted user either never stored or stored as deleted; nothing else.
pub fn assert_matches_truth(warehouse: &MemoryWarehouse, truth: &Truth, by_step_id: bool) {
    let stored = stored(warehouse);
    let expected = expected(truth, by_step_id);
    for (id, (values, deleted)) in &expected {
        match (stored.get(id), deleted) {
            (Some((got, got_deleted)), false) => {
                assert!(!got_deleted, "user {id} is live at the source but deleted in the warehouse");
                assert_eq!(got, values, "user {id} differs");
            }
            (None, false) => panic!("user {id} is missing from the warehouse"),
            (Some((_, got_deleted)), true) => {
                assert!(*got_deleted, "user {id} was deleted at the source but is live in the warehouse")
            }
            (None, true) => {}
        }
    }
    let unknown: Vec<&String> = stored.keys().filter(|id| !expected.contains_key(*id)).collect();
    assert!(unknown.is_empty(), "the warehouse has users the source never had: {unknown:?}");
}

/// Requests to `path` since the start.
pub fn requests_to(p: &RunningPlayground, path: &str) -> u64 {
    p.requests().get(path).copied().unwrap_or(0)
}

pub fn saved_state(warehouse: &MemoryWarehouse) -> serde_json::Value {
    warehouse.saved_state().map(|s| s.state.to_json()).unwrap_or(serde_json::Value::Null)
}

pub fn state_of(json: serde_json::Value) -> State {
    State::from_json(json).unwrap()
}
