//! Step-size sync: windows of ids, `start_id=<current>&end_id=<current + step - 1>`, for APIs
//! that can neither paginate nor count.
//!
//! The seed stops at the first empty window, so an id gap at least a window wide stalls it for
//! ever; and it never looks back, so ids that appear later inside a window it has passed are
//! never read. Here the walk goes on through empty windows up to `max_id`, or, without
//! `max_id`, until `max_empty_windows` windows in a row came back empty (the documented end
//! condition: a gap wider than that needs `max_id`). The saved `current_id` is the start of
//! the last window that had rows, so the next sync reads that partly filled window again.
//! With `full_rescan`, every sync reads all windows from `initial_id`, which also picks up
//! updates and tombstones in old windows. Windows are known in advance, so with `concurrency`
//! above one the next windows are fetched while the current one is read; they are still read
//! and checkpointed in order.
//!
//! State: `{"current_id": <integer>}`, as the seed.

use inlet_sdk::{Error, State};
use serde::Deserialize;

use super::{Answer, Body, Emit, Endpoint, Request, Strategy, emit_row};
use crate::config::Settings;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepState {
    current_id: Option<u64>,
}

/// The step-size strategy (see the module's documentation).
#[derive(Debug)]
pub struct StepSize {
    step: u64,
    max_id: Option<u64>,
    max_empty_windows: u32,
    /// Start of the window to read next.
    next_start: u64,
    /// Start of the last window that had rows (where the next sync starts).
    last_filled: u64,
    rows_in_window: u64,
    empty_in_a_row: u32,
    requested: Option<u64>,
    done: bool,
}

impl StepSize {
    /// Resumes from `state`.
    pub fn new(state: &State, settings: &Settings) -> Result<Self, Error> {
        let saved: StepState = state.parse()?;
        let start = match saved.current_id {
            _ if settings.full_rescan => settings.initial_id,
            Some(0) => return Err(Error::state("saved state key `current_id`: ids start at 1")),
            Some(id) => id,
            None => settings.initial_id,
        };
        Ok(StepSize {
            step: settings.step_size,
            max_id: settings.max_id,
            max_empty_windows: settings.max_empty_windows,
            next_start: start,
            last_filled: start,
            rows_in_window: 0,
            empty_in_a_row: 0,
            requested: None,
            done: settings.max_id.is_some_and(|max| start > max),
        })
    }

    fn window_end(&self, start: u64) -> u64 {
        let end = start.saturating_add(self.step - 1);
        self.max_id.map_or(end, |max| end.min(max))
    }

    fn request(&self, start: u64) -> Request {
        let params = vec![("start_id", start.to_string()), ("end_id", self.window_end(start).to_string())];
        Request { endpoint: Endpoint::Data, params, body: Body::Stream }
    }
}

impl Strategy for StepSize {
    fn next_request(&mut self) -> Option<Request> {
        if self.done {
            return None;
        }
        self.requested = Some(self.next_start);
        self.rows_in_window = 0;
        Some(self.request(self.next_start))
    }

    fn lookahead(&self, n: usize) -> Vec<Request> {
        let mut start = self.requested.unwrap_or(self.next_start);
        let mut guesses = Vec::new();
        while guesses.len() < n {
            let end = self.window_end(start);
            if end == u64::MAX || self.max_id.is_some_and(|max| end >= max) {
                break;
            }
            start = end + 1;
            guesses.push(self.request(start));
        }
        guesses
    }

    fn on_answer(&mut self, answer: Answer, out: &mut Vec<Emit>) -> Result<(), Error> {
        let Answer::Rows { rows, complete } = answer else {
            return Err(Error::source("a step request got a paginated body"));
        };
        self.rows_in_window += rows.len() as u64;
        for row in rows {
            emit_row(row, out);
        }
        if !complete {
            return Ok(());
        }
        let start = self.requested.take().expect("an answer follows a request");
        let end = self.window_end(start);
        if self.rows_in_window > 0 {
            self.last_filled = start;
            self.empty_in_a_row = 0;
        } else {
            self.empty_in_a_row += 1;
        }
        self.next_start = end.saturating_add(1);
        self.done = match self.max_id {
            Some(max) => self.next_start > max,
            None => self.empty_in_a_row >= self.max_empty_windows,
        } || end == u64::MAX;
        if self.rows_in_window > 0 || self.done {
            out.push(Emit::Checkpoint(serde_json::json!({ "current_id": self.last_filled })));
        }
        Ok(())
    }
}
