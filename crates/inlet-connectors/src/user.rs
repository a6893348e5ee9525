//! The `user` table of the seeds, and the checks a record passes before it is emitted.

use std::borrow::Cow;

use inlet_sdk::{ColumnType, Conformer, Record, Table, Value};

use crate::source::BodyError;

/// The seeds' `user` table; `updatedAt` orders versions, so a replayed page never moves a
/// row backwards. `deletedAt` is set on tombstones by APIs that expose deletes.
pub fn user_table() -> Table {
    Table::new("user")
        .primary_key(["id"])
        .column("id", ColumnType::String)
        .column("name", ColumnType::String)
        .column("email", ColumnType::String)
        .column("address", ColumnType::String)
        .column("company", ColumnType::String)
        .column("job", ColumnType::String)
        .column("createdAt", ColumnType::UtcDateTime)
        .column("updatedAt", ColumnType::UtcDateTime)
        .column("deletedAt", ColumnType::UtcDateTime)
        .version_column("updatedAt")
}

/// A record that passed the table's checks, with what the strategies steer by.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The record as received, its declared columns converted to their types.
    pub record: Record,
    /// Its `updatedAt`, in seconds since the epoch.
    pub updated_at: i64,
    /// It is a tombstone: `deletedAt` is set.
    pub deleted: bool,
}

impl Row {
    /// Its `id`, as text (empty if the record has none, which [`check`] refuses); read from
    /// the record when asked, as most rows are never asked.
    pub fn id(&self) -> Cow<'_, str> {
        match self.record.get("id") {
            Some(Value::String(s)) => Cow::Borrowed(s),
            Some(other) => Cow::Owned(other.to_string()),
            None => Cow::Borrowed(""),
        }
    }
}

/// Checks `record` against `table` and reads its `updatedAt`. A failure makes the
/// whole response unusable (it is retried, then fails the sync), so that a bad record is
/// never half-written.
pub fn check(table: &Table, record: Record) -> Result<Row, BodyError> {
    Checker::new(table).check(record)
}

/// Checks every record of a response.
pub fn check_all(table: &Table, records: Vec<Record>) -> Result<Vec<Row>, BodyError> {
    let mut checker = Checker::new(table);
    records.into_iter().map(|record| checker.check(record)).collect()
}

/// Checks the records of one table, knowing where its columns are: a page's records, which
/// share their layout, are conformed and read without comparing column names.
struct Checker<'t> {
    conformer: Conformer<'t>,
    /// The places in the table's declared columns of `id`, `updatedAt` and `deletedAt`.
    id: Option<usize>,
    updated_at: Option<usize>,
    deleted_at: Option<usize>,
}

impl<'t> Checker<'t> {
    fn new(table: &'t Table) -> Self {
        let place = |name: &str| table.columns.iter().position(|c| c.name == name);
        Checker {
            conformer: table.conformer(),
            id: place("id"),
            updated_at: place("updatedAt"),
            deleted_at: place("deletedAt"),
        }
    }

    fn check(&mut self, mut record: Record) -> Result<Row, BodyError> {
        self.conformer.conform(&mut record).map_err(|e| format!("a record does not fit: {e}"))?;
        let get = |place: Option<usize>, name: &str| match place {
            Some(place) => self.conformer.value(&record, place),
            None => record.get(name),
        };
        let Some(id) = get(self.id, "id") else { return Err("a record has no `id`".into()) };
        // `updatedAt` is declared UTC_DATETIME: conformed, it is an instant.
        let updated_at = match get(self.updated_at, "updatedAt") {
            Some(Value::Timestamp(at)) => at.as_second(),
            _ => return Err(format!("record {id}: `updatedAt` is missing")),
        };
        let deleted = get(self.deleted_at, "deletedAt").is_some_and(|v| !v.is_null());
        Ok(Row { record, updated_at, deleted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_records_pass_and_bad_ones_say_why() {
        let table = user_table();
        let good = Record::new()
            .with("id", "u1")
            .with("updatedAt", "2026-01-01T00:00:05Z")
            .with("createdAt", "2026-01-01T00:00:00Z");
        let row = check(&table, good).unwrap();
        assert_eq!((&*row.id(), row.updated_at, row.deleted), ("u1", 1_767_225_605, false));
        let tomb = Record::new()
            .with("id", "u2")
            .with("updatedAt", "2026-01-01T00:00:05Z")
            .with("deletedAt", "2026-01-01T00:00:05Z");
        assert!(check(&table, tomb).unwrap().deleted);
        assert!(
            check(&table, Record::new().with("updatedAt", "2026-01-01T00:00:05Z"))
                .unwrap_err()
                .contains("primary key column `id`")
        );
        assert!(
            check(&table, Record::new().with("id", "x").with("updatedAt", 5))
                .unwrap_err()
                .contains("is not a valid UTC_DATETIME")
        );
        assert!(check(&table, Record::new().with("id", "x")).unwrap_err().contains("`updatedAt` is missing"));
        assert!(
            check(
                &table,
                Record::new().with("id", "x").with("updatedAt", "2026-01-01T00:00:00Z").with("createdAt", "yesterday")
            )
            .is_err()
        );
    }
}
