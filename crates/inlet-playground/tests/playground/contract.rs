//! Every endpoint and error case of the reference API (`fivetran-api-playground` 1.1.9),
//! with the reference's statuses, bodies and keys.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use inlet_playground::{PlaygroundConfig, RateLimit};
use serde_json::Value;

use crate::support::*;

const RECORD_KEYS: [&str; 8] = ["id", "name", "email", "address", "company", "job", "createdAt", "updatedAt"];

fn keys(object: &Value) -> Vec<&str> {
    object.as_object().expect("an object").keys().map(String::as_str).collect()
}

/// Keys in the order they appear in the raw body (serde_json's map would sort them).
fn raw_key_order(body: &str, candidates: &[&str]) -> Vec<String> {
    let mut found: Vec<(usize, String)> =
        candidates.iter().filter_map(|k| body.rfind(&format!("\"{k}\": ")).map(|at| (at, k.to_string()))).collect();
    found.sort();
    found.into_iter().map(|(_, k)| k).collect()
}

#[tokio::test]
async fn offset_defaults_keys_and_order() {
    let p = playground(config()).await;
    let a = get(&p, "/pagination/offset").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert!(a.body.starts_with("{\"data\": [{\"id\": \""), "json.dumps separators: {}", &a.body[..40]);
    assert_eq!(raw_key_order(&a.body, &["data", "offset", "limit", "total"]), ["data", "offset", "limit", "total"]);
    let body = a.json();
    assert_eq!(
        (body["offset"].as_i64(), body["limit"].as_i64(), body["total"].as_i64()),
        (Some(0), Some(10), Some(200))
    );
    let data = a.data();
    assert_eq!(data.len(), 10, "default limit is 10");
    let first = &a.body[a.body.find("{\"id\"").unwrap()..a.body.find('}').unwrap()];
    assert_eq!(raw_key_order(first, &RECORD_KEYS), RECORD_KEYS);
    let updated = field(&data, "updatedAt");
    assert!(updated.windows(2).all(|w| w[0] <= w[1]), "ascending updatedAt by default");
    assert!(field(&data, "address").iter().all(|a| a.contains('\n')), "addresses have two lines");
}

#[tokio::test]
async fn offset_paging_filters_and_orders() {
    let p = playground(config()).await;
    let all = get(&p, "/pagination/offset?limit=50&offset=0").await.data();
    let next = get(&p, "/pagination/offset?limit=50&offset=50").await.data();
    assert!(ids(&all).iter().all(|id| !ids(&next).contains(id)), "pages do not overlap");

    let cutoff = field(&all, "updatedAt")[20].to_owned();
    let filtered = get(&p, &format!("/pagination/offset?limit=50&updated_since={cutoff}")).await;
    assert_eq!(filtered.json()["total"].as_i64(), Some(180), "inclusive filter keeps the cutoff row");
    assert_eq!(field(&filtered.data(), "updatedAt")[0], cutoff);

    let desc = get(&p, "/pagination/offset?limit=3&order_by=createdAt&order_type=desc").await.data();
    let created = field(&desc, "createdAt");
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "descending createdAt");
    let last_page = get(&p, "/pagination/offset?limit=50&offset=190").await;
    assert_eq!(last_page.data().len(), 10);
    assert_eq!(get(&p, "/pagination/offset?offset=1000").await.data().len(), 0);
    assert_eq!(
        get(&p, "/pagination/offset?limit=abc").await.data().len(),
        10,
        "a non-integer falls back to the default, as Flask does"
    );
}

#[tokio::test]
async fn offset_errors() {
    let p = playground(config()).await;
    get(&p, "/pagination/offset?limit=51")
        .await
        .assert_error(400, "Invalid value for 'limit'. It should be between 1 and 50.");
    get(&p, "/pagination/offset?limit=0")
        .await
        .assert_error(400, "Invalid value for 'limit'. It should be between 1 and 50.");
    get(&p, "/pagination/offset?offset=-1")
        .await
        .assert_error(400, "Invalid value for 'offset'. It must be greater than or equal to 0.");
    get(&p, "/pagination/offset?order_by=name")
        .await
        .assert_error(400, "Invalid value for 'order_by'. Use 'createdAt' or 'updatedAt'");
    get(&p, "/pagination/offset?order_type=up")
        .await
        .assert_error(400, "Invalid value for 'order_type'. Use 'asc' or 'desc'");
    get(&p, "/pagination/offset?foo=1&bar=2").await.assert_error(400, "Unexpected query parameters: bar, foo");
    get(&p, "/pagination/offset?updated_since=2026-11-20T00:00:00")
        .await
        .assert_error(400, "Invalid date format for 'updated_since'. Must end with 'Z' for UTC");
    get(&p, "/pagination/offset?updated_since=2026-11-20T00:00:00%2B00:00")
        .await
        .assert_error(400, "Invalid date format for 'updated_since'. Must end with 'Z' for UTC");
    get(&p, "/pagination/offset?updated_since=2026-11-20T00:00:00.5Z")
        .await
        .assert_error(400, "Invalid date format for 'updated_since'. Use 'YYYY-MM-DDTHH:MM:SSZ'");
    get(&p, "/pagination/offset?updated_since=2026-02-30T00:00:00Z")
        .await
        .assert_error(400, "Invalid date format for 'updated_since'. Use 'YYYY-MM-DDTHH:MM:SSZ'");
    assert_eq!(
        get(&p, "/pagination/offset?updated_since=2026-1-2T3:4:5Z").await.status,
        200,
        "strptime's leniency is kept"
    );
}

#[tokio::test]
async fn page_number_and_next_page_url() {
    let p = playground(config()).await;
    let a = get(&p, "/pagination/page_number?per_page=7&page=3").await;
    assert_eq!(
        raw_key_order(&a.body, &["data", "page", "page_size", "total_pages", "total_items"]),
        ["data", "page", "page_size", "total_pages", "total_items"]
    );
    let body = a.json();
    assert_eq!(
        (body["page"].as_i64(), body["page_size"].as_i64(), body["total_pages"].as_i64(), body["total_items"].as_i64()),
        (Some(3), Some(7), Some(29), Some(200))
    );
    let offset = get(&p, "/pagination/offset?limit=7&offset=14").await.data();
    assert_eq!(ids(&a.data()), ids(&offset), "page 3 of 7 is offset 14");
    get(&p, "/pagination/page_number?page=0")
        .await
        .assert_error(400, "Invalid value for 'page'. It must be greater than or equal to 1.");
    get(&p, "/pagination/page_number?per_page=51")
        .await
        .assert_error(400, "Invalid value for 'per_page'. It should be between 1 and 50.");
    get(&p, "/pagination/page_number?order_by=x&per_page=99")
        .await
        .assert_error(400, "Invalid value for 'order_by'. Use 'createdAt' or 'updatedAt'");

    let since = field(&offset, "updatedAt")[0].to_owned();
    let n = get(&p, &format!("/pagination/next_page_url?per_page=5&page=2&updated_since={since}")).await;
    assert_eq!(
        raw_key_order(&n.body, &["data", "total_items", "page", "per_page", "next_page_url"]),
        ["data", "total_items", "page", "per_page", "next_page_url"]
    );
    let next = n.json()["next_page_url"].as_str().expect("more pages").to_owned();
    let host = p.url().trim_start_matches("http://");
    assert_eq!(
        next,
        format!(
            "http://{host}/pagination/next_page_url?page=3&per_page=5&order_by=updatedAt&order_type=asc&updated_since={since}"
        )
    );
    let followed = client().get(&next).send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(followed["page"].as_i64(), Some(3));
    let last = get(&p, "/pagination/next_page_url?per_page=50&page=4").await;
    assert_eq!(last.json()["next_page_url"], Value::Null);
    let negative = get(&p, "/pagination/next_page_url?per_page=1&page=-1").await;
    assert_eq!(
        ids(&negative.data()),
        ids(&get(&p, "/pagination/offset?limit=1&offset=198").await.data()),
        "page -1 slices [-2:-1] like Python"
    );
    get(&p, "/pagination/next_page_url?per_page=0")
        .await
        .assert_error(400, "Invalid value for 'per_page'. It should be between 1 and 50.");
}

#[tokio::test]
async fn keyset_pages_and_scroll_tokens() {
    let p = playground(config()).await;
    let first = get(&p, "/pagination/keyset").await;
    assert_eq!(raw_key_order(&first.body, &["data", "scroll_param"]), ["data", "scroll_param"]);
    let data = first.data();
    assert_eq!(data.len(), 50, "fixed page of 50");
    let token = first.json()["scroll_param"].as_str().expect("more rows").to_owned();
    let decoded = String::from_utf8(STANDARD.decode(&token).unwrap()).unwrap();
    assert_eq!(decoded, field(&data, "updatedAt")[49], "the token is the last row's updatedAt");

    let mut seen = ids(&data);
    let mut token = Some(token);
    while let Some(t) = token {
        let page = get(&p, &format!("/pagination/keyset?scroll_param={}", urlencode(&t))).await;
        assert_eq!(page.status, 200);
        seen.extend(ids(&page.data()));
        token = page.json()["scroll_param"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 200, "without ties a keyset walk reads every row once");

    let mid = field(&data, "updatedAt")[10].to_owned();
    assert_eq!(get(&p, &format!("/pagination/keyset?updated_since={mid}")).await.data()[0]["updatedAt"], mid.as_str());
    get(&p, "/pagination/keyset?per_page=5").await.assert_error(400, "Unexpected query parameters: per_page");
    get(&p, "/pagination/keyset?updated_since=x&scroll_param=y").await.assert_error(
        400,
        "You can only use 'updated_since' in first request, subsequent requests should use only 'scroll_param'",
    );
    get(&p, "/pagination/keyset?scroll_param=bm90IGEgZGF0ZQ==").await.assert_error(400, "Invalid scroll_param value");
    get(&p, "/pagination/keyset?scroll_param=YWI").await.assert_error(400, "Invalid scroll_param value");
    get(&p, "/pagination/keyset?updated_since=2026-11-20T00:00:00")
        .await
        .assert_error(400, "Invalid date format for 'updated_since'. Must end with 'Z' for UTC");
    let last_page = get(
        &p,
        &format!(
            "/pagination/keyset?updated_since={}",
            field(&get(&p, "/pagination/offset?limit=1&offset=199").await.data(), "updatedAt")[0]
        ),
    )
    .await;
    assert_eq!((last_page.data().len(), last_page.json()["scroll_param"].clone()), (1, Value::Null));
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn timestamp_returns_every_row_since_inclusive() {
    let p = playground(config()).await;
    let all = get(&p, "/incremental/timestamp").await;
    assert_eq!(keys(&all.json()), ["data"]);
    let data = all.data();
    assert_eq!(data.len(), 200);
    let since = field(&data, "updatedAt")[150].to_owned();
    let tail = get(&p, &format!("/incremental/timestamp?since={since}")).await.data();
    assert_eq!(tail.len(), 50);
    assert_eq!(tail[0]["updatedAt"], since.as_str());
    get(&p, "/incremental/timestamp?updated_since=2026-11-20T00:00:00Z")
        .await
        .assert_error(400, "Unexpected query parameters: updated_since");
    get(&p, "/incremental/timestamp?since=2026-11-20")
        .await
        .assert_error(400, "Invalid date format for 'updated_since'. Must end with 'Z' for UTC");
    get(&p, "/incremental/timestamp?since=yesterdayZ")
        .await
        .assert_error(400, "Invalid date format for 'updated_since'. Use 'YYYY-MM-DDTHH:MM:SSZ'");
}

#[tokio::test]
async fn step_windows_replace_ids_with_positions() {
    let p = playground(config()).await;
    let window = get(&p, "/incremental/step?start_id=199&end_id=205").await;
    assert_eq!(keys(&window.json()), ["data"]);
    assert_eq!(ids(&window.data()), ["199", "200"]);
    let by_offset = get(&p, "/pagination/offset?order_by=createdAt&limit=1&offset=198").await.data();
    assert_eq!(window.data()[0]["name"], by_offset[0]["name"], "positions follow creation order");
    assert_eq!(get(&p, "/incremental/step?start_id=1&end_id=1000").await.data().len(), 200);
    assert_eq!(get(&p, "/incremental/step?start_id=201&end_id=300").await.data().len(), 0);
    get(&p, "/incremental/step?start_id=1")
        .await
        .assert_error(400, "Both 'start_id' and 'end_id' parameters are required");
    get(&p, "/incremental/step?start_id=a&end_id=2")
        .await
        .assert_error(400, "Both 'start_id' and 'end_id' parameters are required");
    get(&p, "/incremental/step?start_id=0&end_id=1")
        .await
        .assert_error(400, "Invalid value for 'start_id'. It must be greater than or equal to 1.");
    get(&p, "/incremental/step?start_id=3&end_id=2")
        .await
        .assert_error(400, "Invalid value for 'end_id'. It must be greater than or equal to 'start_id'.");
    get(&p, "/incremental/step?start_id=1&end_id=2&step=1")
        .await
        .assert_error(400, "Unexpected query parameters: step");
}

fn html(status: u16, title: &str, message: &str) -> String {
    format!("<!doctype html>\n<html lang=en>\n<title>{status} {title}</title>\n<h1>{title}</h1>\n<p>{message}</p>\n")
}

#[tokio::test]
async fn header_authentication() {
    let p = playground(config()).await;
    let c = p.credentials().clone();
    let client = client();
    let url = |path: &str| format!("{}{path}", p.url());
    let basic = STANDARD.encode(format!("{}:{}", c.basic_username, c.basic_password));
    for (path, good) in [
        ("/auth/http_basic", format!("Basic {basic}")),
        ("/auth/http_bearer", format!("Bearer {}", c.bearer_token)),
        ("/auth/api_key", format!("apiKey {}", c.api_key)),
    ] {
        let ok = send(client.get(url(path)).header("Authorization", &good)).await;
        assert_eq!(ok.status, 200, "{path}");
        assert!(ok.body.starts_with("{\n  \"data\": [\n    {\n      \"address\": "), "jsonify: indented, sorted keys");
        assert!(ok.body.ends_with("]\n}\n"));
        let data = ok.data();
        assert_eq!(data.len(), 20);
        assert_eq!(keys(&data[0]), ["address", "company", "createdAt", "email", "id", "job", "name", "updatedAt"]);

        let missing = send(client.get(url(path))).await;
        assert_eq!((missing.status, missing.header("content-type")), (401, Some("text/html; charset=utf-8")));
        assert_eq!(missing.body, html(401, "Unauthorized", "Authorization header is missing"));
        for bad in [format!("{good}x"), "nospace".to_owned(), format!("Other {}", good.split_once(' ').unwrap().1)] {
            let wrong = send(client.get(url(path)).header("Authorization", bad)).await;
            assert_eq!(wrong.body, html(401, "Unauthorized", "Invalid API key or format"));
        }
    }
}

#[tokio::test]
async fn session_token_authentication() {
    let p = playground(PlaygroundConfig { manual_clock: true, ..config() }).await;
    let c = p.credentials().clone();
    let client = client();
    let login = format!("{}/auth/session_token/login", p.url());
    let data = format!("{}/auth/session_token/data", p.url());
    let ok = send(
        client.post(&login).json(&serde_json::json!({"username": c.session_username, "password": c.session_password})),
    )
    .await;
    assert_eq!(ok.status, 200);
    let body = ok.json();
    assert_eq!(keys(&body), ["expires_in", "token"]);
    assert_eq!(body["expires_in"], 3600);
    let token = body["token"].as_str().unwrap().to_owned();
    let decoded = String::from_utf8(STANDARD.decode(&token).unwrap()).unwrap();
    assert_eq!(decoded, format!("{}:{}:{}", c.session_username, c.session_password, NOW + 3600));

    let fetched = send(client.get(&data).header("Authorization", format!("Token {token}"))).await;
    assert_eq!((fetched.status, fetched.data().len()), (200, 20));
    assert_eq!(
        send(client.get(&data).header("Authorization", &token)).await.status,
        200,
        "the Token prefix is optional"
    );

    send(client.post(&login).json(&serde_json::json!({"username": "x"})))
        .await
        .assert_error(400, "Username and password are required");
    send(client.post(&login).json(&serde_json::json!({"username": "x", "password": ""})))
        .await
        .assert_error(400, "Username and password are required");
    send(client.post(&login).json(&serde_json::json!({"username": "x", "password": "y"})))
        .await
        .assert_error(401, "Invalid username or password");
    let not_json = send(client.post(&login).body("username=x")).await;
    assert_eq!((not_json.status, not_json.header("content-type")), (415, Some("text/html; charset=utf-8")));
    let bad_json = send(client.post(&login).header("content-type", "application/json").body("{bad")).await;
    assert!(bad_json.status == 400 && bad_json.body.contains("Failed to decode JSON object: "));
    assert_eq!(send(client.post(&login).json(&serde_json::json!([1]))).await.status, 500);

    send(client.get(&data)).await.assert_error(400, "Token is missing");
    send(client.get(&data).header("Authorization", "Token abc")).await.assert_error(400, "Invalid token format");
    send(client.get(&data).header("Authorization", format!("Token {}", STANDARD.encode("a:b:c"))))
        .await
        .assert_error(400, "Invalid token format");
    send(client.get(&data).header("Authorization", format!("Token {}", STANDARD.encode("a:b:9999999999"))))
        .await
        .assert_error(401, "Invalid Token");
    p.advance_clock(std::time::Duration::from_secs(3600));
    send(client.get(&data).header("Authorization", format!("Token {token}")))
        .await
        .assert_error(401, "Token has expired");
}

#[tokio::test]
async fn unknown_paths_wrong_methods_and_options() {
    let p = playground(config()).await;
    let missing = get(&p, "/users").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        html(
            404,
            "Not Found",
            "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again."
        )
    );
    let client = client();
    let wrong = send(client.post(format!("{}/incremental/step", p.url()))).await;
    assert_eq!((wrong.status, wrong.header("allow")), (405, Some("OPTIONS, HEAD, GET")));
    assert_eq!(wrong.body, html(405, "Method Not Allowed", "The method is not allowed for the requested URL."));
    let get_login = send(client.get(format!("{}/auth/session_token/login", p.url()))).await;
    assert_eq!((get_login.status, get_login.header("allow")), (405, Some("OPTIONS, POST")));
    let options = send(client.request(reqwest::Method::OPTIONS, format!("{}/pagination/keyset", p.url()))).await;
    assert_eq!((options.status, options.header("allow"), options.body.as_str()), (200, Some("OPTIONS, HEAD, GET"), ""));
    let head = send(client.head(format!("{}/pagination/offset", p.url()))).await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
}

#[tokio::test]
async fn rate_limit_answers_429_with_the_reference_headers() {
    let limited = PlaygroundConfig { rate_limit: Some(RateLimit { capacity: 3, refill_per_second: 0.5 }), ..config() };
    let p = playground(limited).await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(get(&p, "/incremental/step?start_id=1&end_id=1").await);
    }
    let remaining: Vec<_> = answers.iter().map(|a| a.header("x-ratelimit-remaining").unwrap().to_owned()).collect();
    assert_eq!(remaining, ["2", "1", "0", "0"]);
    assert!(answers.iter().all(|a| a.header("x-ratelimit-limit") == Some("3")));
    let refused = &answers[3];
    refused.assert_error(429, "Rate limit exceeded");
    assert_eq!(refused.header("retry-after"), Some("2"), "one token at 0.5/s takes 2 s");
    assert_eq!(refused.header("x-ratelimit-reset"), Some("6"), "three tokens take 6 s");
    assert_eq!(get(&p, "/nowhere").await.status, 429, "unknown paths take tokens too, as in the reference");
    assert_eq!(get(&p, "/_truth").await.status, 200, "the ground truth is not rate limited");
}

#[tokio::test]
async fn same_seed_and_now_give_byte_identical_responses() {
    let a = playground(config()).await;
    let b = playground(config()).await;
    let other = playground(PlaygroundConfig { seed: 8, ..config() }).await;
    for path in [
        "/pagination/offset?limit=50&order_by=createdAt&order_type=desc",
        "/pagination/keyset",
        "/incremental/timestamp",
        "/incremental/step?start_id=1&end_id=200",
        "/_truth",
    ] {
        let (x, y, z) = (get(&a, path).await.body, get(&b, path).await.body, get(&other, path).await.body);
        assert_eq!(x, y, "{path}");
        assert_ne!(x, z, "{path} depends on the seed");
    }
    assert_eq!(a.credentials(), b.credentials());
}

#[tokio::test]
async fn page_size_limit_can_be_raised_for_benchmarks() {
    let p = playground(PlaygroundConfig { users: 5000, page_size_limit: 1000, ..config() }).await;
    assert_eq!(get(&p, "/pagination/offset?limit=1000").await.data().len(), 1000);
    assert_eq!(get(&p, "/pagination/keyset").await.data().len(), 1000);
    get(&p, "/pagination/offset?limit=1001")
        .await
        .assert_error(400, "Invalid value for 'limit'. It should be between 1 and 1000.");
}

#[tokio::test]
async fn ten_million_users_start_instantly_and_serve_any_page() {
    let started = std::time::Instant::now();
    let p = playground(PlaygroundConfig { users: 10_000_000, ..config() }).await;
    let deep = get(&p, "/pagination/offset?limit=50&offset=9999990").await;
    assert_eq!(deep.json()["total"].as_i64(), Some(10_000_000));
    assert_eq!(deep.data().len(), 10);
    let last = get(&p, "/incremental/step?start_id=9999999&end_id=20000000").await;
    assert_eq!(ids(&last.data()), ["9999999", "10000000"]);
    let since = field(&deep.data(), "updatedAt")[5].to_owned();
    assert_eq!(get(&p, &format!("/incremental/timestamp?since={since}")).await.data().len(), 5);
    assert!(started.elapsed().as_secs() < 5, "no per-user work at start or per request");
}
