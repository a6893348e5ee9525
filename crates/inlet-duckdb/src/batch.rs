//! Staged rows as Arrow record batches: DuckDB's Appender then takes whole columns, instead
//! of one C call and one type dispatch per value, which cost more than the rest of staging
//! (docs/performance.md).

use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use duckdb::arrow::datatypes::{Field, Schema, SchemaRef};
use duckdb::arrow::record_batch::RecordBatch;
use inlet_engine::ColumnSpec;
use inlet_sdk::{ColumnType, Decimal, Value};

/// Rows per record batch: a few of DuckDB's 2,048-row vectors, small enough to stay in cache.
pub(crate) const BATCH_ROWS: usize = 8_192;

/// One column of a batch, built in the type its staging column declares.
enum Column {
    Boolean(BooleanBuilder),
    Short(Int16Builder),
    Int(Int32Builder),
    Long(Int64Builder),
    Float(Float32Builder),
    Double(Float64Builder),
    Decimal(Decimal128Builder, u32),
    Date(Date32Builder),
    Micros(TimestampMicrosecondBuilder),
    Binary(BinaryBuilder),
    Text(StringBuilder),
}

impl Column {
    fn new(ty: ColumnType) -> Self {
        match ty {
            ColumnType::Boolean => Column::Boolean(BooleanBuilder::new()),
            ColumnType::Short => Column::Short(Int16Builder::new()),
            ColumnType::Int => Column::Int(Int32Builder::new()),
            ColumnType::Long => Column::Long(Int64Builder::new()),
            ColumnType::Float => Column::Float(Float32Builder::new()),
            ColumnType::Double => Column::Double(Float64Builder::new()),
            ColumnType::Decimal { precision, scale } => Column::Decimal(
                Decimal128Builder::new()
                    .with_precision_and_scale(precision, scale as i8)
                    .expect("DuckDB created the staging column as this DECIMAL, and Arrow takes what DuckDB takes"),
                u32::from(scale),
            ),
            ColumnType::NaiveDate => Column::Date(Date32Builder::new()),
            ColumnType::NaiveDateTime => Column::Micros(TimestampMicrosecondBuilder::new()),
            ColumnType::UtcDateTime => Column::Micros(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            ColumnType::Binary => Column::Binary(BinaryBuilder::new()),
            ColumnType::Xml | ColumnType::String | ColumnType::Json => Column::Text(StringBuilder::new()),
        }
    }

    /// Appends `value`; `false`, appending nothing, when it is not of the column's variant.
    fn push(&mut self, value: &Value) -> bool {
        match (self, value) {
            (column, Value::Null) => column.push_null(),
            (Column::Boolean(b), Value::Bool(v)) => b.append_value(*v),
            (Column::Short(b), Value::Int(v)) => match i16::try_from(*v) {
                Ok(v) => b.append_value(v),
                Err(_) => return false,
            },
            (Column::Int(b), Value::Int(v)) => match i32::try_from(*v) {
                Ok(v) => b.append_value(v),
                Err(_) => return false,
            },
            (Column::Long(b), Value::Int(v)) => b.append_value(*v),
            (Column::Float(b), Value::Float(v)) => b.append_value(*v as f32),
            (Column::Double(b), Value::Float(v)) => b.append_value(*v),
            (Column::Decimal(b, scale), Value::Decimal(d)) => match mantissa_at(*d, *scale) {
                Some(m) => b.append_value(m),
                None => return false,
            },
            (Column::Date(b), Value::Date(d)) => b.append_value(epoch_days(*d)),
            (Column::Micros(b), Value::DateTime(dt)) => b.append_value(epoch_micros(*dt)),
            (Column::Micros(b), Value::Timestamp(t)) => b.append_value(t.as_microsecond()),
            (Column::Binary(b), Value::Bytes(v)) => b.append_value(v),
            (Column::Text(b), Value::String(s)) => b.append_value(s),
            (Column::Text(b), Value::Json(j)) => b.append_value(j.to_string()),
            _ => return false,
        }
        true
    }

    fn push_null(&mut self) {
        match self {
            Column::Boolean(b) => b.append_null(),
            Column::Short(b) => b.append_null(),
            Column::Int(b) => b.append_null(),
            Column::Long(b) => b.append_null(),
            Column::Float(b) => b.append_null(),
            Column::Double(b) => b.append_null(),
            Column::Decimal(b, _) => b.append_null(),
            Column::Date(b) => b.append_null(),
            Column::Micros(b) => b.append_null(),
            Column::Binary(b) => b.append_null(),
            Column::Text(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        let builder: &mut dyn ArrayBuilder = match self {
            Column::Boolean(b) => b,
            Column::Short(b) => b,
            Column::Int(b) => b,
            Column::Long(b) => b,
            Column::Float(b) => b,
            Column::Double(b) => b,
            Column::Decimal(b, _) => b,
            Column::Date(b) => b,
            Column::Micros(b) => b,
            Column::Binary(b) => b,
            Column::Text(b) => b,
        };
        builder.finish()
    }
}

/// What follows a row's columns in a batch.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Trailer {
    /// For a staging table: `_inlet_seq` (the row's number, counted across batches) and
    /// `_inlet_row_deleted`.
    Staging,
    /// For the table itself: `_inlet_synced` (the transaction's sync time, in microseconds)
    /// and `_inlet_deleted`.
    Target {
        /// The sync time.
        synced: i64,
    },
}

/// Rows as Arrow record batches: the given columns, then the [`Trailer`]'s two.
pub(crate) struct RowBatch<'a> {
    specs: Vec<&'a ColumnSpec>,
    columns: Vec<Column>,
    trailer: Trailer,
    /// The sequence numbers or the sync times, as the trailer says.
    marks: Column,
    deleted: BooleanBuilder,
    next_seq: i64,
}

impl<'a> RowBatch<'a> {
    pub(crate) fn new(specs: Vec<&'a ColumnSpec>, trailer: Trailer) -> Self {
        let columns = specs.iter().map(|c| Column::new(c.ty)).collect();
        let marks = match trailer {
            Trailer::Staging => Column::new(ColumnType::Long),
            Trailer::Target { .. } => Column::new(ColumnType::UtcDateTime),
        };
        RowBatch { specs, columns, trailer, marks, deleted: BooleanBuilder::new(), next_seq: 0 }
    }

    /// Adds a row; columns past the end of `values` are `NULL`. A value not of its column's
    /// type is converted to it, as the engine would have; one that does not convert is an
    /// error naming the column.
    pub(crate) fn push(&mut self, values: &[Value], deleted: bool) -> Result<(), String> {
        for (i, (column, spec)) in self.columns.iter_mut().zip(&self.specs).enumerate() {
            let value = values.get(i).unwrap_or(&Value::Null);
            if !column.push(value) {
                let converted = spec.ty.convert(value.clone()).map_err(|e| format!("column `{}`: {e}", spec.name))?;
                if !column.push(&converted) {
                    return Err(format!("column `{}`: {converted} does not fit {}", spec.name, spec.ty));
                }
            }
        }
        match (&mut self.marks, self.trailer) {
            (Column::Long(seq), Trailer::Staging) => seq.append_value(self.next_seq),
            (Column::Micros(synced), Trailer::Target { synced: at }) => synced.append_value(at),
            _ => unreachable!("the marks column is built for its trailer"),
        }
        self.deleted.append_value(deleted);
        self.next_seq += 1;
        Ok(())
    }

    /// Rows pushed since the last [`take`](Self::take).
    pub(crate) fn len(&self) -> usize {
        self.deleted.len()
    }

    /// The rows pushed since the last call, as one record batch.
    pub(crate) fn take(&mut self) -> RecordBatch {
        let mut arrays: Vec<ArrayRef> = self.columns.iter_mut().map(Column::finish).collect();
        arrays.push(self.marks.finish());
        arrays.push(Arc::new(self.deleted.finish()));
        let fields: Vec<Field> =
            arrays.iter().enumerate().map(|(i, a)| Field::new(format!("c{i}"), a.data_type().clone(), true)).collect();
        RecordBatch::try_new(SchemaRef::new(Schema::new(fields)), arrays)
            .expect("every column holds one value per pushed row")
    }
}

/// `d`'s digits at `scale` decimal places, if it has no more than that many.
pub(crate) fn mantissa_at(d: Decimal, scale: u32) -> Option<i128> {
    let mut d = d;
    d.rescale(scale);
    (d.scale() == scale).then(|| d.mantissa())
}

/// Days since 1970-01-01, as DuckDB stores a `DATE`.
pub(crate) fn epoch_days(date: jiff::civil::Date) -> i32 {
    date.since(jiff::civil::date(1970, 1, 1)).map_or(0, |span| span.get_days())
}

/// Microseconds since 1970-01-01 00:00, as DuckDB stores a `TIMESTAMP`.
pub(crate) fn epoch_micros(datetime: jiff::civil::DateTime) -> i64 {
    datetime.to_zoned(jiff::tz::TimeZone::UTC).map_or(0, |z| z.timestamp().as_microsecond())
}

#[cfg(test)]
mod tests {
    use super::*;
    use duckdb::arrow::array::{Array, AsArray};
    use duckdb::arrow::datatypes::{Decimal128Type, Int16Type, Int64Type, TimestampMicrosecondType};

    fn spec(name: &str, ty: ColumnType) -> ColumnSpec {
        ColumnSpec { name: name.into(), ty }
    }

    #[test]
    fn numbers_rows_across_batches_and_pads_short_rows_with_nulls() {
        let (id, amount) =
            (spec("id", ColumnType::Short), spec("amount", ColumnType::Decimal { precision: 10, scale: 2 }));
        let mut batch = RowBatch::new(vec![&id, &amount], Trailer::Staging);
        batch.push(&[Value::Int(7), Value::Decimal(Decimal::new(15, 1))], false).unwrap();
        batch.push(&[Value::String("8".into())], true).unwrap();
        let first = batch.take();
        assert_eq!(batch.len(), 0);
        batch.push(&[Value::Int(9)], false).unwrap();
        let second = batch.take();

        assert_eq!(first.num_columns(), 4);
        assert_eq!(
            first.column(0).as_primitive::<Int16Type>().values(),
            &[7, 8],
            "text converted to the column's type"
        );
        let amounts = first.column(1).as_primitive::<Decimal128Type>();
        assert_eq!((amounts.value(0), amounts.is_null(1)), (150, true), "1.5 at scale 2, then a short row");
        assert!(first.column(3).as_boolean().value(1), "the second row is deleted");
        assert_eq!(second.column(2).as_primitive::<Int64Type>().values(), &[2], "numbering goes on");
    }

    #[test]
    fn rows_for_the_table_end_with_the_sync_time_and_the_deleted_flag() {
        let id = spec("id", ColumnType::Long);
        let mut batch = RowBatch::new(vec![&id], Trailer::Target { synced: 1_700_000_000_000_000 });
        batch.push(&[Value::Int(1)], false).unwrap();
        batch.push(&[Value::Int(2)], true).unwrap();
        let rows = batch.take();
        let synced = rows.column(1).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(synced.values(), &[1_700_000_000_000_000; 2], "every row has the transaction's sync time");
        assert_eq!(synced.timezone(), Some("UTC"));
        assert_eq!((rows.column(2).as_boolean().value(0), rows.column(2).as_boolean().value(1)), (false, true));
    }

    #[test]
    fn a_value_that_does_not_fit_names_its_column() {
        let flag = spec("active", ColumnType::Boolean);
        let mut batch = RowBatch::new(vec![&flag], Trailer::Staging);
        let error = batch.push(&[Value::String("maybe".into())], false).unwrap_err();
        assert!(error.starts_with("column `active`"), "{error}");
        let short = spec("small", ColumnType::Short);
        let mut batch = RowBatch::new(vec![&short], Trailer::Staging);
        assert!(batch.push(&[Value::Int(70_000)], false).unwrap_err().contains("small"));
    }

    #[test]
    fn dates_and_times_count_from_the_epoch() {
        assert_eq!(epoch_days(jiff::civil::date(1970, 1, 11)), 10);
        assert_eq!(epoch_days(jiff::civil::date(1969, 12, 31)), -1);
        assert_eq!(epoch_micros(jiff::civil::date(1970, 1, 1).at(0, 0, 1, 500_000_000)), 1_500_000);
    }
}
