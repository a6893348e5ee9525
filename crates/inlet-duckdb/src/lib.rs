//! DuckDB destination.
