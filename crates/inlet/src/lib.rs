//! inlet: incremental data sync from REST APIs into DuckDB or PostgreSQL, exactly once.
//!
//! This crate is the command line; the work is done by the library crates beside it.

pub mod cli;
