//! The ground truth: every user that exists or ever existed, as it stands now, with its step
//! id and whether it was deleted. Tests compare a warehouse against it.
//!
//! Served as NDJSON by `GET /_truth` and printed by `inlet playground dump`, one line per user
//! in creation order: `{"step_id": 17, "deleted": false, "record": {…}}`. The record is the
//! one the API serves (for a deleted user, as it was when deleted).

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::render::{IdStyle, Record, RecordWriter};

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
