//! The destination conformance suite: every destination passes these checks of the
//! [`Destination`] contract. A destination crate implements [`Harness`] and calls each check
//! from one test (see `inlet-duckdb/tests/conformance.rs`).

use std::collections::HashMap;
use std::path::Path;

use inlet_sdk::{ColumnType, Decimal, State, Value};

use crate::destination::{ColumnSpec, Destination, Patch, Row, SavedState, Segment, TableSpec};
use crate::memory::StoredRow;

/// Access to one fresh, empty warehouse location (a file, a schema) for the checks.
pub trait Harness {
    /// A destination on the location; the previous one has been dropped.
    fn open(&mut self) -> Box<dyn Destination>;
    /// The rows of `table`, ordered by primary key.
    fn rows(&mut self, table: &str) -> Vec<StoredRow>;
    /// The names of `table`'s columns, bookkeeping ones included, in order.
    fn columns(&mut self, table: &str) -> Vec<String>;
}

/// A table named `name` with `columns`, the primary key at positions `key`, the version column
/// at `version`: for the checks here and for destinations' own tests.
pub fn table_spec(name: &str, columns: &[(&str, ColumnType)], key: &[usize], version: Option<usize>) -> TableSpec {
    TableSpec {
        name: name.into(),
        columns: columns.iter().map(|(n, ty)| ColumnSpec { name: (*n).into(), ty: *ty }).collect(),
        primary_key: key.to_vec(),
        version,
    }
}

/// `item(id LONG key, name STRING, updated UTC_DATETIME version)`, the table of most checks.
pub fn item() -> TableSpec {
    table_spec(
        "item",
        &[("id", ColumnType::Long), ("name", ColumnType::String), ("updated", ColumnType::UtcDateTime)],
        &[0],
        Some(2),
    )
}

fn at(second: i64) -> Value {
    Value::Timestamp(jiff::Timestamp::from_second(1_790_000_000 + second).expect("a valid instant"))
}

fn row(id: i64, name: &str, updated: i64) -> Row {
    Row { values: vec![Value::Int(id), Value::String(name.into()), at(updated)], deleted: false }
}

fn saved(cursor: i64) -> SavedState {
    SavedState {
        connector: "conformance".into(),
        state: State::from_json(serde_json::json!({ "cursor": cursor })).expect("an object"),
    }
}

/// Commits `segments` with `state` in one transaction, writing one segment at a time as a
/// sync streams its pieces: for the checks here and for destinations' own tests.
pub fn commit(destination: &mut dyn Destination, tables: &[TableSpec], segments: Vec<Segment>, state: &SavedState) {
    destination.begin(jiff::Timestamp::now()).unwrap_or_else(|e| panic!("begin failed: {e:?}"));
    for segment in &segments {
        destination.write(tables, std::slice::from_ref(segment)).unwrap_or_else(|e| panic!("write failed: {e:?}"));
    }
    destination.commit(state).unwrap_or_else(|e| panic!("commit failed: {e:?}"));
}

/// `(id, name, deleted)` of every row of `item`.
fn items(h: &mut dyn Harness) -> Vec<(i64, String, bool)> {
    h.rows("item")
        .into_iter()
        .map(|r| {
            let id = match r.record.get("id") {
                Some(Value::Int(i)) => *i,
                other => panic!("id {other:?}"),
            };
            let name = r.record.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
            (id, name, r.deleted)
        })
        .collect()
}

/// Tables are created on first use, with the bookkeeping columns; data and state land together.
pub fn creates_tables_and_saves_state(h: &mut dyn Harness) {
    let mut d = h.open();
    assert_eq!(d.saved_state().expect("readable"), None, "a fresh warehouse has no state");
    let tables = [item()];
    commit(
        d.as_mut(),
        &tables,
        vec![Segment::Upserts { table: 0, rows: vec![row(1, "a", 0), row(2, "b", 0)] }],
        &saved(1),
    );
    assert_eq!(d.saved_state().expect("readable"), Some(saved(1)));
    drop(d);
    assert_eq!(items(h), [(1, "a".into(), false), (2, "b".into(), false)]);
    assert_eq!(h.columns("item"), ["id", "name", "updated", "_inlet_synced", "_inlet_deleted"]);
    assert_eq!(h.open().saved_state().expect("readable"), Some(saved(1)), "the state survives reopening");
}

/// The same transaction applied twice leaves the rows of one.
pub fn rewriting_a_batch_is_idempotent(h: &mut dyn Harness) {
    let mut d = h.open();
    let tables = [item()];
    let segments = vec![
        Segment::Upserts { table: 0, rows: vec![row(1, "a", 0), row(2, "b", 0)] },
        Segment::Deletes { table: 0, keys: vec![vec![Value::Int(2)]] },
    ];
    commit(d.as_mut(), &tables, segments.clone(), &saved(1));
    commit(d.as_mut(), &tables, segments, &saved(1));
    drop(d);
    assert_eq!(items(h), [(1, "a".into(), false), (2, "b".into(), true)]);
}

/// A key several times in one batch: the newest version wins, and the last among equals.
pub fn duplicates_in_a_batch_keep_the_newest(h: &mut dyn Harness) {
    let mut d = h.open();
    let tables = [item()];
    let rows = vec![row(1, "first", 5), row(1, "older", 1), row(1, "last at 5", 5), row(2, "x", 0), row(2, "y", 0)];
    commit(d.as_mut(), &tables, vec![Segment::Upserts { table: 0, rows }], &saved(1));
    drop(d);
    assert_eq!(items(h), [(1, "last at 5".into(), false), (2, "y".into(), false)]);
}

/// A later commit with an older version does not replace a row; an equal one does.
pub fn rows_never_move_backwards(h: &mut dyn Harness) {
    let mut d = h.open();
    let tables = [item()];
    commit(
        d.as_mut(),
        &tables,
        vec![Segment::Upserts { table: 0, rows: vec![row(1, "new", 10), row(2, "b", 10)] }],
        &saved(1),
    );
    commit(
        d.as_mut(),
        &tables,
        vec![Segment::Upserts { table: 0, rows: vec![row(1, "stale", 9), row(2, "same time", 10)] }],
        &saved(2),
    );
    drop(d);
    assert_eq!(items(h), [(1, "new".into(), false), (2, "same time".into(), false)]);
}

/// Deletes flag rows and keep their values; an upsert brings a row back; a delete of an
/// unknown key changes nothing; a row written deleted is stored deleted.
pub fn soft_deletes(h: &mut dyn Harness) {
    let mut d = h.open();
    let tables = [item()];
    let tombstone = Row { deleted: true, ..row(3, "gone", 0) };
    commit(
        d.as_mut(),
        &tables,
        vec![Segment::Upserts { table: 0, rows: vec![row(1, "a", 0), row(2, "b", 0), tombstone] }],
        &saved(1),
    );
    let keys = vec![vec![Value::Int(1)], vec![Value::Int(2)], vec![Value::Int(99)]];
    commit(
        d.as_mut(),
        &tables,
        vec![Segment::Deletes { table: 0, keys }, Segment::Upserts { table: 0, rows: vec![row(2, "back", 1)] }],
        &saved(2),
    );
    drop(d);
    assert_eq!(items(h), [(1, "a".into(), true), (2, "back".into(), false), (3, "gone".into(), true)]);
}

/// Truncate flags every row written before it; rows written after it stay.
pub fn truncate_deletes_earlier_rows(h: &mut dyn Harness) {
    let mut d = h.open();
    let tables = [item()];
    commit(
        d.as_mut(),
        &tables,
        vec![Segment::Upserts { table: 0, rows: vec![row(1, "a", 0), row(2, "b", 0)] }],
        &saved(1),
    );
    let segments = vec![
        Segment::Truncate { table: 0 },
        Segment::Upserts { table: 0, rows: vec![row(2, "b again", 1), row(3, "c", 1)] },
    ];
    commit(d.as_mut(), &tables, segments, &saved(2));
    drop(d);
    assert_eq!(items(h), [(1, "a".into(), true), (2, "b again".into(), false), (3, "c".into(), false)]);
}

/// Partial updates change only their columns.
pub fn patches_change_only_their_columns(h: &mut dyn Harness) {
    let mut d = h.open();
    let tables = [item()];
    commit(d.as_mut(), &tables, vec![Segment::Upserts { table: 0, rows: vec![row(1, "a", 0)] }], &saved(1));
    let patches = vec![
        Patch { key: vec![Value::Int(1)], columns: vec![(1, Value::String("renamed".into()))] },
        Patch { key: vec![Value::Int(7)], columns: vec![(1, Value::String("nobody".into()))] },
    ];
    commit(d.as_mut(), &tables, vec![Segment::Patches { table: 0, patches }], &saved(2));
    drop(d);
    let rows = h.rows("item");
    assert_eq!(rows.len(), 1, "a patch of an unknown key adds nothing");
    assert_eq!(rows[0].record.get("name"), Some(&Value::String("renamed".into())));
    assert_eq!(rows[0].record.get("updated"), Some(&at(0)), "other columns keep their values");
}

/// New columns are added; rows written before have them `NULL`.
pub fn schema_grows(h: &mut dyn Harness) {
    let mut d = h.open();
    let narrow = [item()];
    commit(d.as_mut(), &narrow, vec![Segment::Upserts { table: 0, rows: vec![row(1, "a", 0)] }], &saved(1));
    let mut wide = item();
    wide.columns.push(ColumnSpec { name: "score".into(), ty: ColumnType::Double });
    let mut extended = row(2, "b", 0);
    extended.values.push(Value::Float(2.5));
    commit(
        d.as_mut(),
        std::slice::from_ref(&wide),
        vec![Segment::Upserts { table: 0, rows: vec![extended, row(3, "short row", 0)] }],
        &saved(2),
    );
    drop(d);
    assert_eq!(h.columns("item"), ["id", "name", "updated", "_inlet_synced", "_inlet_deleted", "score"]);
    let scores: Vec<Option<Value>> = h.rows("item").iter().map(|r| r.record.get("score").cloned()).collect();
    assert_eq!(scores, [Some(Value::Null), Some(Value::Float(2.5)), Some(Value::Null)]);
}

/// Every column type keeps its value: instants to the microsecond, decimals exactly, JSON
/// documents, bytes.
pub fn types_round_trip(h: &mut dyn Harness) {
    let types = [
        ("id", ColumnType::String),
        ("flag", ColumnType::Boolean),
        ("short", ColumnType::Short),
        ("int", ColumnType::Int),
        ("long", ColumnType::Long),
        ("float", ColumnType::Float),
        ("double", ColumnType::Double),
        ("money", ColumnType::Decimal { precision: 18, scale: 4 }),
        ("day", ColumnType::NaiveDate),
        ("local", ColumnType::NaiveDateTime),
        ("instant", ColumnType::UtcDateTime),
        ("bytes", ColumnType::Binary),
        ("markup", ColumnType::Xml),
        ("text", ColumnType::String),
        ("doc", ColumnType::Json),
    ];
    let table = table_spec("typed", &types, &[0], None);
    let full = vec![
        Value::String("k1".into()),
        Value::Bool(true),
        Value::Int(-32768),
        Value::Int(2_147_483_647),
        Value::Int(i64::MIN + 1),
        Value::Float(1.5),
        Value::Float(-2.25e300),
        Value::Decimal(Decimal::new(-12_345_678_901_234, 4)),
        Value::Date(jiff::civil::date(2024, 2, 29)),
        Value::DateTime(jiff::civil::date(1999, 12, 31).at(23, 59, 58, 123_456_000)),
        Value::Timestamp("2026-11-13T12:07:18.654321Z".parse().expect("an instant")),
        Value::Bytes(vec![0, 159, 146, 150, 255]),
        Value::String("<a href=\"x\">é</a>".into()),
        Value::String("line\nbreak, 'quotes' \"and\" emoji 🦀".into()),
        Value::Json(serde_json::json!({"nested": [1, 2.5, "x", null, {"deep": true}]})),
    ];
    let nulls: Vec<Value> =
        std::iter::once(Value::String("k2".into())).chain(std::iter::repeat_n(Value::Null, types.len() - 1)).collect();
    let mut d = h.open();
    let rows = vec![Row { values: full.clone(), deleted: false }, Row { values: nulls.clone(), deleted: false }];
    commit(d.as_mut(), std::slice::from_ref(&table), vec![Segment::Upserts { table: 0, rows }], &saved(1));
    drop(d);
    let stored = h.rows("typed");
    for (expected, got) in [full, nulls].iter().zip(&stored) {
        for ((name, _), value) in types.iter().zip(expected) {
            assert_eq!(got.record.get(name), Some(value), "column {name}");
        }
    }
}

/// A transaction that fails part-way changes nothing: neither the rows written before the
/// failure in the same transaction, nor the state.
pub fn a_failed_commit_changes_nothing(h: &mut dyn Harness) {
    let mut d = h.open();
    let tables = [item()];
    commit(d.as_mut(), &tables, vec![Segment::Upserts { table: 0, rows: vec![row(1, "a", 0)] }], &saved(1));
    let poison =
        Row { values: vec![Value::String("not a number".into()), Value::String("x".into()), at(0)], deleted: false };
    let segments = [
        Segment::Upserts { table: 0, rows: vec![row(1, "changed", 5), row(2, "b", 5)] },
        Segment::Truncate { table: 0 },
        Segment::Upserts { table: 0, rows: vec![poison] },
    ];
    d.begin(jiff::Timestamp::now()).expect("a transaction begins");
    d.write(&tables, &segments[..2]).expect("the first piece is written");
    assert!(d.write(&tables, &segments[2..]).is_err(), "a key that is not a number cannot be written");
    assert_eq!(d.saved_state().expect("readable"), Some(saved(1)), "the state is the last commit's");
    let after = vec![row(2, "b after", 0), row(3, "after", 0)];
    commit(d.as_mut(), &tables, vec![Segment::Upserts { table: 0, rows: after }], &saved(3));
    drop(d);
    assert_eq!(
        items(h),
        [(1, "a".into(), false), (2, "b after".into(), false), (3, "after".into(), false)],
        "the destination is usable after a failure, also for the keys of the failed commit"
    );
}

/// A transaction written in many pieces, alternating between two tables it creates, one of
/// them growing a column on the way: every row lands once, and the new column is `NULL` in the
/// rows before it. The same transaction failing at its last piece leaves nothing of the pieces
/// before, in either table, and the tables are created again by the next one.
pub fn pieces_of_a_transaction_land_together(h: &mut dyn Harness) {
    let note = table_spec("note", &[("id", ColumnType::Long), ("text", ColumnType::String)], &[0], None);
    let mut wide = item();
    wide.columns.push(ColumnSpec { name: "color".into(), ty: ColumnType::String });
    let narrow = [item(), note.clone()];
    let grown = [wide, note];
    let note_row = |id: i64| Row { values: vec![Value::Int(id), Value::String(format!("n{id}"))], deleted: false };
    // Six pieces: items 0-9, notes 0-9, items 10-19, notes 10-19, items 20-29 with a color,
    // notes 20-29. The poisoned last piece is an item whose `updated` is a text, not an instant.
    let pieces = |poisoned: bool| -> Vec<(&[TableSpec], Segment)> {
        (0..6)
            .map(|piece: i64| {
                let ids = (piece / 2) * 10..(piece / 2) * 10 + 10;
                let tables: &[TableSpec] = if piece < 4 { &narrow } else { &grown };
                let segment = match piece % 2 {
                    0 => Segment::Upserts {
                        table: 0,
                        rows: ids
                            .map(|id| {
                                let mut row = row(id, &format!("i{id}"), 0);
                                if piece == 4 {
                                    row.values.push(Value::String("red".into()));
                                }
                                row
                            })
                            .collect(),
                    },
                    _ if poisoned && piece == 5 => Segment::Upserts {
                        table: 0,
                        rows: vec![Row {
                            values: vec![Value::Int(99), Value::String("x".into()), Value::String("no time".into())],
                            deleted: false,
                        }],
                    },
                    _ => Segment::Upserts { table: 1, rows: ids.map(note_row).collect() },
                };
                (tables, segment)
            })
            .collect()
    };
    let mut d = h.open();
    d.begin(jiff::Timestamp::now()).expect("a transaction begins");
    let written: Vec<bool> =
        pieces(true).iter().map(|(tables, segment)| d.write(tables, std::slice::from_ref(segment)).is_ok()).collect();
    assert_eq!(written, [true, true, true, true, true, false], "only the poisoned piece fails");
    assert_eq!(d.saved_state().expect("readable"), None, "no state from the failed transaction");
    d.begin(jiff::Timestamp::now()).expect("a transaction begins after a failure");
    for (tables, segment) in pieces(false) {
        d.write(tables, std::slice::from_ref(&segment)).unwrap_or_else(|e| panic!("write failed: {e:?}"));
    }
    d.commit(&saved(1)).expect("the transaction commits");
    d.finish().expect("the session finishes");
    drop(d);
    let expected: Vec<(i64, String, bool)> = (0..30).map(|id| (id, format!("i{id}"), false)).collect();
    assert_eq!(items(h), expected, "every item once, none from the failed transaction");
    let colors: Vec<Option<Value>> = h.rows("item").iter().map(|r| r.record.get("color").cloned()).collect();
    let mut expected_colors = vec![Some(Value::Null); 20];
    expected_colors.extend(vec![Some(Value::String("red".into())); 10]);
    assert_eq!(colors, expected_colors);
    let notes: Vec<Option<Value>> = h.rows("note").iter().map(|r| r.record.get("text").cloned()).collect();
    assert_eq!(notes, (0..30).map(|id| Some(Value::String(format!("n{id}")))).collect::<Vec<_>>());
}

/// A later session replaces the rows an earlier one stored, never repeats them, with single
/// and composite keys.
pub fn later_sessions_merge_with_stored_rows(h: &mut dyn Harness) {
    let visit = table_spec(
        "visit",
        &[("site", ColumnType::String), ("n", ColumnType::Long), ("note", ColumnType::String)],
        &[0, 1],
        None,
    );
    let tables = [item(), visit];
    let visit_row = |site: &str, n: i64, note: &str| Row {
        values: vec![Value::String(site.into()), Value::Int(n), Value::String(note.into())],
        deleted: false,
    };
    let mut d = h.open();
    let segments = vec![
        Segment::Upserts { table: 0, rows: vec![row(1, "a", 5), row(2, "b", 5)] },
        Segment::Upserts { table: 1, rows: vec![visit_row("x", 1, "one"), visit_row("x", 2, "two")] },
    ];
    commit(d.as_mut(), &tables, segments, &saved(1));
    drop(d);
    let mut d = h.open();
    let segments = vec![
        Segment::Upserts { table: 0, rows: vec![row(1, "newer", 6), row(2, "older", 4), row(3, "new", 0)] },
        Segment::Upserts { table: 1, rows: vec![visit_row("x", 1, "one again"), visit_row("y", 1, "other site")] },
    ];
    commit(d.as_mut(), &tables, segments, &saved(2));
    drop(d);
    assert_eq!(items(h), [(1, "newer".into(), false), (2, "b".into(), false), (3, "new".into(), false)]);
    let visits: Vec<(String, String)> = h
        .rows("visit")
        .into_iter()
        .map(|r| {
            let text = |c: &str| r.record.get(c).and_then(Value::as_str).unwrap_or("").to_owned();
            let n = r.record.get("n").map(ToString::to_string).unwrap_or_default();
            (format!("{}/{n}", text("site")), text("note"))
        })
        .collect();
    let expected = [("x/1", "one again"), ("x/2", "two"), ("y/1", "other site")];
    assert_eq!(visits, expected.map(|(k, n)| (k.to_owned(), n.to_owned())));
}

/// A later session changes a few rows of a table a hundred times larger: updated, kept
/// (older), added, each once.
pub fn a_few_changes_to_a_big_table(h: &mut dyn Harness) {
    let tables = [item()];
    let mut d = h.open();
    let rows = (0..2_000).map(|id| row(id, "stored", 5)).collect();
    commit(d.as_mut(), &tables, vec![Segment::Upserts { table: 0, rows }], &saved(1));
    drop(d);
    let mut d = h.open();
    let rows = vec![row(7, "newer", 6), row(8, "older", 4), row(2_000, "new", 0)];
    commit(d.as_mut(), &tables, vec![Segment::Upserts { table: 0, rows }], &saved(2));
    drop(d);
    let stored = items(h);
    assert_eq!(stored.len(), 2_001, "one row per key");
    let name = |id: i64| stored.iter().find(|(i, _, _)| *i == id).map(|(_, n, _)| n.as_str());
    assert_eq!([name(7), name(8), name(2_000), name(9)], [Some("newer"), Some("stored"), Some("new"), Some("stored")]);
}

/// A table with more keys than a set of key hashes holds in memory ([`crate::keys`]): a first
/// session writes 150,000 rows in pieces, each piece repeating keys of the one before with
/// newer or older versions; a second changes 3,000 stored rows and adds 2,000. One row per
/// key, the newest.
pub fn a_table_larger_than_its_keys_in_memory(h: &mut dyn Harness) {
    let tables = [item()];
    let mut d = h.open();
    for transaction in 0..3 {
        d.begin(jiff::Timestamp::now()).expect("begin");
        for piece in 0..16 {
            let first = (transaction * 16 + piece) * 3_125;
            let mut rows: Vec<Row> = (first..first + 3_125).map(|id| row(id, "first", 5)).collect();
            if first > 0 {
                rows.extend([row(first - 1, "newer", 6), row(first - 2, "older", 4)]);
            }
            d.write(&tables, &[Segment::Upserts { table: 0, rows }]).expect("write");
        }
        d.commit(&saved(transaction)).expect("commit");
    }
    drop(d);
    let mut d = h.open();
    let mut rows: Vec<Row> = (0..3_000).map(|i| row(i * 50 + 7, "second", 7)).collect();
    rows.extend((150_000..152_000).map(|id| row(id, "added", 0)));
    commit(d.as_mut(), &tables, vec![Segment::Upserts { table: 0, rows }], &saved(3));
    drop(d);
    let stored = items(h);
    assert_eq!(stored.len(), 152_000, "one row per key");
    let names: HashMap<i64, &str> = stored.iter().map(|(id, name, _)| (*id, name.as_str())).collect();
    assert_eq!(names.len(), 152_000, "no key twice");
    let name = |id: i64| names.get(&id).copied();
    assert_eq!(
        [name(0), name(3_124), name(3_123), name(3_125), name(57), name(149_999), name(151_999)],
        [Some("first"), Some("newer"), Some("first"), Some("first"), Some("second"), Some("first"), Some("added")]
    );
    assert_eq!(stored.iter().filter(|(_, name, _)| name == "second").count(), 3_000);
}

/// Many commits over two sessions, keys repeating within and across batches, versions in
/// any order, some rows deleted: the rows end as in the in-memory reference warehouse.
pub fn random_upserts_match_the_reference(h: &mut dyn Harness) {
    let reference = crate::memory::MemoryWarehouse::new();
    let mut model = reference.destination();
    let tables = [item()];
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    for session in 0..2 {
        let mut d = h.open();
        for batch in 0..10 {
            let rows: Vec<Row> = (0..400)
                .map(|i| {
                    let id = next(3_000) as i64;
                    Row { deleted: next(20) == 0, ..row(id, &format!("s{session} b{batch} r{i}"), next(50) as i64) }
                })
                .collect();
            let state = saved(session * 10 + batch);
            let segments = vec![Segment::Upserts { table: 0, rows }];
            commit(d.as_mut(), &tables, segments.clone(), &state);
            commit(model.as_mut(), &tables, segments, &state);
        }
    }
    let mut stored = items(h);
    stored.sort();
    let mut expected: Vec<(i64, String, bool)> = reference
        .rows("item")
        .into_iter()
        .map(|r| {
            let id = r.record.get("id").and_then(|v| if let Value::Int(i) = v { Some(*i) } else { None });
            (id.expect("an id"), r.record.get("name").and_then(Value::as_str).unwrap_or("").to_owned(), r.deleted)
        })
        .collect();
    expected.sort();
    assert!(expected.len() > 2_000, "the workload repeats keys and still covers most of them");
    assert_eq!(stored.len(), expected.len(), "one row per key");
    assert_eq!(stored, expected);
}

/// Clearing the state keeps the data.
pub fn clearing_the_state_keeps_the_data(h: &mut dyn Harness) {
    let mut d = h.open();
    commit(d.as_mut(), &[item()], vec![Segment::Upserts { table: 0, rows: vec![row(1, "a", 0)] }], &saved(1));
    d.clear_state().expect("cleared");
    assert_eq!(d.saved_state().expect("readable"), None);
    drop(d);
    assert_eq!(items(h).len(), 1);
}

/// A transaction with no rows saves its state (as `inlet state set` does), also in a fresh
/// warehouse.
pub fn a_state_alone_is_committed(h: &mut dyn Harness) {
    let mut d = h.open();
    d.begin(jiff::Timestamp::now()).expect("a transaction begins");
    d.commit(&saved(4)).expect("a state alone commits");
    assert_eq!(d.saved_state().expect("readable"), Some(saved(4)));
    commit(d.as_mut(), &[item()], vec![Segment::Upserts { table: 0, rows: vec![row(1, "a", 0)] }], &saved(5));
    d.begin(jiff::Timestamp::now()).expect("a transaction begins");
    d.commit(&saved(6)).expect("a state alone commits");
    assert_eq!(d.saved_state().expect("readable"), Some(saved(6)));
    drop(d);
    assert_eq!(items(h), [(1, "a".into(), false)], "the data stays");
}

/// Environment variable telling a re-executed test binary to act as a crashing child.
pub const CHILD: &str = "INLET_CONFORMANCE_CHILD";

/// In the child: commits one transaction of rows 1 and 2 with state 7. Run with
/// `INLET_FAILPOINT=write.before_commit`, the process dies inside the commit.
pub fn crash_child(destination: &mut dyn Destination) {
    let tables = [item()];
    commit(
        destination,
        &tables,
        vec![Segment::Upserts { table: 0, rows: vec![row(1, "a", 0), row(2, "b", 0)] }],
        &saved(7),
    );
}

/// In the parent, after the child was killed at `write.before_commit`: nothing of its
/// transaction is visible, and the destination opens and works.
pub fn after_a_crash_before_commit(h: &mut dyn Harness) {
    let mut d = h.open();
    assert_eq!(d.saved_state().expect("readable after a crash"), None, "no state from the crashed commit");
    drop(d);
    assert!(h.rows("item").is_empty(), "no row from the crashed commit");
    creates_tables_and_saves_state(h);
}

/// Runs this test binary again as a child that crashes at `failpoint`, for the test named
/// `child_test`; returns whether it died as planned.
pub fn crash_in_child(child_test: &str, failpoint: &str, location: &Path) -> bool {
    let status = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(CHILD, location)
        .env("INLET_FAILPOINT", failpoint)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the child runs");
    !status.success()
}

/// Every check that needs only a [`Harness`], in order.
pub fn all(mut fresh: impl FnMut() -> Box<dyn Harness>) {
    type Check = fn(&mut dyn Harness);
    let checks: [(&str, Check); 17] = [
        ("creates_tables_and_saves_state", creates_tables_and_saves_state),
        ("rewriting_a_batch_is_idempotent", rewriting_a_batch_is_idempotent),
        ("duplicates_in_a_batch_keep_the_newest", duplicates_in_a_batch_keep_the_newest),
        ("rows_never_move_backwards", rows_never_move_backwards),
        ("soft_deletes", soft_deletes),
        ("truncate_deletes_earlier_rows", truncate_deletes_earlier_rows),
        ("patches_change_only_their_columns", patches_change_only_their_columns),
        ("schema_grows", schema_grows),
        ("types_round_trip", types_round_trip),
        ("a_failed_commit_changes_nothing", a_failed_commit_changes_nothing),
        ("pieces_of_a_transaction_land_together", pieces_of_a_transaction_land_together),
        ("clearing_the_state_keeps_the_data", clearing_the_state_keeps_the_data),
        ("a_state_alone_is_committed", a_state_alone_is_committed),
        ("later_sessions_merge_with_stored_rows", later_sessions_merge_with_stored_rows),
        ("random_upserts_match_the_reference", random_upserts_match_the_reference),
        ("a_few_changes_to_a_big_table", a_few_changes_to_a_big_table),
        ("a_table_larger_than_its_keys_in_memory", a_table_larger_than_its_keys_in_memory),
    ];
    for (name, check) in checks {
        eprintln!("conformance: {name}");
        check(fresh().as_mut());
    }
}
