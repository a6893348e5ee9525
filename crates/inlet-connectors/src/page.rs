//! Response bodies of the seeds' API: paginated pages, parsed whole (their metadata comes after
//! the data), and unpaginated `{"data": [...]}` bodies, parsed as they stream in.

use inlet_sdk::Record;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::source::BodyError;

/// `/pagination/keyset`: `{"data": [...], "scroll_param": "…" | null}`.
#[derive(Debug, Deserialize)]
pub struct KeysetPage {
    /// The records.
    pub data: Vec<Record>,
    /// The token for the rest, or `null` at the end.
    pub scroll_param: Option<String>,
}

/// `/pagination/offset`: `{"data": [...], "offset": n, "limit": n, "total": n}`.
#[derive(Debug, Deserialize)]
pub struct OffsetPage {
    /// The records.
    pub data: Vec<Record>,
    /// Rows matching the filter, in all pages.
    pub total: u64,
}

/// Parses a whole JSON body. Its UTF-8 is checked once, in one pass over the body: parsed
/// from bytes, `serde_json` checks each string on its own, which cost more than a tenth of
/// the parsing.
pub fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BodyError> {
    let text = std::str::from_utf8(body).map_err(not_utf8)?;
    serde_json::from_str(text).map_err(|e| format!("not the expected JSON ({e})"))
}

fn not_utf8(error: std::str::Utf8Error) -> BodyError {
    format!("not the expected JSON (not UTF-8: {error})")
}

/// Where a streamed `{"data": [...]}` body stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before the `data` array: reading keys.
    Keys,
    /// Inside the array.
    Items,
    /// After the array: other keys until the closing brace.
    Rest,
    /// The body is complete.
    Done,
}

/// What may come next inside the body's object or its `data` list: `[{…},, {…}]`, `[{…}
/// {…}]` and `[{…},]` are not JSON, and are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// The first key or record, or the closing bracket of an empty object or list.
    First,
    /// A comma, or the closing bracket.
    Separator,
    /// A key or record, after a comma.
    Element,
}

/// Parses `{"data": [record, …], …}` incrementally: feed it chunks, get records.
#[derive(Debug)]
pub struct RecordStream {
    /// The body from the first byte not yet consumed on, its UTF-8 checked as it arrived.
    buffer: String,
    /// The end of the last chunk when it stopped inside a character, held for the next.
    partial: Vec<u8>,
    position: usize,
    phase: Phase,
    opened: bool,
    expect: Expect,
}

impl Default for RecordStream {
    fn default() -> Self {
        RecordStream {
            buffer: String::new(),
            partial: Vec::new(),
            position: 0,
            phase: Phase::Keys,
            opened: false,
            expect: Expect::First,
        }
    }
}

impl RecordStream {
    /// Adds `chunk` and appends the records now complete to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Record>) -> Result<(), BodyError> {
        if self.position > 1 << 16 {
            self.buffer.drain(..self.position);
            self.position = 0;
        }
        self.append(chunk)?;
        while self.step(out)? {}
        Ok(())
    }

    /// Appends `chunk` to the buffer once its UTF-8 is checked (as in [`parse`]): a character
    /// split between two chunks waits for its end.
    fn append(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        let joined;
        let bytes = if self.partial.is_empty() {
            chunk
        } else {
            self.partial.extend_from_slice(chunk);
            joined = std::mem::take(&mut self.partial);
            &joined[..]
        };
        match std::str::from_utf8(bytes) {
            Ok(text) => self.buffer.push_str(text),
            Err(e) if e.error_len().is_none() => {
                let (whole, rest) = bytes.split_at(e.valid_up_to());
                self.buffer.push_str(std::str::from_utf8(whole).map_err(not_utf8)?);
                self.partial = rest.to_vec();
            }
            Err(e) => return Err(not_utf8(e)),
        }
        Ok(())
    }

    /// Checks that the body ended where a complete body ends.
    pub fn finish(&mut self) -> Result<(), BodyError> {
        self.skip_whitespace();
        if self.phase == Phase::Done && self.position == self.buffer.len() && self.partial.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the body ends early or has trailing bytes (at byte {} of {})",
                self.position,
                self.buffer.len() + self.partial.len()
            ))
        }
    }

    fn skip_whitespace(&mut self) {
        while self.buffer.as_bytes().get(self.position).is_some_and(u8::is_ascii_whitespace) {
            self.position += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.buffer.as_bytes().get(self.position).copied()
    }

    /// Parses one value at the current position: `Ok(None)` if the buffer holds only part of it.
    fn value<T: for<'de> Deserialize<'de>>(&mut self) -> Result<Option<T>, BodyError> {
        // Positions only ever stop after ASCII punctuation, whitespace or a whole value.
        let mut values = serde_json::Deserializer::from_str(&self.buffer[self.position..]).into_iter::<T>();
        match values.next() {
            Some(Ok(value)) => {
                self.position += values.byte_offset();
                Ok(Some(value))
            }
            Some(Err(e)) if e.is_eof() => Ok(None),
            Some(Err(e)) => Err(format!("not the expected JSON ({e})")),
            None => Ok(None),
        }
    }

    /// Makes one step of progress; `false` when more bytes are needed (or the body is done).
    fn step(&mut self, out: &mut Vec<Record>) -> Result<bool, BodyError> {
        let Some(next) = self.peek() else { return Ok(false) };
        let at = self.position;
        let unexpected = || format!("not the expected JSON (unexpected `{}` at byte {at})", char::from(next));
        match self.phase {
            Phase::Keys | Phase::Rest if !self.opened => {
                if next != b'{' {
                    return Err("the body is not a JSON object".into());
                }
                self.opened = true;
                self.position += 1;
            }
            Phase::Keys | Phase::Rest => match (next, self.expect) {
                (b',', Expect::Separator) => {
                    self.position += 1;
                    self.expect = Expect::Element;
                }
                (b'}', Expect::First | Expect::Separator) => {
                    if self.phase == Phase::Keys {
                        return Err("the body has no `data` list".into());
                    }
                    self.position += 1;
                    self.phase = Phase::Done;
                }
                (b'"', Expect::First | Expect::Element) => return self.key_and_value(),
                _ => return Err(unexpected()),
            },
            Phase::Items => match (next, self.expect) {
                (b',', Expect::Separator) => {
                    self.position += 1;
                    self.expect = Expect::Element;
                }
                (b']', Expect::First | Expect::Separator) => {
                    self.position += 1;
                    self.phase = Phase::Rest;
                    self.expect = Expect::Separator;
                }
                (b',' | b']', _) | (_, Expect::Separator) => return Err(unexpected()),
                _ => match self.value::<Record>()? {
                    Some(record) => {
                        out.push(record);
                        self.expect = Expect::Separator;
                    }
                    None => return Ok(false),
                },
            },
            Phase::Done => return Ok(false),
        }
        Ok(true)
    }

    /// Reads a key, its colon, and for `data` the opening bracket; else the whole value.
    /// Reads nothing, and returns `false`, until all of that has arrived.
    fn key_and_value(&mut self) -> Result<bool, BodyError> {
        let start = self.position;
        let Some(key) = self.value::<String>()? else { return Ok(false) };
        match self.peek() {
            Some(b':') => self.position += 1,
            Some(_) => return Err("a key without a value".into()),
            None => {
                self.position = start;
                return Ok(false);
            }
        }
        if key == "data" {
            if self.phase != Phase::Keys {
                return Err("the body has two `data` lists".into());
            }
            return match self.peek() {
                Some(b'[') => {
                    self.position += 1;
                    self.phase = Phase::Items;
                    self.expect = Expect::First;
                    Ok(true)
                }
                Some(_) => Err("`data` is not a list".into()),
                None => {
                    self.position = start;
                    Ok(false)
                }
            };
        }
        if self.peek().is_none() || self.value::<IgnoredAny>()?.is_none() {
            self.position = start;
            return Ok(false);
        }
        self.expect = Expect::Separator;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"data": [{"id": "1", "n": 1}, {"id": "2", "address": "Zoë, 東京\nb"}, {"id": "3"}], "extra": {"k": [1, 2]}}"#;

    #[test]
    fn any_split_of_the_body_gives_the_same_records() {
        #[derive(Deserialize)]
        struct Whole {
            data: Vec<Record>,
        }
        let whole = serde_json::from_str::<Whole>(BODY).unwrap().data;
        for size in 1..BODY.len() {
            let mut stream = RecordStream::default();
            let mut out = Vec::new();
            for chunk in BODY.as_bytes().chunks(size) {
                stream.feed(chunk, &mut out).unwrap();
            }
            stream.finish().unwrap();
            assert_eq!(out, whole, "chunks of {size}");
        }
    }

    #[test]
    fn broken_bodies_are_refused() {
        for bad in [
            r#"{"data": [{"id": 1}"#,
            r#"{"data": [{"id": 1}]"#,
            r#"[1]"#,
            r#"{"rows": []}"#,
            r#"{"data": {"id": 1}}"#,
            r#"{"data": [{"id" 1}]}"#,
            r#"{"data": [{"id": 1},, {"id": 2}]}"#,
            r#"{"data": [, {"id": 1}]}"#,
            r#"{"data": [{"id": 1},]}"#,
            r#"{"data": [{"id": 1} {"id": 2}]}"#,
            r#"{"n": 1 "data": []}"#,
            r#"{"data": [], "n": 1,}"#,
            r#"{, "data": []}"#,
            r#"{"data": [], "data": [{"id": 1}]}"#,
        ] {
            let mut stream = RecordStream::default();
            let mut out = Vec::new();
            let result = stream.feed(bad.as_bytes(), &mut out).and_then(|()| stream.finish());
            assert!(result.is_err(), "{bad} should be refused");
        }
        for size in [1, 3, 100] {
            let (mut stream, mut out) = (RecordStream::default(), Vec::new());
            let result = b"{\"data\": [{\"id\": \"1\"}, {\"id\": \"\xff\"}]}"
                .chunks(size)
                .try_for_each(|chunk| stream.feed(chunk, &mut out));
            assert!(result.unwrap_err().contains("not UTF-8"), "chunks of {size}");
        }
        let (mut stream, mut out) = (RecordStream::default(), Vec::new());
        stream.feed("{\"data\": []}\u{e9}".as_bytes().split_last().unwrap().1, &mut out).unwrap();
        assert!(stream.finish().unwrap_err().contains("ends early or has trailing bytes"), "a character cut off");
    }

    #[test]
    fn pages_parse_with_their_metadata() {
        let page: KeysetPage = parse(br#"{"data": [{"id": "1"}], "scroll_param": null}"#).unwrap();
        assert_eq!((page.data.len(), page.scroll_param), (1, None));
        let page: OffsetPage = parse(br#"{"data": [], "offset": 0, "limit": 50, "total": 7}"#).unwrap();
        assert_eq!(page.total, 7);
        assert!(parse::<OffsetPage>(b"{\"data\": [").unwrap_err().starts_with("not the expected JSON"));
        let latin1 = parse::<OffsetPage>(b"{\"data\": [{\"id\": \"Zo\xeb\"}], \"total\": 1}").unwrap_err();
        assert!(latin1.contains("not UTF-8") && latin1.contains("index 20"), "{latin1}");
    }
}
