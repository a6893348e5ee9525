//! The binary killed at any instant, or aborted at each failpoint, then run again: the
//! warehouse ends equal to the truth, and after each crash the saved state claims nothing
//! that was not committed.

use std::time::Duration;

use inlet_playground::{ChangesConfig, DeleteMode, FaultsConfig, PlaygroundConfig};

use crate::support::*;

/// A small seeded generator for kill instants: reproducible choices, whatever the timing.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// For cursor strategies: every user updated before the saved cursor is in the warehouse.
fn assert_state_claims_only_committed_rows(world: &World, strategy: &str) {
    let Some(state) = world.state() else { return };
    let cursor = match strategy {
        "keyset" | "offset" => state["last_updated_at"].as_str(),
        "timestamp" | "replay" => state["last_timestamp"].as_str(),
        _ => None,
    };
    let Some(cursor) = cursor else { return };
    let stored: std::collections::BTreeSet<String> = world.rows().iter().map(id_of).collect();
    let truth = world.playground.truth();
    let claimed_but_missing: Vec<&str> = truth
        .live()
        .filter(|r| r.record.updated_at.as_str() < cursor && !stored.contains(&r.record.id))
        .map(|r| r.record.id.as_str())
        .collect();
    assert!(
        claimed_but_missing.is_empty(),
        "{strategy}: the state ({cursor}) claims rows never committed: {claimed_but_missing:?}"
    );
}

/// Requests served so far on the data endpoints.
fn data_requests(world: &World) -> u64 {
    world
        .playground
        .requests()
        .iter()
        .filter(|(path, _)| path.starts_with("/pagination") || path.starts_with("/incremental"))
        .map(|(_, n)| n)
        .sum()
}

/// Kills the sync after a seeded random number of requests, eight times, while the source
/// changes; then lets it finish.
async fn killed_at_random(warehouse: Warehouse, strategy: &str, keys: &str, seed: u64) {
    let live = PlaygroundConfig {
        delete_mode: DeleteMode::Tombstone,
        changes: Some(ChangesConfig::at_rate(20.0)),
        faults: FaultsConfig { latency: Duration::from_millis(20), ..Default::default() },
        ..recent(3000)
    };
    let world = World::new(live, warehouse).await;
    let config = world.configuration(strategy, extra(keys));
    let mut rng = Lcg(seed);
    let mut kills = 0;
    // Timestamp and replay send one request per sync: kill after it, at a random moment.
    let spread = if matches!(strategy, "timestamp" | "replay") { 1 } else { 8 };
    for _ in 0..8 {
        let mut child = world.command(&["sync", "--config", &config.display().to_string()], &[]).spawn().unwrap();
        let kill_after = data_requests(&world) + 1 + rng.below(spread);
        let mut extra_wait = Duration::from_millis(rng.below(40));
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if data_requests(&world) >= kill_after {
                if extra_wait.is_zero() {
                    break None;
                }
                extra_wait = extra_wait.saturating_sub(Duration::from_millis(2));
            }
            // The source changes while the sync runs.
            world.playground.advance_clock(Duration::from_millis(50));
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        if finished.is_none() {
            child.start_kill().unwrap();
            // A sync of one request may end between the last look and the kill: it then
            // counts as finished, not killed.
            if !child.wait().await.unwrap().success() {
                kills += 1;
            }
            assert_state_claims_only_committed_rows(&world, strategy);
        }
    }
    world.sync(&config).await.summary();
    world.assert_matches_truth(by_step_id(strategy));
    if warehouse == Warehouse::Postgres {
        assert_eq!(
            world.postgres_primary_key().await,
            "id",
            "{strategy}: the next sync adds a key a killed one put off"
        );
    }
    assert!(kills >= 2, "{strategy}: the sync was killed mid-way at least twice ({kills})");
}

/// Aborts the sync at each failpoint (first and third hit), then lets it finish.
async fn aborted_at_failpoints(warehouse: Warehouse, strategy: &str, keys: &str) {
    for failpoint in inlet_engine::failpoint::NAMES {
        for hit in ["1", "3"] {
            let world =
                World::new(PlaygroundConfig { delete_mode: DeleteMode::Tombstone, ..recent(2500) }, warehouse).await;
            let config = world.configuration(strategy, extra(keys));
            let spec = format!("{failpoint}:{hit}");
            let crashed =
                world.run(&["sync", "--config", &config.display().to_string()], &[("INLET_FAILPOINT", &spec)]).await;
            if crashed.code == 0 {
                // Fewer commits than the hit number: nothing to crash, and the data is right.
                assert!(hit == "3", "{strategy} {spec}: the first hit always happens");
            } else {
                assert!(
                    crashed.stderr.contains(&format!("failpoint {failpoint} reached")),
                    "{strategy} {spec}: {}",
                    crashed.stderr
                );
                assert_state_claims_only_committed_rows(&world, strategy);
            }
            world.sync(&config).await.summary();
            world.assert_matches_truth(by_step_id(strategy));
            if warehouse == Warehouse::Postgres {
                assert_eq!(world.postgres_primary_key().await, "id", "{strategy} {spec}: the table has its key");
            }
        }
    }
}

macro_rules! crash_tests {
    ($($name:ident: $strategy:literal, $keys:literal, $seed:literal;)*) => {
        mod duckdb {
            use super::*;
            $(mod $name {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn killed_at_random_instants() { killed_at_random(Warehouse::DuckDb, $strategy, $keys, $seed).await; }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn aborted_at_each_failpoint() { aborted_at_failpoints(Warehouse::DuckDb, $strategy, $keys).await; }
            })*
        }
        mod postgres {
            use super::*;
            $(mod $name {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn killed_at_random_instants() { killed_at_random(Warehouse::Postgres, $strategy, $keys, $seed).await; }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn aborted_at_each_failpoint() { aborted_at_failpoints(Warehouse::Postgres, $strategy, $keys).await; }
            })*
        }
    };
}

crash_tests! {
    keyset: "keyset", "{}", 1;
    offset: "offset", r#"{"page_size": "50"}"#, 2;
    timestamp: "timestamp", "{}", 3;
    step_size: "step_size", r#"{"step_size": "100", "max_id": "4000", "full_rescan": "true"}"#, 4;
    replay: "replay", r#"{"buffer_hours": "1"}"#, 5;
    priority_first: "priority_first", r#"{"historical_limit": "2020-01-01T00:00:00Z"}"#, 6;
}
