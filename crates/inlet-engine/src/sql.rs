//! SQL shared by the SQL destinations: quoting, and the clauses of the upsert merge that the
//! destination contract asks for (one row per key, the newest; a row never moves back to an
//! older version).

use crate::destination::{TableSpec, columns};

/// `identifier` as a double-quoted SQL identifier.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// `text` as a single-quoted SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The primary-key columns of `spec`, quoted, comma-separated.
pub fn key_list(spec: &TableSpec) -> String {
    spec.primary_key.iter().map(|&k| quote(&spec.columns[k].name)).collect::<Vec<_>>().join(", ")
}

/// The condition that the row aliased `target` has the same key as the row aliased `other`.
pub fn key_matches(spec: &TableSpec, target: &str, other: &str) -> String {
    let matches: Vec<String> =
        spec.primary_key.iter().map(|&k| format!("{target}.{0} = {other}.{0}", quote(&spec.columns[k].name))).collect();
    matches.join(" AND ")
}

/// The pieces of a merge from a staging table (the table's columns plus `_inlet_seq`, the
/// arrival order, and `_inlet_row_deleted`) into the target: `INSERT … ON CONFLICT (keys) DO
/// UPDATE SET sets WHERE guard`, or `UPDATE target SET sets FROM (…) source WHERE … AND guard`.
pub struct UpsertClauses {
    /// The table's columns, quoted, comma-separated.
    pub columns: String,
    /// The primary-key columns, quoted, comma-separated.
    pub keys: String,
    /// An `ORDER BY` list that puts each key's newest staged row first: the highest version,
    /// then the last to arrive.
    pub newest: String,
    /// The assignments that replace a stored row by the `source` row.
    pub sets: String,
    /// The condition that keeps a stored row newer than the `source` row (`true` without a
    /// version column).
    pub guard: String,
    /// `sets` with `guard` inside each assignment (a stored row newer than the `source` row
    /// is set to itself): an `UPDATE … FROM` with them counts every key it finds.
    pub guarded_sets: String,
}

impl UpsertClauses {
    /// The clauses for `spec`, whose table is `target` (qualified and quoted), replacing rows
    /// by those of `source`: `excluded` in `ON CONFLICT`, else a relation with the target's
    /// columns, bookkeeping ones included.
    pub fn new(spec: &TableSpec, target: &str, source: &str) -> Self {
        let names: Vec<String> = spec.columns.iter().map(|c| quote(&c.name)).collect();
        let newest = match spec.version {
            Some(v) => format!("{} DESC NULLS LAST, _inlet_seq DESC", quote(&spec.columns[v].name)),
            None => "_inlet_seq DESC".into(),
        };
        let assigned: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| !spec.primary_key.contains(i))
            .map(|(_, n)| n.clone())
            .chain([columns::SYNCED.to_owned(), columns::DELETED.to_owned()])
            .collect();
        let guard = spec
            .version
            .map(|v| {
                let v = quote(&spec.columns[v].name);
                format!("{source}.{v} IS NULL OR {target}.{v} IS NULL OR {source}.{v} >= {target}.{v}")
            })
            .unwrap_or_else(|| "true".into());
        let sets: Vec<String> = assigned.iter().map(|n| format!("{n} = {source}.{n}")).collect();
        let guarded_sets: Vec<String> = assigned
            .iter()
            .map(|n| format!("{n} = CASE WHEN {guard} THEN {source}.{n} ELSE {target}.{n} END"))
            .collect();
        UpsertClauses {
            columns: names.join(", "),
            keys: key_list(spec),
            newest,
            sets: sets.join(", "),
            guard,
            guarded_sets: guarded_sets.join(", "),
        }
    }
}
