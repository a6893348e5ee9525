//! inlet's playground: a drop-in replacement for the mock REST API of the seed documents
//! (`fivetran-api-playground` 1.1.9) that is deterministic, fast, scales to millions of
//! users, and misbehaves on demand.
//!
//! - **Drop-in**: the same endpoints, query parameters, defaults, validation, status codes,
//!   error bodies and response keys as the reference; `docs/playground.md` lists the few
//!   deliberate differences.
//! - **Deterministic**: every byte served is a function of the seed, the `now` it was started
//!   with and its clock; user `i` is computed without generating any other.
//! - **Hostile on demand**: timestamp ties, id gaps, live changes, replica lag and injected
//!   faults, each off by default and each seeded.
//! - **Ground truth**: [`RunningPlayground::truth`] and `GET /_truth` give the complete current
//!   dataset, deletions included, so a test can compare a warehouse with the source.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use inlet_playground::{ChangeBatch, PlaygroundConfig, start};
//! let playground = start(PlaygroundConfig::default(), "127.0.0.1:0".parse()?).await?;
//! let body = reqwest::get(format!("{}/pagination/keyset", playground.url())).await?.text().await?;
//! playground.change(ChangeBatch { updates: 3, ..Default::default() });
//! assert_eq!(playground.truth().live().count(), 200);
//! playground.stop().await;
//! # Ok(()) }
//! ```

mod config;
mod dataset;
mod layout;
mod live;
mod people;
mod render;
mod rng;
mod server;
mod timefmt;
mod truth;

pub use config::{
    AuthScheme, ChangesConfig, ConfigError, DeleteMode, FaultsConfig, GapsConfig, MAX_USERS, PlaygroundConfig,
    RateLimit, TiesConfig,
};
pub use live::ChangeBatch;
pub use render::Record;
pub use server::{
    ChangeReport, ChangedUser, Credentials, DumpError, FaultCounts, RunningPlayground, StartError, start,
    write_initial_truth,
};
pub use timefmt::{UnixSeconds, format_string as format_timestamp, parse_python as parse_timestamp};
pub use truth::{Comparison, Stored, Truth, TruthRow};
