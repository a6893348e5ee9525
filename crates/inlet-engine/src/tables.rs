//! From records to rows: each table's columns (declared first, then inferred in the order
//! they appear) and the conversion of every value to its column's type.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use inlet_sdk::{ColumnName, ColumnType, Layout, Record, Table, Value, intern};

use crate::destination::{ColumnSpec, Patch, TableSpec};

/// A record that cannot be written, with the table, column and value named.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

struct Tracked {
    spec: TableSpec,
    index: HashMap<ColumnName, usize, Fast>,
    /// Primary-key columns not declared: typed by their first non-null value.
    provisional: Vec<usize>,
    /// The layout of the last record whose every column has a position, and those positions:
    /// the records of one source share their layout, so one pointer comparison places a
    /// record's values without looking a name up.
    placed: Option<(Layout, Vec<usize>)>,
}

/// The tables of one connector, growing as records bring new columns.
pub(crate) struct Tables {
    tracked: Vec<Tracked>,
    by_name: HashMap<ColumnName, usize, Fast>,
}

/// Table names are looked up for every change: with a fast hash, not SipHash, which cost a
/// tenth of the writer's work per row (docs/performance.md).
type Fast = foldhash::fast::RandomState;

impl Tables {
    pub(crate) fn new(declared: &[Table]) -> Result<Self, String> {
        let mut tables = Tables { tracked: Vec::new(), by_name: HashMap::default() };
        for table in declared {
            table.check()?;
            if tables.by_name.contains_key(&*intern(&table.name)) {
                return Err(format!("table `{}` is declared twice", table.name));
            }
            let mut columns: Vec<ColumnSpec> =
                table.columns.iter().map(|c| ColumnSpec { name: c.name.clone(), ty: c.ty }).collect();
            let mut provisional = Vec::new();
            for key in &table.primary_key {
                if table.column_type(key).is_none() {
                    provisional.push(columns.len());
                    columns.push(ColumnSpec { name: key.clone(), ty: ColumnType::String });
                }
            }
            let position = |name: &str| columns.iter().position(|c| c.name == name).expect("declared above");
            let spec = TableSpec {
                name: table.name.clone(),
                primary_key: table.primary_key.iter().map(|k| position(k)).collect(),
                version: table.version_column.as_deref().map(position),
                columns,
            };
            let index = spec.columns.iter().enumerate().map(|(i, c)| (intern(&c.name), i)).collect();
            tables.by_name.insert(intern(&table.name), tables.tracked.len());
            tables.tracked.push(Tracked { spec, index, provisional, placed: None });
        }
        Ok(tables)
    }

    /// Every table as it stands now.
    pub(crate) fn specs(&self) -> Vec<TableSpec> {
        self.tracked.iter().map(|t| t.spec.clone()).collect()
    }

    pub(crate) fn table(&self, name: &str) -> Result<usize, DataError> {
        self.by_name.get(name).copied().ok_or_else(|| {
            let known: Vec<&str> = self.tracked.iter().map(|t| t.spec.name.as_str()).collect();
            DataError(format!(
                "table `{name}` is not declared by the connector's schema (declared: {})",
                known.join(", ")
            ))
        })
    }

    /// `record` as a whole row of `table`; undeclared columns are added, typed by their value.
    pub(crate) fn row(&mut self, table: usize, record: Record) -> Result<Vec<Value>, DataError> {
        let (columns, values) = record.into_layout_and_values();
        // Filled as the columns come, not from a row of `NULL`s: columns in the table's order
        // (the usual case) are pushed, without a placeholder written first and dropped.
        let width = self.tracked[table].spec.columns.len();
        let mut row = Vec::with_capacity(width);
        let t = &self.tracked[table];
        if let Some((seen, positions)) = &t.placed
            && Arc::ptr_eq(seen, &columns)
            && t.provisional.is_empty()
        {
            for (&position, value) in positions.iter().zip(values) {
                place(&mut row, position, self.convert(table, position, value)?);
            }
        } else {
            let mut positions = Vec::with_capacity(columns.len());
            for (column, value) in columns.iter().zip(values) {
                let Some(position) = self.position(table, column, &value) else { continue };
                positions.push(position);
                place(&mut row, position, self.convert(table, position, value)?);
            }
            if positions.len() == columns.len() {
                self.tracked[table].placed = Some((columns, positions));
            }
        }
        if row.len() < width {
            row.resize_with(width, || Value::Null);
        }
        let t = &self.tracked[table];
        if let Some(&missing) = t.spec.primary_key.iter().find(|&&k| row.get(k).is_none_or(Value::is_null)) {
            return Err(DataError(format!(
                "table `{}`: primary key column `{}` is missing or null",
                t.spec.name, t.spec.columns[missing].name
            )));
        }
        Ok(row)
    }

    /// The primary key of `record`, in key order; other columns are ignored.
    pub(crate) fn key(&mut self, table: usize, mut record: Record) -> Result<Vec<Value>, DataError> {
        let keys: Vec<usize> = self.tracked[table].spec.primary_key.clone();
        keys.into_iter()
            .map(|k| {
                let name = self.tracked[table].spec.columns[k].name.clone();
                match record.remove(&name) {
                    None | Some(Value::Null) => Err(DataError(format!(
                        "table `{}`: primary key column `{name}` is missing or null",
                        self.tracked[table].spec.name
                    ))),
                    Some(value) => {
                        self.settle_provisional(table, k, &value);
                        self.convert(table, k, value)
                    }
                }
            })
            .collect()
    }

    /// The key and the other columns of a partial update.
    pub(crate) fn patch(&mut self, table: usize, record: Record) -> Result<Patch, DataError> {
        let key_names: Vec<String> = self.tracked[table]
            .spec
            .primary_key
            .iter()
            .map(|&k| self.tracked[table].spec.columns[k].name.clone())
            .collect();
        let mut key_record = Record::new();
        let mut columns = Vec::new();
        for (column, value) in record {
            if key_names.iter().any(|k| **k == *column) {
                key_record.set(&column, value);
                continue;
            }
            let Some(position) = self.position(table, &column, &value) else { continue };
            columns.push((position, self.convert(table, position, value)?));
        }
        Ok(Patch { key: self.key(table, key_record)?, columns })
    }

    /// The position of `column`, adding it if new; `None` for a new column whose first value
    /// is null (its type is unknown until a value arrives).
    fn position(&mut self, table: usize, column: &ColumnName, value: &Value) -> Option<usize> {
        let t = &mut self.tracked[table];
        if let Some(&position) = t.index.get(column) {
            self.settle_provisional(table, position, value);
            return Some(position);
        }
        let ty = ColumnType::infer(value)?;
        let position = t.spec.columns.len();
        t.spec.columns.push(ColumnSpec { name: column.to_string(), ty });
        t.index.insert(column.clone(), position);
        Some(position)
    }

    fn settle_provisional(&mut self, table: usize, position: usize, value: &Value) {
        let t = &mut self.tracked[table];
        if let Some(at) = t.provisional.iter().position(|p| *p == position)
            && let Some(ty) = ColumnType::infer(value)
        {
            t.spec.columns[position].ty = ty;
            t.provisional.remove(at);
        }
    }

    /// Positions of `table`'s primary-key columns.
    pub(crate) fn key_positions(&self, table: usize) -> &[usize] {
        &self.tracked[table].spec.primary_key
    }

    /// Fixes the type of key columns still waiting for a value (they were written as text).
    pub(crate) fn settle_all(&mut self) {
        for t in &mut self.tracked {
            t.provisional.clear();
        }
    }

    fn convert(&self, table: usize, position: usize, value: Value) -> Result<Value, DataError> {
        let t = &self.tracked[table];
        let column = &t.spec.columns[position];
        if column.ty.holds(&value) {
            return Ok(value);
        }
        column
            .ty
            .convert(value)
            .map_err(|e| DataError(format!("table `{}`, column `{}`: {e}", t.spec.name, column.name)))
    }
}

/// Puts `value` at `position` of `row`, which grows with `NULL`s up to it.
fn place(row: &mut Vec<Value>, position: usize, value: Value) {
    match position.cmp(&row.len()) {
        Ordering::Equal => row.push(value),
        Ordering::Less => row[position] = value,
        Ordering::Greater => {
            row.resize_with(position, || Value::Null);
            row.push(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Tables {
        Tables::new(&[Table::new("user")
            .primary_key(["id"])
            .column("updatedAt", ColumnType::UtcDateTime)
            .version_column("updatedAt")])
        .unwrap()
    }

    #[test]
    fn declared_columns_come_first_then_keys_then_inferred_ones() {
        let mut tables = user();
        let t = tables.table("user").unwrap();
        let row = tables
            .row(t, Record::new().with("name", "Ann").with("id", 7).with("updatedAt", "2026-01-01T00:00:00Z"))
            .unwrap();
        let spec = &tables.specs()[t];
        let names: Vec<&str> = spec.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["updatedAt", "id", "name"]);
        assert_eq!(spec.columns[1].ty, ColumnType::Long, "an undeclared key takes the type of its first value");
        assert_eq!((spec.primary_key.clone(), spec.version), (vec![1], Some(0)));
        assert_eq!(
            row,
            vec![Value::Timestamp("2026-01-01T00:00:00Z".parse().unwrap()), Value::Int(7), Value::String("Ann".into())]
        );
    }

    #[test]
    fn records_of_changing_layouts_land_in_their_columns() {
        let mut tables = user();
        let t = tables.table("user").unwrap();
        let at = "2026-01-01T00:00:00Z";
        let records = [
            Record::new().with("id", "1").with("name", "Ann").with("updatedAt", at),
            Record::new().with("id", "2").with("name", "Bob").with("updatedAt", at),
            Record::new().with("name", "Cy").with("id", "3"),
            Record::new().with("id", "4").with("note", "new column").with("name", "Di"),
            Record::new().with("id", "5").with("name", "Ed").with("updatedAt", at),
        ];
        let rows: Vec<Vec<Value>> = records.into_iter().map(|r| tables.row(t, r).unwrap()).collect();
        let names: Vec<&str> = tables.tracked[t].spec.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["updatedAt", "id", "name", "note"]);
        // Whole rows: a column a record lacks is `NULL`, wherever it falls, and a row is as
        // wide as the table was when it was converted.
        let (n, s) = (Value::Null, |v: &str| Value::String(v.into()));
        let t0 = Value::Timestamp(at.parse().unwrap());
        assert_eq!(
            rows,
            [
                vec![t0.clone(), s("1"), s("Ann")],
                vec![t0.clone(), s("2"), s("Bob")],
                vec![n.clone(), s("3"), s("Cy")],
                vec![n.clone(), s("4"), s("Di"), s("new column")],
                vec![t0, s("5"), s("Ed"), n],
            ]
        );
    }

    #[test]
    fn parsed_records_sharing_a_layout_land_in_their_columns() {
        let mut tables = user();
        let t = tables.table("user").unwrap();
        let records: Vec<Record> = serde_json::from_str(
            r#"[{"id": "1", "note": null}, {"id": "2", "note": null}, {"id": "3", "note": "x"},
                {"id": "4", "note": "y"}, {"note": "z", "id": "5"}, {"id": "6", "note": null}]"#,
        )
        .unwrap();
        let rows: Vec<Vec<Value>> = records.into_iter().map(|r| tables.row(t, r).unwrap()).collect();
        // A column is added by its first value that has a type, whichever record brings it.
        let (n, s) = (Value::Null, |v: &str| Value::String(v.into()));
        assert_eq!(
            rows,
            [
                vec![n.clone(), s("1")],
                vec![n.clone(), s("2")],
                vec![n.clone(), s("3"), s("x")],
                vec![n.clone(), s("4"), s("y")],
                vec![n.clone(), s("5"), s("z")],
                vec![n.clone(), s("6"), n],
            ]
        );
    }

    #[test]
    fn bad_values_and_missing_keys_are_named() {
        let mut tables = user();
        let t = tables.table("user").unwrap();
        let e = tables.row(t, Record::new().with("id", "1").with("updatedAt", "yesterday")).unwrap_err();
        assert!(e.0.starts_with("table `user`, column `updatedAt`: \"yesterday\" is not a valid UTC_DATETIME"), "{e}");
        let e = tables.row(t, Record::new().with("updatedAt", "2026-01-01T00:00:00Z")).unwrap_err();
        assert_eq!(e.0, "table `user`: primary key column `id` is missing or null");
        assert!(tables.table("users").unwrap_err().0.contains("declared: user"));
    }

    #[test]
    fn new_null_columns_wait_for_a_value_and_patches_split_key_from_columns() {
        let mut tables = user();
        let t = tables.table("user").unwrap();
        tables.row(t, Record::new().with("id", "1").with("note", Value::Null)).unwrap();
        assert_eq!(tables.specs()[t].columns.len(), 2, "no column for a value of unknown type");
        let patch = tables.patch(t, Record::new().with("note", "hi").with("id", "1")).unwrap();
        assert_eq!(patch.key, vec![Value::String("1".into())]);
        assert_eq!(patch.columns, vec![(2, Value::String("hi".into()))]);
    }
}
