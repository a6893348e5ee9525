//! The user endpoints: `/pagination/*` and `/incremental/*`, with the reference's parameters,
//! defaults, validation order, messages and response keys.

use std::ops::Range;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::http::header::HOST;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::stream;

use super::App;
use super::faults::BadRecord;
use super::params::Params;
use super::reply::{self, Refusal};
use crate::dataset::{Dataset, Ordered};
use crate::live::View;
use crate::render::{Corruption, IdStyle, RecordWriter, write_str};
use crate::timefmt::{self, UnixSeconds};

type Reply = Result<Response, Refusal>;

/// Rows per chunk of a streamed response (`/incremental/*` are not paginated).
const STREAM_CHUNK: usize = 1000;

/// Which rows, in which order.
#[derive(Clone, Copy, Debug)]
enum Order {
    UpdatedAt(Option<UnixSeconds>),
    CreatedAt(Option<UnixSeconds>),
    StepIds(u64, u64),
}

impl Order {
    fn select<'a>(&self, dataset: &'a Dataset, base_end: u32) -> Ordered<'a> {
        match *self {
            Order::UpdatedAt(since) => dataset.by_updated_at(since, base_end),
            Order::CreatedAt(since) => dataset.by_created_at(since, base_end),
            Order::StepIds(first, last) => dataset.by_step_id(first, last, base_end),
        }
    }

    fn id_style(&self, dataset: &Dataset, index: u32) -> IdStyle {
        match self {
            Order::StepIds(..) => IdStyle::Step(dataset.layout.step_id(index)),
            _ => IdStyle::Uuid,
        }
    }
}

/// Writes the records at `ranks` as list items (`a, b, c`); returns the row indices written.
fn write_rows(
    out: &mut Vec<u8>,
    view: &View,
    order: Order,
    ranks: Range<usize>,
    descending: bool,
    bad: Option<(usize, Corruption)>,
) -> Vec<u32> {
    let dataset = &view.dataset;
    let mut indices = order.select(dataset, view.base_end).slice(ranks);
    if descending {
        indices.reverse();
    }
    let mut writer = RecordWriter::new(dataset.layout.seed);
    out.reserve(indices.len() * 320);
    for (position, &index) in indices.iter().enumerate() {
        if position > 0 {
            out.extend_from_slice(b", ");
        }
        let row = dataset.row(index);
        let id = order.id_style(dataset, index);
        match bad {
            Some((at, corruption)) if at == position => writer.write_corrupted(out, &row, id, corruption),
            _ => writer.write(out, &row, id),
        }
    }
    indices
}

/// The position, within a response of `len` records, of the record a bad-record fault breaks.
fn bad_position(bad: Option<Extension<BadRecord>>, len: usize) -> Option<(usize, Corruption)> {
    bad.map(|Extension(BadRecord(c))| (len / 2, c))
}

fn check_order(order_by: &str, order_type: &str) -> Result<bool, Refusal> {
    if order_by != "createdAt" && order_by != "updatedAt" {
        return Err(Refusal::json(400, "Invalid value for 'order_by'. Use 'createdAt' or 'updatedAt'"));
    }
    if order_type != "asc" && order_type != "desc" {
        return Err(Refusal::json(400, "Invalid value for 'order_type'. Use 'asc' or 'desc'"));
    }
    Ok(order_type == "desc")
}

fn order_for(order_by: &str, since: Option<UnixSeconds>) -> Order {
    if order_by == "createdAt" { Order::CreatedAt(since) } else { Order::UpdatedAt(since) }
}

/// Ascending ranks to read for `skip..skip + take` of a possibly descending order of `total`.
fn ranks(total: usize, skip: i128, take: i128, descending: bool) -> Range<usize> {
    let clamp = |v: i128| v.clamp(0, total as i128) as usize;
    let (start, end) = (clamp(skip), clamp(skip.saturating_add(take)));
    if descending { total - end..total - start } else { start..end }
}

/// Python's `items[start:end]` for possibly negative bounds.
fn python_slice(total: usize, start: i128, end: i128) -> Range<usize> {
    let bound = |v: i128| if v < 0 { (v + total as i128).max(0) as usize } else { v.min(total as i128) as usize };
    let (start, end) = (bound(start), bound(end));
    start..end.max(start)
}

fn per_page_error(app: &App, name: &str) -> Refusal {
    Refusal::json(
        400,
        format!("Invalid value for '{name}'. It should be between 1 and {}.", app.config.page_size_limit),
    )
}

/// `GET /pagination/offset`
pub(crate) async fn offset(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    bad: Option<Extension<BadRecord>>,
) -> Reply {
    let p = Params::parse(query.as_deref());
    p.reject_unexpected(&["order_by", "order_type", "limit", "offset", "updated_since"])?;
    let order_by = p.get("order_by").unwrap_or("updatedAt");
    let order_type = p.get("order_type").unwrap_or("asc");
    let limit = p.int("limit").unwrap_or(10);
    let offset = p.int("offset").unwrap_or(0);
    if !(1..=i128::from(app.config.page_size_limit)).contains(&limit) {
        return Err(per_page_error(&app, "limit"));
    }
    if offset < 0 {
        return Err(Refusal::json(400, "Invalid value for 'offset'. It must be greater than or equal to 0."));
    }
    let descending = check_order(order_by, order_type)?;
    let order = order_for(order_by, p.since("updated_since")?);
    let view = app.live.view();
    let total = order.select(&view.dataset, view.base_end).len();
    let mut body = b"{\"data\": [".to_vec();
    let wanted = ranks(total, offset, limit, descending);
    write_rows(&mut body, &view, order, wanted.clone(), descending, bad_position(bad, wanted.len()));
    body.extend_from_slice(format!("], \"offset\": {offset}, \"limit\": {limit}, \"total\": {total}}}").as_bytes());
    Ok(reply::json(body))
}

/// `GET /pagination/page_number`
pub(crate) async fn page_number(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    bad: Option<Extension<BadRecord>>,
) -> Reply {
    let p = Params::parse(query.as_deref());
    p.reject_unexpected(&["order_by", "order_type", "per_page", "page", "updated_since"])?;
    let order_by = p.get("order_by").unwrap_or("updatedAt");
    let descending = check_order(order_by, p.get("order_type").unwrap_or("asc"))?;
    let per_page = p.int("per_page").unwrap_or(10);
    if !(1..=i128::from(app.config.page_size_limit)).contains(&per_page) {
        return Err(per_page_error(&app, "per_page"));
    }
    let page = p.int("page").unwrap_or(1);
    if page < 1 {
        return Err(Refusal::json(400, "Invalid value for 'page'. It must be greater than or equal to 1."));
    }
    let order = order_for(order_by, p.since("updated_since")?);
    let view = app.live.view();
    let total = order.select(&view.dataset, view.base_end).len();
    let wanted = ranks(total, (page - 1).saturating_mul(per_page), per_page, descending);
    let mut body = b"{\"data\": [".to_vec();
    write_rows(&mut body, &view, order, wanted.clone(), descending, bad_position(bad, wanted.len()));
    let total_pages = (total as i128 + per_page - 1) / per_page;
    let tail = format!(
        "], \"page\": {page}, \"page_size\": {per_page}, \"total_pages\": {total_pages}, \"total_items\": {total}}}"
    );
    body.extend_from_slice(tail.as_bytes());
    Ok(reply::json(body))
}

/// `GET /pagination/next_page_url`: like the reference, `page` is not validated, and a
/// negative page slices from the end as Python does.
pub(crate) async fn next_page_url(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    bad: Option<Extension<BadRecord>>,
) -> Reply {
    let p = Params::parse(query.as_deref());
    p.reject_unexpected(&["order_by", "order_type", "per_page", "updated_since", "page"])?;
    let order_by = p.get("order_by").unwrap_or("updatedAt");
    let order_type = p.get("order_type").unwrap_or("asc");
    let descending = check_order(order_by, order_type)?;
    let per_page = p.int("per_page").unwrap_or(10);
    if !(1..=i128::from(app.config.page_size_limit)).contains(&per_page) {
        return Err(per_page_error(&app, "per_page"));
    }
    let since = p.since("updated_since")?;
    let order = order_for(order_by, since);
    let page = p.int("page").unwrap_or(1);
    let view = app.live.view();
    let total = order.select(&view.dataset, view.base_end).len();
    let start = (page - 1).saturating_mul(per_page);
    let end = start.saturating_add(per_page);
    let slice = python_slice(total, start, end);
    let wanted = if descending { total - slice.end..total - slice.start } else { slice };
    let mut body = b"{\"data\": [".to_vec();
    write_rows(&mut body, &view, order, wanted.clone(), descending, bad_position(bad, wanted.len()));
    body.extend_from_slice(
        format!("], \"total_items\": {total}, \"page\": {page}, \"per_page\": {per_page}, \"next_page_url\": ")
            .as_bytes(),
    );
    if end < total as i128 {
        let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or(&app.authority);
        let mut url = format!(
            "http://{host}/pagination/next_page_url?page={}&per_page={per_page}&order_by={order_by}&order_type={order_type}",
            page + 1
        );
        if let Some(raw) = p.non_empty("updated_since") {
            url.push_str("&updated_since=");
            url.push_str(raw);
        }
        write_str(&mut body, &url);
    } else {
        body.extend_from_slice(b"null");
    }
    body.push(b'}');
    Ok(reply::json(body))
}

/// `GET /pagination/keyset`: `updated_since` (inclusive) on the first request, then the
/// returned `scroll_param` (strictly after the last row's `updatedAt`, as in the reference).
pub(crate) async fn keyset(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    bad: Option<Extension<BadRecord>>,
) -> Reply {
    let p = Params::parse(query.as_deref());
    p.reject_unexpected(&["scroll_param", "updated_since"])?;
    let scroll = p.non_empty("scroll_param");
    if scroll.is_some() && p.non_empty("updated_since").is_some() {
        return Err(Refusal::json(
            400,
            "You can only use 'updated_since' in first request, subsequent requests should use only 'scroll_param'",
        ));
    }
    let since = match (p.since("updated_since")?, scroll) {
        (Some(since), _) => Some(since),
        (None, Some(token)) => {
            Some(decode_scroll(token).ok_or_else(|| Refusal::json(400, "Invalid scroll_param value"))? + 1)
        }
        (None, None) => None,
    };
    let order = Order::UpdatedAt(since);
    let view = app.live.view();
    let page = app.config.page_size_limit as usize;
    let total = order.select(&view.dataset, view.base_end).len();
    let mut body = b"{\"data\": [".to_vec();
    let shown = write_rows(&mut body, &view, order, 0..page, false, bad_position(bad, total.min(page)));
    body.extend_from_slice(b"], \"scroll_param\": ");
    match shown.last() {
        Some(&last) if total > page => {
            let stamp = timefmt::format(view.dataset.row(last).updated_at);
            write_str(&mut body, &STANDARD.encode(stamp));
        }
        _ => body.extend_from_slice(b"null"),
    }
    body.push(b'}');
    Ok(reply::json(body))
}

/// Reads a scroll token as the reference does: lenient base64 (`base64.b64decode`), UTF-8,
/// then `strptime(…, "%Y-%m-%dT%H:%M:%SZ")`.
fn decode_scroll(token: &str) -> Option<UnixSeconds> {
    let decoded = python_b64decode(token)?;
    timefmt::parse_python(std::str::from_utf8(&decoded).ok()?, true)
}

/// Python's non-validating `base64.b64decode`: characters outside the alphabet are skipped,
/// data stops at the padding, and missing padding is an error.
pub(crate) fn python_b64decode(text: &str) -> Option<Vec<u8>> {
    let alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    let (data, padding) = match text.find('=') {
        Some(at) => (&text[..at], &text[at..]),
        None => (text, ""),
    };
    let data: Vec<u8> = data.bytes().filter(alphabet).collect();
    let missing = (4 - data.len() % 4) % 4;
    if missing == 3 || padding.bytes().filter(|b| *b == b'=').count() < missing {
        return None;
    }
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(&data).ok()
}

/// `GET /incremental/timestamp`: every row with `updatedAt >= since`, not paginated.
pub(crate) async fn timestamp(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    bad: Option<Extension<BadRecord>>,
) -> Reply {
    let p = Params::parse(query.as_deref());
    p.reject_unexpected(&["since"])?;
    let order = Order::UpdatedAt(p.since("since")?);
    Ok(stream_all(app.live.view(), order, bad))
}

/// `GET /incremental/step`: the rows whose step id is in `start_id..=end_id`, `id` replaced
/// by the step id.
pub(crate) async fn step(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    bad: Option<Extension<BadRecord>>,
) -> Reply {
    let p = Params::parse(query.as_deref());
    p.reject_unexpected(&["start_id", "end_id"])?;
    let (Some(start), Some(end)) = (p.int("start_id"), p.int("end_id")) else {
        return Err(Refusal::json(400, "Both 'start_id' and 'end_id' parameters are required"));
    };
    if start < 1 {
        return Err(Refusal::json(400, "Invalid value for 'start_id'. It must be greater than or equal to 1."));
    }
    if end < start {
        return Err(Refusal::json(400, "Invalid value for 'end_id'. It must be greater than or equal to 'start_id'."));
    }
    let clamp = |v: i128| v.min(i128::from(u64::MAX)) as u64;
    Ok(stream_all(app.live.view(), Order::StepIds(clamp(start), clamp(end)), bad))
}

/// `{"data": [every row of order]}`, in one piece when small, streamed in chunks otherwise so
/// that a response of millions of rows costs one chunk of memory.
fn stream_all(view: View, order: Order, bad: Option<Extension<BadRecord>>) -> Response {
    let total = order.select(&view.dataset, view.base_end).len();
    let bad = bad_position(bad, total);
    if total <= STREAM_CHUNK {
        let mut body = b"{\"data\": [".to_vec();
        write_rows(&mut body, &view, order, 0..total, false, bad);
        body.extend_from_slice(b"]}");
        return reply::json(body);
    }
    let chunks = stream::iter((0..total.div_ceil(STREAM_CHUNK)).map(move |chunk| {
        let ranks = chunk * STREAM_CHUNK..((chunk + 1) * STREAM_CHUNK).min(total);
        let mut out = if chunk == 0 { b"{\"data\": [".to_vec() } else { b", ".to_vec() };
        let bad = bad.filter(|(at, _)| ranks.contains(at)).map(|(at, c)| (at - ranks.start, c));
        let last = ranks.end == total;
        write_rows(&mut out, &view, order, ranks, false, bad);
        if last {
            out.extend_from_slice(b"]}");
        }
        Ok::<_, std::convert::Infallible>(Bytes::from(out))
    }));
    reply::json_stream(Body::from_stream(chunks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_behave_like_python() {
        assert_eq!(python_slice(200, 20, 30), 20..30);
        assert_eq!(python_slice(200, -2, -1), 198..199);
        assert!(python_slice(200, -10, 0).is_empty());
        assert_eq!(python_slice(5, 3, 100), 3..5);
        assert_eq!(python_slice(5, -100, 2), 0..2);
    }

    #[test]
    fn descending_ranks_mirror_ascending_ones() {
        assert_eq!(ranks(10, 0, 3, false), 0..3);
        assert_eq!(ranks(10, 0, 3, true), 7..10);
        assert_eq!(ranks(10, 8, 5, true), 0..2);
        assert_eq!(ranks(10, 20, 5, true), 0..0);
    }

    #[test]
    fn scroll_tokens_decode_leniently_like_python() {
        let token = STANDARD.encode("2026-11-13T12:07:18Z");
        assert_eq!(decode_scroll(&token), timefmt::parse_python("2026-11-13T12:07:18", false));
        assert_eq!(python_b64decode("YWJj"), Some(b"abc".to_vec()));
        assert_eq!(python_b64decode("YW Jj!"), Some(b"abc".to_vec()), "junk characters are skipped");
        assert_eq!(python_b64decode("YWI="), Some(b"ab".to_vec()));
        assert_eq!(python_b64decode("YWI"), None, "missing padding");
        assert_eq!(python_b64decode("@@@"), Some(Vec::new()), "nothing left to decode is not an error");
        assert_eq!(decode_scroll(&STANDARD.encode("not a date")), None);
    }
}
