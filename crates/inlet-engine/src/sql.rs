//! SQL shared by the SQL destinations: quoting, and the clauses of the upsert merge that the
//! destination contract asks for (one row per key, the newest; a row never moves back to an
//! older version).

use crate::destination::{TableSpec, columns};

/// `identifier` as a double-quoted SQL identifier.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// The pieces of `INSERT INTO target … SELECT … FROM <staging> ON CONFLICT (keys) DO UPDATE`,
/// for a staging table with the table's columns plus `_inlet_seq` (arrival order) and
/// `_inlet_row_deleted`.
pub struct UpsertClauses {
    /// The table's columns, quoted, comma-separated.
    pub columns: String,
    /// The primary-key columns, quoted, comma-separated.
    pub keys: String,
    /// An `ORDER BY` list that puts each key's newest staged row first: the highest version,
    /// then the last to arrive.
    pub newest: String,
    /// The `DO UPDATE SET` assignments, from `excluded`.
    pub sets: String,
    /// ` WHERE …` that keeps a stored row newer than the staged one (empty without a version
    /// column).
    pub guard: String,
}

impl UpsertClauses {
    /// The clauses for `spec`, whose table is `target` (qualified and quoted).
    pub fn new(spec: &TableSpec, target: &str) -> Self {
        let names: Vec<String> = spec.columns.iter().map(|c| quote(&c.name)).collect();
        let keys: Vec<String> = spec.primary_key.iter().map(|&k| quote(&spec.columns[k].name)).collect();
        let newest = match spec.version {
            Some(v) => format!("{} DESC NULLS LAST, _inlet_seq DESC", quote(&spec.columns[v].name)),
            None => "_inlet_seq DESC".into(),
        };
        let mut sets: Vec<String> =
            names.iter().filter(|n| !keys.contains(n)).map(|n| format!("{n} = excluded.{n}")).collect();
        sets.push(format!("{0} = excluded.{0}", columns::SYNCED));
        sets.push(format!("{0} = excluded.{0}", columns::DELETED));
        let guard = spec
            .version
            .map(|v| {
                let v = quote(&spec.columns[v].name);
                format!(" WHERE excluded.{v} IS NULL OR {target}.{v} IS NULL OR excluded.{v} >= {target}.{v}")
            })
            .unwrap_or_default();
        UpsertClauses { columns: names.join(", "), keys: keys.join(", "), newest, sets: sets.join(", "), guard }
    }
}
