//! Tests against a running playground over real HTTP.
//!
//! - `contract`: every endpoint and error case of the reference API.
//! - `seeds`: the request sequences the seed connectors send.
//! - `hostile`: each hostile mode happens as documented, and reproducibly.
//! - `truth`: the ground truth agrees with what the API serves.

mod contract;
mod hostile;
mod seeds;
mod support;
mod truth;
