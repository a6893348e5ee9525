//! For each strategy, on DuckDB and on PostgreSQL: the first sync equals the truth; a sync
//! with nothing new reads only what the strategy must and writes no duplicate; after updates,
//! inserts and deletes the next sync picks up exactly those. And how DuckDB stores text.

use std::time::Duration;

use inlet_playground::{ChangeBatch, DeleteMode, PlaygroundConfig};

use crate::support::*;

async fn cycle(warehouse: Warehouse, strategy: &str, keys: &str) {
    let world = World::new(PlaygroundConfig { delete_mode: DeleteMode::Tombstone, ..recent(400) }, warehouse).await;
    let config = world.configuration(strategy, extra(keys));

    let first = world.sync(&config).await.summary();
    world.assert_matches_truth(by_step_id(strategy));
    assert_eq!(first["outcome"], "completed");
    if warehouse == Warehouse::Postgres {
        assert_eq!(world.postgres_primary_key().await, "id", "{strategy}: the table has its key after the first sync");
    }

    let quiet = world.sync(&config).await.summary();
    world.assert_matches_truth(by_step_id(strategy));
    let expected_requests = if strategy == "step_size" { 20 } else { 1 };
    assert_eq!(quiet["requests"], expected_requests, "{strategy}: requests of a sync with nothing new");
    if strategy == "timestamp" {
        assert_eq!(quiet["upserts"], 0, "nothing new, nothing written");
    }

    world.playground.advance_clock(Duration::from_secs(5));
    let changed = world.playground.change(ChangeBatch { updates: 7, inserts: 4, deletes: 3 });
    world.playground.advance_clock(Duration::from_secs(1));
    let after = world.sync(&config).await.summary();
    world.assert_matches_truth(by_step_id(strategy));
    assert_eq!(after["deletes"], 3, "{strategy}: the three deletes");
    if !matches!(strategy, "step_size" | "replay") {
        // A delete may hit a user updated in the same batch: count each user once.
        let distinct: std::collections::BTreeSet<&str> =
            changed.updated.iter().chain(&changed.inserted).chain(&changed.deleted).map(|u| u.uuid.as_str()).collect();
        let upserts = after["upserts"].as_u64().unwrap() as usize;
        assert!(
            (distinct.len()..=distinct.len() + 2).contains(&upserts),
            "{strategy}: the {} changed users (and at most two boundary rows) are upserted: {upserts}",
            distinct.len()
        );
    }
    assert_eq!(changed.updated.len() + changed.inserted.len() + changed.deleted.len(), 14);
}

macro_rules! strategy_tests {
    ($($name:ident: $strategy:literal, $keys:literal;)*) => {
        mod duckdb {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { cycle(Warehouse::DuckDb, $strategy, $keys).await; })*
        }
        mod postgres {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { cycle(Warehouse::Postgres, $strategy, $keys).await; })*
        }
    };
}

strategy_tests! {
    keyset: "keyset", "{}";
    offset: "offset", r#"{"page_size": "50"}"#;
    timestamp: "timestamp", "{}";
    step_size: "step_size", r#"{"step_size": "100", "max_id": "2000", "full_rescan": "true"}"#;
    replay: "replay", r#"{"buffer_hours": "1"}"#;
    priority_first: "priority_first", r#"{"historical_limit": "2020-01-01T00:00:00Z"}"#;
}

/// How the text columns of a synced DuckDB warehouse are stored, by compression method.
fn text_storage(world: &World) -> Vec<String> {
    let connection = ::duckdb::Connection::open(world.duckdb_file()).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT DISTINCT compression FROM pragma_storage_info('main.user') \
             WHERE column_name IN ('name', 'email', 'address') AND segment_type = 'VARCHAR' ORDER BY 1",
        )
        .unwrap();
    statement.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_stores_text_uncompressed_unless_configured() {
    for (setting, expected) in [(None, "Uncompressed"), (Some("true"), "DICT_FSST")] {
        let world = World::new(recent(3_000), Warehouse::DuckDb).await;
        let keys = match setting {
            Some(on) => serde_json::json!({ "page_size": "50", "duckdb_compress_text": on }),
            None => serde_json::json!({ "page_size": "50" }),
        };
        let config = world.configuration("offset", keys);
        assert_eq!(world.sync(&config).await.summary()["outcome"], "completed");
        world.assert_matches_truth(false);
        assert_eq!(text_storage(&world), [expected], "duckdb_compress_text: {setting:?}");
    }
}
