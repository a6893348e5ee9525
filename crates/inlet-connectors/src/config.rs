//! `configuration.json` of the built-in strategies: the seeds' keys, plus what authentication,
//! priority-first and the HTTP client need. Values may be strings (`"100"`) or numbers.
//! Every mistake is reported with its key and the fix.

use std::time::Duration;

use inlet_sdk::{Configuration, Error, Secret, lenient};
use serde::Deserialize;

use crate::source::{Auth, RetryPolicy};

/// The six strategies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyName {
    /// `updated_since`, then `scroll_param` tokens.
    Keyset,
    /// `updated_since` with `offset` and `limit`.
    Offset,
    /// Everything since the cursor in one response.
    Timestamp,
    /// Windows of ids.
    StepSize,
    /// Like timestamp, starting some hours before the cursor.
    Replay,
    /// Recent data first, then history backwards.
    PriorityFirst,
}

impl StrategyName {
    /// The name in `configuration.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyName::Keyset => "keyset",
            StrategyName::Offset => "offset",
            StrategyName::Timestamp => "timestamp",
            StrategyName::StepSize => "step_size",
            StrategyName::Replay => "replay",
            StrategyName::PriorityFirst => "priority_first",
        }
    }

    /// The endpoint of the seeds' API this strategy reads, on the playground's default port.
    pub fn default_base_url(self) -> &'static str {
        match self {
            StrategyName::Keyset | StrategyName::PriorityFirst => "http://127.0.0.1:5001/pagination/keyset",
            StrategyName::Offset => "http://127.0.0.1:5001/pagination/offset",
            StrategyName::Timestamp | StrategyName::Replay => "http://127.0.0.1:5001/incremental/timestamp",
            StrategyName::StepSize => "http://127.0.0.1:5001/incremental/step",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
enum AuthKind {
    #[default]
    None,
    ApiKey,
    Bearer,
    Basic,
    SessionToken,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    strategy: StrategyName,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default, with = "lenient::option")]
    page_size: Option<u32>,
    #[serde(default, with = "lenient::option")]
    initial_id: Option<u64>,
    #[serde(default, with = "lenient::option")]
    step_size: Option<u64>,
    #[serde(default, with = "lenient::option")]
    max_id: Option<u64>,
    #[serde(default, with = "lenient::option")]
    max_empty_windows: Option<u32>,
    #[serde(default, with = "lenient::option")]
    full_rescan: Option<bool>,
    #[serde(default, with = "lenient::option")]
    buffer_hours: Option<f64>,
    #[serde(default, with = "lenient::option")]
    window_hours: Option<f64>,
    #[serde(default)]
    historical_limit: Option<String>,
    #[serde(default)]
    offset_url: Option<String>,
    #[serde(default)]
    auth: Option<AuthKind>,
    #[serde(default)]
    api_key: Option<Secret>,
    #[serde(default)]
    bearer_token: Option<Secret>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<Secret>,
    #[serde(default)]
    login_url: Option<String>,
    #[serde(default, with = "lenient::option")]
    max_attempts: Option<u32>,
    #[serde(default, with = "lenient::option")]
    backoff_ms: Option<u64>,
    #[serde(default, with = "lenient::option")]
    timeout_seconds: Option<u64>,
    #[serde(default, with = "lenient::option")]
    concurrency: Option<u32>,
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Which strategy.
    pub strategy: StrategyName,
    /// The endpoint, parsed.
    pub base_url: reqwest::Url,
    /// Records per page where the API takes a size (`offset`).
    pub page_size: u32,
    /// `step_size`: first id of the first sync.
    pub initial_id: u64,
    /// `step_size`: ids per window.
    pub step_size: u64,
    /// `step_size`: last id to read, if bounded.
    pub max_id: Option<u64>,
    /// `step_size` without `max_id`: stop after this many empty windows in a row.
    pub max_empty_windows: u32,
    /// `step_size`: read every window from `initial_id` at each sync.
    pub full_rescan: bool,
    /// `replay`: how far before the cursor each sync starts.
    pub buffer: Duration,
    /// `priority_first`: width of a historical window.
    pub window: Duration,
    /// `priority_first`: how far back history goes (seconds since the epoch).
    pub historical_limit: i64,
    /// `keyset`, `priority_first`: the offset endpoint that reads a tie group too large for a
    /// keyset page (an empty `offset_url` turns it off).
    pub offset_url: Option<reqwest::Url>,
    /// How requests authenticate.
    pub auth: Auth,
    /// How requests are retried.
    pub retry: RetryPolicy,
    /// Requests in flight at once, for the strategies that can overlap them.
    pub concurrency: u32,
}

impl Settings {
    /// Whether some URL of these settings is `https://`.
    pub fn uses_tls(&self) -> bool {
        let login = match &self.auth {
            Auth::SessionToken { login_url, .. } => Some(login_url.as_str()),
            _ => None,
        };
        [Some(self.base_url.as_str()), self.offset_url.as_ref().map(reqwest::Url::as_str), login]
            .into_iter()
            .flatten()
            .any(|url| !url.starts_with("http://"))
    }
}

fn bad(key: &str, problem: impl std::fmt::Display) -> Error {
    Error::configuration(format!("configuration key `{key}`: {problem}"))
}

fn parse_url(key: &str, text: &str) -> Result<reqwest::Url, Error> {
    let url = reqwest::Url::parse(text).map_err(|e| bad(key, format!("{text:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad(key, format!("{text:?} is not an http:// or https:// URL")));
    }
    Ok(url)
}

fn parse_instant(key: &str, text: &str) -> Result<i64, Error> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|_| bad(key, format!("{text:?} is not an RFC 3339 instant such as 2024-01-01T00:00:00Z")))
}

fn hours(key: &str, value: f64) -> Result<Duration, Error> {
    if !(0.0..=24.0 * 365.0 * 100.0).contains(&value) {
        return Err(bad(key, format!("{value} is not a number of hours between 0 and a century")));
    }
    Ok(Duration::from_secs_f64(value * 3600.0))
}

impl Settings {
    /// Reads and checks a configuration.
    pub fn from_configuration(configuration: &Configuration) -> Result<Settings, Error> {
        let raw: Raw = configuration.parse()?;
        let strategy = raw.strategy;
        let base_url = parse_url("base_url", raw.base_url.as_deref().unwrap_or(strategy.default_base_url()))?;

        let page_size = raw.page_size.unwrap_or(50);
        if page_size == 0 || (strategy == StrategyName::Offset && page_size < 2) {
            return Err(bad(
                "page_size",
                format!(
                    "{page_size} is too small: the offset strategy re-reads one row per page to detect shifts, so it needs at least 2"
                ),
            ));
        }
        let initial_id = raw.initial_id.unwrap_or(1);
        if initial_id == 0 {
            return Err(bad("initial_id", "ids start at 1"));
        }
        let step_size = raw.step_size.unwrap_or(1000);
        if step_size == 0 {
            return Err(bad("step_size", "a window needs at least one id"));
        }
        if let Some(max_id) = raw.max_id
            && max_id < initial_id
        {
            return Err(bad("max_id", format!("{max_id} is below `initial_id` ({initial_id})")));
        }
        let max_empty_windows = raw.max_empty_windows.unwrap_or(100);
        if max_empty_windows == 0 {
            return Err(bad("max_empty_windows", "must be at least 1"));
        }
        let buffer = hours("buffer_hours", raw.buffer_hours.unwrap_or(2.0))?;
        let window = hours("window_hours", raw.window_hours.unwrap_or(24.0))?;
        if window < Duration::from_secs(1) {
            return Err(bad("window_hours", "a window must last at least a second"));
        }
        let historical_limit = match raw.historical_limit.as_deref() {
            Some(text) => parse_instant("historical_limit", text)?,
            None => 0,
        };
        let offset_url = match raw.offset_url.as_deref() {
            Some("") => None,
            Some(text) => Some(parse_url("offset_url", text)?),
            // The playground and the reference serve an offset endpoint beside the keyset one.
            None if base_url.path().ends_with("/pagination/keyset") => {
                let mut url = base_url.clone();
                url.set_path(&base_url.path().replace("/pagination/keyset", "/pagination/offset"));
                Some(url)
            }
            None => None,
        };
        let auth = auth(&raw, &base_url)?;
        let attempts = raw.max_attempts.unwrap_or(5);
        if attempts == 0 {
            return Err(bad("max_attempts", "at least one attempt is needed"));
        }
        let timeout = raw.timeout_seconds.unwrap_or(60);
        if timeout == 0 {
            return Err(bad("timeout_seconds", "must be at least 1"));
        }
        let retry = RetryPolicy {
            attempts,
            initial_backoff: Duration::from_millis(raw.backoff_ms.unwrap_or(500)),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(timeout),
        };
        let concurrency = raw.concurrency.unwrap_or(4);
        if !(1..=64).contains(&concurrency) {
            return Err(bad("concurrency", format!("{concurrency} is not between 1 and 64")));
        }
        Ok(Settings {
            strategy,
            base_url,
            page_size,
            initial_id,
            step_size,
            max_id: raw.max_id,
            max_empty_windows,
            full_rescan: raw.full_rescan.unwrap_or(false),
            buffer,
            window,
            historical_limit,
            offset_url,
            auth,
            retry,
            concurrency,
        })
    }
}

fn auth(raw: &Raw, base_url: &reqwest::Url) -> Result<Auth, Error> {
    let kind = raw.auth.unwrap_or_default();
    let stray = [
        ("api_key", raw.api_key.is_some(), kind == AuthKind::ApiKey),
        ("bearer_token", raw.bearer_token.is_some(), kind == AuthKind::Bearer),
        ("username", raw.username.is_some(), matches!(kind, AuthKind::Basic | AuthKind::SessionToken)),
        ("password", raw.password.is_some(), matches!(kind, AuthKind::Basic | AuthKind::SessionToken)),
        ("login_url", raw.login_url.is_some(), kind == AuthKind::SessionToken),
    ];
    if let Some((key, ..)) = stray.iter().find(|(_, given, used)| *given && !*used) {
        return Err(bad(
            key,
            format!("is set but `auth` is `{}`: set `auth` to the scheme it belongs to, or remove it", auth_name(kind)),
        ));
    }
    let need = |key: &str, value: Option<&Secret>| -> Result<Secret, Error> {
        value.cloned().ok_or_else(|| bad(key, format!("is required when `auth` is `{}`", auth_name(kind))))
    };
    let need_user = || {
        raw.username.clone().ok_or_else(|| bad("username", format!("is required when `auth` is `{}`", auth_name(kind))))
    };
    Ok(match kind {
        AuthKind::None => Auth::None,
        AuthKind::ApiKey => Auth::ApiKey(need("api_key", raw.api_key.as_ref())?),
        AuthKind::Bearer => Auth::Bearer(need("bearer_token", raw.bearer_token.as_ref())?),
        AuthKind::Basic => Auth::Basic { username: need_user()?, password: need("password", raw.password.as_ref())? },
        AuthKind::SessionToken => {
            let login_url = match &raw.login_url {
                Some(text) => parse_url("login_url", text)?.to_string(),
                None => base_url.join("/auth/session_token/login").expect("a path joins any http URL").to_string(),
            };
            Auth::SessionToken { login_url, username: need_user()?, password: need("password", raw.password.as_ref())? }
        }
    })
}

fn auth_name(kind: AuthKind) -> &'static str {
    match kind {
        AuthKind::None => "none",
        AuthKind::ApiKey => "api_key",
        AuthKind::Bearer => "bearer",
        AuthKind::Basic => "basic",
        AuthKind::SessionToken => "session_token",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Result<Settings, Error> {
        Settings::from_configuration(&Configuration::from_json(json).unwrap())
    }

    #[test]
    fn the_seed_configuration_is_accepted_with_strings_or_numbers() {
        let numbers = r#"{"strategy": "keyset", "base_url": "http://127.0.0.1:5001/pagination/keyset", "page_size": 100,
            "initial_id": 1, "step_size": 1000, "max_id": 100000, "buffer_hours": 2}"#;
        let strings = r#"{"strategy": "keyset", "base_url": "http://127.0.0.1:5001/pagination/keyset", "page_size": "100",
            "initial_id": "1", "step_size": "1000", "max_id": "100000", "buffer_hours": "2"}"#;
        let (a, b) = (settings(numbers).unwrap(), settings(strings).unwrap());
        assert_eq!((a.page_size, a.step_size, a.max_id, a.buffer), (b.page_size, b.step_size, b.max_id, b.buffer));
        assert_eq!(a.buffer, Duration::from_secs(7200));
        assert_eq!(a.offset_url.unwrap().as_str(), "http://127.0.0.1:5001/pagination/offset");
    }

    #[test]
    fn certificates_are_needed_only_when_some_url_is_https() {
        let keyset = |base: &str, extra: &str| {
            settings(&format!(r#"{{"strategy": "keyset", "base_url": "{base}/pagination/keyset"{extra}}}"#)).unwrap()
        };
        assert!(!keyset("http://127.0.0.1:5001", "").uses_tls());
        assert!(keyset("https://api.example.com", "").uses_tls());
        assert!(keyset("http://127.0.0.1:5001", r#", "offset_url": "https://api.example.com/offset""#).uses_tls());
    }

    #[test]
    fn mistakes_name_their_key() {
        let cases = [
            (r#"{"strategy": "keyest"}"#, "`strategy`: unknown variant `keyest`"),
            (r#"{"strategy": "keyset", "page_sise": 5}"#, "unknown field `page_sise`"),
            (r#"{"strategy": "offset", "page_size": "many"}"#, "`page_size`: \"many\" is not a valid value"),
            (r#"{"strategy": "offset", "page_size": 1}"#, "`page_size`: 1 is too small"),
            (r#"{"strategy": "step_size", "step_size": 0}"#, "`step_size`: a window needs at least one id"),
            (r#"{"strategy": "step_size", "initial_id": 10, "max_id": 5}"#, "`max_id`: 5 is below `initial_id` (10)"),
            (r#"{"strategy": "replay", "buffer_hours": -1}"#, "`buffer_hours`: -1 is not a number of hours"),
            (
                r#"{"strategy": "keyset", "base_url": "ftp://x/y"}"#,
                "`base_url`: \"ftp://x/y\" is not an http:// or https:// URL",
            ),
            (
                r#"{"strategy": "priority_first", "historical_limit": "last year"}"#,
                "`historical_limit`: \"last year\" is not an RFC 3339 instant",
            ),
            (r#"{"strategy": "keyset", "api_key": "k"}"#, "`api_key`: is set but `auth` is `none`"),
            (
                r#"{"strategy": "keyset", "auth": "basic", "username": "u"}"#,
                "`password`: is required when `auth` is `basic`",
            ),
            (r#"{"strategy": "keyset", "auth": "oauth"}"#, "`auth`: unknown variant `oauth`"),
            (r#"{"strategy": "keyset", "max_attempts": 0}"#, "`max_attempts`: at least one attempt is needed"),
        ];
        for (json, expected) in cases {
            let error = settings(json).unwrap_err();
            assert_eq!(error.kind(), inlet_sdk::ErrorKind::Configuration);
            assert!(error.to_string().contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn session_tokens_log_in_next_to_the_data_by_default() {
        let s = settings(r#"{"strategy": "offset", "base_url": "http://h:9/pagination/offset", "auth": "session_token", "username": "u", "password": "p"}"#).unwrap();
        match s.auth {
            Auth::SessionToken { login_url, .. } => assert_eq!(login_url, "http://h:9/auth/session_token/login"),
            other => panic!("{other:?}"),
        }
    }
}
