//! What a playground serves and how it misbehaves. Every hostile mode is off by default, so
//! a default playground behaves like the reference API.

use std::time::Duration;

pub use crate::dataset::DeleteMode;
pub use crate::layout::{GapsConfig, TiesConfig};
use crate::timefmt::UnixSeconds;

/// The largest dataset the playground accepts.
pub const MAX_USERS: u32 = 100_000_000;

/// A playground's whole configuration. `PlaygroundConfig::default()` is the reference API.
#[derive(Clone, Debug, PartialEq)]
pub struct PlaygroundConfig {
    /// Initial number of users (the reference has 200).
    pub users: u32,
    /// Seeds every random choice: data, credentials, changes and faults.
    pub seed: u64,
    /// The instant the data was generated; every initial `updatedAt` is before it. `None`
    /// takes the wall clock at start, like the reference. The playground's clock starts here
    /// and runs at the wall clock's pace.
    pub now: Option<UnixSeconds>,
    /// The clock stands still unless a test moves it (see `RunningPlayground::advance_clock`),
    /// so that live changes and replica lag happen at instants a test chooses.
    pub manual_clock: bool,
    /// Largest `limit`/`per_page` accepted, and the keyset page size (the reference: 50).
    pub page_size_limit: u32,
    /// Token-bucket rate limiting as in the reference's `--rate-limit`.
    pub rate_limit: Option<RateLimit>,
    /// Groups of users sharing one `updatedAt`.
    pub ties: Option<TiesConfig>,
    /// Holes in the ids of `/incremental/step`.
    pub gaps: Option<GapsConfig>,
    /// Updates, inserts and deletes made while serving.
    pub changes: Option<ChangesConfig>,
    /// Changes made just before answering each request to a user endpoint: rows move while a
    /// client pages, deterministically.
    pub changes_per_request: Option<crate::live::ChangeBatch>,
    /// What a delete does: the row vanishes, or stays as a tombstone with `deletedAt`.
    pub delete_mode: DeleteMode,
    /// Largest delay, in seconds, before reads see a change (each change draws its own delay
    /// from 0 to this; initial users newer than this are hidden until then).
    pub replica_lag_seconds: u32,
    /// Injected failures on the user endpoints.
    pub faults: FaultsConfig,
    /// Make `/pagination/*` and `/incremental/*` demand these credentials, as the auth
    /// endpoints do (the reference's data endpoints take none).
    pub require_auth: Option<AuthScheme>,
}

/// An authentication scheme of the reference's auth endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: apiKey <key>`
    ApiKey,
    /// `Authorization: Bearer <token>`
    Bearer,
    /// `Authorization: Basic <base64(user:password)>`
    Basic,
    /// `Authorization: Token <token from /auth/session_token/login>`
    SessionToken,
}

impl Default for PlaygroundConfig {
    fn default() -> Self {
        PlaygroundConfig {
            users: 200,
            seed: 0,
            now: None,
            manual_clock: false,
            page_size_limit: 50,
            rate_limit: None,
            ties: None,
            gaps: None,
            changes: None,
            changes_per_request: None,
            delete_mode: DeleteMode::Vanish,
            replica_lag_seconds: 0,
            faults: FaultsConfig::default(),
            require_auth: None,
        }
    }
}

/// The reference's token bucket: `capacity` requests at once, refilled continuously.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimit {
    /// Bucket size, the largest burst (reference default: 20).
    pub capacity: u32,
    /// Tokens added per second (the reference: 10).
    pub refill_per_second: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { capacity: 20, refill_per_second: 10.0 }
    }
}

/// Live changes: `per_second` changes, each an update, insert or delete drawn with the
/// given weights. Change `k` (from 1) happens at `now + k / per_second` on the playground's clock.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangesConfig {
    /// Changes per second of the playground's clock.
    pub per_second: f64,
    /// Relative weight of updates (an update moves `updatedAt` to the present).
    pub updates: u32,
    /// Relative weight of inserts (a new user, created now).
    pub inserts: u32,
    /// Relative weight of deletes.
    pub deletes: u32,
}

impl ChangesConfig {
    /// `per_second` changes a second: 70% updates, 20% inserts, 10% deletes.
    pub fn at_rate(per_second: f64) -> Self {
        ChangesConfig { per_second, updates: 70, inserts: 20, deletes: 10 }
    }
}

/// Injected failures. Each rate is the probability that a request to a user endpoint gets
/// that fault; at most one fault applies per request, decided by `(seed, request number)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultsConfig {
    /// `500` with a JSON error body.
    pub server_errors: f64,
    /// Starts a burst of `burst_length` consecutive `429`s with `Retry-After`.
    pub throttle_bursts: f64,
    /// Length of a 429 burst.
    pub burst_length: u32,
    /// `Retry-After` of a burst's 429s, in seconds.
    pub burst_retry_after: u32,
    /// The connection is cut half-way through the body.
    pub cut_bodies: f64,
    /// `200` with a body that is not valid JSON.
    pub malformed_bodies: f64,
    /// `200` with one record whose field is missing, wrongly typed or not a timestamp.
    pub bad_records: f64,
    /// Added to every user-endpoint response, with ±50% seeded jitter.
    pub latency: Duration,
}

impl FaultsConfig {
    /// Spreads a total fault `rate` evenly over the five kinds of failure.
    pub fn evenly(rate: f64) -> Self {
        let each = rate / 5.0;
        FaultsConfig {
            server_errors: each,
            throttle_bursts: each,
            burst_length: 3,
            burst_retry_after: 1,
            cut_bodies: each,
            malformed_bodies: each,
            bad_records: each,
            latency: Duration::ZERO,
        }
    }

    /// Probability that a request gets some fault.
    pub fn total_rate(&self) -> f64 {
        self.server_errors + self.throttle_bursts + self.cut_bodies + self.malformed_bodies + self.bad_records
    }
}

/// A configuration value that cannot work, with the setting to fix.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid playground setting `{setting}`: {problem}")]
pub struct ConfigError {
    /// The setting, named as its command-line flag without dashes.
    pub setting: &'static str,
    /// What is wrong and what is accepted.
    pub problem: String,
}

fn check(ok: bool, setting: &'static str, problem: impl FnOnce() -> String) -> Result<(), ConfigError> {
    if ok { Ok(()) } else { Err(ConfigError { setting, problem: problem() }) }
}

fn check_probability(value: f64, setting: &'static str) -> Result<(), ConfigError> {
    check((0.0..=1.0).contains(&value), setting, || format!("{value} is not a probability between 0 and 1"))
}

impl PlaygroundConfig {
    /// Checks every setting, naming the first that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(self.users <= MAX_USERS, "users", || format!("{} is more than the maximum of {MAX_USERS}", self.users))?;
        check(self.page_size_limit >= 1, "page-size-limit", || "must be at least 1".into())?;
        if let Some(now) = self.now {
            // Timestamps are written with four-digit years.
            check((86_400 * 366 * 2..253_402_300_799).contains(&now), "now", || {
                "must be between year 1972 and year 9999".into()
            })?;
        }
        if let Some(r) = &self.rate_limit {
            check(r.capacity >= 1, "capacity", || "must be at least 1".into())?;
            check(r.refill_per_second > 0.0 && r.refill_per_second.is_finite(), "refill-per-second", || {
                format!("{} is not a positive rate", r.refill_per_second)
            })?;
        }
        if let Some(t) = &self.ties {
            check(t.fraction > 0.0 && t.fraction <= 1.0, "ties", || {
                format!("{} is not a fraction in (0, 1]", t.fraction)
            })?;
            check(t.max_group >= 2, "tie-max-group", || "a tie group needs at least 2 users".into())?;
        }
        if let Some(g) = &self.gaps {
            check(g.rate > 0.0 && g.rate <= 1.0, "gaps", || format!("{} is not a rate in (0, 1]", g.rate))?;
            check(g.max_len >= 1, "gap-max-len", || "must be at least 1".into())?;
        }
        if let Some(c) = &self.changes {
            check(c.per_second > 0.0 && c.per_second.is_finite(), "changes-per-second", || {
                format!("{} is not a positive rate", c.per_second)
            })?;
            check(c.updates + c.inserts + c.deletes > 0, "change-mix", || {
                "at least one of updates, inserts, deletes needs a weight".into()
            })?;
        }
        let f = &self.faults;
        for (value, setting) in [
            (f.server_errors, "fault-500"),
            (f.throttle_bursts, "fault-429"),
            (f.cut_bodies, "fault-cut"),
            (f.malformed_bodies, "fault-malformed"),
            (f.bad_records, "fault-bad-record"),
        ] {
            check_probability(value, setting)?;
        }
        check(f.total_rate() <= 1.0, "faults", || {
            format!("the fault rates add up to {}, more than 1", f.total_rate())
        })?;
        check(f.throttle_bursts == 0.0 || f.burst_length >= 1, "burst-length", || "must be at least 1".into())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_bad_values_name_their_setting() {
        assert_eq!(PlaygroundConfig::default().validate(), Ok(()));
        let bad = |c: PlaygroundConfig| c.validate().unwrap_err().setting;
        assert_eq!(bad(PlaygroundConfig { users: MAX_USERS + 1, ..Default::default() }), "users");
        assert_eq!(bad(PlaygroundConfig { page_size_limit: 0, ..Default::default() }), "page-size-limit");
        assert_eq!(
            bad(PlaygroundConfig {
                faults: FaultsConfig { cut_bodies: 1.5, ..Default::default() },
                ..Default::default()
            }),
            "fault-cut"
        );
        assert_eq!(bad(PlaygroundConfig { faults: FaultsConfig::evenly(1.2), ..Default::default() }), "faults");
        let bad_rate = FaultsConfig { server_errors: -0.1, ..Default::default() };
        assert_eq!(bad(PlaygroundConfig { faults: bad_rate, ..Default::default() }), "fault-500");
        let many = FaultsConfig { server_errors: 0.6, cut_bodies: 0.6, ..Default::default() };
        assert_eq!(bad(PlaygroundConfig { faults: many, ..Default::default() }), "faults");
        let ties = TiesConfig { fraction: 0.0, max_group: 10 };
        assert_eq!(bad(PlaygroundConfig { ties: Some(ties), ..Default::default() }), "ties");
    }
}
