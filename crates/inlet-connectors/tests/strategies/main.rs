//! The six strategies against the real playground over HTTP, into the in-memory warehouse.
//!
//! - `each`: every strategy syncs the truth, then reads only what it must, then picks up
//!   changes.
//! - `concurrency`: requests fetched ahead read the same rows.
//! - `defects`: each seed defect, in a setting where the seed's behaviour would fail.
//! - `robustness`: authentication, faults, bad configuration, saved states of the seeds.
//! - `properties`: property tests against `model`, an in-memory model of the API.

mod concurrency;
mod defects;
mod each;
mod model;
mod properties;
mod robustness;
mod support;
