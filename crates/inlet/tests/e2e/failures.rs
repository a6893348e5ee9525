//! Errors end with their documented exit code, a message naming the cause, and the
//! warehouse and saved state exactly as they were.

use std::time::Duration;

use inlet_playground::{FaultsConfig, PlaygroundConfig};

use crate::support::*;

/// A world that already holds a first sync, and its snapshot.
async fn synced(warehouse: Warehouse, config: PlaygroundConfig, strategy: &str) -> World {
    let world = World::new(config, warehouse).await;
    let path = world.configuration(strategy, extra("{}"));
    world.sync(&path).await.summary();
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retryable_http_error_names_the_url_and_body_and_changes_nothing() {
    for warehouse in [Warehouse::DuckDb, Warehouse::Postgres] {
        let world = synced(warehouse, recent(100), "offset").await;
        let before = world.snapshot();
        let config = world.configuration("offset", extra(r#"{"page_size": "500"}"#));
        let run = world.sync(&config).await;
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains(&format!("GET {}/pagination/offset?", world.playground.url())), "{}", run.stderr);
        assert!(
            run.stderr.contains("answered 400 Bad Request")
                && run.stderr.contains("Invalid value for 'limit'. It should be between 1 and 50."),
            "{}",
            run.stderr
        );
        assert_eq!(world.snapshot(), before, "{warehouse:?}: warehouse and state as before");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_response_fails_after_its_retries_and_changes_nothing() {
    let world = synced(Warehouse::DuckDb, recent(100), "keyset").await;
    let before = world.snapshot();
    let broken = World::new(
        PlaygroundConfig { faults: FaultsConfig { malformed_bodies: 1.0, ..Default::default() }, ..recent(100) },
        Warehouse::DuckDb,
    )
    .await;
    let mut config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(world.configuration("keyset", extra(r#"{"max_attempts": "3"}"#))).unwrap(),
    )
    .unwrap();
    config["base_url"] = format!("{}/pagination/keyset", broken.playground.url()).into();
    let path = world.path("broken.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let run = world.sync(&path).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("failed after 3 attempts: the response is unusable: not the expected JSON"),
        "{}",
        run.stderr
    );
    assert_eq!(world.snapshot(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_saved_state_exits_2_naming_the_fix_and_changes_nothing() {
    for warehouse in [Warehouse::DuckDb, Warehouse::Postgres] {
        let world = synced(warehouse, recent(100), "keyset").await;
        let (rows, _) = world.snapshot();
        let config = world.configuration("keyset", extra("{}"));
        for (corrupted, named) in [
            (r#"{"last_updated_at": "yesterday"}"#, "last_updated_at"),
            (r#"{"last_updated_at": 17}"#, "last_updated_at"),
            ("[1, 2]", "inlet state reset"),
        ] {
            world.overwrite_state(corrupted).await;
            let run = world.sync(&config).await;
            assert_eq!(run.code, 2, "{warehouse:?} {corrupted}: {}", run.stderr);
            assert!(run.stderr.contains(named), "{warehouse:?} {corrupted}: {}", run.stderr);
            assert_eq!(world.snapshot_rows(), rows, "{warehouse:?} {corrupted}: rows as before");
            assert_eq!(
                world.raw_state().await,
                serde_json::from_str::<serde_json::Value>(corrupted).unwrap(),
                "state as before"
            );
        }
        let reset = world.run(&["state", "reset"], &[]).await;
        assert_eq!(reset.code, 0, "{}", reset.stderr);
        world.sync(&config).await.summary();
        world.assert_matches_truth(false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_exits_2_naming_the_key_before_touching_anything() {
    let world = World::new(recent(10), Warehouse::DuckDb).await;
    for (json, key) in [
        (r#"{"strategy": "keyset", "page_size": "fifty"}"#, "`page_size`"),
        (r#"{"strategy": "offset", "pagesize": 5}"#, "unknown field `pagesize`"),
        (r#"{"strategy": "step_size", "step_size": 0}"#, "`step_size`"),
        (r#"{"strategy": "keyset", "auth": "basic", "username": "u"}"#, "`password`"),
        (r#"{"base_url": "http://x"}"#, "missing field `strategy`"),
        (r#"[]"#, "must be a JSON object"),
        (r#"{"strategy": "offset", "duckdb_compress_text": "yes"}"#, "`duckdb_compress_text`"),
    ] {
        let path = world.path("bad.json");
        std::fs::write(&path, json).unwrap();
        let run = world.sync(&path).await;
        assert_eq!(run.code, 2, "{json}: {}", run.stderr);
        assert!(run.stderr.contains(key), "{json}: {}", run.stderr);
    }
    assert!(!world.duckdb_file().exists(), "no warehouse was created");
    let missing = world.run(&["sync", "--config", "nowhere.json"], &[]).await;
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("cannot read the configuration file nowhere.json"), "{}", missing.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_at_the_same_time_is_refused_with_exit_4() {
    for warehouse in [Warehouse::DuckDb, Warehouse::Postgres] {
        let slow = PlaygroundConfig {
            faults: FaultsConfig { latency: Duration::from_millis(400), ..Default::default() },
            ..recent(300)
        };
        let world = World::new(slow, warehouse).await;
        let config = world.configuration("offset", extra(r#"{"page_size": "10", "concurrency": "1"}"#));
        let first = world.command(&["sync", "--config", &config.display().to_string()], &[]).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let second = world.sync(&config).await;
        assert_eq!(second.code, 4, "{warehouse:?}: {}", second.stderr);
        assert!(
            second.stderr.contains("is in use by another") && second.stderr.contains("refused"),
            "{}",
            second.stderr
        );
        drop(first);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_commits_what_was_received_and_exits_130() {
    let slow = PlaygroundConfig {
        faults: FaultsConfig { latency: Duration::from_millis(150), ..Default::default() },
        ..recent(1000)
    };
    let world = World::new(slow, Warehouse::DuckDb).await;
    let config = world.configuration("offset", extra(r#"{"page_size": "20", "concurrency": "1"}"#));
    let child = world.command(&["sync", "--config", &config.display().to_string()], &[]).spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let pid = child.id().expect("running").to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let output = child.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("stopped by Ctrl-C"), "the summary says so: {stdout}");
    let kept = world.rows().len();
    assert!(kept > 0 && kept < 1000, "part of the data was committed: {kept}");
    let state = world.state().expect("a state proving what was committed");
    let cursor = state["last_updated_at"].as_str().unwrap().to_owned();
    let truth = world.playground.truth();
    let proven = truth.live().filter(|r| r.record.updated_at < cursor).count();
    assert!(proven <= kept, "the state claims no row that is not committed");
    world.sync(&config).await.summary();
    world.assert_matches_truth(false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_saved_by_the_python_seed_is_resumed() {
    let world = World::new(recent(200), Warehouse::DuckDb).await;
    let truth = world.playground.truth();
    let mut stamps: Vec<&str> = truth.live().map(|r| r.record.updated_at.as_str()).collect();
    stamps.sort_unstable();
    let cursor = stamps[120];
    let state = world.path("state.json");
    std::fs::write(&state, format!(r#"{{"last_updated_at": "{cursor}"}}"#)).unwrap();
    let config = world.configuration("keyset", extra("{}"));
    let set = world
        .run(&["state", "set", &state.display().to_string(), "--config", &config.display().to_string()], &[])
        .await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    let summary = world.sync(&config).await.summary();
    let upserts = summary["upserts"].as_u64().unwrap();
    assert!(
        (80..=82).contains(&upserts),
        "from the seed's cursor on, inclusive (a page boundary is read twice): {upserts}"
    );
    let first_request =
        world.playground.request_log().into_iter().find(|r| r.starts_with("/pagination/keyset")).unwrap();
    assert_eq!(first_request, format!("/pagination/keyset?updated_since={}", cursor.replace(':', "%3A")));
    let foreign = world.path("foreign.json");
    std::fs::write(&foreign, r#"{"current_id": 3}"#).unwrap();
    let refused = world
        .run(&["state", "set", &foreign.display().to_string(), "--config", &config.display().to_string()], &[])
        .await;
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("unknown field `current_id`"), "{}", refused.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_state_or_warehouse() {
    let world = World::new(
        PlaygroundConfig { require_auth: Some(inlet_playground::AuthScheme::Basic), ..recent(30) },
        Warehouse::DuckDb,
    )
    .await;
    let c = world.playground.credentials().clone();
    let config = world.configuration(
        "keyset",
        serde_json::json!({"auth": "basic", "username": c.basic_username, "password": c.basic_password}),
    );
    let run = world.run(&["sync", "--config", &config.display().to_string()], &[("INLET_LOG", "debug")]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let everything = format!("{}{}{:?}{:?}", run.stdout, run.stderr, world.state(), world.rows());
    assert!(!everything.contains(&c.basic_password), "the password leaked");
    world.assert_matches_truth(false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_hashes_with_nowhere_to_go_exit_3_naming_the_directory_and_lose_nothing() {
    // More users than a set of key hashes keeps in memory (65,536): the rest go to TMPDIR.
    let world = World::new(PlaygroundConfig { page_size_limit: 1_000, ..recent(80_000) }, Warehouse::Postgres).await;
    let config = world.configuration("keyset", extra(r#"{"page_size": "1000"}"#));
    let nowhere = world.path("no-such-directory");
    let args = ["sync", "--config", &config.display().to_string(), "--log-format", "json"];
    let run = world.run(&args, &[("TMPDIR", &nowhere.display().to_string())]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("temporary files in {}", nowhere.display())), "{}", run.stderr);
    let committed = world.rows().len();
    assert!(committed > 0 && committed < 80_000, "the first commit stays, the failed one is gone: {committed}");
    assert!(world.state().is_some(), "with the state it proved");
    world.sync(&config).await.summary();
    world.assert_matches_truth(false);
}
