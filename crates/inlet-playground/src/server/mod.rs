//! The HTTP server: routes, middleware and the handle that tests and the CLI hold.

mod auth;
mod faults;
mod params;
mod reply;
mod users;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::serve::ListenerExt as _;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use self::auth::Credentials;
pub use self::faults::FaultCounts;
use self::faults::{Faults, TokenBucket};
use crate::config::{ConfigError, PlaygroundConfig};
use crate::dataset::Dataset;
use crate::layout::Layout;
use crate::live::{ChangeBatch, Clock, Live};
use crate::people::{Person, Who};
use crate::timefmt::UnixSeconds;
use crate::truth::{self, Truth};

/// Everything the handlers share.
pub(crate) struct App {
    pub config: PlaygroundConfig,
    pub live: Live,
    pub credentials: Credentials,
    pub bucket: Option<Mutex<TokenBucket>>,
    pub faults: Faults,
    /// `host:port` the server listens on, for absolute URLs when a request has no `Host`.
    pub authority: String,
    requests: Mutex<BTreeMap<String, u64>>,
    log: Mutex<std::collections::VecDeque<String>>,
}

/// Request lines kept for [`RunningPlayground::request_log`].
const LOG_LINES: usize = 100_000;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl App {
    fn new(config: PlaygroundConfig, authority: String) -> Self {
        // Without a configured `now`, the clock follows the wall clock to the fraction of a
        // second, as the reference's timestamps do.
        let (now, past_origin) = config.now.map_or_else(wall_clock_now, |now| (now, Duration::ZERO));
        let layout = Layout::new(
            config.seed,
            config.users,
            now,
            config.page_size_limit,
            config.ties.as_ref(),
            config.gaps.as_ref(),
        );
        let clock = if config.manual_clock { Clock::manual(now) } else { Clock::running(now, past_origin) };
        let dataset = Dataset::new(Arc::new(layout), config.delete_mode);
        App {
            live: Live::new(dataset, clock, config.changes.clone(), config.replica_lag_seconds),
            credentials: Credentials::from_seed(config.seed),
            bucket: config.rate_limit.as_ref().map(|r| Mutex::new(TokenBucket::new(r))),
            faults: Faults::default(),
            authority,
            requests: Mutex::new(BTreeMap::new()),
            log: Mutex::new(std::collections::VecDeque::new()),
            config,
        }
    }
}

/// The wall clock: whole seconds since the epoch, and the fraction of a second past them.
fn wall_clock_now() -> (UnixSeconds, Duration) {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (since_epoch.as_secs() as i64, Duration::from_nanos(u64::from(since_epoch.subsec_nanos())))
}

/// Why a playground could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
}

/// A playground serving on a local port. Dropping it stops the server.
pub struct RunningPlayground {
    url: String,
    app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Starts a playground on `addr` (port 0 picks a free port) in the current Tokio runtime.
pub async fn start(config: PlaygroundConfig, addr: SocketAddr) -> Result<RunningPlayground, StartError> {
    config.validate()?;
    let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
    let app = Arc::new(App::new(config, local.to_string()));
    let router = router(app.clone());
    let (shutdown, stopped) = oneshot::channel::<()>();
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(RunningPlayground { url: format!("http://{local}"), app, shutdown: Some(shutdown), task: Some(task) })
}

/// Changes a [`RunningPlayground::change`] made, by user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeReport {
    /// Users updated (`updatedAt` moved to now).
    pub updated: Vec<ChangedUser>,
    /// Users added.
    pub inserted: Vec<ChangedUser>,
    /// Users deleted.
    pub deleted: Vec<ChangedUser>,
}

/// A user named by both of its ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedUser {
    /// Its UUID, the `id` of every endpoint but `/incremental/step`.
    pub uuid: String,
    /// Its id on `/incremental/step`.
    pub step_id: u64,
}

impl RunningPlayground {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The secrets of the authentication endpoints.
    pub fn credentials(&self) -> &Credentials {
        &self.app.credentials
    }

    /// The playground's clock, now.
    pub fn now(&self) -> UnixSeconds {
        self.app.live.clock.now()
    }

    /// Moves the clock forward: due live changes happen, lagging rows become visible, session
    /// tokens age.
    pub fn advance_clock(&self, by: Duration) {
        self.app.live.clock.advance(by);
    }

    /// The complete current dataset.
    pub fn truth(&self) -> Truth {
        Truth::of(&self.app.live.truth())
    }

    /// Makes `batch` changes now, on rows chosen by the seed; returns which users changed.
    pub fn change(&self, batch: ChangeBatch) -> ChangeReport {
        let touched = self.app.live.change_now(batch);
        let truth = self.app.live.truth();
        let name = |indices: Vec<u32>| {
            indices
                .into_iter()
                .map(|i| ChangedUser { uuid: uuid_of(&truth, i), step_id: truth.layout.step_id(i) })
                .collect()
        };
        ChangeReport {
            updated: name(touched.updated),
            inserted: name(touched.inserted),
            deleted: name(touched.deleted),
        }
    }

    /// Requests received so far, by path (query excluded).
    pub fn requests(&self) -> BTreeMap<String, u64> {
        lock(&self.app.requests).clone()
    }

    /// The last requests received (up to 100,000), oldest first: path and query, as sent.
    pub fn request_log(&self) -> Vec<String> {
        lock(&self.app.log).iter().cloned().collect()
    }

    /// Faults injected so far.
    pub fn faults_injected(&self) -> FaultCounts {
        self.app.faults.counts()
    }

    /// Stops accepting requests, lets those under way finish, and waits for the server.
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    /// Serves until `signal` completes, then stops.
    pub async fn serve_until(mut self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shut_down().await;
    }

    async fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            // Connections kept alive by idle clients must not hold the shutdown for long.
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }
}

impl Drop for RunningPlayground {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn uuid_of(dataset: &Dataset, index: u32) -> String {
    let mut uuid = String::with_capacity(36);
    Person::new(Who { seed: dataset.layout.seed, index, revision: 0 }).uuid(&mut uuid);
    uuid
}

/// Writes the ground truth of a playground that is not running: the initial dataset of
/// `config`, as `GET /_truth` would serve it before any change.
pub fn write_initial_truth(
    config: &PlaygroundConfig,
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), DumpError> {
    config.validate()?;
    let app = App::new(config.clone(), String::new());
    let dataset = app.live.truth();
    let mut buffer = Vec::with_capacity(1 << 20);
    for start in (0..dataset.index_count()).step_by(TRUTH_CHUNK as usize) {
        buffer.clear();
        truth::write_ndjson(&dataset, start..(start + TRUTH_CHUNK).min(dataset.index_count()), &mut buffer);
        sink(&buffer)?;
    }
    Ok(())
}

/// Why a dump failed.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// A setting cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Writing the output failed.
    #[error("cannot write the dump: {0}")]
    Write(#[from] std::io::Error),
}

const TRUTH_CHUNK: u32 = 1000;

/// `GET /_truth`: the primary's complete state as NDJSON, streamed.
async fn truth_ndjson(State(app): State<Arc<App>>) -> Response {
    let dataset = app.live.truth();
    let count = dataset.index_count();
    let chunks = futures_util::stream::iter((0..count).step_by(TRUTH_CHUNK as usize).map(move |start| {
        let mut out = Vec::with_capacity(TRUTH_CHUNK as usize * 330);
        truth::write_ndjson(&dataset, start..(start + TRUTH_CHUNK).min(count), &mut out);
        Ok::<_, std::convert::Infallible>(Bytes::from(out))
    }));
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"))], Body::from_stream(chunks))
        .into_response()
}

/// A route answering `method` with `handler`, `OPTIONS` with its `Allow` list, and any other
/// method with Werkzeug's 405, as Flask does.
fn route<H, T>(method: Method, handler: H) -> MethodRouter<Arc<App>>
where
    H: axum::handler::Handler<T, Arc<App>>,
    T: 'static,
{
    let allow = if method == Method::POST { "OPTIONS, POST" } else { "OPTIONS, HEAD, GET" };
    let routed = if method == Method::POST { post(handler) } else { get(handler) };
    routed
        .options(move || async move { ([(header::ALLOW, HeaderValue::from_static(allow))], "").into_response() })
        .fallback(move || async move { reply::method_not_allowed(allow) })
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/pagination/keyset", route(Method::GET, users::keyset))
        .route("/pagination/offset", route(Method::GET, users::offset))
        .route("/pagination/page_number", route(Method::GET, users::page_number))
        .route("/pagination/next_page_url", route(Method::GET, users::next_page_url))
        .route("/incremental/timestamp", route(Method::GET, users::timestamp))
        .route("/incremental/step", route(Method::GET, users::step))
        .route("/auth/http_basic", route(Method::GET, auth::http_basic))
        .route("/auth/http_bearer", route(Method::GET, auth::http_bearer))
        .route("/auth/api_key", route(Method::GET, auth::api_key))
        .route("/auth/session_token/login", route(Method::POST, auth::session_login))
        .route("/auth/session_token/data", route(Method::GET, auth::session_data))
        .route("/_truth", get(truth_ndjson))
        .fallback(|| async { reply::not_found() })
        .layer(middleware::from_fn_with_state(app.clone(), require_auth))
        .layer(middleware::from_fn_with_state(app.clone(), faults::inject))
        .layer(middleware::from_fn_with_state(app.clone(), faults::rate_limit))
        .layer(middleware::from_fn_with_state(app.clone(), access_log))
        .with_state(app)
}

/// Demands credentials on the data endpoints when `require_auth` is set.
async fn require_auth(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if let Some(scheme) = app.config.require_auth
        && ["/pagination/", "/incremental/"].iter().any(|p| path.starts_with(p))
        && let Err(refusal) = auth::authorize(&app, request.headers(), scheme)
    {
        return refusal.into_response();
    }
    next.run(request).await
}

/// Counts and records requests, makes the per-request changes, and logs one line per request
/// (target `inlet_playground::access`).
async fn access_log(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    *lock(&app.requests).entry(path.clone()).or_default() += 1;
    {
        let mut log = lock(&app.log);
        if log.len() == LOG_LINES {
            log.pop_front();
        }
        log.push_back(request.uri().path_and_query().map_or_else(|| path.clone(), |pq| pq.as_str().to_owned()));
    }
    if let Some(batch) = app.config.changes_per_request
        && ["/pagination/", "/incremental/"].iter().any(|p| path.starts_with(p))
    {
        app.live.change_now(batch);
    }
    let response = next.run(request).await;
    tracing::info!(
        target: "inlet_playground::access",
        "{method} {path}{}{} {} {:.1} ms",
        if query.is_some() { "?" } else { "" },
        query.unwrap_or_default(),
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}
