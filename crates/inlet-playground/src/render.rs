//! Response bodies, byte for byte as the reference writes them.
//!
//! The reference writes data with Python's `json.dumps` defaults (`", "` and `": "` as
//! separators, keys in insertion order, non-ASCII escaped) and errors and auth responses with
//! Flask's `jsonify` in debug mode (two-space indent, sorted keys, a final newline).

use std::fmt::Write as _;

use serde::Serialize;

use crate::dataset::Row;
use crate::people::{Person, Who};
use crate::timefmt;

/// How a record's `id` is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdStyle {
    /// The user's UUID.
    Uuid,
    /// Its step id as a string, as `/incremental/step` writes it.
    Step(u64),
}

/// Ways to break one record, for the bad-record fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Corruption {
    MissingId,
    NumericUpdatedAt,
    UnparseableCreatedAt,
}

/// A user record with its fields written out, as the API serves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Record {
    /// UUID, or the step id on `/incremental/step`.
    pub id: String,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Two-line postal address.
    pub address: String,
    /// Employer.
    pub company: String,
    /// Job title.
    pub job: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(rename = "createdAt")]
    pub created_at: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(rename = "updatedAt")]
    pub updated_at: String,
    /// Set on tombstones only (see `DeleteMode::Tombstone`).
    #[serde(rename = "deletedAt", skip_serializing_if = "Option::is_none", default)]
    pub deleted_at: Option<String>,
}

/// Renders records into one reusable buffer, without allocating per record.
pub(crate) struct RecordWriter {
    seed: u64,
    scratch: String,
}

impl RecordWriter {
    pub(crate) fn new(seed: u64) -> Self {
        RecordWriter { seed, scratch: String::with_capacity(128) }
    }

    /// Writes `row` as `json.dumps` would write the reference's record.
    pub(crate) fn write(&mut self, out: &mut Vec<u8>, row: &Row, id: IdStyle) {
        let mut person = Person::new(Who { seed: self.seed, index: row.index, revision: row.revision });
        out.extend_from_slice(b"{\"id\": ");
        self.scratch.clear();
        // The UUID is drawn first so that every user's identity is stable.
        person.uuid(&mut self.scratch);
        match id {
            IdStyle::Uuid => write_str(out, &self.scratch),
            IdStyle::Step(step) => write_str(out, itoa::Buffer::new().format(step)),
        }
        type Field = fn(&mut Person, &mut String);
        let fields: [(&[u8], Field); 5] = [
            (b", \"name\": ", Person::name),
            (b", \"email\": ", Person::email),
            (b", \"address\": ", Person::address),
            (b", \"company\": ", Person::company),
            (b", \"job\": ", Person::job),
        ];
        for (key, generate) in fields {
            out.extend_from_slice(key);
            self.scratch.clear();
            generate(&mut person, &mut self.scratch);
            write_str(out, &self.scratch);
        }
        out.extend_from_slice(b", \"createdAt\": \"");
        out.extend_from_slice(&timefmt::format(row.created_at));
        out.extend_from_slice(b"\", \"updatedAt\": \"");
        out.extend_from_slice(&timefmt::format(row.updated_at));
        out.push(b'"');
        if let Some(deleted_at) = row.deleted_at {
            out.extend_from_slice(b", \"deletedAt\": \"");
            out.extend_from_slice(&timefmt::format(deleted_at));
            out.push(b'"');
        }
        out.push(b'}');
    }

    /// Writes `row` broken in the way `corruption` says.
    pub(crate) fn write_corrupted(&mut self, out: &mut Vec<u8>, row: &Row, id: IdStyle, corruption: Corruption) {
        let mut clean = Vec::with_capacity(300);
        self.write(&mut clean, row, id);
        let text = String::from_utf8(clean).expect("records are ASCII");
        let broken = match corruption {
            Corruption::MissingId => text.replacen(&text[1..text.find(", \"name\"").expect("has a name") + 2], "", 1),
            Corruption::NumericUpdatedAt => {
                let stamp = format!("\"updatedAt\": \"{}\"", timefmt::format_string(row.updated_at));
                text.replacen(&stamp, &format!("\"updatedAt\": {}", row.updated_at), 1)
            }
            Corruption::UnparseableCreatedAt => {
                let stamp = format!("\"createdAt\": \"{}\"", timefmt::format_string(row.created_at));
                text.replacen(&stamp, "\"createdAt\": \"yesterday\"", 1)
            }
        };
        out.extend_from_slice(broken.as_bytes());
    }

    /// The record as a value, for responses rendered by `jsonify` and for the ground truth.
    pub(crate) fn record(&mut self, row: &Row, id: IdStyle) -> Record {
        let mut json = Vec::with_capacity(300);
        self.write(&mut json, row, id);
        serde_json::from_slice(&json).expect("a written record parses")
    }
}

/// Writes `s` as a JSON string the way Python's `json.dumps` does (`ensure_ascii=True`).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most strings need no escape: looking at eight bytes at a time tells so at a fraction of
    // the cost of the loop below.
    if !any_escaped(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut plain_from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !escaped(b) {
            continue;
        }
        out.extend_from_slice(&bytes[plain_from..i]);
        plain_from = i + 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x00..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => {
                // Non-ASCII: the start byte of a UTF-8 sequence; continuation bytes are skipped.
                if b & 0xc0 != 0x80 {
                    let c = s[i..].chars().next().expect("valid UTF-8");
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                    }
                }
            }
        }
    }
    out.extend_from_slice(&bytes[plain_from..]);
    out.push(b'"');
}

/// Whether `b` is written escaped: a control character, `"`, `\` or outside ASCII.
fn escaped(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b >= 0x80
}

/// Whether any byte of `bytes` is [`escaped`], eight at a time: in a word of ASCII bytes,
/// subtracting a byte value from each byte sets the high bit of those below it (a borrow can
/// only spread up from such a byte, so it never makes an answer of its own); XOR first turns
/// the bytes equal to `"` or `\` into zeros.
fn any_escaped(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::MAX / 0xff;
    const HIGH: u64 = ONES * 0x80;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let v = u64::from_le_bytes(word.try_into().expect("chunks of eight bytes"));
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        let below_space = v.wrapping_sub(ONES * 0x20);
        if (v | below_space | quote.wrapping_sub(ONES) | backslash.wrapping_sub(ONES)) & HIGH != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| escaped(b))
}

/// `jsonify(value)` in debug mode: two-space indent, sorted keys, ASCII only, final newline.
pub(crate) fn jsonify(value: &serde_json::Value) -> Vec<u8> {
    let pretty = serde_json::to_string_pretty(value).expect("a JSON value serializes");
    let mut out = String::with_capacity(pretty.len() + 1);
    for c in pretty.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out.push('\n');
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dumps(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn words_find_every_byte_that_needs_escaping() {
        let plain = *b"abcdefghijklmnopqrstuvwx";
        for b in 0..=255u8 {
            for at in 0..plain.len() {
                for len in at + 1..=plain.len() {
                    let mut bytes = plain;
                    bytes[at] = b;
                    assert_eq!(any_escaped(&bytes[..len]), escaped(b), "byte {b:#04x} at {at} of {len}");
                }
            }
        }
        assert!(!any_escaped(b"") && !any_escaped(b" ~}!#[]09AZaz"));
    }

    #[test]
    fn strings_are_escaped_like_python() {
        assert_eq!(dumps("9144 Cruz\nMichaelport"), r#""9144 Cruz\nMichaelport""#);
        assert_eq!(dumps("a\"b\\c\td\u{1}"), r#""a\"b\\c\td\u0001""#);
        assert_eq!(dumps("café 𝄞"), r#""caf\u00e9 \ud834\udd1e""#);
    }

    #[test]
    fn jsonify_matches_flask_debug_output() {
        let body = jsonify(&serde_json::json!({"error": "Unexpected query parameters: bar, foo"}));
        assert_eq!(body, b"{\n  \"error\": \"Unexpected query parameters: bar, foo\"\n}\n");
        let body = jsonify(&serde_json::json!({"token": "x", "expires_in": 3600}));
        assert_eq!(String::from_utf8(body).unwrap(), "{\n  \"expires_in\": 3600,\n  \"token\": \"x\"\n}\n");
        assert_eq!(jsonify(&serde_json::json!({"error": "é"})), b"{\n  \"error\": \"\\u00e9\"\n}\n");
    }

    #[test]
    fn records_have_the_reference_keys_in_order_and_corruptions_break_them() {
        let row = Row { index: 3, revision: 0, created_at: 1_795_000_000, updated_at: 1_795_000_100, deleted_at: None };
        let mut writer = RecordWriter::new(5);
        let mut out = Vec::new();
        writer.write(&mut out, &row, IdStyle::Step(12));
        let text = String::from_utf8(out).unwrap();
        let keys: Vec<&str> = text.split("\": ").map(|part| part.rsplit('"').next().unwrap()).collect();
        assert_eq!(keys[..8], ["id", "name", "email", "address", "company", "job", "createdAt", "updatedAt"]);
        assert!(text.starts_with("{\"id\": \"12\", \"name\": "));
        assert!(text.ends_with("\"updatedAt\": \"2026-11-18T11:08:20Z\"}"), "{text}");
        let record = writer.record(&row, IdStyle::Uuid);
        assert_eq!(record.id.len(), 36);

        for corruption in [Corruption::MissingId, Corruption::NumericUpdatedAt, Corruption::UnparseableCreatedAt] {
            let mut out = Vec::new();
            writer.write_corrupted(&mut out, &row, IdStyle::Uuid, corruption);
            let value: serde_json::Value = serde_json::from_slice(&out).expect("still JSON");
            let well_formed = serde_json::from_value::<Record>(value.clone())
                .is_ok_and(|r| timefmt::parse_python(&r.created_at, true).is_some());
            assert!(!well_formed, "{corruption:?} yields a bad record: {value}");
        }
    }
}
