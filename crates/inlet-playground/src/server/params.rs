//! Query parameters read the way Flask's `request.args` reads them, so that every odd input
//! gets the reference's answer: the first value of a repeated key wins, `+` is a space, and
//! `get(key, type=int, default=d)` falls back to `d` when the value is not an integer.

use std::collections::BTreeSet;

use super::reply::Refusal;
use crate::timefmt::{self, UnixSeconds};

/// The reference's message for a timestamp without its `Z` (it names `updated_since` even on
/// endpoints whose parameter is `since`).
const MISSING_Z: &str = "Invalid date format for 'updated_since'. Must end with 'Z' for UTC";
/// The reference's message for any other malformed timestamp.
const BAD_TIMESTAMP: &str = "Invalid date format for 'updated_since'. Use 'YYYY-MM-DDTHH:MM:SSZ'";

pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        Params(raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default())
    }

    /// `400 Unexpected query parameters: …` for any key outside `allowed`, listed in sorted
    /// order (the reference lists them in Python's set order, which varies between runs).
    pub(crate) fn reject_unexpected(&self, allowed: &[&str]) -> Result<(), Refusal> {
        let unexpected: BTreeSet<&str> =
            self.0.iter().map(|(k, _)| k.as_str()).filter(|k| !allowed.contains(k)).collect();
        if unexpected.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = unexpected.into_iter().collect();
        Err(Refusal::json(400, format!("Unexpected query parameters: {}", names.join(", "))))
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A non-empty value of `key` (Python treats `""` as absent in `if value:`).
    pub(crate) fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// `request.args.get(key, type=int)`: `None` when absent or not an integer.
    pub(crate) fn int(&self, key: &str) -> Option<i128> {
        self.get(key).and_then(python_int)
    }

    /// `updated_since`-style filter: absent or empty is no filter; otherwise it must end in
    /// `Z` and parse as the reference parses it, or the reference's 400 is returned.
    pub(crate) fn since(&self, key: &str) -> Result<Option<UnixSeconds>, Refusal> {
        let Some(value) = self.non_empty(key) else { return Ok(None) };
        let Some(stamp) = value.strip_suffix('Z') else {
            return Err(Refusal::json(400, MISSING_Z));
        };
        timefmt::parse_python(stamp, false).map(Some).ok_or_else(|| Refusal::json(400, BAD_TIMESTAMP))
    }
}

/// Python's `int(text)`: surrounding whitespace, a sign, and single underscores between digits.
/// Values beyond `i128` saturate; they are out of every accepted range anyway.
pub(crate) fn python_int(text: &str) -> Option<i128> {
    let t = text.trim();
    let (negative, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return None;
    }
    let magnitude = digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .fold(0i128, |v, b| v.saturating_mul(10).saturating_add(i128::from(b - b'0')));
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_like_python_int() {
        assert_eq!(python_int("42"), Some(42));
        assert_eq!(python_int(" +7 "), Some(7));
        assert_eq!(python_int("-3"), Some(-3));
        assert_eq!(python_int("1_000"), Some(1000));
        for bad in ["", "abc", "1.5", "1__0", "_1", "1_", "--1", "0x10"] {
            assert_eq!(python_int(bad), None, "{bad:?}");
        }
        assert_eq!(python_int("99999999999999999999999999999999999999999"), Some(i128::MAX));
    }

    #[test]
    fn first_value_wins_and_plus_is_a_space() {
        let p = Params::parse(Some("limit=5&limit=9&updated_since=2026-01-01T00:00:00Z&x=a+b"));
        assert_eq!(p.int("limit"), Some(5));
        assert_eq!(p.get("x"), Some("a b"));
        assert_eq!(p.since("updated_since").ok().flatten(), Some(1_767_225_600));
        assert!(p.reject_unexpected(&["limit", "updated_since"]).is_err());
        assert!(p.reject_unexpected(&["limit", "updated_since", "x"]).is_ok());
    }
}
