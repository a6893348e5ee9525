//! Timestamp sync: `since=<cursor>` returns every row updated at or after the cursor, in one
//! unpaginated response.
//!
//! The seed asks again and again: the filter is inclusive, so the newest row always comes back
//! and the loop never ends, re-upserting the same rows. Here a sync sends one request and reads
//! its answer as it streams (checkpointing every few thousand rows, so a crash mid-response
//! resumes near where it was), and rows already written at the cursor's instant are
//! recognised by id and content and skipped, so an unchanged source writes nothing.
//!
//! State: `{"last_timestamp": "<instant>", "seen_at_last_timestamp": ["<id>:<hash>", …]}`;
//! the second key is inlet's (optional, so the seed's state works as it is).

use std::collections::BTreeSet;

use inlet_sdk::{Error, State};
use serde::{Deserialize, Serialize};

use super::{Answer, Body, Emit, Endpoint, Request, Strategy, emit_row, format_instant, parse_cursor};
use crate::user::Row;

/// Rows between two checkpoints inside one long response.
pub(crate) const CHECKPOINT_EVERY: u64 = 5_000;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TimestampState {
    last_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    seen_at_last_timestamp: BTreeSet<String>,
}

/// The rows of one instant already written: id and content.
fn fingerprint(row: &Row) -> String {
    // FNV-1a over the record's JSON: stable across runs and platforms.
    let text = row.record.to_json().to_string();
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{}:{hash:016x}", row.id())
}

/// The timestamp strategy (see the module's documentation).
#[derive(Debug)]
pub struct Timestamp {
    /// Where this sync's request starts.
    since: i64,
    /// Rows before this instant are synced; `seen` lists those at it.
    cursor: i64,
    seen: BTreeSet<String>,
    /// What the saved state already had at its instant: not written again.
    skip_at: i64,
    skip: BTreeSet<String>,
    since_checkpoint: u64,
    requested: bool,
    done: bool,
    /// Rows skipped as already written.
    pub skipped: u64,
}

impl Timestamp {
    /// Resumes from `state`.
    pub fn new(state: &State) -> Result<Self, Error> {
        let saved: TimestampState = state.parse()?;
        let cursor = match saved.last_timestamp.as_deref() {
            Some(text) => parse_cursor("last_timestamp", text)?,
            None => 0,
        };
        Ok(Timestamp {
            since: cursor,
            cursor,
            seen: saved.seen_at_last_timestamp.clone(),
            skip_at: cursor,
            skip: saved.seen_at_last_timestamp,
            since_checkpoint: 0,
            requested: false,
            done: false,
            skipped: 0,
        })
    }

    fn checkpoint(&self) -> Emit {
        let state = TimestampState {
            last_timestamp: Some(format_instant(self.cursor)),
            seen_at_last_timestamp: self.seen.clone(),
        };
        Emit::Checkpoint(serde_json::to_value(state).expect("a state serializes"))
    }
}

impl Strategy for Timestamp {
    fn next_request(&mut self) -> Option<Request> {
        if self.requested {
            return None;
        }
        self.requested = true;
        Some(Request {
            endpoint: Endpoint::Data,
            params: vec![("since", format_instant(self.since))],
            body: Body::Stream,
        })
    }

    fn on_answer(&mut self, answer: Answer, out: &mut Vec<Emit>) -> Result<(), Error> {
        let Answer::Rows { rows, complete } = answer else {
            return Err(Error::source("a timestamp request got a paginated body"));
        };
        for row in rows {
            let print = fingerprint(&row);
            if row.updated_at == self.skip_at && self.skip.contains(&print) {
                self.skipped += 1;
                continue;
            }
            // Rows arrive in updatedAt order (a retried body starts again: never go back).
            if row.updated_at > self.cursor {
                if self.since_checkpoint >= CHECKPOINT_EVERY {
                    out.push(self.checkpoint());
                    self.since_checkpoint = 0;
                }
                self.cursor = row.updated_at;
                self.seen.clear();
            }
            if row.updated_at == self.cursor {
                self.seen.insert(print);
            }
            self.since_checkpoint += 1;
            emit_row(row, out);
        }
        if complete && !self.done {
            self.done = true;
            if self.since_checkpoint > 0 {
                out.push(self.checkpoint());
            }
        }
        Ok(())
    }
}
