//! Values and records as a connector emits them.
//!
//! A [`Record`] is an ordered list of `(column, value)` pairs. It deserializes straight from a
//! JSON object without building a `serde_json::Value` tree (only nested objects and arrays
//! become [`Value::Json`]); column names are interned, and the records of a page that have the
//! same keys share one list of them (a [`Layout`]), so a page of a thousand records allocates
//! its column names once and each record holds one pointer to them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A column name, shared between the records that carry it.
pub type ColumnName = Arc<str>;

/// One value of a record. Connectors may emit any variant for any column; the engine
/// converts it to the column's declared type (see [`crate::ColumnType`]) or fails with the
/// table, column and value named.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text; also how JSON sources deliver dates, timestamps and decimals.
    String(String),
    /// An exact decimal.
    Decimal(Decimal),
    /// A calendar date without time zone.
    Date(jiff::civil::Date),
    /// A date and time without time zone.
    DateTime(jiff::civil::DateTime),
    /// An instant (UTC).
    Timestamp(jiff::Timestamp),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A nested JSON document.
    Json(serde_json::Value),
}

impl Value {
    /// The value as text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Whether it is `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as JSON, as it would be written in a JSON document.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::String(s) => J::String(s.clone()),
            Value::Decimal(d) => J::String(d.to_string()),
            Value::Date(d) => J::String(d.to_string()),
            Value::DateTime(d) => J::String(d.to_string()),
            Value::Timestamp(t) => J::String(t.to_string()),
            Value::Bytes(b) => J::String(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b)),
            Value::Json(j) => j.clone(),
        }
    }

    /// Converts a JSON value: scalars become the matching variant, nested documents [`Value::Json`].
    pub fn from_json(json: serde_json::Value) -> Value {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(b),
            J::Number(n) => n.as_i64().map(Value::Int).unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN))),
            J::String(s) => Value::String(s),
            nested => Value::Json(nested),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => write!(f, "{s:?}"),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident $(as $cast:ty)?),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::$variant(v $(as $cast)?)
            }
        }
    )*};
}

value_from! {
    bool => Bool, i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int, u8 => Int as i64,
    u16 => Int as i64, u32 => Int as i64, f32 => Float as f64, f64 => Float, String => String,
    Decimal => Decimal, jiff::civil::Date => Date, jiff::civil::DateTime => DateTime,
    jiff::Timestamp => Timestamp, Vec<u8> => Bytes, serde_json::Value => Json,
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_owned())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// The column names of a record, in order. Records parsed one after another with the same
/// keys share one list (the pointer is the same), so a record holds one name pointer, not one
/// per column, and a reader that saw a list before knows where each column goes without
/// comparing names.
pub type Layout = Arc<Vec<ColumnName>>;

/// A row as a connector emits it: columns in the order given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    columns: Layout,
    values: Vec<Value>,
}

impl Record {
    /// An empty record.
    pub fn new() -> Self {
        Record::default()
    }

    /// Adds or replaces `column`, builder style.
    pub fn with(mut self, column: &str, value: impl Into<Value>) -> Self {
        self.set(column, value);
        self
    }

    /// Sets `column`, replacing any value it had.
    pub fn set(&mut self, column: &str, value: impl Into<Value>) {
        let value = value.into();
        match self.position(column) {
            Some(at) => self.values[at] = value,
            None => {
                // A layout shared with other records is copied first: theirs stays as it is.
                Arc::make_mut(&mut self.columns).push(intern(column));
                self.values.push(value);
            }
        }
    }

    /// The value of `column`, if present.
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.position(column).map(|at| &self.values[at])
    }

    /// The value of `column`, if present, to change in place.
    pub fn get_mut(&mut self, column: &str) -> Option<&mut Value> {
        self.position(column).map(|at| &mut self.values[at])
    }

    /// Where `column` is, looked for first at position `*hint`, which is then moved past it:
    /// columns asked for in the order the record holds them cost one comparison each.
    pub(crate) fn position_from(&self, column: &str, hint: &mut usize) -> Option<usize> {
        let at = match self.columns.get(*hint) {
            Some(c) if &**c == column => *hint,
            _ => self.position(column)?,
        };
        *hint = at + 1;
        Some(at)
    }

    /// The column names, shared with the records of the same layout.
    pub(crate) fn layout(&self) -> &Layout {
        &self.columns
    }

    pub(crate) fn value_at(&self, at: usize) -> &Value {
        &self.values[at]
    }

    pub(crate) fn value_at_mut(&mut self, at: usize) -> &mut Value {
        &mut self.values[at]
    }

    /// Removes `column` and returns its value.
    pub fn remove(&mut self, column: &str) -> Option<Value> {
        let at = self.position(column)?;
        Arc::make_mut(&mut self.columns).remove(at);
        Some(self.values.remove(at))
    }

    fn position(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| &**c == column)
    }

    /// Columns and values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&ColumnName, &Value)> {
        self.columns.iter().zip(&self.values)
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether it has no column.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The column names, shared with the records of the same layout, and the values in the
    /// same order: for a reader that places values by layout rather than by name.
    pub fn into_layout_and_values(self) -> (Layout, Vec<Value>) {
        (self.columns, self.values)
    }

    /// The record as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.iter().map(|(c, v)| (c.to_string(), v.to_json())).collect())
    }

    /// A record from a JSON object; `None` for anything else.
    pub fn from_json(json: serde_json::Value) -> Option<Record> {
        match json {
            serde_json::Value::Object(map) => {
                let (columns, values) = map.into_iter().map(|(c, v)| (intern(&c), Value::from_json(v))).unzip();
                Some(Record { columns: Arc::new(columns), values })
            }
            _ => None,
        }
    }
}

impl IntoIterator for Record {
    type Item = (ColumnName, Value);
    type IntoIter = RecordIntoIter;

    fn into_iter(self) -> RecordIntoIter {
        RecordIntoIter { columns: self.columns, values: self.values.into_iter().enumerate() }
    }
}

/// The columns and values of a [`Record`], by value.
pub struct RecordIntoIter {
    columns: Layout,
    values: std::iter::Enumerate<std::vec::IntoIter<Value>>,
}

impl Iterator for RecordIntoIter {
    type Item = (ColumnName, Value);

    fn next(&mut self) -> Option<(ColumnName, Value)> {
        let (at, value) = self.values.next()?;
        Some((self.columns[at].clone(), value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.values.size_hint()
    }
}

thread_local! {
    /// Names are looked up for every field of every record parsed: with a fast hash, not SipHash.
    static NAMES: RefCell<HashMap<Box<str>, ColumnName, foldhash::fast::RandomState>> = RefCell::default();
    /// The layout of the record this thread parsed last: the records of a page mostly share
    /// one, so a key is compared with the name at its position before it is looked up in
    /// `NAMES`, and a record with the same keys shares the list.
    static LAYOUT: RefCell<Layout> = RefCell::default();
}

/// The shared copy of a column name: records of one table share their names' memory.
pub fn intern(name: &str) -> ColumnName {
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some(shared) = names.get(name) {
            return shared.clone();
        }
        let shared: ColumnName = Arc::from(name);
        // Column names are few; a source that invents one per record must not grow this for ever.
        if names.len() < 4096 {
            names.insert(name.into(), shared.clone());
        }
        shared
    })
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Decimal(Decimal::from(v)), Value::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Value::Json)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        Deserialize::deserialize(de::value::MapAccessDeserializer::new(map)).map(Value::Json)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Record, D::Error> {
        deserializer.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        let layout = LAYOUT.with_borrow(Layout::clone);
        let mut values = Vec::with_capacity(layout.len());
        // The names, from the first key that departs from `layout` on.
        let mut departed: Option<Vec<ColumnName>> = None;
        let mut at = 0;
        while let Some(key) = map.next_key_seed(KeySeed { layout: &layout, at })? {
            let value = map.next_value::<Value>()?;
            match (key, &mut departed) {
                // `layout` holds no name twice, so a key at its place is not a duplicate.
                (Key::AsInLayout, None) => values.push(value),
                (key, departed) => {
                    let names = departed.get_or_insert_with(|| layout[..at].to_vec());
                    let name = match key {
                        Key::AsInLayout => layout[at].clone(),
                        Key::Other(name) => name,
                    };
                    match names.iter().position(|c| *c == name) {
                        Some(previous) => values[previous] = value, // the last duplicate key wins, as in JSON.parse
                        None => {
                            names.push(name);
                            values.push(value);
                        }
                    }
                }
            }
            at += 1;
        }
        let columns = match departed {
            None if at == layout.len() => return Ok(Record { columns: layout, values }),
            None => layout[..at].to_vec(),
            Some(names) => names,
        };
        let columns = Arc::new(columns);
        LAYOUT.set(columns.clone());
        Ok(Record { columns, values })
    }
}

/// A record's key: the name at its position in the previous record's layout, or another.
enum Key {
    AsInLayout,
    Other(ColumnName),
}

/// Reads the key at position `at` of a record, without allocating for names already seen.
struct KeySeed<'l> {
    layout: &'l Layout,
    at: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a column name")
    }

    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        match self.layout.get(self.at) {
            Some(known) if **known == *v => Ok(Key::AsInLayout),
            _ => Ok(Key::Other(intern(v))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_from_json_in_order_without_a_tree_for_scalars() {
        let record: Record = serde_json::from_str(
            r#"{"id": "7", "n": 3, "x": 1.5, "ok": true, "none": null, "tags": ["a"], "big": 18446744073709551615}"#,
        )
        .unwrap();
        let columns: Vec<&str> = record.iter().map(|(c, _)| &**c).collect();
        assert_eq!(columns, ["id", "n", "x", "ok", "none", "tags", "big"]);
        assert_eq!(record.get("id"), Some(&Value::String("7".into())));
        assert_eq!(record.get("n"), Some(&Value::Int(3)));
        assert_eq!(record.get("x"), Some(&Value::Float(1.5)));
        assert_eq!(record.get("none"), Some(&Value::Null));
        assert_eq!(record.get("tags"), Some(&Value::Json(serde_json::json!(["a"]))));
        assert_eq!(record.get("big"), Some(&Value::Decimal(Decimal::from(u64::MAX))));
    }

    #[test]
    fn column_names_are_shared_between_records() {
        let a: Record = serde_json::from_str(r#"{"updatedAt": 1}"#).unwrap();
        let b: Record = serde_json::from_str(r#"{"updatedAt": 2}"#).unwrap();
        let (ca, cb) = (a.iter().next().unwrap().0, b.iter().next().unwrap().0);
        assert!(Arc::ptr_eq(ca, cb));
    }

    #[test]
    fn records_of_changing_layouts_keep_their_own_names() {
        let records: Vec<Record> = serde_json::from_str(
            r#"[{"a": 1, "b": 2}, {"b": 3, "a": 4}, {"a": 5, "c": 6, "b": 7}, {"a": 8}, {"a": 9, "b": 10}]"#,
        )
        .unwrap();
        let layouts: Vec<Vec<(&str, i64)>> = records
            .iter()
            .map(|r| r.iter().map(|(c, v)| (&**c, if let Value::Int(n) = v { *n } else { -1 })).collect())
            .collect();
        assert_eq!(
            layouts,
            [
                vec![("a", 1), ("b", 2)],
                vec![("b", 3), ("a", 4)],
                vec![("a", 5), ("c", 6), ("b", 7)],
                vec![("a", 8)],
                vec![("a", 9), ("b", 10)],
            ]
        );
        let b = |i: usize| records[i].iter().find(|(c, _)| &***c == "b").unwrap().0.clone();
        assert!(Arc::ptr_eq(&b(0), &b(1)) && Arc::ptr_eq(&b(1), &b(2)) && Arc::ptr_eq(&b(2), &b(4)));
    }

    #[test]
    fn records_with_the_same_keys_share_one_layout_until_one_changes() {
        let mut records: Vec<Record> =
            serde_json::from_str(r#"[{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5}, {"a": 6}, {"b": 7, "a": 8}]"#)
                .unwrap();
        let layouts: Vec<Layout> = records.iter().map(|r| r.clone().into_layout_and_values().0).collect();
        assert!(Arc::ptr_eq(&layouts[0], &layouts[1]), "the same keys share one list");
        assert!(Arc::ptr_eq(&layouts[2], &layouts[3]), "so do those of a shorter record, once seen");
        assert!(!Arc::ptr_eq(&layouts[1], &layouts[2]) && !Arc::ptr_eq(&layouts[0], &layouts[4]));
        records[0].set("c", 9);
        assert_eq!(records[1].remove("a"), Some(Value::Int(3)));
        assert_eq!(records[0].to_json(), serde_json::json!({"a": 1, "b": 2, "c": 9}));
        assert_eq!(records[1].to_json(), serde_json::json!({"b": 4}));
        assert_eq!(*layouts[0], [intern("a"), intern("b")], "a shared layout is copied before it changes");
        let pairs: Vec<(ColumnName, Value)> = records.swap_remove(4).into_iter().collect();
        assert_eq!(pairs, [(intern("b"), Value::Int(7)), (intern("a"), Value::Int(8))]);
    }

    #[test]
    fn the_last_duplicate_key_wins_and_set_replaces() {
        let mut record: Record = serde_json::from_str(r#"{"a": 1, "a": 2}"#).unwrap();
        assert_eq!(record.len(), 1);
        assert_eq!(record.get("a"), Some(&Value::Int(2)));
        record.set("a", "three");
        record.set("b", Option::<i64>::None);
        assert_eq!(record.to_json(), serde_json::json!({"a": "three", "b": null}));
        assert_eq!(record.remove("a"), Some(Value::String("three".into())));
    }
}
