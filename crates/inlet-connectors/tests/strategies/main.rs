//! The six strategies against the real playground over HTTP, into the in-memory warehouse.
//!
//! - `each`: every strategy syncs the truth, then reads only what it must, then picks up
//!   changes.
//! - `defects`: each seed defect, in a setting where the seed's behaviour would fail.
//! - `robustness`: authentication, faults, bad configuration, saved states of the seeds.

mod defects;
mod each;
mod robustness;
mod support;
