//! Keyset pagination on `updatedAt`: `updated_since=<cursor>`, then `scroll_param` tokens.
//!
//! The seed follows the scroll token to the end, but the token continues *strictly after* the
//! page's last `updatedAt`: rows sharing that instant beyond the page are skipped. Here, a page
//! that holds more than one instant ends the request chain, and the next request starts again
//! inclusively at the page's last instant (`updated_since`), so a tie group cut by a page end
//! is read whole, at the price of reading its first part twice (upserts make that harmless).
//!
//! A page made of a single instant cannot be followed that way: restarting would return the
//! same page for ever, and the scroll skips the rest of the group. The rest is then read through
//! the offset endpoint beside the keyset one (`offset_url`; the reference API and the playground
//! have one), page by page with a one-row overlap that detects rows moving mid-read, and the
//! walk goes on with the scroll token. Without an offset endpoint, the rows beyond the page are
//! lost and the loss is reported.
//!
//! State: `{"last_updated_at": "<instant>"}`, the seed's key and format: every row updated
//! before that instant is synced; rows at that instant are read again next time.

use inlet_sdk::{Error, State};
use serde::{Deserialize, Serialize};

use super::{Answer, Body, Emit, Endpoint, Request, Strategy, emit_row, format_instant, parse_cursor};
use crate::user::Row;

/// Re-reads of one tie group in a row before giving up: it changes faster than it can be read.
const MAX_GROUP_RESTARTS: u32 = 20;

/// A tie-safe walk over `[from, until)` of a keyset endpoint; shared with priority-first.
#[derive(Debug)]
pub(crate) struct KeysetWalk {
    next: Option<Next>,
    /// Every row updated before this instant has been read.
    cursor: i64,
    until: Option<i64>,
    /// Page size on the offset endpoint, when there is one to read large tie groups.
    group_page: Option<u32>,
    group: Option<TieGroup>,
    /// Rows with `updatedAt` in the walk's range seen by this walk.
    pub rows_seen: u64,
    /// The newest `updatedAt` any keyset page showed, in range or beyond: an instant of the
    /// API's own clock that has passed.
    pub newest: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
enum Next {
    Since(i64),
    Scroll(String),
}

/// Reading the rest of a tie group at `at` through the offset endpoint.
#[derive(Clone, Debug, PartialEq)]
struct TieGroup {
    at: i64,
    /// Rows of the group read so far, in the endpoint's order.
    read: u64,
    /// The id the next page must start with (the overlap row).
    expected_first: Option<String>,
    restarts: u32,
    /// Rows read beyond the keyset page.
    recovered: u64,
    /// Where the keyset walk resumes once the group is read.
    resume: String,
}

impl KeysetWalk {
    pub(crate) fn new(from: i64, until: Option<i64>, group_page: Option<u32>) -> Self {
        KeysetWalk {
            next: Some(Next::Since(from)),
            cursor: from,
            until,
            group_page,
            group: None,
            rows_seen: 0,
            newest: None,
        }
    }

    /// Every row updated before this instant has been read (the inclusive restart point).
    pub(crate) fn cursor(&self) -> i64 {
        self.cursor
    }

    pub(crate) fn next_request(&self) -> Option<Request> {
        if let Some(group) = &self.group {
            let params = vec![
                ("order_by", "updatedAt".to_owned()),
                ("order_type", "asc".to_owned()),
                ("updated_since", format_instant(group.at)),
                ("limit", self.group_page.unwrap_or(50).to_string()),
                ("offset", group.read.saturating_sub(1).to_string()),
            ];
            return Some(Request { endpoint: Endpoint::TieGroup, params, body: Body::Offset });
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
        self.next.is_none() && self.group.is_none()
    }

    pub(crate) fn on_answer(&mut self, answer: Answer, out: &mut Vec<Emit>) -> Result<(), Error> {
        match answer {
            Answer::Offset { rows, total } => self.on_group_page(rows, total, out),
            Answer::Keyset { rows, scroll_param } => {
                self.on_page(rows, scroll_param, out);
                Ok(())
            }
            Answer::Rows { .. } => Err(Error::source("a keyset request got a body without `scroll_param`")),
        }
    }

    fn emit(&mut self, row: Row, out: &mut Vec<Emit>) {
        if self.until.is_none_or(|u| row.updated_at < u) {
            self.rows_seen += 1;
            emit_row(row, out);
        }
    }

    fn on_page(&mut self, rows: Vec<Row>, scroll_param: Option<String>, out: &mut Vec<Emit>) {
        let (Some(first), Some(last)) =
            (rows.first().map(|r| r.updated_at), rows.last().map(|r| (r.updated_at, r.id().into_owned())))
        else {
            self.next = None;
            return;
        };
        let len = rows.len() as u64;
        self.newest = rows.iter().map(|r| r.updated_at).chain(self.newest).max();
        let beyond = rows.iter().any(|r| self.until.is_some_and(|u| r.updated_at >= u));
        for row in rows {
            self.emit(row, out);
        }
        self.cursor = self.cursor.max(last.0);
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
        if first < last.0 {
            // Restart inclusively at the last instant, so that its tie group is read whole.
            self.next = Some(Next::Since(last.0));
            return;
        }
        // A whole page of one instant: the scroll would skip the rest of the group.
        self.next = Some(Next::Scroll(token.clone()));
        if self.group_page.is_some() {
            self.group = Some(TieGroup {
                at: last.0,
                read: len,
                expected_first: Some(last.1),
                restarts: 0,
                recovered: 0,
                resume: token,
            });
        } else {
            out.push(Emit::Warning(format!(
                "keyset: at least {len} rows share updatedAt {}, a whole page; the API's scroll skips those beyond the page, and without an offset endpoint (`offset_url`) they cannot be read or counted: rows at risk",
                format_instant(last.0)
            )));
        }
    }

    fn on_group_page(&mut self, rows: Vec<Row>, total: u64, out: &mut Vec<Emit>) -> Result<(), Error> {
        let Some(mut group) = self.group.take() else {
            return Err(Error::source("an offset page arrived while no tie group was being read"));
        };
        let offset = group.read.saturating_sub(1);
        let overlap = group.expected_first.as_ref().map(|expected| rows.first().is_some_and(|r| *r.id() == **expected));
        if overlap == Some(false) {
            // Rows of the group moved (updated away): read it again from its first row.
            group.restarts += 1;
            if group.restarts > MAX_GROUP_RESTARTS {
                return Err(Error::source(format!(
                    "keyset: the rows updated at {} keep changing while they are read ({MAX_GROUP_RESTARTS} re-reads in a row); try again later",
                    format_instant(group.at)
                )));
            }
            group.read = 0;
            group.expected_first = None;
            self.group = Some(group);
            return Ok(());
        }
        let received = rows.len() as u64;
        let skip = usize::from(overlap == Some(true));
        let mut finished = offset + received >= total;
        let mut last_id = None;
        for row in rows.into_iter().skip(skip) {
            if row.updated_at != group.at {
                finished = true;
                break;
            }
            group.read += 1;
            group.recovered += 1;
            last_id = Some(row.id().into_owned());
            self.emit(row, out);
        }
        if received <= skip as u64 && !finished {
            return Err(Error::source(
                "keyset: the offset endpoint returned no new row of a tie group although `total` says more remain",
            ));
        }
        if finished {
            out.push(Emit::Warning(format!(
                "keyset: {} rows share updatedAt {}, more than a page; the {} beyond the keyset page were read through the offset endpoint",
                group.read,
                format_instant(group.at),
                group.recovered
            )));
            self.next = Some(Next::Scroll(group.resume));
        } else {
            group.expected_first = last_id.or(group.expected_first);
            self.group = Some(group);
        }
        Ok(())
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
    /// Resumes from `state`; `group_page` is the page size on the offset endpoint, if any.
    pub fn new(state: &State, group_page: Option<u32>) -> Result<Self, Error> {
        let saved: KeysetState = state.parse()?;
        let from = match saved.last_updated_at.as_deref() {
            Some(text) => parse_cursor("last_updated_at", text)?,
            None => 0,
        };
        let last_checkpoint = saved.last_updated_at.is_some().then_some(from);
        Ok(Keyset { walk: KeysetWalk::new(from, None, group_page), last_checkpoint })
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
