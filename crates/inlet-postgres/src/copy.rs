//! Rows in PostgreSQL's binary `COPY` format, encoded straight from the engine's values into
//! large chunks.
//!
//! `tokio_postgres`'s `BinaryCopyInWriter` takes a row of boxed parameters and sends a message
//! every 4 KiB; feeding it meant cloning every value into a box and awaiting every row, and
//! that client-side work, not the server, bounded the load (docs/performance.md). Here a value
//! is encoded where it lies, by its column's type, and the chunks are 256 KiB.

use bytes::{BufMut, Bytes, BytesMut};
use inlet_engine::ColumnSpec;
use inlet_sdk::{ColumnType, Value};
use postgres_types::{IsNull, ToSql, Type};

/// The signature, flags and header extension of the binary format.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Bytes gathered before a chunk is handed over.
const CHUNK: usize = 256 * 1024;

/// The wire type binary `COPY` writes for a column type.
pub fn wire_type(ty: ColumnType) -> Type {
    match ty {
        ColumnType::Boolean => Type::BOOL,
        ColumnType::Short => Type::INT2,
        ColumnType::Int => Type::INT4,
        ColumnType::Long => Type::INT8,
        ColumnType::Float => Type::FLOAT4,
        ColumnType::Double => Type::FLOAT8,
        ColumnType::Decimal { .. } => Type::NUMERIC,
        ColumnType::NaiveDate => Type::DATE,
        ColumnType::NaiveDateTime => Type::TIMESTAMP,
        ColumnType::UtcDateTime => Type::TIMESTAMPTZ,
        ColumnType::Binary => Type::BYTEA,
        ColumnType::Xml | ColumnType::String => Type::TEXT,
        ColumnType::Json => Type::JSONB,
    }
}

/// An encoder of rows of some columns, each row followed by two fields: a staging table's
/// `_inlet_seq` (the arrival order) and `_inlet_row_deleted`, or a table's `_inlet_synced` and
/// `_inlet_deleted`.
pub struct CopyRows {
    columns: Vec<(ColumnSpec, Type)>,
    buf: BytesMut,
    trailer: Trailer,
}

/// The 8-byte field that follows a row's values.
enum Trailer {
    /// The row's sequence number, counting from 0.
    Sequence(i64),
    /// A sync time, encoded once.
    SyncedAt(i64),
}

impl CopyRows {
    /// An encoder for rows of `columns` into a staging table; the header is written.
    pub fn new(columns: &[&ColumnSpec]) -> Self {
        Self::with_trailer(columns, Trailer::Sequence(0))
    }

    /// An encoder for rows of `columns` into a table, each synced at `synced`.
    pub fn synced_at(columns: &[&ColumnSpec], synced: jiff::Timestamp) -> Self {
        Self::with_trailer(columns, Trailer::SyncedAt(postgres_microseconds(synced)))
    }

    fn with_trailer(columns: &[&ColumnSpec], trailer: Trailer) -> Self {
        let mut buf = BytesMut::with_capacity(CHUNK + CHUNK / 4);
        buf.put_slice(HEADER);
        CopyRows { columns: columns.iter().map(|&c| (c.clone(), wire_type(c.ty))).collect(), buf, trailer }
    }

    /// Encodes a row; values past the end of `values` are `NULL`. A value not of its column's
    /// type is converted to it, as the engine would have; one that does not convert is an error
    /// naming the column.
    pub fn push(&mut self, values: &[Value], flag: bool) -> Result<(), String> {
        let fields = i16::try_from(self.columns.len() + 2).map_err(|_| "too many columns for COPY".to_owned())?;
        self.buf.put_i16(fields);
        for (i, (spec, wire)) in self.columns.iter().enumerate() {
            let value = values.get(i).unwrap_or(&Value::Null);
            if !encode(value, spec.ty, wire, &mut self.buf)? {
                let converted = spec.ty.convert(value.clone()).map_err(|e| format!("column `{}`: {e}", spec.name))?;
                if !encode(&converted, spec.ty, wire, &mut self.buf)? {
                    return Err(format!("column `{}`: {converted} does not fit {}", spec.name, spec.ty));
                }
            }
        }
        self.buf.put_i32(8);
        match &mut self.trailer {
            Trailer::Sequence(next) => {
                self.buf.put_i64(*next);
                *next += 1;
            }
            Trailer::SyncedAt(micros) => self.buf.put_i64(*micros),
        }
        self.buf.put_i32(1);
        self.buf.put_u8(u8::from(flag));
        Ok(())
    }

    /// The bytes encoded so far, once they make a chunk.
    pub fn full_chunk(&mut self) -> Option<Bytes> {
        (self.buf.len() >= CHUNK).then(|| self.buf.split().freeze())
    }

    /// The bytes encoded since the last chunk, however few: a `COPY` left open sends them so
    /// that the server is not kept waiting for them.
    pub fn rest(&mut self) -> Option<Bytes> {
        (!self.buf.is_empty()).then(|| self.buf.split().freeze())
    }

    /// The rest of the bytes, with the end-of-data marker.
    pub fn finish(mut self) -> Bytes {
        self.buf.put_i16(-1);
        self.buf.freeze()
    }
}

/// Writes `value` as a field of column type `ty` (length, then bytes, or -1 for `NULL`);
/// `false`, writing nothing, when the value is not of the variant `ty` converts to.
fn encode(value: &Value, ty: ColumnType, wire: &Type, buf: &mut BytesMut) -> Result<bool, String> {
    let at = buf.len();
    buf.put_i32(0);
    let written = match (ty, value) {
        (_, Value::Null) => IsNull::Yes,
        // Text, the most common, without going through `ToSql`.
        (ColumnType::String | ColumnType::Xml, Value::String(s)) => {
            buf.put_slice(s.as_bytes());
            IsNull::No
        }
        (ColumnType::UtcDateTime, Value::Timestamp(t)) => {
            buf.put_i64(postgres_microseconds(*t));
            IsNull::No
        }
        (ColumnType::Long, Value::Int(i)) => to_sql(i, wire, buf)?,
        (ColumnType::Int, Value::Int(i)) => match i32::try_from(*i) {
            Ok(i) => to_sql(&i, wire, buf)?,
            Err(_) => return undo(buf, at),
        },
        (ColumnType::Short, Value::Int(i)) => match i16::try_from(*i) {
            Ok(i) => to_sql(&i, wire, buf)?,
            Err(_) => return undo(buf, at),
        },
        (ColumnType::Boolean, Value::Bool(b)) => to_sql(b, wire, buf)?,
        (ColumnType::Float, Value::Float(f)) => to_sql(&(*f as f32), wire, buf)?,
        (ColumnType::Double, Value::Float(f)) => to_sql(f, wire, buf)?,
        (ColumnType::Decimal { .. }, Value::Decimal(d)) => to_sql(d, wire, buf)?,
        (ColumnType::NaiveDate, Value::Date(d)) => to_sql(d, wire, buf)?,
        (ColumnType::NaiveDateTime, Value::DateTime(d)) => to_sql(d, wire, buf)?,
        (ColumnType::Binary, Value::Bytes(b)) => to_sql(b, wire, buf)?,
        (ColumnType::Json, Value::Json(j)) => to_sql(j, wire, buf)?,
        _ => return undo(buf, at),
    };
    let length = match written {
        IsNull::Yes => -1,
        IsNull::No => i32::try_from(buf.len() - at - 4).map_err(|_| "a value longer than 2 GiB".to_owned())?,
    };
    buf[at..at + 4].copy_from_slice(&length.to_be_bytes());
    Ok(true)
}

/// PostgreSQL's epoch, 2000-01-01 UTC, in microseconds from the Unix epoch.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A `timestamptz` as PostgreSQL stores it: microseconds from 2000, truncated toward 2000 as
/// `postgres_types` encodes a timestamp, without its calendar arithmetic, which took a fifth
/// of the encoding's time.
fn postgres_microseconds(t: jiff::Timestamp) -> i64 {
    if t.subsec_nanosecond() % 1000 == 0 {
        t.as_microsecond() - POSTGRES_EPOCH_MICROS
    } else {
        // Every timestamp jiff holds (years -9999 to 9999) is within 2^59 µs of 2000.
        ((t.as_nanosecond() - i128::from(POSTGRES_EPOCH_MICROS) * 1000) / 1000) as i64
    }
}

fn to_sql(value: &(dyn ToSql + Sync), wire: &Type, buf: &mut BytesMut) -> Result<IsNull, String> {
    value.to_sql_checked(wire, buf).map_err(|e| e.to_string())
}

/// Takes back the length written at `at`: the value was not of its column's variant.
fn undo(buf: &mut BytesMut, at: usize) -> Result<bool, String> {
    buf.truncate(at);
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, ty: ColumnType) -> ColumnSpec {
        ColumnSpec { name: name.into(), ty }
    }

    #[test]
    fn rows_are_encoded_as_postgres_reads_them() {
        let (id, name, small) =
            (spec("id", ColumnType::Long), spec("name", ColumnType::String), spec("small", ColumnType::Short));
        let mut rows = CopyRows::new(&[&id, &name, &small]);
        rows.push(&[Value::Int(7), Value::String("Ann".into()), Value::String("3".into())], true).unwrap();
        rows.push(&[Value::Int(8)], false).unwrap();
        assert!(rows.full_chunk().is_none(), "two rows are no chunk");
        let bytes = rows.finish();
        let mut expected = HEADER.to_vec();
        // Five fields: id 7, "Ann", 3 (converted from text), sequence 0, flag true.
        expected.extend([0, 5, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 3, b'A', b'n', b'n', 0, 0, 0, 2, 0, 3]);
        expected.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        // The short row ends with NULLs (-1), then sequence 1 and flag false.
        expected.extend([0, 5, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8, 255, 255, 255, 255, 255, 255, 255, 255]);
        expected.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 255, 255]);
        assert_eq!(bytes.as_ref(), expected.as_slice());
    }

    #[test]
    fn rows_into_a_table_carry_the_sync_time() {
        let id = spec("id", ColumnType::Long);
        let synced: jiff::Timestamp = "2000-01-01T00:00:01Z".parse().unwrap();
        let mut rows = CopyRows::synced_at(&[&id], synced);
        rows.push(&[Value::Int(7)], false).unwrap();
        rows.push(&[Value::Int(8)], true).unwrap();
        let bytes = rows.finish();
        // PostgreSQL counts microseconds from 2000: one second is 1,000,000 (0x0F4240).
        let at = [0, 0, 0, 8, 0, 0, 0, 0, 0, 0x0F, 0x42, 0x40];
        let mut expected = HEADER.to_vec();
        for (id, flag) in [(7, 0), (8, 1)] {
            expected.extend([0, 3, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, id]);
            expected.extend(at);
            expected.extend([0, 0, 0, 1, flag]);
        }
        expected.extend([255, 255]);
        assert_eq!(bytes.as_ref(), expected.as_slice());
    }

    #[test]
    fn timestamps_are_encoded_as_postgres_types_encodes_them() {
        let some = [
            "2000-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999Z",
            "1999-12-31T23:59:59.9999995Z",
            "2000-01-01T00:00:00.0000005Z",
            "2026-11-30T12:34:56.789012345Z",
        ];
        let extremes = [jiff::Timestamp::MIN, jiff::Timestamp::MAX];
        for t in some.iter().map(|at| at.parse::<jiff::Timestamp>().unwrap()).chain(extremes) {
            let (mut ours, mut theirs) = (BytesMut::new(), BytesMut::new());
            assert!(encode(&Value::Timestamp(t), ColumnType::UtcDateTime, &Type::TIMESTAMPTZ, &mut ours).unwrap());
            theirs.put_i32(8);
            t.to_sql(&Type::TIMESTAMPTZ, &mut theirs).unwrap();
            assert_eq!(ours, theirs, "{t}");
        }
    }

    #[test]
    fn a_value_that_does_not_fit_names_its_column() {
        let small = spec("small", ColumnType::Short);
        let mut rows = CopyRows::new(&[&small]);
        assert!(rows.push(&[Value::Int(70_000)], false).unwrap_err().contains("`small`"));
        let flag = spec("active", ColumnType::Boolean);
        let mut rows = CopyRows::new(&[&flag]);
        assert!(rows.push(&[Value::String("maybe".into())], false).unwrap_err().starts_with("column `active`"));
    }
}
