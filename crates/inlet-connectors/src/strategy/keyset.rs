//! Keyset pagination on `updatedAt`: `updated_since=<cursor>`, then `scroll_param` tokens.
//!
//! The seed follows the scroll token to the end, but the token continues *strictly after* the
//! page's last `updatedAt`: rows sharing that instant beyond the page are skipped. Here, a page
//! that holds more than one instant ends the request chain, and the next request starts again
//! inclusively at the page's last instant (`updated_since`), so a tie group cut by a page end
//! is read whole, at the price of reading its first part twice (upserts make that harmless).
//! Only a page made of a single instant cannot be followed that way: restarting would return
//! the same page for ever. Then the scroll token is followed, the rows of that instant beyond
//! the page are lost through any keyset API, and the loss is reported with its size, counted
//! on the offset endpoint (`tie_count_url`) when there is one.
//!
//! State: `{"last_updated_at": "<instant>"}`, the seed's key and format: every row updated
//! before that instant is synced; rows at that instant are read again next time.

use inlet_sdk::{Error, State};
use serde::{Deserialize, Serialize};

use super::{Answer, Body, Emit, Endpoint, Request, Strategy, emit_row, format_instant, parse_cursor};
use crate::user::Row;

/// A tie-safe walk over `[from, until)` of a keyset endpoint; shared with priority-first.
#[derive(Debug)]
pub(crate) struct KeysetWalk {
    next: Option<Next>,
    /// Every row updated before this instant has been read.
    cursor: i64,
    until: Option<i64>,
    count_ties: bool,
    counting: Option<TieCount>,
    /// Rows with `updatedAt` in the walk's range seen by this walk.
    pub rows_seen: u64,
    /// Rows a tie group too large for a page kept from being read.
    pub rows_at_risk: u64,
}

#[derive(Clone, Debug, PartialEq)]
enum Next {
    Since(i64),
    Scroll(String),
}

/// Counting a tie group at instant `at` on the offset endpoint: rows since `at`, then rows
/// since `at + 1`; the difference is the group.
#[derive(Clone, Debug, PartialEq)]
struct TieCount {
    at: i64,
    seen: u64,
    at_or_after: Option<u64>,
}

impl KeysetWalk {
    pub(crate) fn new(from: i64, until: Option<i64>, count_ties: bool) -> Self {
        KeysetWalk {
            next: Some(Next::Since(from)),
            cursor: from,
            until,
            count_ties,
            counting: None,
            rows_seen: 0,
            rows_at_risk: 0,
        }
    }

    /// Every row updated before this instant has been read (the inclusive restart point).
    pub(crate) fn cursor(&self) -> i64 {
        self.cursor
    }

    pub(crate) fn next_request(&self) -> Option<Request> {
        if let Some(count) = &self.counting {
            let since = if count.at_or_after.is_none() { count.at } else { count.at + 1 };
            let params = vec![("updated_since", format_instant(since)), ("limit", "1".into())];
            return Some(Request { endpoint: Endpoint::TieCount, params, body: Body::Offset });
        }
        match self.next.as_ref()? {
            Next::Since(t) => Some(Request {
                endpoint: Endpoint::Data,
                params: vec![("updated_since", format_instant(*t))],
                body: Body::Keyset,
            }),
            Next::Scroll(token) => Some(Request {
                endpoint: Endpoint::Data,
                params: vec![("scroll_param", token.clone())],
                body: Body::Keyset,
            }),
        }
    }

    /// Whether the walk has more requests to make.
    pub(crate) fn is_done(&self) -> bool {
        self.next.is_none() && self.counting.is_none()
    }

    pub(crate) fn on_answer(&mut self, answer: Answer, out: &mut Vec<Emit>) -> Result<(), Error> {
        match answer {
            Answer::Offset { total, .. } => self.on_count(total, out),
            Answer::Keyset { rows, scroll_param } => self.on_page(rows, scroll_param, out),
            Answer::Rows { .. } => return Err(Error::source("a keyset request got a body without `scroll_param`")),
        }
        Ok(())
    }

    fn on_page(&mut self, rows: Vec<Row>, scroll_param: Option<String>, out: &mut Vec<Emit>) {
        let (Some(first), Some(last)) = (rows.first().map(|r| r.updated_at), rows.last().map(|r| r.updated_at)) else {
            self.next = None;
            return;
        };
        let len = rows.len() as u64;
        let beyond = rows.iter().any(|r| self.until.is_some_and(|u| r.updated_at >= u));
        for row in rows {
            if self.until.is_none_or(|u| row.updated_at < u) {
                self.rows_seen += 1;
                emit_row(row, out);
            }
        }
        self.cursor = self.cursor.max(last);
        if beyond {
            // The rest belongs to a later range.
            self.cursor = self.until.expect("beyond implies a bound");
            self.next = None;
            return;
        }
        let Some(token) = scroll_param else {
            self.next = None;
            return;
        };
        if first < last {
            // Restart inclusively at the last instant, so that its tie group is read whole.
            self.next = Some(Next::Since(last));
            return;
        }
        // A whole page of one instant: only the strict scroll moves on; report the loss.
        self.next = Some(Next::Scroll(token));
        if self.count_ties {
            self.counting = Some(TieCount { at: last, seen: len, at_or_after: None });
        } else {
            out.push(Emit::Warning(format!(
                "keyset: at least {len} rows share updatedAt {}, a whole page; the API's scroll skips those beyond the page (how many is unknown: set `tie_count_url` to count them)",
                format_instant(last)
            )));
        }
    }

    fn on_count(&mut self, total: u64, out: &mut Vec<Emit>) {
        let Some(count) = self.counting.as_mut() else { return };
        let Some(at_or_after) = count.at_or_after else {
            count.at_or_after = Some(total);
            return;
        };
        let group = at_or_after.saturating_sub(total);
        let lost = group.saturating_sub(count.seen);
        self.rows_at_risk += lost;
        out.push(Emit::Warning(format!(
            "keyset: {group} rows share updatedAt {}, more than a page; the API's scroll skips those beyond the page: {lost} rows at risk (not synced). Use the offset or timestamp strategy for this source.",
            format_instant(count.at)
        )));
        self.counting = None;
    }
}

/// The keyset strategy (see the module's documentation).
#[derive(Debug)]
pub struct Keyset {
    walk: KeysetWalk,
    last_checkpoint: Option<i64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct KeysetState {
    last_updated_at: Option<String>,
}

impl Keyset {
    /// Resumes from `state`; `count_ties` when a count endpoint is configured.
    pub fn new(state: &State, count_ties: bool) -> Result<Self, Error> {
        let saved: KeysetState = state.parse()?;
        let from = match saved.last_updated_at.as_deref() {
            Some(text) => parse_cursor("last_updated_at", text)?,
            None => 0,
        };
        let last_checkpoint = saved.last_updated_at.is_some().then_some(from);
        Ok(Keyset { walk: KeysetWalk::new(from, None, count_ties), last_checkpoint })
    }

    /// Rows lost to tie groups larger than a page during this sync.
    pub fn rows_at_risk(&self) -> u64 {
        self.walk.rows_at_risk
    }
}

impl Strategy for Keyset {
    fn next_request(&mut self) -> Option<Request> {
        self.walk.next_request()
    }

    fn on_answer(&mut self, answer: Answer, out: &mut Vec<Emit>) -> Result<(), Error> {
        self.walk.on_answer(answer, out)?;
        let cursor = self.walk.cursor();
        if self.walk.rows_seen > 0 && self.last_checkpoint != Some(cursor) {
            self.last_checkpoint = Some(cursor);
            out.push(Emit::Checkpoint(serde_json::json!({ "last_updated_at": format_instant(cursor) })));
        }
        Ok(())
    }
}
