//! An in-memory model of the seeds' API, with the reference's semantics: inclusive
//! `updated_since`/`since`, a strict scroll after the page's last `updatedAt`, pages of at most
//! `page_limit`, step windows by id; and a warehouse that applies what a strategy emits the
//! way the engine and the destinations do.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use inlet_connectors::strategy::{Answer, Body, Emit, Endpoint, Request};
use inlet_connectors::{check_record, user_table};
use inlet_sdk::{Record, State, Value};

/// One user as the model holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: String,
    pub step_id: u64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Order among users sharing `updated_at`: when it was set.
    pub seq: u64,
    pub version: u32,
    pub deleted: bool,
}

impl User {
    fn record(&self, by_step: bool) -> Record {
        let stamp = |t: i64| jiff::Timestamp::from_second(t).unwrap().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let id = if by_step { self.step_id.to_string() } else { self.id.clone() };
        let mut record = Record::new()
            .with("id", id)
            .with("name", format!("user {} v{}", self.id, self.version))
            .with("createdAt", stamp(self.created_at))
            .with("updatedAt", stamp(self.updated_at));
        if self.deleted {
            record.set("deletedAt", stamp(self.updated_at));
        }
        record
    }
}

/// The source.
#[derive(Clone, Debug)]
pub struct Model {
    pub users: Vec<User>,
    pub page_limit: usize,
    pub clock: i64,
    seq: u64,
    next_step_id: u64,
}

/// The instant the model's data is generated at.
pub const START: i64 = 1_790_000_000;

impl Model {
    /// `count` users; `ties` groups of consecutive users sharing one `updatedAt` (start, len);
    /// `gaps` ids skipped before a user (position, width).
    pub fn new(count: usize, page_limit: usize, ties: &[(usize, usize)], gaps: &[(usize, u64)]) -> Model {
        let mut users = Vec::with_capacity(count);
        let mut step_id = 0;
        for i in 0..count {
            step_id += 1 + gaps.iter().filter(|(at, _)| *at == i).map(|(_, w)| w).sum::<u64>();
            let t = START - 10 * (count - i) as i64;
            users.push(User {
                id: format!("u{i}"),
                step_id,
                created_at: t - 3,
                updated_at: t,
                seq: i as u64,
                version: 0,
                deleted: false,
            });
        }
        for &(start, len) in ties {
            let end = (start + len).min(count);
            if start >= end {
                continue;
            }
            let shared = users[end - 1].updated_at;
            for user in &mut users[start..end] {
                user.updated_at = shared;
            }
        }
        Model { seq: count as u64, next_step_id: step_id + 1, users, page_limit, clock: START }
    }

    fn ordered(&self, since: i64) -> Vec<&User> {
        let mut rows: Vec<&User> = self.users.iter().filter(|u| u.updated_at >= since).collect();
        rows.sort_by_key(|u| (u.updated_at, u.seq));
        rows
    }

    fn rows(&self, users: &[&User], by_step: bool) -> Vec<inlet_connectors::Row> {
        users.iter().map(|u| check_record(&user_table(), u.record(by_step)).expect("model records are valid")).collect()
    }

    /// The answer to `request`, whole (streamed bodies come in one part).
    pub fn answer(&self, request: &Request) -> Answer {
        let param = |key: &str| request.params.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
        let instant = |text: String| text.parse::<jiff::Timestamp>().expect("strategies send instants").as_second();
        match (request.endpoint, request.body) {
            (Endpoint::Data, Body::Keyset) => {
                let since = match (param("updated_since"), param("scroll_param")) {
                    (Some(since), None) => instant(since),
                    (None, Some(token)) => {
                        instant(String::from_utf8(STANDARD.decode(token).expect("our token")).unwrap()) + 1
                    }
                    other => panic!("a keyset request needs one of updated_since, scroll_param: {other:?}"),
                };
                let all = self.ordered(since);
                let page: Vec<&User> = all.iter().take(self.page_limit).copied().collect();
                let scroll_param = (all.len() > self.page_limit).then(|| {
                    STANDARD.encode(
                        jiff::Timestamp::from_second(page.last().unwrap().updated_at)
                            .unwrap()
                            .strftime("%Y-%m-%dT%H:%M:%SZ")
                            .to_string(),
                    )
                });
                Answer::Keyset { rows: self.rows(&page, false), scroll_param }
            }
            (_, Body::Offset) => {
                let since = param("updated_since").map_or(0, instant);
                let limit: usize = param("limit").map_or(10, |l| l.parse().unwrap());
                assert!(limit <= self.page_limit.max(50) && limit >= 1, "limit {limit} out of range");
                let offset: usize = param("offset").map_or(0, |o| o.parse().unwrap());
                let all = self.ordered(since);
                let page: Vec<&User> = all.iter().skip(offset).take(limit).copied().collect();
                Answer::Offset { rows: self.rows(&page, false), total: all.len() as u64 }
            }
            (Endpoint::Data, Body::Stream) => {
                if let Some(since) = param("since") {
                    let all = self.ordered(instant(since));
                    Answer::Rows { rows: self.rows(&all, false), complete: true }
                } else {
                    let first: u64 = param("start_id").unwrap().parse().unwrap();
                    let last: u64 = param("end_id").unwrap().parse().unwrap();
                    let window: Vec<&User> =
                        self.users.iter().filter(|u| (first..=last).contains(&u.step_id)).collect();
                    Answer::Rows { rows: self.rows(&window, true), complete: true }
                }
            }
            other => panic!("no such request shape: {other:?}"),
        }
    }

    /// One change now: 0 update, 1 insert, 2 delete (as a tombstone); `pick` chooses the user.
    pub fn change(&mut self, kind: u8, pick: usize) {
        self.clock += 1;
        self.seq += 1;
        let live: Vec<usize> = (0..self.users.len()).filter(|&i| !self.users[i].deleted).collect();
        match kind {
            1 => {
                let id = format!("u{}", self.users.len());
                self.users.push(User {
                    id,
                    step_id: self.next_step_id,
                    created_at: self.clock,
                    updated_at: self.clock,
                    seq: self.seq,
                    version: 0,
                    deleted: false,
                });
                self.next_step_id += 1;
            }
            _ if live.is_empty() => {}
            kind => {
                let user = &mut self.users[live[pick % live.len()]];
                user.updated_at = self.clock;
                user.seq = self.seq;
                if kind == 0 {
                    user.version += 1;
                } else {
                    user.deleted = true;
                }
            }
        }
    }
}

/// A warehouse with the engine's semantics: emits are pending until a checkpoint commits them
/// with its state; an upsert never replaces a newer version; a delete flags the row.
#[derive(Clone, Debug, Default)]
pub struct Warehouse {
    /// id → (record, deleted)
    pub rows: BTreeMap<String, (Record, bool)>,
    pub state: State,
    pending: Vec<Emit>,
}

/// The record's `updatedAt`: strategies emit records conformed to the `user` table, so an
/// instant.
fn updated(record: &Record) -> Option<jiff::Timestamp> {
    match record.get("updatedAt") {
        Some(Value::Timestamp(at)) => Some(*at),
        _ => None,
    }
}

impl Warehouse {
    /// Takes what a strategy emitted; commits at each checkpoint. Returns whether it committed.
    pub fn take(&mut self, emitted: Emit) -> bool {
        match emitted {
            Emit::Checkpoint(state) => {
                self.commit(Some(State::from_json(state).unwrap()));
                true
            }
            Emit::Warning(_) => false,
            other => {
                self.pending.push(other);
                false
            }
        }
    }

    /// Commits what is pending, with `state` (or the current state when the sync ends).
    pub fn commit(&mut self, state: Option<State>) {
        for emitted in self.pending.drain(..) {
            match emitted {
                Emit::Upsert(record) => {
                    let id = record.get("id").and_then(Value::as_str).unwrap().to_owned();
                    let keep = self.rows.get(&id).is_some_and(|(old, _)| updated(old) > updated(&record));
                    if !keep {
                        self.rows.insert(id, (record, false));
                    }
                }
                Emit::Delete(keys) => {
                    let id = keys.get("id").and_then(Value::as_str).unwrap();
                    if let Some(row) = self.rows.get_mut(id) {
                        row.1 = true;
                    }
                }
                _ => unreachable!("only rows are pending"),
            }
        }
        if let Some(state) = state {
            self.state = state;
        }
    }

    /// Forgets what was not committed (the process died).
    pub fn crash(&mut self) {
        self.pending.clear();
    }
}
