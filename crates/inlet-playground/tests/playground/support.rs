//! Starting playgrounds and reading their answers.

use inlet_playground::{PlaygroundConfig, RunningPlayground, start};
use reqwest::header::HeaderMap;
use serde_json::Value;

/// 2026-11-20T00:00:00Z: tests fix `now` so that every body is reproducible.
pub const NOW: i64 = 1_795_132_800;

pub fn config() -> PlaygroundConfig {
    PlaygroundConfig { now: Some(NOW), seed: 7, ..Default::default() }
}

pub async fn playground(config: PlaygroundConfig) -> RunningPlayground {
    start(config, "127.0.0.1:0".parse().unwrap()).await.expect("the playground starts")
}

/// An answer: status, headers, raw body.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The records under `data`.
    pub fn data(&self) -> Vec<Value> {
        self.json()["data"].as_array().expect("a data list").clone()
    }

    /// `{"error": message}` as Flask's `jsonify` writes it, with `status`.
    pub fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.body, format!("{{\n  \"error\": \"{message}\"\n}}\n"));
    }
}

/// An HTTP client (the workspace builds reqwest with rustls and no default crypto provider).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub async fn get(p: &RunningPlayground, path_and_query: &str) -> Answer {
    send(client().get(format!("{}{path_and_query}", p.url()))).await
}

pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("a complete body");
    Answer { status, headers, body }
}

pub fn ids(records: &[Value]) -> Vec<String> {
    records.iter().map(|r| r["id"].as_str().expect("string id").to_owned()).collect()
}

pub fn field<'a>(records: &'a [Value], key: &str) -> Vec<&'a str> {
    records.iter().map(|r| r[key].as_str().expect("string field")).collect()
}
