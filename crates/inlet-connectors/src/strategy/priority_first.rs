//! Priority-first sync: recent data first, history filled in backwards.
//!
//! Every sync first reads what changed since `incremental_cursor` (a keyset walk to the end),
//! and commits it; then it walks history backwards in windows of `window_hours`, from
//! `historical_cursor` down to `historical_limit`, checkpointing after each window. The seed
//! alternates instead (one sync incremental, the next historical), so fresh data waits a whole
//! historical run every other time; sharing each run keeps fresh data first on every run while
//! the backfill still progresses, and the backfill, once done, costs nothing. A window that
//! comes back empty doubles the next window's width, so a limit far in the past costs a few
//! requests, not one per day.
//!
//! With `concurrency` above one, the first page of each of the next windows is fetched ahead
//! (guessing that the windows go on as the last one did: one `window_hours` wide while they
//! have rows, wider and wider while empty); within a window, pages follow one another.
//!
//! The first sync starts both cursors at the moment it starts. Any error fails the sync (the
//! seed logs and swallows it, so a failed sync looks successful).
//!
//! State, as the seed: `{"pfs_cursors": {"user": {"incremental_cursor", "historical_cursor",
//! "historical_limit"}}, "is_incremental_sync": bool}`; `is_incremental_sync` is `true` once
//! history is complete and only incremental work remains.

use std::collections::BTreeMap;

use inlet_sdk::{Error, State};
use serde::{Deserialize, Serialize};

use super::keyset::KeysetWalk;
use super::{Answer, Emit, Request, Strategy, format_instant, parse_cursor};
use crate::config::Settings;

/// The widest a window gets after empty ones: about 45 years of one-day windows.
const MAX_WIDENING: i64 = 1 << 14;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Cursors {
    incremental_cursor: String,
    historical_cursor: String,
    historical_limit: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PfsState {
    pfs_cursors: BTreeMap<String, Cursors>,
    is_incremental_sync: bool,
}

#[derive(Debug)]
enum Phase {
    Incremental(KeysetWalk),
    History { walk: KeysetWalk, low: i64 },
    Done,
}

/// The priority-first strategy (see the module's documentation).
#[derive(Debug)]
pub struct PriorityFirst {
    incremental: i64,
    historical: i64,
    limit: i64,
    window: i64,
    widening: i64,
    group_page: Option<u32>,
    phase: Phase,
    /// Historical windows read during this sync.
    pub windows: u64,
    /// A first sync: its walks start at this machine's clock, which the API's may trail.
    first: bool,
    /// The newest `updatedAt` the API showed during this sync.
    newest: Option<i64>,
}

impl PriorityFirst {
    /// Resumes from `state`; a first sync starts both cursors at `now`.
    pub fn new(state: &State, settings: &Settings, now: i64) -> Result<Self, Error> {
        let (incremental, historical, limit) = if state.is_empty() {
            (now, now, settings.historical_limit)
        } else {
            let saved: PfsState = state.parse()?;
            let Some(c) = saved.pfs_cursors.get("user") else {
                return Err(Error::state("saved state key `pfs_cursors`: no cursors for table `user`"));
            };
            (
                parse_cursor("pfs_cursors.user.incremental_cursor", &c.incremental_cursor)?,
                parse_cursor("pfs_cursors.user.historical_cursor", &c.historical_cursor)?,
                parse_cursor("pfs_cursors.user.historical_limit", &c.historical_limit)?,
            )
        };
        let group_page = settings.offset_url.is_some().then_some(settings.page_size);
        Ok(PriorityFirst {
            incremental,
            historical,
            limit,
            window: settings.window.as_secs().max(1) as i64,
            widening: 1,
            group_page,
            phase: Phase::Incremental(KeysetWalk::new(incremental, None, group_page)),
            windows: 0,
            first: state.is_empty(),
            newest: None,
        })
    }

    fn checkpoint(&self) -> Emit {
        // A first sync started at this machine's `now`. A row the API changes during it gets
        // an `updatedAt` of the API's clock, which may trail ours: saved as it is, `now` could
        // hide such rows for ever. The newest `updatedAt` the API has shown is an instant its
        // clock has passed, so every later change is at or after it (nothing shown: the limit).
        let incremental =
            if self.first { self.newest.unwrap_or(self.limit).min(self.incremental) } else { self.incremental };
        let cursors = Cursors {
            incremental_cursor: format_instant(incremental),
            historical_cursor: format_instant(self.historical),
            historical_limit: format_instant(self.limit),
        };
        let state = PfsState {
            pfs_cursors: BTreeMap::from([("user".to_owned(), cursors)]),
            is_incremental_sync: self.historical <= self.limit,
        };
        Emit::Checkpoint(serde_json::to_value(state).expect("a state serializes"))
    }

    /// The next historical window, or the end.
    fn next_window(&self) -> Phase {
        if self.historical <= self.limit {
            return Phase::Done;
        }
        let low = self.historical.saturating_sub(self.window.saturating_mul(self.widening)).max(self.limit);
        Phase::History { walk: KeysetWalk::new(low, Some(self.historical), self.group_page), low }
    }
}

impl Strategy for PriorityFirst {
    fn next_request(&mut self) -> Option<Request> {
        loop {
            let walk = match &self.phase {
                Phase::Incremental(walk) | Phase::History { walk, .. } => walk,
                Phase::Done => return None,
            };
            if let Some(request) = walk.next_request() {
                return Some(request);
            }
            // The walk ended without a request to make: move to the next phase.
            self.phase = self.next_window();
        }
    }

    fn lookahead(&self, n: usize) -> Vec<Request> {
        // Guess that the windows go on as the last one did: wider and wider while empty, one
        // `window_hours` wide while they have rows.
        let empty_streak = self.widening > 1;
        let next = |widening: i64| if empty_streak { (widening * 2).min(MAX_WIDENING) } else { 1 };
        let (mut high, mut widening) = match &self.phase {
            Phase::Incremental(_) => (self.historical, self.widening),
            Phase::History { low, .. } => (*low, next(self.widening)),
            Phase::Done => return Vec::new(),
        };
        let mut guesses = Vec::new();
        while guesses.len() < n && high > self.limit {
            let low = high.saturating_sub(self.window.saturating_mul(widening)).max(self.limit);
            guesses.extend(KeysetWalk::new(low, Some(high), self.group_page).next_request());
            (high, widening) = (low, next(widening));
        }
        guesses
    }

    fn on_answer(&mut self, answer: Answer, out: &mut Vec<Emit>) -> Result<(), Error> {
        match &mut self.phase {
            Phase::Incremental(walk) => {
                walk.on_answer(answer, out)?;
                self.newest = self.newest.max(walk.newest);
                let (cursor, done) = (walk.cursor(), walk.is_done());
                if cursor > self.incremental || done {
                    self.incremental = self.incremental.max(cursor);
                    out.push(self.checkpoint());
                }
                if done {
                    self.phase = self.next_window();
                }
            }
            Phase::History { walk, low } => {
                walk.on_answer(answer, out)?;
                self.newest = self.newest.max(walk.newest);
                if walk.is_done() {
                    let (empty, low) = (walk.rows_seen == 0, *low);
                    self.historical = low;
                    self.widening = if empty { (self.widening * 2).min(MAX_WIDENING) } else { 1 };
                    self.windows += 1;
                    out.push(self.checkpoint());
                    self.phase = self.next_window();
                }
            }
            Phase::Done => return Err(Error::source("priority-first got an answer after it was done")),
        }
        Ok(())
    }
}
