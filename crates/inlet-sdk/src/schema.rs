//! Tables and column types, as a connector declares them in `schema()`.
//!
//! The types are the Fivetran Connector SDK's. Columns a connector does not declare are
//! inferred from the first non-null value seen. Every value is converted to its column's type
//! by [`ColumnType::convert`], the one place that decides what is accepted.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::value::{Layout, Record, Value};

/// A column type of the Fivetran Connector SDK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// `BOOLEAN`
    Boolean,
    /// `SHORT`: 16-bit integer.
    Short,
    /// `INT`: 32-bit integer.
    Int,
    /// `LONG`: 64-bit integer.
    Long,
    /// `FLOAT`: 32-bit floating point.
    Float,
    /// `DOUBLE`: 64-bit floating point.
    Double,
    /// `DECIMAL(precision, scale)`: exact, at most 28 digits here.
    Decimal {
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// `NAIVE_DATE`: a date without time zone.
    NaiveDate,
    /// `NAIVE_DATETIME`: a date and time without time zone.
    NaiveDateTime,
    /// `UTC_DATETIME`: an instant.
    UtcDateTime,
    /// `BINARY`: bytes (base64 when given as text).
    Binary,
    /// `XML`: text.
    Xml,
    /// `STRING`: text.
    String,
    /// `JSON`: a document.
    Json,
}

/// The largest precision [`ColumnType::Decimal`] supports (that of `rust_decimal`).
pub const MAX_DECIMAL_PRECISION: u8 = 28;

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ColumnType::Boolean => "BOOLEAN",
            ColumnType::Short => "SHORT",
            ColumnType::Int => "INT",
            ColumnType::Long => "LONG",
            ColumnType::Float => "FLOAT",
            ColumnType::Double => "DOUBLE",
            ColumnType::Decimal { precision, scale } => return write!(f, "DECIMAL({precision},{scale})"),
            ColumnType::NaiveDate => "NAIVE_DATE",
            ColumnType::NaiveDateTime => "NAIVE_DATETIME",
            ColumnType::UtcDateTime => "UTC_DATETIME",
            ColumnType::Binary => "BINARY",
            ColumnType::Xml => "XML",
            ColumnType::String => "STRING",
            ColumnType::Json => "JSON",
        };
        f.write_str(name)
    }
}

impl FromStr for ColumnType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let upper = text.trim().to_ascii_uppercase();
        Ok(match upper.as_str() {
            "BOOLEAN" => ColumnType::Boolean,
            "SHORT" => ColumnType::Short,
            "INT" => ColumnType::Int,
            "LONG" => ColumnType::Long,
            "FLOAT" => ColumnType::Float,
            "DOUBLE" => ColumnType::Double,
            "NAIVE_DATE" => ColumnType::NaiveDate,
            "NAIVE_DATETIME" => ColumnType::NaiveDateTime,
            "UTC_DATETIME" => ColumnType::UtcDateTime,
            "BINARY" => ColumnType::Binary,
            "XML" => ColumnType::Xml,
            "STRING" => ColumnType::String,
            "JSON" => ColumnType::Json,
            _ => {
                let args = upper.strip_prefix("DECIMAL(").and_then(|rest| rest.strip_suffix(')'));
                let (p, s) = args.and_then(|a| a.split_once(',')).ok_or_else(|| {
                    format!("unknown column type `{text}`: expected BOOLEAN, SHORT, INT, LONG, FLOAT, DOUBLE, DECIMAL(p,s), NAIVE_DATE, NAIVE_DATETIME, UTC_DATETIME, BINARY, XML, STRING or JSON")
                })?;
                let (precision, scale) = (p.trim().parse::<u8>(), s.trim().parse::<u8>());
                match (precision, scale) {
                    (Ok(precision), Ok(scale))
                        if (1..=MAX_DECIMAL_PRECISION).contains(&precision) && scale <= precision =>
                    {
                        ColumnType::Decimal { precision, scale }
                    }
                    _ => {
                        return Err(format!(
                            "`{text}`: DECIMAL needs 1 <= precision <= {MAX_DECIMAL_PRECISION} and 0 <= scale <= precision"
                        ));
                    }
                }
            }
        })
    }
}

impl Serialize for ColumnType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ColumnType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A value that does not fit its column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value} is not a valid {ty}{}", reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
pub struct ConversionError {
    /// The value, as shown to the user.
    pub value: String,
    /// The column's type.
    pub ty: ColumnType,
    /// Why, when there is more to say.
    pub reason: Option<String>,
}

impl ColumnType {
    /// The type a column gets when it is not declared, from its first non-null value.
    pub fn infer(value: &Value) -> Option<ColumnType> {
        Some(match value {
            Value::Null => return None,
            Value::Bool(_) => ColumnType::Boolean,
            Value::Int(_) => ColumnType::Long,
            Value::Float(_) => ColumnType::Double,
            Value::String(_) => ColumnType::String,
            Value::Decimal(d) => {
                ColumnType::Decimal { precision: MAX_DECIMAL_PRECISION, scale: d.scale().min(28) as u8 }
            }
            Value::Date(_) => ColumnType::NaiveDate,
            Value::DateTime(_) => ColumnType::NaiveDateTime,
            Value::Timestamp(_) => ColumnType::UtcDateTime,
            Value::Bytes(_) => ColumnType::Binary,
            Value::Json(_) => ColumnType::Json,
        })
    }

    /// Whether `value` is already this type's canonical variant, which [`convert`] returns as
    /// it is: checked inline first, a conformed record's values skip the call.
    ///
    /// [`convert`]: ColumnType::convert
    #[inline]
    pub fn holds(self, value: &Value) -> bool {
        matches!(
            (self, value),
            (ColumnType::String | ColumnType::Xml, Value::String(_))
                | (ColumnType::UtcDateTime, Value::Timestamp(_))
                | (ColumnType::Long, Value::Int(_))
                | (ColumnType::Float | ColumnType::Double, Value::Float(_))
                | (ColumnType::Boolean, Value::Bool(_))
                | (ColumnType::NaiveDate, Value::Date(_))
                | (ColumnType::NaiveDateTime, Value::DateTime(_))
                | (ColumnType::Binary, Value::Bytes(_))
                | (ColumnType::Json, Value::Json(_))
        )
    }

    /// Converts `value` to this type's canonical variant: `Bool`, `Int`, `Float`, `Decimal`,
    /// `Date`, `DateTime`, `Timestamp`, `Bytes`, `String` or `Json`. `Null` stays `Null`.
    pub fn convert(self, value: Value) -> Result<Value, ConversionError> {
        let fail =
            |value: &Value, reason: Option<String>| ConversionError { value: value.to_string(), ty: self, reason };
        if value.is_null() {
            return Ok(Value::Null);
        }
        let converted = match (self, &value) {
            (ColumnType::Boolean, Value::Bool(_)) => value,
            (ColumnType::Boolean, Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(fail(&value, None)),
            },
            (ColumnType::Short | ColumnType::Int | ColumnType::Long, _) => {
                let whole = match &value {
                    Value::Int(i) => Some(*i),
                    Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(*f as i64),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    Value::Decimal(d) if d.fract().is_zero() => i64::try_from(*d).ok(),
                    _ => None,
                };
                let (lo, hi) = match self {
                    ColumnType::Short => (i64::from(i16::MIN), i64::from(i16::MAX)),
                    ColumnType::Int => (i64::from(i32::MIN), i64::from(i32::MAX)),
                    _ => (i64::MIN, i64::MAX),
                };
                match whole {
                    Some(i) if (lo..=hi).contains(&i) => Value::Int(i),
                    Some(_) => return Err(fail(&value, Some(format!("out of range {lo}..={hi}")))),
                    None => return Err(fail(&value, None)),
                }
            }
            (ColumnType::Float | ColumnType::Double, _) => match &value {
                Value::Float(_) => value,
                Value::Int(i) => Value::Float(*i as f64),
                Value::Decimal(d) => Value::Float(d.to_string().parse().unwrap_or(f64::NAN)),
                Value::String(s) => Value::Float(s.trim().parse().map_err(|_| fail(&value, None))?),
                _ => return Err(fail(&value, None)),
            },
            (ColumnType::Decimal { precision, scale }, _) => {
                let decimal = match &value {
                    Value::Decimal(d) => Some(*d),
                    Value::Int(i) => Some(Decimal::from(*i)),
                    Value::Float(f) => Decimal::from_str(&f.to_string()).ok(),
                    Value::String(s) => {
                        Decimal::from_str(s.trim()).or_else(|_| Decimal::from_scientific(s.trim())).ok()
                    }
                    _ => None,
                };
                let mut d = decimal.ok_or_else(|| fail(&value, None))?;
                d.rescale(u32::from(scale));
                let integer_digits = d.trunc().abs().to_string().trim_start_matches('0').len();
                if integer_digits > usize::from(precision - scale) {
                    return Err(fail(&value, Some(format!("more than {} digits before the point", precision - scale))));
                }
                Value::Decimal(d)
            }
            (ColumnType::NaiveDate, Value::Date(_)) => value,
            (ColumnType::NaiveDate, Value::String(s)) => {
                Value::Date(s.trim().parse().map_err(|_| fail(&value, Some("expected YYYY-MM-DD".into())))?)
            }
            (ColumnType::NaiveDateTime, Value::DateTime(_)) => value,
            (ColumnType::NaiveDateTime, Value::String(s)) => Value::DateTime(
                s.trim().parse().map_err(|_| fail(&value, Some("expected YYYY-MM-DDTHH:MM:SS[.fff]".into())))?,
            ),
            (ColumnType::UtcDateTime, Value::Timestamp(_)) => value,
            (ColumnType::UtcDateTime, Value::String(s)) => match plain_utc_instant(s) {
                Some(instant) => Value::Timestamp(instant),
                None => Value::Timestamp(s.trim().parse().map_err(|_| {
                    fail(&value, Some("expected an RFC 3339 instant such as 2024-01-15T10:30:00Z".into()))
                })?),
            },
            (ColumnType::Binary, Value::Bytes(_)) => value,
            (ColumnType::Binary, Value::String(s)) => Value::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| fail(&value, Some("expected base64".into())))?,
            ),
            (ColumnType::String | ColumnType::Xml, Value::String(_)) => value,
            (ColumnType::String | ColumnType::Xml, Value::Json(j)) => Value::String(j.to_string()),
            (ColumnType::String | ColumnType::Xml, Value::Bytes(_)) => return Err(fail(&value, None)),
            (ColumnType::String | ColumnType::Xml, other) => match other.to_json() {
                serde_json::Value::String(s) => Value::String(s),
                json => Value::String(json.to_string()),
            },
            (ColumnType::Json, Value::Json(_)) => value,
            (ColumnType::Json, other) => Value::Json(other.to_json()),
            _ => return Err(fail(&value, None)),
        };
        Ok(converted)
    }
}

/// A column with its type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Its name, as in the records.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
}

/// A table a connector delivers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// The table's name.
    pub name: String,
    /// Columns identifying a row; upserts and deletes find rows by them.
    pub primary_key: Vec<String>,
    /// Declared columns; others are inferred from the data.
    pub columns: Vec<Column>,
    /// A column that orders versions of a row (such as `updatedAt`): a write never replaces a
    /// row with an older version, so replayed pages cannot move a row backwards.
    pub version_column: Option<String>,
}

impl Table {
    /// A table with no column declared yet.
    pub fn new(name: impl Into<String>) -> Self {
        Table { name: name.into(), primary_key: Vec::new(), columns: Vec::new(), version_column: None }
    }

    /// Sets the primary key.
    pub fn primary_key<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.primary_key = columns.into_iter().map(Into::into).collect();
        self
    }

    /// Declares a column.
    pub fn column(mut self, name: impl Into<String>, ty: ColumnType) -> Self {
        self.columns.push(Column { name: name.into(), ty });
        self
    }

    /// Declares the column that orders a row's versions (see [`Table::version_column`]).
    pub fn version_column(mut self, name: impl Into<String>) -> Self {
        self.version_column = Some(name.into());
        self
    }

    /// The declared type of `column`.
    pub fn column_type(&self, column: &str) -> Option<ColumnType> {
        self.columns.iter().find(|c| c.name == column).map(|c| c.ty)
    }

    /// Checks the declaration itself: a name, a primary key, no column declared twice, and a
    /// version column that is declared with an orderable type.
    pub fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("a table has an empty name".into());
        }
        if self.primary_key.is_empty() {
            return Err(format!("table `{}` has no primary key", self.name));
        }
        for (i, c) in self.columns.iter().enumerate() {
            if self.columns[..i].iter().any(|d| d.name == c.name) {
                return Err(format!("table `{}` declares column `{}` twice", self.name, c.name));
            }
        }
        if let Some(v) = &self.version_column {
            match self.column_type(v) {
                None => return Err(format!("table `{}`: version column `{v}` is not declared", self.name)),
                Some(ColumnType::Binary | ColumnType::Json | ColumnType::Xml | ColumnType::Boolean) => {
                    return Err(format!(
                        "table `{}`: version column `{v}` must be a number, date, time or string",
                        self.name
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Checks that `record` can be written to this table, as [`conform`](Table::conform)
    /// does, and leaves it as it is.
    pub fn validate(&self, record: &Record) -> Result<(), String> {
        self.conform(&mut record.clone())
    }

    /// Checks that `record` can be written to this table (primary key present and not null,
    /// every declared column convertible) and converts each declared column to its type in
    /// place, so that the engine has nothing left to convert: a text `UTC_DATETIME` becomes
    /// an instant, parsed once. Connectors call it to reject a bad page before any of it
    /// reaches the engine; after an error the record is not to be used.
    pub fn conform(&self, record: &mut Record) -> Result<(), String> {
        self.conformer().conform(record)
    }

    /// What conforms many records, such as a page's, faster than [`conform`](Table::conform)
    /// one by one.
    pub fn conformer(&self) -> Conformer<'_> {
        Conformer { table: self, layout: None, positions: Vec::new() }
    }
}

/// Conforms records to a table (see [`Table::conform`]), remembering where the table's key
/// and declared columns sit in the last record's [`Layout`]: the records of a page share one,
/// so all but the first are conformed without comparing a column name (those comparisons were
/// two fifths of conforming a user).
#[derive(Debug)]
pub struct Conformer<'t> {
    table: &'t Table,
    /// The layout `positions` were found in; held, so that it cannot be another one at the
    /// same address.
    layout: Option<Layout>,
    /// Where each primary key column, then each declared column, sits in `layout`.
    positions: Vec<Option<usize>>,
}

impl Conformer<'_> {
    /// Conforms `record` as [`Table::conform`] does.
    pub fn conform(&mut self, record: &mut Record) -> Result<(), String> {
        self.locate(record);
        let table = self.table;
        let (keys, columns) = self.positions.split_at(table.primary_key.len());
        for (key, at) in table.primary_key.iter().zip(keys) {
            if at.is_none_or(|at| record.value_at(at).is_null()) {
                return Err(format!("table `{}`: primary key column `{key}` is missing or null", table.name));
            }
        }
        for (column, at) in table.columns.iter().zip(columns) {
            let Some(at) = *at else { continue };
            let value = record.value_at_mut(at);
            if column.ty.holds(value) {
                continue;
            }
            *value = column
                .ty
                .convert(std::mem::replace(value, Value::Null))
                .map_err(|e| format!("table `{}`, column `{}`: {e}", table.name, column.name))?;
        }
        Ok(())
    }

    /// The value in `record` of the table's declared column number `column` (its place in
    /// [`Table::columns`]), if the record has it: without comparing names when `record` has the
    /// layout of the record conformed last. Panics if `column` is not a place in
    /// [`Table::columns`].
    pub fn value<'r>(&self, record: &'r Record, column: usize) -> Option<&'r Value> {
        match &self.layout {
            Some(layout) if Arc::ptr_eq(layout, record.layout()) => {
                self.positions[self.table.primary_key.len() + column].map(|at| record.value_at(at))
            }
            _ => record.get(&self.table.columns[column].name),
        }
    }

    fn locate(&mut self, record: &Record) {
        let layout = record.layout();
        if self.layout.as_ref().is_some_and(|known| Arc::ptr_eq(known, layout)) {
            return;
        }
        let table = self.table;
        let names = table.primary_key.iter().chain(table.columns.iter().map(|c| &c.name));
        // Sources mostly send the columns in the order they are declared.
        let mut hint = 0;
        self.positions = names.map(|name| record.position_from(name, &mut hint)).collect();
        self.layout = Some(layout.clone());
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form most APIs send instants in (the seeds' API sends no other),
/// read without the general parser, which took a tenth of the time spent parsing a page of
/// users. `None` for any other form (offsets, fractions, a leap second, surrounding spaces) or
/// an invalid date: those are left to that parser, which gives the same instant or the error.
fn plain_utc_instant(text: &str) -> Option<jiff::Timestamp> {
    let b = text.as_bytes();
    if b.len() != 20
        || [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'Z')].iter().any(|&(i, c)| b[i] != c)
    {
        return None;
    }
    let number = |at: usize, len: usize| {
        b[at..at + len]
            .iter()
            .try_fold(0_i16, |n, &digit| digit.is_ascii_digit().then(|| n * 10 + i16::from(digit - b'0')))
    };
    let two = |at: usize| number(at, 2).and_then(|n| i8::try_from(n).ok());
    // jiff checks the day against its month and year, and the time of day (a leap second
    // fails here, and its parser takes it).
    let date = jiff::civil::Date::new(number(0, 4)?, two(5)?, two(8)?).ok()?;
    let time = jiff::civil::Time::new(two(11)?, two(14)?, two(17)?, 0).ok()?;
    jiff::tz::Offset::UTC.to_timestamp(date.to_datetime(time)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every type, by name.
    const TYPE_NAMES: [&str; 14] = [
        "BOOLEAN",
        "SHORT",
        "INT",
        "LONG",
        "FLOAT",
        "DOUBLE",
        "DECIMAL(10,2)",
        "NAIVE_DATE",
        "NAIVE_DATETIME",
        "UTC_DATETIME",
        "BINARY",
        "XML",
        "STRING",
        "JSON",
    ];

    #[test]
    fn type_names_round_trip() {
        for name in TYPE_NAMES {
            assert_eq!(name.parse::<ColumnType>().unwrap().to_string(), name);
        }
        assert_eq!("decimal( 5 , 0 )".parse::<ColumnType>(), Ok(ColumnType::Decimal { precision: 5, scale: 0 }));
        assert!("DECIMAL(40,2)".parse::<ColumnType>().is_err());
        assert!("DECIMAL(4,5)".parse::<ColumnType>().is_err());
        assert!("TEXT".parse::<ColumnType>().unwrap_err().contains("unknown column type `TEXT`"));
    }

    #[test]
    fn conversions_accept_what_json_sources_send() {
        let ts = ColumnType::UtcDateTime.convert("2026-11-13T12:07:18Z".into()).unwrap();
        assert_eq!(ts, Value::Timestamp("2026-11-13T12:07:18Z".parse().unwrap()));
        assert_eq!(ColumnType::Int.convert("42".into()), Ok(Value::Int(42)));
        assert_eq!(ColumnType::Long.convert(Value::Float(3.0)), Ok(Value::Int(3)));
        assert_eq!(ColumnType::Boolean.convert("TRUE".into()), Ok(Value::Bool(true)));
        assert_eq!(ColumnType::String.convert(Value::Int(7)), Ok(Value::String("7".into())));
        assert_eq!(ColumnType::Json.convert(Value::Int(7)), Ok(Value::Json(serde_json::json!(7))));
        let d = ColumnType::Decimal { precision: 6, scale: 2 };
        assert_eq!(d.convert("12.345".into()), Ok(Value::Decimal(Decimal::new(1235, 2))));
        assert_eq!(ColumnType::Binary.convert("aGk=".into()), Ok(Value::Bytes(b"hi".to_vec())));
        assert_eq!(ColumnType::NaiveDate.convert("2024-02-29".into()), Ok(Value::Date(jiff::civil::date(2024, 2, 29))));
        assert_eq!(ColumnType::Long.convert(Value::Null), Ok(Value::Null));
    }

    #[test]
    fn conversions_refuse_what_does_not_fit_and_say_why() {
        let bad = ColumnType::UtcDateTime.convert("yesterday".into()).unwrap_err();
        assert_eq!(
            bad.to_string(),
            "\"yesterday\" is not a valid UTC_DATETIME (expected an RFC 3339 instant such as 2024-01-15T10:30:00Z)"
        );
        assert!(ColumnType::UtcDateTime.convert(Value::Int(1_795_000_000)).is_err());
        assert!(ColumnType::Short.convert(Value::Int(40_000)).unwrap_err().to_string().contains("out of range"));
        assert!(ColumnType::Decimal { precision: 4, scale: 2 }.convert("123.4".into()).is_err());
        assert!(ColumnType::Int.convert(Value::Float(1.5)).is_err());
        assert!(ColumnType::Boolean.convert("yes".into()).is_err());
    }

    #[test]
    fn validation_names_the_table_and_column() {
        let user = Table::new("user").primary_key(["id"]).column("updatedAt", ColumnType::UtcDateTime);
        assert_eq!(user.check(), Ok(()));
        let ok = Record::new().with("id", "1").with("updatedAt", "2026-01-01T00:00:00Z");
        assert_eq!(user.validate(&ok), Ok(()));
        let missing = Record::new().with("updatedAt", "2026-01-01T00:00:00Z");
        assert_eq!(user.validate(&missing).unwrap_err(), "table `user`: primary key column `id` is missing or null");
        let wrong = Record::new().with("id", "1").with("updatedAt", 5);
        assert!(
            user.validate(&wrong)
                .unwrap_err()
                .starts_with("table `user`, column `updatedAt`: 5 is not a valid UTC_DATETIME")
        );
        let mut conformed = ok.clone();
        user.conform(&mut conformed).unwrap();
        assert_eq!(conformed.get("updatedAt"), Some(&Value::Timestamp("2026-01-01T00:00:00Z".parse().unwrap())));
        assert_eq!(conformed.get("id"), ok.get("id"), "undeclared columns are left as they are");
        assert!(Table::new("t").check().unwrap_err().contains("no primary key"));
        assert!(user.clone().version_column("nope").check().is_err());
    }

    #[test]
    fn values_a_type_holds_convert_to_themselves() {
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Int(-7),
            Value::Int(i64::MAX),
            Value::Float(1.5),
            Value::String("2026-01-01".into()),
            Value::Decimal(Decimal::new(12345, 2)),
            Value::Date("2026-01-01".parse().unwrap()),
            Value::DateTime("2026-01-01T10:00:00".parse().unwrap()),
            Value::Timestamp("2026-01-01T10:00:00Z".parse().unwrap()),
            Value::Bytes(vec![0, 1]),
            Value::Json(serde_json::json!({"a": [1]})),
        ];
        let types = TYPE_NAMES.map(|name| name.parse::<ColumnType>().unwrap());
        let mut held = 0;
        for ty in types {
            for value in &values {
                if ty.holds(value) {
                    held += 1;
                    assert_eq!(ty.convert(value.clone()).as_ref(), Ok(value), "{ty} holds {value}");
                }
            }
        }
        assert_eq!(held, 12, "each type holds its canonical variant");
    }

    #[test]
    fn plain_instants_read_as_the_general_parser_reads_them() {
        let general = |text: &str| text.trim().parse::<jiff::Timestamp>().ok();
        let mut seed = 0x5eed_u64;
        let mut texts: Vec<String> = (0..20_000)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                // Instants from year 1 to 9999, as the API formats them.
                let second = (seed >> 20) as i64 % 315_500_000_000 - 62_135_000_000;
                jiff::Timestamp::from_second(second).unwrap().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
            })
            .collect();
        texts.extend(
            [
                "1970-01-01T00:00:00Z",
                "1969-12-31T23:59:59Z",
                "2000-02-29T12:00:00Z",
                "2024-02-29T23:59:59Z",
                "2026-12-31T23:59:59Z",
                "0001-01-01T00:00:00Z",
                "9999-12-30T00:00:00Z",
                "9999-12-31T23:59:59Z",
                "0000-01-01T00:00:00Z",
                "1900-02-29T00:00:00Z",
                "2023-02-29T00:00:00Z",
                "2026-04-31T00:00:00Z",
                "2026-13-01T00:00:00Z",
                "2026-00-10T00:00:00Z",
                "2026-01-01T24:00:00Z",
                "2026-01-01T23:60:00Z",
                "2026-12-31T23:59:60Z",
                "2026-01-01t00:00:00z",
                "2026-01-01 00:00:00Z",
                "2026-01-01T00:00:00+00:00",
                "2026-01-01T00:00:00.5Z",
                " 2026-01-01T00:00:00Z",
                "2026-01-0aT00:00:00Z",
                "+2026-01-01T00:00:0Z",
            ]
            .map(String::from),
        );
        for text in &texts {
            if let Some(fast) = plain_utc_instant(text) {
                assert_eq!(Some(fast), general(text), "{text}");
            }
            assert_eq!(
                ColumnType::UtcDateTime.convert(text.as_str().into()).ok(),
                general(text).map(Value::Timestamp),
                "{text}"
            );
        }
        let fast = texts.iter().filter(|t| plain_utc_instant(t).is_some()).count();
        assert!(fast >= 20_005, "the plain form takes the fast path ({fast} did)");
    }

    #[test]
    fn columns_conform_in_any_order_and_missing_ones_stay_missing() {
        let table = Table::new("t")
            .primary_key(["id"])
            .column("id", ColumnType::Long)
            .column("gone", ColumnType::Boolean)
            .column("at", ColumnType::UtcDateTime)
            .column("n", ColumnType::Double);
        let at: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        for json in [
            r#"{"id": "7", "at": "2026-01-01T00:00:00Z", "n": "1.5", "x": "kept"}"#,
            r#"{"n": "1.5", "x": "kept", "at": "2026-01-01T00:00:00Z", "id": "7"}"#,
            r#"{"x": "kept", "at": "2026-01-01T00:00:00Z", "id": "7", "n": "1.5"}"#,
        ] {
            let mut record: Record = serde_json::from_str(json).unwrap();
            table.conform(&mut record).unwrap();
            assert_eq!(record.get("id"), Some(&Value::Int(7)), "{json}");
            assert_eq!(record.get("at"), Some(&Value::Timestamp(at)), "{json}");
            assert_eq!(record.get("n"), Some(&Value::Float(1.5)), "{json}");
            assert_eq!(record.get("x"), Some(&Value::String("kept".into())), "{json}");
            assert_eq!((record.get("gone"), record.len()), (None, 4), "{json}");
        }
    }

    #[test]
    fn a_conformer_follows_the_layouts_of_a_page_as_they_change() {
        let table = Table::new("t").primary_key(["id"]).column("id", ColumnType::Long).column("n", ColumnType::Double);
        let mut records: Vec<Record> = serde_json::from_str(
            r#"[{"id": "1", "n": "1.5"}, {"id": "2", "n": 2}, {"n": "3", "id": 3}, {"id": 4}, {"id": 5, "n": 5},
                {"n": 6}, {"id": null, "n": 7}]"#,
        )
        .unwrap();
        let mut conformer = table.conformer();
        let mut seen = Vec::new();
        for record in &mut records[..5] {
            conformer.conform(record).unwrap();
            seen.push((conformer.value(record, 0).cloned(), conformer.value(record, 1).cloned()));
        }
        let (int, float) = (|i| Some(Value::Int(i)), |f| Some(Value::Float(f)));
        assert_eq!(
            seen,
            [(int(1), float(1.5)), (int(2), float(2.0)), (int(3), float(3.0)), (int(4), None), (int(5), float(5.0))]
        );
        assert_eq!(
            conformer.value(&records[2], 1),
            Some(&Value::Float(3.0)),
            "a record of another layout is read by name"
        );
        for record in &mut records[5..] {
            assert!(conformer.conform(record).unwrap_err().contains("missing or null"));
        }
        let mut bad: Record = serde_json::from_str(r#"{"id": 8, "n": "eight"}"#).unwrap();
        let error = conformer.conform(&mut bad).unwrap_err();
        assert!(error.starts_with("table `t`, column `n`:"), "{error}");
    }
}
