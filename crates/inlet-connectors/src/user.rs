//! The `user` table of the seeds, and the checks a record passes before it is emitted.

use std::borrow::Cow;

use inlet_sdk::{ColumnType, Record, Table, Value};

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
pub fn check(table: &Table, mut record: Record) -> Result<Row, BodyError> {
    table.conform(&mut record).map_err(|e| format!("a record does not fit: {e}"))?;
    let Some(id) = record.get("id") else { return Err("a record has no `id`".into()) };
    // `updatedAt` is declared UTC_DATETIME: conformed, it is an instant.
    let updated_at = match record.get("updatedAt") {
        Some(Value::Timestamp(at)) => at.as_second(),
        _ => return Err(format!("record {id}: `updatedAt` is missing")),
    };
    let deleted = record.get("deletedAt").is_some_and(|v| !v.is_null());
    Ok(Row { record, updated_at, deleted })
}

/// Checks every record of a response.
pub fn check_all(table: &Table, records: Vec<Record>) -> Result<Vec<Row>, BodyError> {
    records.into_iter().map(|r| check(table, r)).collect()
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
