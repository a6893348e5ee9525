//! The six strategies, each a pure state machine: it proposes the next request, reads the
//! answer, and says what to emit (rows, deletes, checkpoints, warnings). No I/O happens here,
//! so the property tests drive the same code against a model of the API; [`drive`] connects a
//! strategy to the HTTP source and to the engine.

mod keyset;
mod offset;
mod priority_first;
mod replay;
mod step_size;
mod timestamp;

use inlet_sdk::{Error, Operations, Record, State, Table};

pub use self::keyset::Keyset;
pub use self::offset::Offset;
pub use self::priority_first::PriorityFirst;
pub use self::replay::Replay;
pub use self::step_size::StepSize;
pub use self::timestamp::Timestamp;
use crate::config::{Settings, StrategyName};
use crate::page::{self, KeysetPage, OffsetPage, RecordStream};
use crate::source::{BodyError, ChunkConsumer, Source, StreamError};
use crate::user::{self, Row};

/// Which endpoint a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The strategy's `base_url`.
    Data,
    /// The offset endpoint that reads a tie group larger than a keyset page (`offset_url`).
    TieGroup,
}

/// How the answer is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// `{"data": [...], "scroll_param": …}`
    Keyset,
    /// `{"data": [...], "total": n, …}`
    Offset,
    /// `{"data": [...]}` of any size, read as it streams.
    Stream,
}

/// A request a strategy wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Where.
    pub endpoint: Endpoint,
    /// The query parameters, in order.
    pub params: Vec<(&'static str, String)>,
    /// The answer's shape.
    pub body: Body,
}

/// An answer, as a strategy reads it.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// A keyset page.
    Keyset {
        /// Its rows.
        rows: Vec<Row>,
        /// The token for the rest, if any.
        scroll_param: Option<String>,
    },
    /// An offset page.
    Offset {
        /// Its rows.
        rows: Vec<Row>,
        /// Rows matching the filter in all pages.
        total: u64,
    },
    /// A part of a streamed body; `complete` on the last part (which may have no rows).
    Rows {
        /// The rows of this part.
        rows: Vec<Row>,
        /// Whether the body ends here.
        complete: bool,
    },
}

/// What a strategy asks the connector to emit.
#[derive(Clone, Debug, PartialEq)]
pub enum Emit {
    /// Upsert this record into `user`.
    Upsert(Record),
    /// Mark the row with this key deleted.
    Delete(Record),
    /// Checkpoint this state.
    Checkpoint(serde_json::Value),
    /// Tell the user.
    Warning(String),
}

/// A strategy's contract: `next_request` until it says `None`; after each request, the answer
/// to it (all parts of a streamed body, the last one `complete`) goes to `on_answer`. An
/// answer may be seen twice (a streamed body retried from its start): strategies tolerate it.
pub trait Strategy: Send {
    /// The next request, or `None` when this sync is done.
    fn next_request(&mut self) -> Option<Request>;

    /// Reads (part of) the answer to the last request.
    fn on_answer(&mut self, answer: Answer, out: &mut Vec<Emit>) -> Result<(), Error>;

    /// Up to `n` requests this strategy expects to send after the one `next_request` just
    /// returned, if the answers come as expected, so they can be fetched while it works. Only
    /// a guess: answers still reach `on_answer` in the strategy's own order, and a guess it
    /// does not ask for is thrown away. A strategy whose next request depends on the answer
    /// to the last one guesses nothing.
    fn lookahead(&self, _n: usize) -> Vec<Request> {
        Vec::new()
    }
}

/// Builds the strategy of `settings` from the saved `state`.
pub fn build(settings: &Settings, state: &State) -> Result<Box<dyn Strategy>, Error> {
    let now = jiff::Timestamp::now().as_second();
    Ok(match settings.strategy {
        StrategyName::Keyset => {
            Box::new(Keyset::new(state, settings.offset_url.is_some().then_some(settings.page_size))?)
        }
        StrategyName::Offset => Box::new(Offset::new(state, settings.page_size)?),
        StrategyName::Timestamp => Box::new(Timestamp::new(state)?),
        StrategyName::Replay => Box::new(Replay::new(state, settings.buffer)?),
        StrategyName::StepSize => Box::new(StepSize::new(state, settings)?),
        StrategyName::PriorityFirst => Box::new(PriorityFirst::new(state, settings, now)?),
    })
}

/// Emits a row: an upsert, followed by a delete when it is a tombstone.
pub(crate) fn emit_row(row: Row, out: &mut Vec<Emit>) {
    let deleted = row.deleted.then(|| Record::new().with("id", &*row.id()));
    out.push(Emit::Upsert(row.record));
    if let Some(keys) = deleted {
        out.push(Emit::Delete(keys));
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the API's only accepted timestamp format. Most requests carry one:
/// its digits are written one by one, as `strftime` would write them, at a tenth of its cost.
pub(crate) fn format_instant(seconds: i64) -> String {
    let at = jiff::Timestamp::from_second(seconds).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let t = jiff::tz::Offset::UTC.to_datetime(at);
    if t.year() < 0 {
        // Only a hand-written state gets here.
        return at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    let mut text = String::with_capacity(20);
    let fields = [
        ("", t.year() as u32, 4),
        ("-", t.month() as u32, 2),
        ("-", t.day() as u32, 2),
        ("T", t.hour() as u32, 2),
        (":", t.minute() as u32, 2),
        (":", t.second() as u32, 2),
    ];
    for (separator, value, digits) in fields {
        text.push_str(separator);
        for place in (0..digits).rev() {
            text.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
        }
    }
    text.push('Z');
    text
}

/// Reads a cursor saved in a state: the API's format or any RFC 3339 instant.
pub(crate) fn parse_cursor(key: &str, text: &str) -> Result<i64, Error> {
    text.parse::<jiff::Timestamp>().map(|t| t.as_second()).map_err(|_| {
        Error::state(format!("saved state key `{key}`: {text:?} is not a timestamp such as 2024-01-15T10:30:00Z"))
    })
}

/// Runs `strategy` to its end: sends its requests through `source`, checks every record
/// against `table`, and emits what it asks on `operations`. With `settings.concurrency` above
/// one, the requests the strategy expects next are fetched ahead (see [`Strategy::lookahead`]).
pub async fn drive(
    strategy: &mut dyn Strategy,
    source: &Source,
    settings: &Settings,
    table: &Table,
    operations: &mut Operations,
) -> Result<(), Error> {
    let ahead_limit = settings.concurrency.saturating_sub(1) as usize;
    let mut ahead: Vec<Prefetch> = Vec::new();
    let mut out = Vec::new();
    while let Some(request) = strategy.next_request() {
        let guesses = if ahead_limit > 0 { strategy.lookahead(ahead_limit) } else { Vec::new() };
        let answered = ahead.iter().position(|p| p.request == request).map(|at| ahead.swap_remove(at));
        ahead.retain(|p| guesses.contains(&p.request));
        for guess in guesses {
            if ahead.len() < ahead_limit && !ahead.iter().any(|p| p.request == guess) {
                ahead.push(Prefetch::start(guess, source, settings, table)?);
            }
        }
        match answered {
            Some(prefetch) => strategy.on_answer(prefetch.answer().await?, &mut out)?,
            None => fetch(&request, strategy, source, settings, table, operations, &mut out).await?,
        }
        emit(&mut out, operations).await?;
    }
    Ok(())
}

/// Sends `request` now and hands its answer to `strategy`; a streamed body goes to it part
/// by part, so that a response of any size costs a part of memory.
async fn fetch(
    request: &Request,
    strategy: &mut dyn Strategy,
    source: &Source,
    settings: &Settings,
    table: &Table,
    operations: &mut Operations,
    out: &mut Vec<Emit>,
) -> Result<(), Error> {
    let url = url_for(request, settings)?;
    if request.body == Body::Stream {
        let mut consumer = Streaming { strategy, table, operations, parser: RecordStream::default(), out: Vec::new() };
        return source.stream(&url, &mut consumer).await;
    }
    let answer = source.get(&url, |body| parse_whole(request.body, table, body)).await?;
    strategy.on_answer(answer, out)
}

/// Parses and checks a whole body of the given shape.
fn parse_whole(shape: Body, table: &Table, body: &[u8]) -> Result<Answer, BodyError> {
    Ok(match shape {
        Body::Keyset => {
            let page: KeysetPage = page::parse(body)?;
            Answer::Keyset { rows: user::check_all(table, page.data)?, scroll_param: page.scroll_param }
        }
        Body::Offset => {
            let page: OffsetPage = page::parse(body)?;
            Answer::Offset { rows: user::check_all(table, page.data)?, total: page.total }
        }
        Body::Stream => {
            let (mut parser, mut records) = (RecordStream::default(), Vec::new());
            parser.feed(body, &mut records)?;
            parser.finish()?;
            Answer::Rows { rows: user::check_all(table, records)?, complete: true }
        }
    })
}

/// A request fetched ahead on its own task, parsed whole; dropping it cancels the request.
struct Prefetch {
    request: Request,
    task: tokio::task::JoinHandle<Result<Answer, Error>>,
}

impl Prefetch {
    fn start(request: Request, source: &Source, settings: &Settings, table: &Table) -> Result<Self, Error> {
        let url = url_for(&request, settings)?;
        let (source, table, shape) = (source.clone(), table.clone(), request.body);
        let task = tokio::spawn(async move { source.get(&url, |body| parse_whole(shape, &table, body)).await });
        Ok(Prefetch { request, task })
    }

    async fn answer(mut self) -> Result<Answer, Error> {
        (&mut self.task).await.map_err(|e| Error::source(format!("a request fetched ahead failed: {e}")))?
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn url_for(request: &Request, settings: &Settings) -> Result<reqwest::Url, Error> {
    let base = match request.endpoint {
        Endpoint::Data => &settings.base_url,
        Endpoint::TieGroup => settings
            .offset_url
            .as_ref()
            .ok_or_else(|| Error::configuration("configuration key `offset_url` is needed to read tie groups"))?,
    };
    let mut url = base.clone();
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in &request.params {
            query.append_pair(key, value);
        }
    }
    Ok(url)
}

async fn emit(out: &mut Vec<Emit>, operations: &mut Operations) -> Result<(), Error> {
    for emitted in out.drain(..) {
        match emitted {
            Emit::Upsert(record) => operations.upsert("user", record).await?,
            Emit::Delete(keys) => operations.delete("user", keys).await?,
            Emit::Checkpoint(state) => operations.checkpoint(&state).await?,
            Emit::Warning(message) => operations.warning(message),
        }
    }
    Ok(())
}

/// Feeds a streamed body to a strategy part by part, emitting as it goes.
struct Streaming<'a> {
    strategy: &'a mut dyn Strategy,
    table: &'a Table,
    operations: &'a mut Operations,
    parser: RecordStream,
    out: Vec<Emit>,
}

impl Streaming<'_> {
    async fn deliver(&mut self, records: Vec<inlet_sdk::Record>, complete: bool) -> Result<(), StreamError> {
        let rows = user::check_all(self.table, records).map_err(StreamError::Body)?;
        self.strategy.on_answer(Answer::Rows { rows, complete }, &mut self.out).map_err(StreamError::Stopped)?;
        emit(&mut self.out, self.operations).await.map_err(StreamError::Stopped)
    }
}

impl ChunkConsumer for Streaming<'_> {
    fn restart(&mut self) {
        self.parser = RecordStream::default();
    }

    async fn consume(&mut self, chunk: &[u8]) -> Result<(), StreamError> {
        let mut records = Vec::new();
        self.parser.feed(chunk, &mut records).map_err(StreamError::Body)?;
        if records.is_empty() {
            return Ok(());
        }
        self.deliver(records, false).await
    }

    async fn finish(&mut self) -> Result<(), StreamError> {
        self.parser.finish().map_err(StreamError::Body)?;
        self.deliver(Vec::new(), true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_written_as_strftime_writes_them() {
        let (first, last) = (jiff::Timestamp::MIN.as_second(), jiff::Timestamp::MAX.as_second());
        let mut seconds = vec![first, -1, 0, 59, 86_399, 951_782_400, 1_700_000_000, 4_102_444_800, last];
        // Every field's carry, over the whole range a saved cursor may hold.
        seconds.extend((0..4_000).map(|i: i64| first + i * 126_230_400_001 % (last - first)));
        for s in seconds {
            let expected = jiff::Timestamp::from_second(s).unwrap().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
            assert_eq!(format_instant(s), expected, "{s}");
        }
    }
}
