//! Replay sync, for read replicas that lag: like timestamp sync, but each sync asks from some
//! hours before the cursor (`buffer_hours`), so rows that became visible late, with an older
//! `updatedAt`, are still read.
//!
//! The fixes over the seed: the buffer is subtracted from the request only, never from the
//! saved cursor (which therefore never drifts backwards); the cursor is written in the API's
//! own format (`YYYY-MM-DDTHH:MM:SSZ`, which the API requires back); replayed rows are
//! upserts by primary key, so replaying leaves no duplicate; and the one response, of any size,
//! is read as it streams.
//!
//! State: `{"last_timestamp": "<instant>"}`, as the seed.

use std::time::Duration;

use inlet_sdk::{Error, State};
use serde::Deserialize;

use super::timestamp::CHECKPOINT_EVERY;
use super::{Answer, Body, Emit, Endpoint, Request, Strategy, emit_row, format_instant, parse_cursor};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayState {
    last_timestamp: Option<String>,
}

/// The replay strategy (see the module's documentation).
#[derive(Debug)]
pub struct Replay {
    since: i64,
    cursor: i64,
    since_checkpoint: u64,
    requested: bool,
    done: bool,
}

impl Replay {
    /// Resumes from `state`, asking `buffer` before its cursor.
    pub fn new(state: &State, buffer: Duration) -> Result<Self, Error> {
        let saved: ReplayState = state.parse()?;
        let cursor = match saved.last_timestamp.as_deref() {
            Some(text) => parse_cursor("last_timestamp", text)?,
            None => 0,
        };
        let since = if saved.last_timestamp.is_some() { (cursor - buffer.as_secs() as i64).max(0) } else { 0 };
        Ok(Replay { since, cursor, since_checkpoint: 0, requested: false, done: false })
    }

    fn checkpoint(&self) -> Emit {
        Emit::Checkpoint(serde_json::json!({ "last_timestamp": format_instant(self.cursor) }))
    }
}

impl Strategy for Replay {
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
            return Err(Error::source("a replay request got a paginated body"));
        };
        for row in rows {
            if row.updated_at > self.cursor {
                if self.since_checkpoint >= CHECKPOINT_EVERY {
                    out.push(self.checkpoint());
                    self.since_checkpoint = 0;
                }
                self.cursor = row.updated_at;
            }
            self.since_checkpoint += 1;
            emit_row(row, out);
        }
        if complete && !self.done {
            self.done = true;
            out.push(self.checkpoint());
        }
        Ok(())
    }
}
