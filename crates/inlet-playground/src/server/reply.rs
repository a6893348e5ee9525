//! Responses in the reference's formats: JSON data, `jsonify` errors, and Werkzeug's HTML
//! error pages for what Flask answers itself (unknown paths, wrong methods, `abort`).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::render;

const JSON: &str = "application/json";

/// `200` with a JSON body already rendered.
pub(crate) fn json(body: Vec<u8>) -> Response {
    with_type(StatusCode::OK, JSON, Body::from(body))
}

/// `200` with a JSON body produced as a stream, for responses of unbounded size.
pub(crate) fn json_stream(body: Body) -> Response {
    with_type(StatusCode::OK, JSON, body)
}

/// `jsonify(value)` with `status`.
pub(crate) fn jsonify(status: u16, value: &serde_json::Value) -> Response {
    with_type(status_code(status), JSON, Body::from(render::jsonify(value)))
}

/// `jsonify({"error": message})` with `status`.
pub(crate) fn error(status: u16, message: &str) -> Response {
    jsonify(status, &serde_json::json!({ "error": message }))
}

/// Werkzeug's HTML error page, as produced by `abort(status, description=message)`.
pub(crate) fn html(status: u16, message: &str) -> Response {
    let code = status_code(status);
    let title = code.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<!doctype html>\n<html lang=en>\n<title>{status} {title}</title>\n<h1>{title}</h1>\n<p>{message}</p>\n"
    );
    with_type(code, "text/html; charset=utf-8", Body::from(body))
}

pub(crate) fn not_found() -> Response {
    html(
        404,
        "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.",
    )
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Response {
    let mut response = html(405, "The method is not allowed for the requested URL.");
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
}

/// A request refused with the reference's error: kept small (status and message) until it is
/// rendered, so that handlers can return it through `?`.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// `jsonify({"error": message})`.
    Json(u16, String),
    /// Werkzeug's HTML page, as `abort(status, description=message)`.
    Html(u16, String),
}

impl Refusal {
    pub(crate) fn json(status: u16, message: impl Into<String>) -> Self {
        Refusal::Json(status, message.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Json(status, message) => error(status, &message),
            Refusal::Html(status, message) => html(status, &message),
        }
    }
}
