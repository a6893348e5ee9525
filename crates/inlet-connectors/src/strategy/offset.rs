//! Offset pagination with an `updated_since` filter: the seed's requests
//! (`order_by=updatedAt&order_type=asc&updated_since=…&limit=…&offset=…`).
//!
//! The seed pages with ever larger offsets from a fixed cursor, so a row updated mid-sync
//! leaves its place, the rows behind it move up, and the row that moves into the page already
//! read is skipped. Here each page restarts from the last instant read (`updated_since`), with
//! an offset counted only within that instant's tie group, and re-reads one row: the first row
//! of a page must be the last row of the previous one. When it is not, rows moved; the strategy
//! says so and reads the group again from its start. Rows that move away (updated to now) come
//! later in the same order, so nothing is lost.
//!
//! State: `{"last_updated_at": "<instant>"}`, as the seed.

use inlet_sdk::{Error, State};
use serde::Deserialize;

use super::{Answer, Body, Emit, Endpoint, Request, Strategy, emit_row, format_instant, parse_cursor};

/// Re-reads of one tie group in a row before giving up: the group is churning faster than it
/// can be read.
const MAX_SHIFTS_IN_A_ROW: u32 = 20;

/// The offset strategy (see the module's documentation).
#[derive(Debug)]
pub struct Offset {
    page_size: u32,
    /// Rows updated before this instant are read; the next request starts here.
    cursor: i64,
    /// Rows at `cursor` read so far, from the start of its tie group.
    read_in_group: u64,
    /// The id expected first in the next page (the last one read), when re-reading one row.
    expected_first: Option<String>,
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
            cursor,
            read_in_group: 0,
            expected_first: None,
            shifts_in_a_row: 0,
            shifts: 0,
            last_checkpoint: saved.last_updated_at.is_some().then_some(cursor),
            done: false,
        })
    }

    fn offset(&self) -> u64 {
        self.read_in_group.saturating_sub(1)
    }
}

impl Strategy for Offset {
    fn next_request(&mut self) -> Option<Request> {
        if self.done {
            return None;
        }
        let params = vec![
            ("order_by", "updatedAt".to_owned()),
            ("order_type", "asc".to_owned()),
            ("updated_since", format_instant(self.cursor)),
            ("limit", self.page_size.to_string()),
            ("offset", self.offset().to_string()),
        ];
        Some(Request { endpoint: Endpoint::Data, params, body: Body::Offset })
    }

    fn on_answer(&mut self, answer: Answer, out: &mut Vec<Emit>) -> Result<(), Error> {
        let Answer::Offset { rows, total } = answer else {
            return Err(Error::source("an offset request got a body without `total`"));
        };
        let offset = self.offset();
        if let Some(expected) = &self.expected_first
            && rows.first().map(|r| &r.id) != Some(expected)
        {
            // Rows moved within the group at the cursor: read the group again from its start.
            self.shifts += 1;
            self.shifts_in_a_row += 1;
            if self.shifts_in_a_row > MAX_SHIFTS_IN_A_ROW {
                return Err(Error::source(format!(
                    "offset: rows updated at {} keep moving while they are read ({MAX_SHIFTS_IN_A_ROW} re-reads in a row); try again later or use a larger `page_size`",
                    format_instant(self.cursor)
                )));
            }
            out.push(Emit::Warning(format!(
                "offset: rows moved while paging at {}; reading that instant again from its first row",
                format_instant(self.cursor)
            )));
            self.read_in_group = 0;
            self.expected_first = None;
            for row in rows {
                emit_row(row, out);
            }
            return Ok(());
        }
        self.shifts_in_a_row = 0;
        let received = rows.len() as u64;
        let Some(last) = rows.last().map(|r| (r.updated_at, r.id.clone())) else {
            self.done = true;
            return Ok(());
        };
        let at_last = rows.iter().rev().take_while(|r| r.updated_at == last.0).count() as u64;
        let whole_page_at_cursor = rows.first().is_some_and(|r| r.updated_at == self.cursor) && last.0 == self.cursor;
        for row in rows {
            emit_row(row, out);
        }
        if offset + received >= total {
            self.done = true;
            self.cursor = self.cursor.max(last.0);
        } else {
            if whole_page_at_cursor {
                self.read_in_group = offset + received;
            } else {
                self.cursor = last.0;
                self.read_in_group = at_last;
            }
            if received < 2 && offset > 0 {
                return Err(Error::source(
                    "offset: the API returned a page of one row although `total` says more remain; it cannot be paged reliably",
                ));
            }
            self.expected_first = Some(last.1);
        }
        if self.last_checkpoint != Some(self.cursor) {
            self.last_checkpoint = Some(self.cursor);
            out.push(Emit::Checkpoint(serde_json::json!({ "last_updated_at": format_instant(self.cursor) })));
        }
        Ok(())
    }
}
