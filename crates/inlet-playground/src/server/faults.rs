//! Deliberate misbehaviour: the reference's token-bucket rate limiter, and seeded faults on
//! the user endpoints. Request `k` (counted from start) gets its fault from `(seed, k)`, so a
//! client that sends the same requests in the same order meets the same faults.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::Serialize;

use super::{App, reply};
use crate::config::{FaultsConfig, RateLimit};
use crate::render::Corruption;
use crate::rng::{Domain, Draws};

/// The reference's token bucket (capacity, continuous refill), with its exact header values.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    capacity: f64,
    refill_per_second: f64,
    tokens: f64,
    last_refill: Instant,
}

struct Decision {
    allowed: bool,
    remaining: u64,
    seconds_until_full: f64,
    seconds_until_next: f64,
}

impl TokenBucket {
    pub(crate) fn new(limit: &RateLimit) -> Self {
        let capacity = f64::from(limit.capacity);
        TokenBucket {
            capacity,
            refill_per_second: limit.refill_per_second,
            tokens: capacity,
            last_refill: Instant::now(),
        }
    }

    fn consume(&mut self) -> Decision {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_refill).as_secs_f64();
        self.last_refill = now;
        self.tokens = (self.tokens + elapsed * self.refill_per_second).min(self.capacity);
        let allowed = self.tokens >= 1.0;
        if allowed {
            self.tokens -= 1.0;
        }
        Decision {
            allowed,
            remaining: self.tokens.max(0.0) as u64,
            seconds_until_full: ((self.capacity - self.tokens) / self.refill_per_second).max(0.0),
            seconds_until_next: if self.tokens >= 1.0 { 0.0 } else { (1.0 - self.tokens) / self.refill_per_second },
        }
    }
}

fn header_value(n: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&n.to_string()).expect("a number is a valid header value")
}

/// Tools of the playground itself (ground truth) are exempt from limits and faults.
fn is_tooling(path: &str) -> bool {
    path.starts_with("/_")
}

/// Rate limiting as in the reference: every request takes a token (even to unknown paths);
/// without one it gets `429` and `Retry-After`; every response carries `X-RateLimit-*`.
pub(crate) async fn rate_limit(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(bucket) = &app.bucket else { return next.run(request).await };
    if is_tooling(request.uri().path()) {
        return next.run(request).await;
    }
    let decision = super::lock(bucket).consume();
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        let mut r = reply::error(429, "Rate limit exceeded");
        r.headers_mut().insert(header::RETRY_AFTER, header_value(decision.seconds_until_next.ceil() as u64));
        r
    };
    let limit = app.config.rate_limit.as_ref().map_or(0, |r| r.capacity);
    let h = response.headers_mut();
    h.insert("x-ratelimit-limit", header_value(limit));
    h.insert("x-ratelimit-remaining", header_value(decision.remaining));
    h.insert("x-ratelimit-reset", header_value(decision.seconds_until_full.ceil() as u64));
    response
}

/// Marks a request whose response must carry one broken record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BadRecord(pub Corruption);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    ServerError,
    Throttle,
    CutBody,
    MalformedBody,
    BadRecord(Corruption),
}

/// How many faults of each kind were injected so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultCounts {
    /// `500` responses.
    pub server_errors: u64,
    /// `429` responses from bursts (not from `--rate-limit`).
    pub throttled: u64,
    /// Bodies cut mid-way.
    pub cut_bodies: u64,
    /// Bodies that are not JSON.
    pub malformed_bodies: u64,
    /// Responses with one bad record.
    pub bad_records: u64,
}

/// The running state of fault injection.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    next_request: AtomicU64,
    burst_left: AtomicU32,
    counts: [AtomicU64; 5],
}

impl Faults {
    pub(crate) fn counts(&self) -> FaultCounts {
        let c = |i: usize| self.counts[i].load(Ordering::Relaxed);
        FaultCounts {
            server_errors: c(0),
            throttled: c(1),
            cut_bodies: c(2),
            malformed_bodies: c(3),
            bad_records: c(4),
        }
    }

    fn count(&self, fault: Fault) {
        let slot = match fault {
            Fault::ServerError => 0,
            Fault::Throttle => 1,
            Fault::CutBody => 2,
            Fault::MalformedBody => 3,
            Fault::BadRecord(_) => 4,
        };
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Decides request `k`'s fault; a burst under way takes precedence.
    fn decide(&self, config: &FaultsConfig, draws: &mut Draws) -> Option<Fault> {
        let in_burst =
            self.burst_left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1)).is_ok();
        if in_burst {
            return Some(Fault::Throttle);
        }
        let mut u = draws.unit();
        let kinds = [
            (config.server_errors, Fault::ServerError),
            (config.throttle_bursts, Fault::Throttle),
            (config.cut_bodies, Fault::CutBody),
            (config.malformed_bodies, Fault::MalformedBody),
            (config.bad_records, Fault::BadRecord(Corruption::MissingId)),
        ];
        for (rate, fault) in kinds {
            if u < rate {
                return Some(match fault {
                    Fault::Throttle => {
                        self.burst_left.store(config.burst_length.saturating_sub(1), Ordering::Relaxed);
                        Fault::Throttle
                    }
                    Fault::BadRecord(_) => Fault::BadRecord(draws.pick(&[
                        Corruption::MissingId,
                        Corruption::NumericUpdatedAt,
                        Corruption::UnparseableCreatedAt,
                    ])),
                    other => other,
                });
            }
            u -= rate;
        }
        None
    }
}

fn is_user_endpoint(path: &str) -> bool {
    ["/pagination/", "/incremental/", "/auth/"].iter().any(|p| path.starts_with(p))
}

/// Injects the configured faults into responses of the user endpoints.
pub(crate) async fn inject(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let config = &app.config.faults;
    if !is_user_endpoint(request.uri().path()) || (config.total_rate() == 0.0 && config.latency.is_zero()) {
        return next.run(request).await;
    }
    let k = app.faults.next_request.fetch_add(1, Ordering::Relaxed);
    let mut draws = Draws::new(app.config.seed, Domain::Faults, k);
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency.mul_f64(0.5 + draws.unit())).await;
    }
    let Some(fault) = app.faults.decide(config, &mut draws) else {
        return next.run(request).await;
    };
    app.faults.count(fault);
    match fault {
        Fault::ServerError => reply::error(500, "Internal server error (injected by the playground)"),
        Fault::Throttle => {
            let mut r = reply::error(429, "Rate limit exceeded");
            r.headers_mut().insert(header::RETRY_AFTER, header_value(config.burst_retry_after));
            r
        }
        Fault::BadRecord(corruption) => {
            request.extensions_mut().insert(BadRecord(corruption));
            next.run(request).await
        }
        Fault::CutBody => cut_short(next.run(request).await, true).await,
        Fault::MalformedBody => cut_short(next.run(request).await, false).await,
    }
}

/// Keeps the first part of the body. `abort`: the connection then dies mid-body (the headers
/// promised more); otherwise the response ends cleanly, as a `200` that is not JSON.
async fn cut_short(response: Response, abort: bool) -> Response {
    let (mut parts, body) = response.into_parts();
    let mut stream = body.into_data_stream();
    let first = match stream.next().await {
        Some(Ok(bytes)) => bytes,
        _ => Bytes::new(),
    };
    let keep = first.slice(..first.len() * 3 / 5);
    if abort {
        let failure = io::Error::new(io::ErrorKind::ConnectionAborted, "connection cut by the playground");
        let frames = futures_util::stream::iter([Ok(keep), Err(failure)]);
        // Let a slow client read the first part before the connection dies.
        let delayed = frames.then(|frame| async {
            if frame.is_err() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            frame
        });
        return Response::from_parts(parts, Body::from_stream(delayed));
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_decisions_follow_the_rates_and_bursts_last() {
        let config = FaultsConfig { server_errors: 0.1, throttle_bursts: 0.05, burst_length: 3, ..Default::default() };
        let faults = Faults::default();
        let decided: Vec<Option<Fault>> =
            (0..10_000).map(|k| faults.decide(&config, &mut Draws::new(1, Domain::Faults, k))).collect();
        let errors = decided.iter().filter(|f| **f == Some(Fault::ServerError)).count();
        assert!((800..1200).contains(&errors), "{errors} server errors for a 10% rate");
        let first_throttle = decided.iter().position(|f| *f == Some(Fault::Throttle)).expect("some burst");
        assert_eq!(
            decided[first_throttle..first_throttle + 3],
            [Some(Fault::Throttle); 3],
            "a burst is three 429s in a row"
        );
    }

    #[test]
    fn the_bucket_allows_its_capacity_then_refuses_with_retry_after() {
        let mut bucket = TokenBucket::new(&RateLimit { capacity: 3, refill_per_second: 10.0 });
        let decisions: Vec<Decision> = (0..4).map(|_| bucket.consume()).collect();
        assert!(decisions[..3].iter().all(|d| d.allowed));
        assert_eq!(decisions[2].remaining, 0);
        assert!(!decisions[3].allowed);
        assert_eq!(decisions[3].seconds_until_next.ceil() as u64, 1);
        assert_eq!(decisions[3].seconds_until_full.ceil() as u64, 1);
    }
}
