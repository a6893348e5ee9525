//! inlet: incremental data sync from REST APIs into DuckDB or PostgreSQL, exactly once.
//!
//! This crate is the command line. [`run`] gives a connector written with `inlet-sdk` the
//! whole of it (`sync`, `check`, `state`, `reset`, `playground`):
//!
//! ```no_run
//! # struct MyConnector;
//! # impl inlet_sdk::Connector for MyConnector {
//! #     fn schema(&self, _: &inlet_sdk::Configuration) -> Result<Vec<inlet_sdk::Table>, inlet_sdk::Error> { Ok(vec![]) }
//! #     async fn update(&self, _: &inlet_sdk::Configuration, _: &inlet_sdk::State, _: &mut inlet_sdk::Operations) -> Result<(), inlet_sdk::Error> { Ok(()) }
//! # }
//! fn main() -> std::process::ExitCode {
//!     inlet::run(MyConnector)
//! }
//! ```

pub mod cli;

pub use cli::run;
