//! The ground truth: every user that exists or ever existed, as it stands now, with its step
//! id and whether it was deleted. Tests compare a warehouse against it.
//!
//! Served as NDJSON by `GET /_truth` and printed by `inlet playground dump`, one line per user
//! in creation order: `{"step_id": 17, "deleted": false, "record": {…}}`. The record is the
//! one the API serves (for a deleted user, as it was when deleted).

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::render::{IdStyle, Record, RecordWriter};
use crate::timefmt::UnixSeconds;

/// One user of the ground truth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthRow {
    /// Its id on `/incremental/step`.
    pub step_id: u64,
    /// Deleted, whether it vanished or stays as a tombstone.
    pub deleted: bool,
    /// The record as the other endpoints serve it (with its UUID).
    pub record: Record,
}

/// The complete dataset at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Truth {
    /// Every user ever created, in creation order.
    pub rows: Vec<TruthRow>,
}

impl Truth {
    /// Users that exist now.
    pub fn live(&self) -> impl Iterator<Item = &TruthRow> {
        self.rows.iter().filter(|r| !r.deleted)
    }

    /// Users deleted since the start.
    pub fn deleted(&self) -> impl Iterator<Item = &TruthRow> {
        self.rows.iter().filter(|r| r.deleted)
    }

    /// Reads the NDJSON of `GET /_truth` or `inlet playground dump`.
    pub fn from_ndjson(text: &str) -> Result<Truth, serde_json::Error> {
        let rows = text.lines().filter(|l| !l.is_empty()).map(serde_json::from_str).collect::<Result<_, _>>()?;
        Ok(Truth { rows })
    }

    pub(crate) fn of(dataset: &Dataset) -> Truth {
        let mut text = Vec::new();
        write_ndjson(dataset, 0..dataset.index_count(), &mut text);
        Truth::from_ndjson(std::str::from_utf8(&text).expect("records are ASCII")).expect("the truth we write parses")
    }
}

/// Writes the truth lines of users `indices` (creation order).
pub(crate) fn write_ndjson(dataset: &Dataset, indices: std::ops::Range<u32>, out: &mut Vec<u8>) {
    let mut writer = RecordWriter::new(dataset.layout.seed);
    for index in indices {
        let row = dataset.row(index);
        let deleted = dataset.is_vanished(index) || row.deleted_at.is_some();
        out.extend_from_slice(b"{\"step_id\": ");
        out.extend_from_slice(itoa::Buffer::new().format(dataset.layout.step_id(index)).as_bytes());
        out.extend_from_slice(if deleted {
            b", \"deleted\": true, \"record\": "
        } else {
            b", \"deleted\": false, \"record\": "
        });
        writer.write(out, &row, IdStyle::Uuid);
        out.extend_from_slice(b"}\n");
    }
}

/// What a warehouse holds of one user, for [`Truth::compare`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Its id as stored: the UUID, or the step id for step-size syncs.
    pub id: String,
    /// Its stored `updatedAt`, if any.
    pub updated_at: Option<UnixSeconds>,
    /// Flagged deleted.
    pub deleted: bool,
}

/// How a warehouse differs from the truth; every list holds ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Users of the truth checked.
    pub compared: usize,
    /// Live users missing from the warehouse.
    pub missing: Vec<String>,
    /// Live users stored at another version (`updatedAt`).
    pub stale: Vec<String>,
    /// Live users stored as deleted.
    pub wrongly_deleted: Vec<String>,
    /// Deleted users stored as live.
    pub not_deleted: Vec<String>,
    /// Ids the source never had.
    pub extra: Vec<String>,
    /// Ids stored more than once.
    pub duplicated: Vec<String>,
}

impl Comparison {
    /// Rows lost: missing, stale or wrongly deleted users, and deletes not applied.
    pub fn lost(&self) -> usize {
        self.missing.len() + self.stale.len() + self.wrongly_deleted.len() + self.not_deleted.len()
    }

    /// The warehouse equals the truth.
    pub fn is_exact(&self) -> bool {
        self.lost() == 0 && self.extra.is_empty() && self.duplicated.is_empty()
    }
}

impl Truth {
    /// Compares what a warehouse stores with the truth: every live user stored at its
    /// current version and not deleted; every deleted user absent (never synced) or flagged;
    /// no other id, and none twice. `by_step_id`: the warehouse keys users by step id.
    pub fn compare(&self, stored: impl IntoIterator<Item = Stored>, by_step_id: bool) -> Comparison {
        let mut comparison = Comparison::default();
        let mut by_id: std::collections::HashMap<String, Stored> = std::collections::HashMap::new();
        for row in stored {
            if let Some(previous) = by_id.insert(row.id.clone(), row) {
                comparison.duplicated.push(previous.id);
            }
        }
        for row in &self.rows {
            comparison.compared += 1;
            let id = if by_step_id { row.step_id.to_string() } else { row.record.id.clone() };
            let stored = by_id.remove(&id);
            match (stored, row.deleted) {
                (None, false) => comparison.missing.push(id),
                (None, true) => {}
                (Some(s), true) if !s.deleted => comparison.not_deleted.push(id),
                (Some(_), true) => {}
                (Some(s), false) if s.deleted => comparison.wrongly_deleted.push(id),
                (Some(s), false) => {
                    let version = crate::timefmt::parse_python(row.record.updated_at.trim_end_matches('Z'), false);
                    if s.updated_at != version {
                        comparison.stale.push(id);
                    }
                }
            }
        }
        comparison.extra = by_id.into_keys().collect();
        comparison.extra.sort();
        comparison
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth() -> Truth {
        let record = |id: &str, t: &str| Record {
            id: id.into(),
            name: String::new(),
            email: String::new(),
            address: String::new(),
            company: String::new(),
            job: String::new(),
            created_at: t.into(),
            updated_at: t.into(),
            deleted_at: None,
        };
        Truth {
            rows: vec![
                TruthRow { step_id: 1, deleted: false, record: record("a", "2026-01-01T00:00:01Z") },
                TruthRow { step_id: 2, deleted: true, record: record("b", "2026-01-01T00:00:02Z") },
                TruthRow { step_id: 3, deleted: false, record: record("c", "2026-01-01T00:00:03Z") },
            ],
        }
    }

    fn at(t: &str) -> Option<UnixSeconds> {
        crate::timefmt::parse_python(t.trim_end_matches('Z'), false)
    }

    #[test]
    fn an_exact_copy_compares_exact_and_each_difference_is_named() {
        let exact = [
            Stored { id: "a".into(), updated_at: at("2026-01-01T00:00:01Z"), deleted: false },
            Stored { id: "b".into(), updated_at: None, deleted: true },
            Stored { id: "c".into(), updated_at: at("2026-01-01T00:00:03Z"), deleted: false },
        ];
        assert!(truth().compare(exact.clone(), false).is_exact());
        assert!(
            truth().compare(exact[..1].iter().chain(&exact[2..]).cloned(), false).is_exact(),
            "a deleted user never synced is fine"
        );
        let wrong = [
            Stored { id: "a".into(), updated_at: at("2026-01-01T00:00:00Z"), deleted: false },
            Stored { id: "b".into(), updated_at: None, deleted: false },
            Stored { id: "z".into(), updated_at: None, deleted: false },
            Stored { id: "z".into(), updated_at: None, deleted: false },
        ];
        let c = truth().compare(wrong, false);
        assert_eq!(
            (c.stale, c.not_deleted, c.missing, c.extra, c.duplicated),
            (vec!["a".into()], vec!["b".into()], vec!["c".into()], vec!["z".into()], vec!["z".into()])
        );
        assert_eq!(c.compared, 3);
    }
}
