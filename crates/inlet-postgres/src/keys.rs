//! Key hashes as PostgreSQL stores keys: the two sides of [`inlet_engine::keys::KeyHashes`] for
//! PostgreSQL tables, so that rows whose key a table certainly lacks are copied straight into
//! it rather than staged and merged.
//!
//! Only keys that PostgreSQL stores and compares exactly as the engine hands them over are
//! hashed: integers, booleans, bytes and text (which a deterministic collation, the only kind a
//! database can default to, calls equal only when the bytes are). Times, which PostgreSQL rounds
//! to the microsecond, and decimals, equal at any scale, take the merge. A key a hash calls new
//! that is stored after all (written by another client since the keys were read) is caught by
//! the table's primary key, and its rows merged; or, in a table still waiting for its key, when
//! the key is added.

use inlet_engine::TableSpec;
use inlet_engine::keys::{KeyScalar as Scalar, key_hash};
use inlet_sdk::{ColumnType, Value};

/// Whether keys of `spec` can be hashed here (see the module's documentation).
pub(crate) fn hashable(spec: &TableSpec) -> bool {
    spec.primary_key.iter().all(|&k| {
        matches!(
            spec.columns[k].ty,
            ColumnType::Boolean
                | ColumnType::Short
                | ColumnType::Int
                | ColumnType::Long
                | ColumnType::String
                | ColumnType::Xml
                | ColumnType::Binary
        )
    })
}

/// The hash of the key of a row of `spec` (values in the order of its columns), or `None` when
/// a key value is not of the variant its column's type converts to.
pub(crate) fn row_hash(spec: &TableSpec, values: &[Value]) -> Option<u64> {
    key_hash(spec.primary_key.iter().map(|&k| {
        Some(match (spec.columns[k].ty, values.get(k)?) {
            (ColumnType::Short | ColumnType::Int | ColumnType::Long, Value::Int(i)) => Scalar::Whole(*i),
            (ColumnType::Boolean, Value::Bool(b)) => Scalar::Whole(i64::from(*b)),
            (ColumnType::String | ColumnType::Xml, Value::String(s)) => Scalar::Bytes(s.as_bytes()),
            (ColumnType::Binary, Value::Bytes(b)) => Scalar::Bytes(b),
            _ => return None,
        })
    }))
}

/// The hash of a stored key: the key columns of `spec`, in order, are the columns of `row`,
/// read with the types [`hashable`] admits. `None` for a key with a `NULL`, which can't equal a
/// staged key.
pub(crate) fn stored_hash(spec: &TableSpec, row: &tokio_postgres::Row) -> Result<Option<u64>, tokio_postgres::Error> {
    let read = |i: usize, ty: ColumnType| -> Result<Option<Scalar<'_>>, tokio_postgres::Error> {
        Ok(match ty {
            ColumnType::Short => row.try_get::<_, Option<i16>>(i)?.map(|v| Scalar::Whole(v.into())),
            ColumnType::Int => row.try_get::<_, Option<i32>>(i)?.map(|v| Scalar::Whole(v.into())),
            ColumnType::Long => row.try_get::<_, Option<i64>>(i)?.map(Scalar::Whole),
            ColumnType::Boolean => row.try_get::<_, Option<bool>>(i)?.map(|b| Scalar::Whole(b.into())),
            ColumnType::Binary => row.try_get::<_, Option<&[u8]>>(i)?.map(Scalar::Bytes),
            _ => row.try_get::<_, Option<&str>>(i)?.map(|s| Scalar::Bytes(s.as_bytes())),
        })
    };
    let mut failed = None;
    let hash = key_hash(spec.primary_key.iter().enumerate().map(|(i, &k)| {
        read(i, spec.columns[k].ty).unwrap_or_else(|e| {
            failed = Some(e);
            None
        })
    }));
    failed.map_or(Ok(hash), Err)
}

#[cfg(test)]
mod tests {
    use inlet_engine::conformance::table_spec;

    use super::*;

    /// The server of the tests (`INLET_TEST_POSTGRES`, as in the conformance suite).
    fn query_one(sql: &str) -> tokio_postgres::Row {
        let server =
            std::env::var("INLET_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.query_one(sql, &[]).await.unwrap()
        })
    }

    #[test]
    fn a_staged_key_hashes_as_the_same_key_read_back_from_postgres() {
        let key = table_spec(
            "t",
            &[
                ("region", ColumnType::Short),
                ("name", ColumnType::String),
                ("active", ColumnType::Boolean),
                ("blob", ColumnType::Binary),
                ("id", ColumnType::Long),
            ],
            &[0, 1, 2, 3, 4],
            None,
        );
        let staged = [
            Value::Int(7),
            Value::String("Ann Ö".into()),
            Value::Bool(true),
            Value::Bytes(vec![1, 2]),
            Value::Int(9_007_199_254_740_993),
        ];
        let stored = query_one("SELECT 7::smallint, 'Ann Ö'::text, true, '\\x0102'::bytea, 9007199254740993::bigint");
        assert_eq!(stored_hash(&key, &stored).unwrap(), row_hash(&key, &staged));
        let other = query_one("SELECT 7::smallint, 'Ann O'::text, true, '\\x0102'::bytea, 9007199254740993::bigint");
        assert_ne!(stored_hash(&key, &other).unwrap(), row_hash(&key, &staged));
        let null = query_one("SELECT 7::smallint, NULL::text, true, '\\x0102'::bytea, 1::bigint");
        assert_eq!(stored_hash(&key, &null).unwrap(), None, "a NULL key equals no staged key");
    }

    #[test]
    fn only_keys_compared_byte_for_byte_are_hashed() {
        let composite = table_spec("t", &[("region", ColumnType::Short), ("name", ColumnType::String)], &[0, 1], None);
        assert!(hashable(&composite));
        assert!(
            !hashable(&table_spec("t", &[("at", ColumnType::UtcDateTime)], &[0], None)),
            "PostgreSQL rounds instants"
        );
        assert!(
            !hashable(&table_spec("t", &[("n", ColumnType::Decimal { precision: 5, scale: 1 })], &[0], None)),
            "1.5 = 1.50"
        );
        let ann = row_hash(&composite, &[Value::Int(7), Value::String("Ann".into())]).unwrap();
        assert_ne!(Some(ann), row_hash(&composite, &[Value::Int(7), Value::String("Bob".into())]));
        assert_eq!(row_hash(&composite, &[Value::String("7".into()), Value::String("Ann".into())]), None);
        assert_eq!(row_hash(&composite, &[Value::Int(7)]), None, "no name at all");
    }
}
