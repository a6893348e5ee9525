//! Timestamps as the API writes and reads them: whole seconds since the Unix epoch, written
//! `YYYY-MM-DDTHH:MM:SSZ`, read with the exact leniency of Python's
//! `datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")`, which the reference API uses.
//!
//! That leniency is part of the contract: `2024-1-5T3:4:5Z` is accepted by the reference,
//! so a drop-in replacement must accept it too, and reject what it rejects.

/// Seconds since 1970-01-01T00:00:00Z.
pub type UnixSeconds = i64;

/// Writes `YYYY-MM-DDTHH:MM:SSZ` (20 bytes) for years 0..=9999.
pub fn format(t: UnixSeconds) -> [u8; 20] {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = *b"0000-00-00T00:00:00Z";
    let y = y.clamp(0, 9999) as u32;
    put2(&mut out[0..2], y / 100);
    put2(&mut out[2..4], y % 100);
    put2(&mut out[5..7], m);
    put2(&mut out[8..10], d);
    put2(&mut out[11..13], (secs / 3600) as u32);
    put2(&mut out[14..16], (secs / 60 % 60) as u32);
    put2(&mut out[17..19], (secs % 60) as u32);
    out
}

/// [`format`] as a `String`.
pub fn format_string(t: UnixSeconds) -> String {
    String::from_utf8_lossy(&format(t)).into_owned()
}

fn put2(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// Parses `value` as Python's `strptime(value, "%Y-%m-%dT%H:%M:%S")` would, plus a trailing
/// `Z` when `trailing_z` (the reference's scroll token format ends in a literal `Z`).
/// `None` where Python raises `ValueError`.
pub fn parse_python(value: &str, trailing_z: bool) -> Option<UnixSeconds> {
    let mut fields = [0u32; 6];
    let end = match_tokens(value.as_bytes(), 0, &tokens(trailing_z), &mut fields)?;
    if end != value.len() {
        return None; // Python: "unconverted data remains"
    }
    let [year, month, day, hour, minute, second] = fields;
    if year == 0 || day > days_in_month(year as i64, month) || second > 59 {
        return None; // rejected by the datetime constructor
    }
    let days = days_from_civil(year as i64, month, day);
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

/// One regular-expression token of Python's `_strptime` for our format.
enum Token {
    /// A literal character, matched case-insensitively (Python compiles with IGNORECASE).
    Literal(u8),
    /// A directive: a numbered capture whose alternatives are tried in order.
    Field(usize, &'static [&'static [Class]]),
}

#[derive(Clone, Copy)]
enum Class {
    Digit,
    Range(u8, u8),
    Space,
}

impl Class {
    fn matches(self, b: u8) -> bool {
        match self {
            Class::Digit => b.is_ascii_digit(),
            Class::Range(lo, hi) => (lo..=hi).contains(&b),
            Class::Space => b == b' ',
        }
    }
}

use Class::{Digit, Range as R, Space};

const YEAR: &[&[Class]] = &[&[Digit, Digit, Digit, Digit]];
const MONTH: &[&[Class]] = &[&[R(b'1', b'1'), R(b'0', b'2')], &[R(b'0', b'0'), R(b'1', b'9')], &[R(b'1', b'9')]];
const DAY: &[&[Class]] = &[
    &[R(b'3', b'3'), R(b'0', b'1')],
    &[R(b'1', b'2'), Digit],
    &[R(b'0', b'0'), R(b'1', b'9')],
    &[R(b'1', b'9')],
    &[Space, R(b'1', b'9')],
];
const HOUR: &[&[Class]] = &[&[R(b'2', b'2'), R(b'0', b'3')], &[R(b'0', b'1'), Digit], &[Digit]];
const MINUTE: &[&[Class]] = &[&[R(b'0', b'5'), Digit], &[Digit]];
const SECOND: &[&[Class]] = &[&[R(b'6', b'6'), R(b'0', b'1')], &[R(b'0', b'5'), Digit], &[Digit]];

fn tokens(trailing_z: bool) -> Vec<Token> {
    let mut t = vec![
        Token::Field(0, YEAR),
        Token::Literal(b'-'),
        Token::Field(1, MONTH),
        Token::Literal(b'-'),
        Token::Field(2, DAY),
        Token::Literal(b't'),
        Token::Field(3, HOUR),
        Token::Literal(b':'),
        Token::Field(4, MINUTE),
        Token::Literal(b':'),
        Token::Field(5, SECOND),
    ];
    if trailing_z {
        t.push(Token::Literal(b'z'));
    }
    t
}

/// Backtracking match in the same priority order as Python's `re`; returns where the first
/// successful match ends (the regex is not anchored at the end, exactly like `re.match`).
fn match_tokens(input: &[u8], pos: usize, tokens: &[Token], fields: &mut [u32; 6]) -> Option<usize> {
    let Some((first, rest)) = tokens.split_first() else {
        return Some(pos);
    };
    match first {
        Token::Literal(c) => {
            let b = *input.get(pos)?;
            if b.to_ascii_lowercase() == *c { match_tokens(input, pos + 1, rest, fields) } else { None }
        }
        Token::Field(slot, alternatives) => alternatives.iter().find_map(|alt| {
            let text = input.get(pos..pos + alt.len())?;
            if !alt.iter().zip(text).all(|(class, b)| class.matches(*b)) {
                return None;
            }
            fields[*slot] = text.iter().filter(|b| b.is_ascii_digit()).fold(0, |v, b| v * 10 + u32::from(b - b'0'));
            match_tokens(input, pos + alt.len(), rest, fields)
        }),
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<String> {
        parse_python(s, false).map(format_string)
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_string(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_string(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_string(1_795_297_833), "2026-11-21T21:50:33Z");
    }

    #[test]
    fn round_trips_every_day_for_centuries() {
        for day in -40_000..80_000i64 {
            let t = day * 86_400 + 3_723;
            let text = format_string(t);
            assert_eq!(parse_python(&text[..19], false), Some(t), "{text}");
        }
    }

    #[test]
    fn accepts_what_python_strptime_accepts() {
        assert_eq!(parse("2026-11-13T12:07:18").as_deref(), Some("2026-11-13T12:07:18Z"));
        assert_eq!(parse("2026-1-2T3:4:5").as_deref(), Some("2026-01-02T03:04:05Z"));
        assert_eq!(parse("2026-01- 2t03:04:05").as_deref(), Some("2026-01-02T03:04:05Z"));
        assert_eq!(parse("2024-02-29T23:59:59").as_deref(), Some("2024-02-29T23:59:59Z"));
        assert_eq!(
            parse_python("2026-11-13T12:07:18z", true).map(format_string).as_deref(),
            Some("2026-11-13T12:07:18Z")
        );
    }

    #[test]
    fn rejects_what_python_strptime_rejects() {
        for bad in [
            "2026-11-13T12:07:18.5",     // fractional seconds: unconverted data
            "2026-11-13T12:07:18+00:00", // offset
            "2026-11-13 12:07:18",       // space instead of T
            "2026-13-01T00:00:00",       // month 13
            "2023-02-29T00:00:00",       // not a leap year
            "2026-11-13T24:00:00",       // hour 24
            "2026-11-13T12:07:60",       // leap second: regex accepts, datetime rejects
            "2026-11-13T12:07:67",       // "6" then unconverted "7"
            "0000-01-01T00:00:00",       // year 0
            "26-11-13T12:07:18",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad:?} should be rejected");
        }
        assert_eq!(parse_python("2026-11-13T12:07:18", true), None, "scroll format needs its Z");
    }
}
