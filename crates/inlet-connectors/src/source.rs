//! The HTTP source: one request at a time, with bounded retries, and nothing else.
//!
//! A request is retried when a retry can help: connection failures and timeouts, `429`
//! (waiting at least its `Retry-After`), `5xx`, bodies cut short, and bodies that do not parse
//! or carry a bad record (a fault of transport or of the moment, not of the data, as often as
//! not). Any other status fails at once. Every failure names the URL, and the status and body
//! when there is one. Secrets travel in headers only, so URLs are safe to print.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use inlet_sdk::{Error, Secret};
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use tokio::sync::Mutex;

/// How a request is retried.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubled at each retry, with jitter.
    pub initial_backoff: Duration,
    /// Longest wait between attempts (a longer `Retry-After` is still honoured).
    pub max_backoff: Duration,
    /// Limit on each attempt, from sending the request to the end of the body.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
        }
    }
}

/// How requests authenticate, in the formats of the reference API.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: apiKey <key>`.
    ApiKey(Secret),
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic <base64(username:password)>`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// `POST login_url {"username", "password"}` for a token, then `Authorization: Token
    /// <token>`; logs in again when the token nears expiry or is refused.
    SessionToken {
        /// The login endpoint.
        login_url: String,
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
}

/// Counts of what the source did, shared with whoever reports progress.
#[derive(Debug, Default)]
pub struct SourceStats {
    requests: AtomicU64,
    retries: AtomicU64,
    bytes: AtomicU64,
}

impl SourceStats {
    /// Requests sent, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests that were retries.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Response bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

struct Session {
    token: String,
    expires: tokio::time::Instant,
}

/// Sends requests for a connector.
#[derive(Clone)]
pub struct Source {
    client: reqwest::Client,
    auth: Auth,
    retry: RetryPolicy,
    stats: Arc<SourceStats>,
    session: Arc<Mutex<Option<Session>>>,
}

/// Why one attempt failed, and whether another may succeed.
pub(crate) enum Attempt {
    /// Worth retrying; wait at least this long if the server said so.
    Retry { reason: String, wait: Option<Duration> },
    /// Retrying cannot help.
    Fatal(Error),
}

/// What a body parser reports when a body is unusable (retried, then fatal).
pub type BodyError = String;

/// Installs the process's TLS provider (ring) if none is installed yet. HTTP clients built in
/// this workspace need one, even for plain `http://`: call it before building any.
pub fn install_tls_provider() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Source {
    /// A source with these credentials and retry policy, counting into `stats`. With `tls`
    /// false every URL is plain `http://`: the system's certificates are not loaded (that
    /// costs tens of milliseconds at every start), and a redirect to `https://` is an error.
    pub fn new(auth: Auth, retry: RetryPolicy, stats: Arc<SourceStats>, tls: bool) -> Result<Self, Error> {
        install_tls_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("inlet/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10).min(retry.timeout))
            .pool_max_idle_per_host(16);
        if !tls {
            let no_roots = rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            builder =
                builder.tls_backend_preconfigured(no_roots).redirect(reqwest::redirect::Policy::custom(|attempt| {
                    if attempt.url().scheme() == "https" {
                        let to = attempt.url().to_string();
                        attempt.error(format!("redirected to {to}: set the https:// address in the configuration"))
                    } else if attempt.previous().len() >= 10 {
                        attempt.error("more than 10 redirects")
                    } else {
                        attempt.follow()
                    }
                }));
        }
        let client =
            builder.build().map_err(|e| Error::configuration("cannot set up the HTTP client").with_source(e))?;
        Ok(Source { client, auth, retry, stats, session: Arc::new(Mutex::new(None)) })
    }

    /// The counters of this source and its clones.
    pub fn stats(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }

    /// GETs `url` and hands the whole body to `parse`, retrying per the policy.
    pub async fn get<T>(&self, url: &Url, parse: impl Fn(&[u8]) -> Result<T, BodyError>) -> Result<T, Error> {
        let parse = &parse;
        self.with_retries(url, |attempt| async move {
            let response = self.send(url, attempt).await?;
            let body = tokio::time::timeout(self.retry.timeout, response.bytes())
                .await
                .map_err(|_| retry(format!("no complete body within {:?}", self.retry.timeout)))?
                .map_err(|e| retry(format!("the body was cut short: {}", chain(&e))))?;
            self.stats.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            parse(&body).map_err(|e| retry(format!("the response is unusable: {e}")))
        })
        .await
    }

    /// GETs `url` and feeds the body to `consume` chunk by chunk, so that a response of any
    /// size costs a chunk of memory. `consume` starts again from the first chunk on a retry.
    pub async fn stream<C: ChunkConsumer>(&self, url: &Url, consumer: &mut C) -> Result<(), Error> {
        let consumer = Mutex::new(consumer);
        self.with_retries(url, |attempt| {
            let consumer = &consumer;
            async move {
                let mut response = self.send(url, attempt).await?;
                let mut consumer = consumer.lock().await;
                consumer.restart();
                loop {
                    let chunk = tokio::time::timeout(self.retry.timeout, response.chunk())
                        .await
                        .map_err(|_| retry(format!("no data for {:?}", self.retry.timeout)))?
                        .map_err(|e| retry(format!("the body was cut short: {}", chain(&e))))?;
                    let Some(chunk) = chunk else { break };
                    self.stats.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    consumer.consume(&chunk).await.map_err(|e| match e {
                        StreamError::Body(reason) => retry(format!("the response is unusable: {reason}")),
                        StreamError::Stopped(e) => Attempt::Fatal(e),
                    })?;
                }
                consumer.finish().await.map_err(|e| match e {
                    StreamError::Body(reason) => retry(format!("the response is unusable: {reason}")),
                    StreamError::Stopped(e) => Attempt::Fatal(e),
                })
            }
        })
        .await
    }

    async fn with_retries<T, F, Fut>(&self, url: &Url, mut attempt_once: F) -> Result<T, Error>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        let mut backoff = self.retry.initial_backoff;
        let mut last_reason = String::new();
        for attempt in 1..=self.retry.attempts.max(1) {
            if attempt > 1 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            match attempt_once(attempt).await {
                Ok(value) => return Ok(value),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry { reason, wait }) => {
                    tracing::warn!("GET {url}: {reason} (attempt {attempt} of {})", self.retry.attempts);
                    last_reason = reason;
                    if attempt < self.retry.attempts {
                        let jittered = backoff.mul_f64(0.5 + jitter() * 0.5);
                        tokio::time::sleep(wait.map_or(jittered, |w| w.max(jittered))).await;
                        backoff = (backoff * 2).min(self.retry.max_backoff);
                    }
                }
            }
        }
        Err(Error::source(format!("GET {url} failed after {} attempts: {last_reason}", self.retry.attempts)))
    }

    async fn send(&self, url: &Url, attempt: u32) -> Result<reqwest::Response, Attempt> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        // A parsed URL: given text, the client would parse it again for every request.
        let mut request = self.client.get(url.clone()).timeout(self.retry.timeout);
        if let Some(header) = self.authorization(attempt > 1).await? {
            request = request.header(AUTHORIZATION, header);
        }
        let response = request.send().await.map_err(|e| {
            let what = if e.is_timeout() { "no answer in time" } else { "the request failed" };
            retry(format!("{what}: {}", chain(&e)))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let wait = retry_after(&response);
        let body = excerpt(response.text().await.unwrap_or_default());
        let reason = format!("{status}: {body}");
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT
        {
            return Err(Attempt::Retry { reason, wait });
        }
        if status == StatusCode::UNAUTHORIZED
            && let Auth::SessionToken { .. } = self.auth
        {
            // The token may have been revoked: log in again on the next attempt.
            *self.session.lock().await = None;
            return Err(Attempt::Retry { reason, wait: None });
        }
        Err(Attempt::Fatal(Error::source(format!("GET {url} answered {reason}"))))
    }

    async fn authorization(&self, retrying: bool) -> Result<Option<HeaderValue>, Attempt> {
        let value = match &self.auth {
            Auth::None => return Ok(None),
            Auth::ApiKey(key) => format!("apiKey {}", key.expose()),
            Auth::Bearer(token) => format!("Bearer {}", token.expose()),
            Auth::Basic { username, password } => {
                format!("Basic {}", STANDARD.encode(format!("{username}:{}", password.expose())))
            }
            Auth::SessionToken { login_url, username, password } => {
                let mut session = self.session.lock().await;
                let fresh =
                    session.as_ref().is_some_and(|s| s.expires > tokio::time::Instant::now() + Duration::from_secs(30));
                if !fresh || (retrying && session.is_none()) {
                    *session = Some(self.login(login_url, username, password).await?);
                }
                format!("Token {}", session.as_ref().expect("logged in above").token)
            }
        };
        let mut header = HeaderValue::from_str(&value).map_err(|_| {
            Attempt::Fatal(Error::configuration("the credentials contain characters not allowed in an HTTP header"))
        })?;
        header.set_sensitive(true);
        Ok(Some(header))
    }

    async fn login(&self, login_url: &str, username: &str, password: &Secret) -> Result<Session, Attempt> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::json!({ "username": username, "password": password.expose() });
        let response = self
            .client
            .post(login_url)
            .timeout(self.retry.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| retry(format!("login at {login_url} failed: {}", chain(&e))))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(retry(format!("login at {login_url} answered {status}: {}", excerpt(text))));
        }
        if !status.is_success() {
            return Err(Attempt::Fatal(Error::configuration(format!(
                "login at {login_url} answered {status}: {} (check `username` and `password`)",
                excerpt(text)
            ))));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: String,
            expires_in: Option<u64>,
        }
        let token: Token =
            serde_json::from_str(&text).map_err(|e| retry(format!("login at {login_url}: unusable answer ({e})")))?;
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3600));
        Ok(Session { token: token.token, expires: tokio::time::Instant::now() + lifetime })
    }
}

/// What a streaming consumer reports.
pub enum StreamError {
    /// The body is unusable: retry the request.
    Body(BodyError),
    /// The engine stopped: give up.
    Stopped(Error),
}

/// Consumes a streamed body.
pub trait ChunkConsumer: Send {
    /// Forget what a previous attempt fed in: the body starts again.
    fn restart(&mut self);
    /// The next piece of the body.
    fn consume(&mut self, chunk: &[u8]) -> impl std::future::Future<Output = Result<(), StreamError>> + Send;
    /// The body is complete.
    fn finish(&mut self) -> impl std::future::Future<Output = Result<(), StreamError>> + Send;
}

fn retry(reason: String) -> Attempt {
    Attempt::Retry { reason, wait: None }
}

/// `Retry-After` in seconds (the HTTP-date form is rare in APIs and treated as absent).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

/// At most 300 characters of a body, on one line.
fn excerpt(body: String) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None if flat.is_empty() => "(empty body)".into(),
        None => flat,
    }
}

/// An error with its causes, `a: b: c`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A number in [0, 1) that differs between calls; backoff jitter needs no stronger randomness.
fn jitter() -> f64 {
    use std::sync::atomic::AtomicU64;
    static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mut x = STATE.fetch_add(u64::from(nanos) | 1, Ordering::Relaxed);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_flat() {
        assert_eq!(excerpt("{\n  \"error\": \"x\"\n}\n".into()), "{ \"error\": \"x\" }");
        assert_eq!(excerpt(String::new()), "(empty body)");
        assert_eq!(excerpt("a".repeat(400)).chars().count(), 301);
    }

    #[test]
    fn jitter_stays_in_the_unit_interval() {
        assert!((0..1000).map(|_| jitter()).all(|j| (0.0..1.0).contains(&j)));
    }
}
