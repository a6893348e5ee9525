//! Offset pagination with an `updated_since` filter: the seed's requests
//! (`order_by=updatedAt&order_type=asc&updated_since=…&limit=…&offset=…`).
//!
//! The seed pages with ever larger offsets from a fixed cursor, so a row updated (or deleted)
//! mid-sync leaves its place, the rows behind it move up, and the row that moves into the page
//! already read is skipped. Here consecutive pages overlap by one row: the first row of a page
//! must be the last row of the one before. Rows only ever leave the middle of the order (an
//! update moves a row to the end), so any such move before the next page shows as a mismatch;
//! the strategy then says so and starts again from the last instant it read whole, re-reading
//! that instant's rows. Rows that moved away come later in the same order, so nothing is lost.
//!
//! Because the next page's offset is known before the last page arrives, pages are fetched
//! ahead when `concurrency` allows; they are still read and committed in order, each checked
//! against the one before it.
//!
//! State: `{"last_updated_at": "<instant>"}`, as the seed.

use inlet_sdk::{Error, State};
use serde::Deserialize;

use super::{Answer, Body, Emit, Endpoint, Request, Strategy, emit_row, format_instant, parse_cursor};

/// Restarts in a row before giving up: rows move faster than they can be read.
const MAX_SHIFTS_IN_A_ROW: u32 = 20;

/// The offset strategy (see the module's documentation).
#[derive(Debug)]
pub struct Offset {
    page_size: u32,
    /// The `updated_since` of the pages being read.
    since: i64,
    /// Offset of the next page.
    offset: u64,
    /// The id expected first in the next page: the last one read.
    expected_first: Option<String>,
    /// Rows matching `since`, as the last page said.
    total: Option<u64>,
    /// Every row updated before this instant has been read.
    cursor: i64,
    shifts_in_a_row: u32,
    /// Shifts detected during this sync.
    pub shifts: u64,
    last_checkpoint: Option<i64>,
    done: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OffsetState {
    last_updated_at: Option<String>,
}

impl Offset {
    /// Resumes from `state`.
    pub fn new(state: &State, page_size: u32) -> Result<Self, Error> {
        let saved: OffsetState = state.parse()?;
        let cursor = match saved.last_updated_at.as_deref() {
            Some(text) => parse_cursor("last_updated_at", text)?,
            None => 0,
        };
        Ok(Offset {
            page_size,
            since: cursor,
            offset: 0,
            expected_first: None,
            total: None,
            cursor,
            shifts_in_a_row: 0,
            shifts: 0,
            last_checkpoint: saved.last_updated_at.is_some().then_some(cursor),
            done: false,
        })
    }

    fn request(&self, offset: u64) -> Request {
        let params = vec![
            ("order_by", "updatedAt".to_owned()),
            ("order_type", "asc".to_owned()),
            ("updated_since", format_instant(self.since)),
            ("limit", self.page_size.to_string()),
            ("offset", offset.to_string()),
        ];
        Request { endpoint: Endpoint::Data, params, body: Body::Offset }
    }
}

impl Strategy for Offset {
    fn next_request(&mut self) -> Option<Request> {
        (!self.done).then(|| self.request(self.offset))
    }

    fn lookahead(&self, n: usize) -> Vec<Request> {
        let (Some(total), step) = (self.total, u64::from(self.page_size.saturating_sub(1))) else {
            return Vec::new();
        };
        (1..=n as u64)
            .map(|k| self.offset + k * step)
            .take_while(|&offset| step > 0 && offset + 1 < total)
            .map(|offset| self.request(offset))
            .collect()
    }

    fn on_answer(&mut self, answer: Answer, out: &mut Vec<Emit>) -> Result<(), Error> {
        let Answer::Offset { rows, total } = answer else {
            return Err(Error::source("an offset request got a body without `total`"));
        };
        self.total = Some(total);
        let received = rows.len() as u64;
        let mut rows = rows.into_iter();
        if let Some(expected) = self.expected_first.take() {
            if rows.as_slice().first().is_none_or(|r| *r.id() != *expected) {
                // Rows moved before this page: start again from the last instant read whole.
                self.shifts += 1;
                self.shifts_in_a_row += 1;
                if self.shifts_in_a_row > MAX_SHIFTS_IN_A_ROW {
                    return Err(Error::source(format!(
                        "offset: rows keep moving while they are read ({MAX_SHIFTS_IN_A_ROW} restarts in a row at {}); try again later or use a larger `page_size`",
                        format_instant(self.cursor)
                    )));
                }
                out.push(Emit::Warning(format!(
                    "offset: rows moved while paging; reading again from {}",
                    format_instant(self.cursor)
                )));
                (self.since, self.offset, self.total) = (self.cursor, 0, None);
                return Ok(());
            }
            // The overlap row was emitted with the page before.
            rows.next();
        }
        self.shifts_in_a_row = 0;
        if received == 1 && self.offset + 1 < total {
            return Err(Error::source(
                "offset: the API returned a page of one row although `total` says more remain; it cannot be paged reliably",
            ));
        }
        let page: Vec<_> = rows.collect();
        let Some(last) = page.last().map(|r| (r.updated_at, r.id().into_owned())) else {
            self.done = true;
            return Ok(());
        };
        for row in page {
            emit_row(row, out);
        }
        if self.offset + received >= total {
            self.done = true;
            self.cursor = self.cursor.max(last.0);
        } else {
            // Rows before `last` are all read; rows at its instant may continue on the next page.
            self.cursor = last.0;
            self.offset += received - 1;
            self.expected_first = Some(last.1);
        }
        if self.last_checkpoint != Some(self.cursor) {
            self.last_checkpoint = Some(self.cursor);
            out.push(Emit::Checkpoint(serde_json::json!({ "last_updated_at": format_instant(self.cursor) })));
        }
        Ok(())
    }
}
