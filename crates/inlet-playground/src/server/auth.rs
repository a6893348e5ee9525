//! The four authentication examples of the reference: HTTP Basic, Bearer, API key and a
//! session token. Credentials are drawn from the seed, so they are stable across restarts.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::App;
use super::params::python_int;
use super::reply::{self, Refusal};
use super::users::python_b64decode;
use crate::config::AuthScheme;
use crate::render::{IdStyle, RecordWriter};
use crate::rng::{Domain, Draws};

/// Seconds a session token lives, as in the reference.
const SESSION_SECONDS: i64 = 3600;

/// The secrets each authentication endpoint expects. Printed at start-up, like the reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Credentials {
    /// `/auth/http_basic` user name.
    pub basic_username: String,
    /// `/auth/http_basic` password.
    pub basic_password: String,
    /// `/auth/http_bearer` token.
    pub bearer_token: String,
    /// `/auth/api_key` key, sent as `Authorization: apiKey <key>`.
    pub api_key: String,
    /// `/auth/session_token/login` user name.
    pub session_username: String,
    /// `/auth/session_token/login` password.
    pub session_password: String,
}

impl Credentials {
    /// The same shapes as the reference's (`5 hex@example.com`, UUIDs, hex passwords).
    pub(crate) fn from_seed(seed: u64) -> Self {
        let mut d = Draws::new(seed, Domain::Credentials, 0);
        let mut hex = |len: usize| -> String {
            (0..len).map(|_| char::from_digit(d.below(16) as u32, 16).expect("below 16")).collect()
        };
        // Version 4, RFC 4122 variant (8, 9, a or b), as Python's uuid4.
        let uuid = |h: String| {
            let variant = ["8", "9", "a", "b"][usize::from(h.as_bytes()[16] % 4)];
            format!("{}-{}-4{}-{variant}{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
        };
        Credentials {
            basic_username: format!("{}@example.com", hex(5)),
            basic_password: hex(8),
            bearer_token: uuid(hex(32)),
            api_key: uuid(hex(32)),
            session_username: format!("{}@example.com", hex(5)),
            session_password: hex(10),
        }
    }
}

/// `abort(401)` with the reference's description, as Werkzeug's HTML page.
fn unauthorized(header_present: bool) -> Refusal {
    let message = if header_present { "Invalid API key or format" } else { "Authorization header is missing" };
    Refusal::Html(401, message.to_owned())
}

/// Checks `Authorization: <scheme> <secret>` as the reference does.
fn check_header(headers: &HeaderMap, scheme: &str, secret: &str) -> Result<(), Refusal> {
    let Some(value) = headers.get(AUTHORIZATION) else { return Err(unauthorized(false)) };
    match value.to_str().ok().and_then(|v| v.split_once(' ')) {
        Some((s, k)) if s == scheme && k == secret => Ok(()),
        _ => Err(unauthorized(true)),
    }
}

/// `{"data": [first 20 users]}`, rendered by `jsonify` (sorted keys, indented).
fn first_users(app: &App) -> Response {
    let view = app.live.view();
    let dataset = &view.dataset;
    let mut writer = RecordWriter::new(dataset.layout.seed);
    let records: Vec<_> = dataset
        .by_created_at(None, view.base_end)
        .slice(0..20)
        .into_iter()
        .map(|i| writer.record(&dataset.row(i), IdStyle::Uuid))
        .collect();
    reply::jsonify(200, &serde_json::json!({ "data": records }))
}

/// Checks a request's credentials against `scheme`, with the reference's answers.
pub(crate) fn authorize(app: &App, headers: &HeaderMap, scheme: AuthScheme) -> Result<(), Refusal> {
    let c = &app.credentials;
    match scheme {
        AuthScheme::ApiKey => check_header(headers, "apiKey", &c.api_key),
        AuthScheme::Bearer => check_header(headers, "Bearer", &c.bearer_token),
        AuthScheme::Basic => {
            check_header(headers, "Basic", &STANDARD.encode(format!("{}:{}", c.basic_username, c.basic_password)))
        }
        AuthScheme::SessionToken => check_session(app, headers),
    }
}

/// `GET /auth/http_basic`
pub(crate) async fn http_basic(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Refusal> {
    let c = &app.credentials;
    check_header(&headers, "Basic", &STANDARD.encode(format!("{}:{}", c.basic_username, c.basic_password)))?;
    Ok(first_users(&app))
}

/// `GET /auth/http_bearer`
pub(crate) async fn http_bearer(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Refusal> {
    check_header(&headers, "Bearer", &app.credentials.bearer_token)?;
    Ok(first_users(&app))
}

/// `GET /auth/api_key`
pub(crate) async fn api_key(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Refusal> {
    check_header(&headers, "apiKey", &app.credentials.api_key)?;
    Ok(first_users(&app))
}

/// Python truthiness of a JSON value, as in `if not username`.
fn truthy(value: Option<&serde_json::Value>) -> bool {
    use serde_json::Value;
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// `POST /auth/session_token/login` with `{"username", "password"}`.
pub(crate) async fn session_login(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|m| m == "application/json" || (m.starts_with("application/") && m.ends_with("+json")));
    if !is_json {
        return reply::html(
            415,
            "Did not attempt to load JSON data because the request Content-Type was not &#39;application/json&#39;.",
        );
    }
    let data: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return reply::html(400, &format!("Failed to decode JSON object: {e}")),
    };
    let Some(data) = data.as_object() else {
        // The reference calls `.get` on whatever was sent and fails with a 500.
        return reply::html(
            500,
            "The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.",
        );
    };
    let (username, password) = (data.get("username"), data.get("password"));
    if !truthy(username) || !truthy(password) {
        return reply::error(400, "Username and password are required");
    }
    let c = &app.credentials;
    let matches = username.and_then(|u| u.as_str()) == Some(c.session_username.as_str())
        && password.and_then(|p| p.as_str()) == Some(c.session_password.as_str());
    if !matches {
        return reply::error(401, "Invalid username or password");
    }
    let expires_at = app.live.clock.now() + SESSION_SECONDS;
    let token = STANDARD.encode(format!("{}:{}:{expires_at}", c.session_username, c.session_password));
    reply::jsonify(200, &serde_json::json!({ "token": token, "expires_in": SESSION_SECONDS }))
}

/// `GET /auth/session_token/data` with `Authorization: Token <token>`.
pub(crate) async fn session_data(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    match check_session(&app, &headers) {
        Ok(()) => first_users(&app),
        Err(refusal) => refusal.into_response(),
    }
}

/// Validates a session token as the reference does, with its messages.
fn check_session(app: &App, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(Refusal::json(400, "Token is missing"));
    };
    let token = value.to_str().unwrap_or("");
    let token = token.strip_prefix("Token ").unwrap_or(token);
    let parsed = python_b64decode(token).and_then(|bytes| String::from_utf8(bytes).ok()).and_then(|text| {
        let parts: Vec<&str> = text.split(':').collect();
        let [user, password, expires] = parts[..] else { return None };
        Some((user.to_owned(), password.to_owned(), python_int(expires)?))
    });
    let Some((user, password, expires_at)) = parsed else {
        return Err(Refusal::json(400, "Invalid token format"));
    };
    if i128::from(app.live.clock.now()) >= expires_at {
        return Err(Refusal::json(401, "Token has expired"));
    }
    let c = &app.credentials;
    if user != c.session_username || password != c.session_password {
        return Err(Refusal::json(401, "Invalid Token"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_have_the_reference_shapes_and_depend_on_the_seed() {
        let c = Credentials::from_seed(1);
        assert_eq!(c, Credentials::from_seed(1));
        assert_ne!(c, Credentials::from_seed(2));
        assert!(c.basic_username.ends_with("@example.com") && c.basic_username.len() == 17);
        assert_eq!(c.basic_password.len(), 8);
        assert_eq!(c.session_password.len(), 10);
        assert_eq!(c.api_key.len(), 36);
        for uuid in [&c.api_key, &c.bearer_token] {
            assert_eq!(uuid.matches('-').count(), 4);
            assert_eq!(&uuid[14..15], "4", "version 4");
            assert!("89ab".contains(&uuid[19..20]), "RFC 4122 variant: {uuid}");
        }
    }

    #[test]
    fn truthiness_is_pythons() {
        use serde_json::json;
        for falsy in [json!(null), json!(""), json!(0), json!(false), json!([]), json!({})] {
            assert!(!truthy(Some(&falsy)), "{falsy}");
        }
        for yes in [json!("a"), json!(1), json!(true), json!([0])] {
            assert!(truthy(Some(&yes)), "{yes}");
        }
        assert!(!truthy(None));
    }
}
