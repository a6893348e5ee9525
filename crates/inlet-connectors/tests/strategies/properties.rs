//! Property tests: every strategy against the in-memory model of the API, with random page
//! sizes, tie groups (some larger than a page), id gaps (some many windows wide), updates,
//! inserts and deletes between any two requests, an interruption after any step, and requests
//! fetched ahead (as with `concurrency` above one) whose answers are stale by the time the
//! strategy reads them.
//!
//! Invariants, checked on every case:
//! - after the source goes quiet and one more sync runs, the warehouse equals the source
//!   (keyset reads a tie group larger than its page through the offset endpoint; without one,
//!   the loss is reported, as the last test shows);
//! - at every commit, the saved state claims no row that is not in the warehouse;
//! - every sync ends within the number of requests its strategy documents.

use std::collections::BTreeSet;

use inlet_connectors::Settings;
use inlet_connectors::strategy::{self, Answer, Emit, PriorityFirst, Request, Strategy as Machine};
use inlet_sdk::{Configuration, Value};
use proptest::prelude::*;

use crate::model::{Model, START, Warehouse};

/// One sync of a case: changes made before given requests, and maybe an interruption.
#[derive(Clone, Debug)]
struct SyncPlan {
    /// (before request number, kind: 0 update / 1 insert / 2 delete, which user)
    changes: Vec<(usize, u8, usize)>,
    /// The process dies after this many requests.
    interrupt_after: Option<usize>,
}

#[derive(Clone, Debug)]
struct Case {
    users: usize,
    page_limit: usize,
    ties: Vec<(usize, usize)>,
    gaps: Vec<(usize, u64)>,
    syncs: Vec<SyncPlan>,
    /// Requests fetched ahead, as the driver does with `concurrency` = `ahead + 1`.
    ahead: usize,
}

fn case(max_group: usize) -> impl proptest::strategy::Strategy<Value = Case> {
    (0usize..120, 3usize..40).prop_flat_map(move |(users, page_limit)| {
        let ties = prop::collection::vec((0..users.max(1), 2..=max_group.max(2)), 0..6);
        let gaps = prop::collection::vec((0..users.max(1), prop_oneof![1u64..10, 100u64..2500]), 0..5);
        let plan =
            (prop::collection::vec((0usize..40, 0u8..3, 0usize..1000), 0..8), prop::option::weighted(0.6, 0usize..25))
                .prop_map(|(changes, interrupt_after)| SyncPlan { changes, interrupt_after });
        let syncs = prop::collection::vec(plan, 1..5);
        (Just(users), Just(page_limit), ties, gaps, syncs, 0usize..4).prop_map(
            |(users, page_limit, ties, gaps, syncs, ahead)| Case { users, page_limit, ties, gaps, syncs, ahead },
        )
    })
}

fn settings(strategy: &str, case: &Case, model: &Model) -> Settings {
    let last_id = model.users.last().map_or(0, |u| u.step_id);
    let json = serde_json::json!({
        "strategy": strategy,
        "base_url": "http://model.invalid/pagination/keyset",
        "page_size": case.page_limit.max(2),
        "step_size": 100,
        "max_id": last_id + 1000,
        "full_rescan": true,
        "buffer_hours": 1,
        "window_hours": 1,
        "historical_limit": jiff::Timestamp::from_second(START - 2 * 86_400).unwrap().to_string(),
    });
    Settings::from_configuration(&Configuration::from_map(json.as_object().unwrap().clone())).expect("valid settings")
}

fn build(strategy: &str, settings: &Settings, warehouse: &Warehouse, model: &Model) -> Box<dyn Machine> {
    if strategy == "priority_first" {
        // Priority-first starts at "now": the model's clock, so that changes land after it.
        Box::new(PriorityFirst::new(&warehouse.state, settings, model.clock).expect("a state it wrote"))
    } else {
        strategy::build(settings, &warehouse.state).expect("a state it wrote")
    }
}

fn id_of(user: &crate::model::User, strategy: &str) -> String {
    if strategy == "step_size" { user.step_id.to_string() } else { user.id.clone() }
}

/// A user's `updatedAt` as a strategy emits it: conformed to the `user` table, an instant.
fn version(t: i64) -> Value {
    Value::Timestamp(jiff::Timestamp::from_second(t).unwrap())
}

fn cursor_of(strategy: &str, state: &serde_json::Value) -> Option<(i64, i64)> {
    let instant = |v: &serde_json::Value| v.as_str().map(|s| s.parse::<jiff::Timestamp>().unwrap().as_second());
    match strategy {
        "keyset" | "offset" => Some((i64::MIN, instant(&state["last_updated_at"])?)),
        "timestamp" | "replay" => Some((i64::MIN, instant(&state["last_timestamp"])?)),
        "priority_first" => {
            let c = &state["pfs_cursors"]["user"];
            Some((instant(&c["historical_cursor"])?, instant(&c["incremental_cursor"])?))
        }
        _ => None,
    }
}

/// The state claims no row the warehouse lacks.
fn check_claims(strategy: &str, warehouse: &Warehouse, model: &Model) -> Result<(), TestCaseError> {
    let state = warehouse.state.to_json();
    let claimed: Vec<&crate::model::User> = if strategy == "step_size" {
        let Some(current) = state["current_id"].as_u64() else { return Ok(()) };
        model.users.iter().filter(|u| u.step_id < current).collect()
    } else {
        let Some((from, before)) = cursor_of(strategy, &state) else { return Ok(()) };
        model.users.iter().filter(|u| u.updated_at >= from && u.updated_at < before).collect()
    };
    for user in claimed {
        let id = id_of(user, strategy);
        let stored = warehouse.rows.get(&id);
        prop_assert!(stored.is_some(), "{strategy}: the state {state} claims user {id}, which is not committed");
        if strategy != "step_size" {
            let (record, deleted) = stored.unwrap();
            prop_assert_eq!(
                record.get("updatedAt"),
                Some(&version(user.updated_at)),
                "{} claimed at an older version",
                id
            );
            prop_assert_eq!(*deleted, user.deleted);
        }
    }
    Ok(())
}

/// The most requests a sync of `strategy` may send (see docs/strategies.md).
fn request_bound(strategy: &str, case: &Case, model: &Model, settings: &Settings, changes: usize) -> usize {
    let rows = model.users.len() + changes;
    let page = case.page_limit.max(2);
    match strategy {
        // Each page brings at least one new row, a tie group larger than a page costs its page
        // and two counts, and a shift costs one re-read.
        "keyset" | "offset" => 2 + 2 * rows.div_ceil(page - 1) + 3 * case.ties.len() + 2 * changes,
        "timestamp" | "replay" => 1,
        "step_size" => (settings.max_id.unwrap() / settings.step_size + 1) as usize,
        // The incremental walk, then windows back to the limit, widening across empty ones.
        _ => 2 + 2 * rows.div_ceil(page - 1) + 3 * case.ties.len() + 2 * changes + 64 + rows,
    }
}

/// Runs every sync of `case`, then a quiet one, and checks the invariants.
fn run(strategy: &str, case: &Case) -> Result<(), TestCaseError> {
    let mut model = Model::new(case.users, case.page_limit, &case.ties, &case.gaps);
    let settings = settings(strategy, case, &model);
    let mut warehouse = Warehouse::default();
    let quiet = SyncPlan { changes: Vec::new(), interrupt_after: None };
    for plan in case.syncs.iter().chain(std::iter::once(&quiet)) {
        let mut strategy_machine = build(strategy, &settings, &warehouse, &model);
        let mut requests = 0usize;
        let mut out = Vec::new();
        let bound = request_bound(strategy, case, &model, &settings, plan.changes.len());
        let mut interrupted = false;
        // Answers fetched ahead, as `strategy::drive` keeps them: taken when asked for, dropped
        // when no longer guessed.
        let mut fetched_ahead: Vec<(Request, Answer)> = Vec::new();
        while let Some(request) = strategy_machine.next_request() {
            if plan.interrupt_after == Some(requests) {
                interrupted = true;
                break;
            }
            for &(_, kind, pick) in plan.changes.iter().filter(|(at, ..)| *at == requests) {
                model.change(kind, pick);
            }
            let guesses = strategy_machine.lookahead(case.ahead);
            let ready = fetched_ahead.iter().position(|(r, _)| *r == request).map(|at| fetched_ahead.swap_remove(at).1);
            fetched_ahead.retain(|(r, _)| guesses.contains(r));
            for guess in guesses {
                if !fetched_ahead.iter().any(|(r, _)| *r == guess) {
                    let answer = model.answer(&guess);
                    fetched_ahead.push((guess, answer));
                }
            }
            let answer = ready.unwrap_or_else(|| model.answer(&request));
            strategy_machine
                .on_answer(answer, &mut out)
                .map_err(|e| TestCaseError::fail(format!("{strategy}: {e}")))?;
            requests += 1;
            prop_assert!(requests <= bound, "{strategy}: more than {bound} requests in one sync");
            for emitted in out.drain(..) {
                if warehouse.take(emitted) {
                    check_claims(strategy, &warehouse, &model)?;
                }
            }
        }
        if interrupted {
            warehouse.crash();
        } else {
            warehouse.commit(None);
            check_claims(strategy, &warehouse, &model)?;
        }
    }
    // The source is quiet and one more sync ran: compare.
    let mut missing = Vec::new();
    let mut expected = BTreeSet::new();
    for user in &model.users {
        let id = id_of(user, strategy);
        expected.insert(id.clone());
        match warehouse.rows.get(&id) {
            None if user.deleted => {}
            None => missing.push(user.updated_at),
            Some((record, deleted)) => {
                prop_assert_eq!(*deleted, user.deleted, "{}: user {} deleted flag", strategy, id);
                if !user.deleted {
                    prop_assert_eq!(
                        record.get("updatedAt"),
                        Some(&version(user.updated_at)),
                        "{}: user {} version",
                        strategy,
                        id
                    );
                }
            }
        }
    }
    prop_assert!(warehouse.rows.keys().all(|id| expected.contains(id)), "{strategy}: rows the source never had");
    prop_assert!(missing.is_empty(), "{strategy}: rows lost: {missing:?}");
    Ok(())
}

/// A fixed seed, so that CI is reproducible; `INLET_PROPTEST_SEED` and `INLET_PROPTEST_CASES`
/// explore further (a failure prints its minimal case).
fn config() -> ProptestConfig {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    ProptestConfig {
        cases: var("INLET_PROPTEST_CASES").unwrap_or(300) as u32,
        rng_seed: proptest::test_runner::RngSeed::Fixed(var("INLET_PROPTEST_SEED").unwrap_or(20_261_121)),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn keyset(case in case(90)) {
        run("keyset", &case)?;
    }

    #[test]
    fn offset(case in case(90)) {
        run("offset", &case)?;
    }

    #[test]
    fn timestamp(case in case(90)) {
        run("timestamp", &case)?;
    }

    #[test]
    fn replay(case in case(90)) {
        run("replay", &case)?;
    }

    #[test]
    fn step_size(case in case(90)) {
        run("step_size", &case)?;
    }

    #[test]
    fn priority_first(case in case(90)) {
        run("priority_first", &case)?;
    }
}

#[test]
fn keyset_reads_an_oversized_tie_group_through_the_offset_endpoint() {
    let case = Case { users: 100, page_limit: 10, ties: vec![(20, 35)], gaps: vec![], syncs: vec![], ahead: 0 };
    let model = Model::new(case.users, case.page_limit, &case.ties, &case.gaps);
    let settings = settings("keyset", &case, &model);
    let mut machine = strategy::build(&settings, &inlet_sdk::State::new()).unwrap();
    let mut out = Vec::new();
    while let Some(request) = machine.next_request() {
        let answer = model.answer(&request);
        machine.on_answer(answer, &mut out).unwrap();
    }
    let warnings: Vec<&String> =
        out.iter().filter_map(|e| if let Emit::Warning(w) = e { Some(w) } else { None }).collect();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("35 rows share updatedAt")
            && warnings[0].contains("the 25 beyond the keyset page were read through the offset endpoint"),
        "{}",
        warnings[0]
    );
    let upserted: BTreeSet<String> = out
        .iter()
        .filter_map(
            |e| if let Emit::Upsert(r) = e { r.get("id").and_then(Value::as_str).map(str::to_owned) } else { None },
        )
        .collect();
    assert_eq!(upserted.len(), 100, "every user, the whole tie group included");
}

#[test]
fn without_an_offset_endpoint_the_loss_behind_an_oversized_tie_group_is_reported() {
    let case = Case { users: 60, page_limit: 10, ties: vec![(5, 30)], gaps: vec![], syncs: vec![], ahead: 0 };
    let model = Model::new(case.users, case.page_limit, &case.ties, &case.gaps);
    let mut machine = inlet_connectors::strategy::Keyset::new(&inlet_sdk::State::new(), None).unwrap();
    let mut out = Vec::new();
    while let Some(request) = machine.next_request() {
        let answer = model.answer(&request);
        machine.on_answer(answer, &mut out).unwrap();
    }
    let warnings: Vec<&String> =
        out.iter().filter_map(|e| if let Emit::Warning(w) = e { Some(w) } else { None }).collect();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("keyset: at least 10 rows share updatedAt") && warnings[0].contains("rows at risk"),
        "{}",
        warnings[0]
    );
    let upserted: BTreeSet<String> = out
        .iter()
        .filter_map(
            |e| if let Emit::Upsert(r) = e { r.get("id").and_then(Value::as_str).map(str::to_owned) } else { None },
        )
        .collect();
    assert_eq!(upserted.len(), 40, "the 20 rows of the group beyond the page are lost, and the walk ends");
}
