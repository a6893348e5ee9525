//! End-to-end tests: the real `inlet` binary, the real playground over HTTP, real DuckDB files
//! and the real PostgreSQL server.
//!
//! - `strategies`: each strategy's first sync, quiet sync and changes, on both destinations.
//! - `failures`: errors end with their exit code and leave the warehouse exactly as it was.
//! - `crashes`: SIGKILL at random instants and at each failpoint, then a sync to the truth.
//! - `bench`: the benchmark's table, and its measuring child's refusals.
//! - `layout`: the functions a sync runs are linked next to each other.

mod bench;
mod crashes;
mod failures;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod layout;
mod strategies;
mod support;
