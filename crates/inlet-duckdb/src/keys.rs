//! Key hashes as DuckDB stores keys: the two sides of [`inlet_engine::keys::KeyHashes`] for
//! DuckDB tables.
//!
//! DuckDB tables carry no primary-key index (maintaining one costs more than the rest of the
//! load, see docs/performance.md), so without the set every upsert would have to scan the
//! table to tell inserts from updates. Keys are hashed here, not by DuckDB, so that a row's
//! hash is known before DuckDB sees the row. Both sides hash the value as DuckDB stores it for
//! the column's type: a staged key from the engine's [`Value`], a stored one from the Arrow
//! array DuckDB reads it into.

use duckdb::arrow::array::{Array, ArrayRef, AsArray};
use duckdb::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Int16Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use inlet_engine::TableSpec;
use inlet_engine::keys::{KeyScalar as Scalar, key_hash};
use inlet_sdk::{ColumnType, Value};

use crate::batch::{epoch_days, epoch_micros, mantissa_at};

/// Whether rows of `spec` can be hashed here: every key column has a type that DuckDB stores
/// exactly as the engine hands it over. Floats (where `-0.0 = 0.0`) and JSON (which DuckDB
/// rewrites) can't, and their tables merge every row with the exact path.
pub(crate) fn hashable(spec: &TableSpec) -> bool {
    spec.primary_key
        .iter()
        .all(|&k| !matches!(spec.columns[k].ty, ColumnType::Float | ColumnType::Double | ColumnType::Json))
}

/// The hash of the key of a row of `spec` (values in the order of its columns), or `None` when
/// a key value is not of the variant its column's type converts to (the row then takes the
/// exact path).
pub(crate) fn row_hash(spec: &TableSpec, values: &[Value]) -> Option<u64> {
    key_hash(spec.primary_key.iter().map(|&k| values.get(k).and_then(|v| scalar(spec.columns[k].ty, v))))
}

/// A value of a column of type `ty` as DuckDB stores it.
fn scalar(ty: ColumnType, value: &Value) -> Option<Scalar<'_>> {
    Some(match (ty, value) {
        (ColumnType::Short | ColumnType::Int | ColumnType::Long, Value::Int(i)) => Scalar::Whole(*i),
        (ColumnType::Boolean, Value::Bool(b)) => Scalar::Whole(i64::from(*b)),
        (ColumnType::NaiveDate, Value::Date(d)) => Scalar::Whole(i64::from(epoch_days(*d))),
        (ColumnType::NaiveDateTime, Value::DateTime(dt)) => Scalar::Whole(epoch_micros(*dt)),
        (ColumnType::UtcDateTime, Value::Timestamp(t)) => Scalar::Whole(t.as_microsecond()),
        (ColumnType::Decimal { scale, .. }, Value::Decimal(d)) => Scalar::Wide(mantissa_at(*d, scale.into())?),
        (ColumnType::String | ColumnType::Xml, Value::String(s)) => Scalar::Bytes(s.as_bytes()),
        (ColumnType::Binary, Value::Bytes(b)) => Scalar::Bytes(b),
        _ => return None,
    })
}

/// Appends to `out` the hashes of the stored keys in `columns` (the key columns of a batch
/// read from the table, cast to the connector's types). A `NULL` (a stored key that does not
/// convert to the connector's type) can't equal a staged key and is skipped.
pub(crate) fn stored_hashes(columns: &[ArrayRef], out: &mut Vec<u64>) -> Result<(), String> {
    let readers = columns.iter().map(|c| reader(c.as_ref())).collect::<Result<Vec<_>, _>>()?;
    let rows = columns.first().map_or(0, |c| c.len());
    for row in 0..rows {
        out.extend(key_hash(readers.iter().map(|read| read(row))));
    }
    Ok(())
}

type Reader<'a> = Box<dyn Fn(usize) -> Option<Scalar<'a>> + 'a>;

/// Reads the values of a key column as [`Scalar`]s, as [`row_hash`] makes them.
fn reader(array: &dyn Array) -> Result<Reader<'_>, String> {
    fn present<'a, T>(array: &'a dyn Array, read: impl Fn(usize) -> T + 'a) -> impl Fn(usize) -> Option<T> + 'a {
        move |i| (!array.is_null(i)).then(|| read(i))
    }
    let reader: Reader = match array.data_type() {
        DataType::Boolean => {
            let a = array.as_boolean();
            Box::new(present(array, move |i| Scalar::Whole(i64::from(a.value(i)))))
        }
        DataType::Int16 => {
            let a = array.as_primitive::<Int16Type>();
            Box::new(present(array, move |i| Scalar::Whole(a.value(i).into())))
        }
        DataType::Int32 => {
            let a = array.as_primitive::<Int32Type>();
            Box::new(present(array, move |i| Scalar::Whole(a.value(i).into())))
        }
        DataType::Int64 => {
            let a = array.as_primitive::<Int64Type>();
            Box::new(present(array, move |i| Scalar::Whole(a.value(i))))
        }
        DataType::Date32 => {
            let a = array.as_primitive::<Date32Type>();
            Box::new(present(array, move |i| Scalar::Whole(a.value(i).into())))
        }
        DataType::Timestamp(TimeUnit::Second, _) => {
            let a = array.as_primitive::<TimestampSecondType>();
            Box::new(present(array, move |i| Scalar::Whole(a.value(i) * 1_000_000)))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let a = array.as_primitive::<TimestampMillisecondType>();
            Box::new(present(array, move |i| Scalar::Whole(a.value(i) * 1_000)))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let a = array.as_primitive::<TimestampMicrosecondType>();
            Box::new(present(array, move |i| Scalar::Whole(a.value(i))))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            let a = array.as_primitive::<TimestampNanosecondType>();
            Box::new(present(array, move |i| Scalar::Whole(a.value(i).div_euclid(1_000))))
        }
        DataType::Decimal128(..) => {
            let a = array.as_primitive::<Decimal128Type>();
            Box::new(present(array, move |i| Scalar::Wide(a.value(i))))
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            Box::new(present(array, move |i| Scalar::Bytes(a.value(i).as_bytes())))
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            Box::new(present(array, move |i| Scalar::Bytes(a.value(i).as_bytes())))
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            Box::new(present(array, move |i| Scalar::Bytes(a.value(i).as_bytes())))
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            Box::new(present(array, move |i| Scalar::Bytes(a.value(i))))
        }
        DataType::LargeBinary => {
            let a = array.as_binary::<i64>();
            Box::new(present(array, move |i| Scalar::Bytes(a.value(i))))
        }
        DataType::BinaryView => {
            let a = array.as_binary_view();
            Box::new(present(array, move |i| Scalar::Bytes(a.value(i))))
        }
        other => return Err(format!("a key column came back from DuckDB as Arrow {other}, which inlet does not hash")),
    };
    Ok(reader)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use duckdb::arrow::array::{BinaryArray, Decimal128Array, Int16Array, StringArray, TimestampMicrosecondArray};
    use inlet_engine::conformance::table_spec;
    use inlet_sdk::Decimal;

    use super::*;

    fn hashes_of(columns: Vec<ArrayRef>) -> Vec<u64> {
        let mut out = Vec::new();
        stored_hashes(&columns, &mut out).unwrap();
        out
    }

    #[test]
    fn a_staged_key_hashes_as_the_same_key_read_back_from_duckdb() {
        let composite = table_spec(
            "t",
            &[
                ("region", ColumnType::Short),
                ("name", ColumnType::String),
                ("at", ColumnType::UtcDateTime),
                ("amount", ColumnType::Decimal { precision: 10, scale: 2 }),
                ("blob", ColumnType::Binary),
            ],
            &[0, 1, 2, 3, 4],
            None,
        );
        let at: jiff::Timestamp = "2026-11-20T10:00:00.123456Z".parse().unwrap();
        let staged = [
            Value::Int(7),
            Value::String("Ann".into()),
            Value::Timestamp(at),
            Value::Decimal(Decimal::new(15, 1)),
            Value::Bytes(vec![1, 2]),
        ];
        let stored = hashes_of(vec![
            Arc::new(Int16Array::from(vec![7, 7])),
            Arc::new(StringArray::from(vec!["Ann", "Bob"])),
            Arc::new(TimestampMicrosecondArray::from(vec![at.as_microsecond(); 2]).with_timezone("UTC")),
            Arc::new(Decimal128Array::from(vec![150, 150]).with_precision_and_scale(10, 2).unwrap()),
            Arc::new(BinaryArray::from(vec![&[1u8, 2][..], &[1, 2][..]])),
        ]);
        assert_eq!(stored.len(), 2);
        assert_eq!(row_hash(&composite, &staged), Some(stored[0]), "1.5 staged is 150 at scale 2 stored");
        assert_ne!(stored[0], stored[1], "another name is another key");
    }

    #[test]
    fn keys_that_cannot_be_compared_are_left_to_the_exact_path() {
        let by_id = table_spec("t", &[("id", ColumnType::Long), ("score", ColumnType::Double)], &[0], None);
        assert!(hashable(&by_id));
        assert!(!hashable(&table_spec("t", &[("score", ColumnType::Double)], &[0], None)));
        assert_eq!(row_hash(&by_id, &[Value::String("7".into())]), None, "not the variant a LONG converts to");
        assert_eq!(row_hash(&by_id, &[]), None, "no key at all");
        let stored = hashes_of(vec![Arc::new(duckdb::arrow::array::Int64Array::from(vec![Some(7), None]))]);
        assert_eq!(stored, vec![row_hash(&by_id, &[Value::Int(7)]).unwrap()], "a key that did not cast is skipped");
        let floats: ArrayRef = Arc::new(duckdb::arrow::array::Float64Array::from(vec![1.0]));
        assert!(stored_hashes(&[floats], &mut Vec::new()).unwrap_err().contains("Float64"));
    }
}
