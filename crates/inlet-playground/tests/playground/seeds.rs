//! The request sequences the seed connectors send (see `shared/reference/playground-api.md`),
//! answered with the shapes those connectors read.

use crate::contract::urlencode;
use crate::support::*;

/// The cursor a seed starts from when it has no state.
const EPOCH: &str = "2024-01-01T00:00:00Z";

#[tokio::test]
async fn keyset_seed_walk() {
    let p = playground(config()).await;
    let mut request = format!("/pagination/keyset?updated_since={EPOCH}");
    let (mut pages, mut rows, mut last_updated_at) = (0, 0, String::new());
    loop {
        let page = get(&p, &request).await;
        assert_eq!(page.status, 200);
        let data = page.data();
        pages += 1;
        rows += data.len();
        last_updated_at = field(&data, "updatedAt").last().map_or(last_updated_at, |s| s.to_string());
        match page.json()["scroll_param"].as_str() {
            Some(token) => request = format!("/pagination/keyset?scroll_param={}", urlencode(token)),
            None => break,
        }
    }
    assert_eq!((pages, rows), (4, 200));
    let next_sync = get(&p, &format!("/pagination/keyset?updated_since={last_updated_at}")).await.data();
    assert_eq!(next_sync.len(), 1, "the saved cursor is inclusive: the last row comes back once");
}

#[tokio::test]
async fn offset_seed_walk() {
    let p = playground(config()).await;
    let (mut offset, mut rows) = (0, 0);
    loop {
        let page = get(
            &p,
            &format!(
                "/pagination/offset?order_by=updatedAt&order_type=asc&updated_since={EPOCH}&limit=50&offset={offset}"
            ),
        )
        .await;
        let body = page.json();
        let n = page.data().len();
        rows += n;
        assert_eq!(body["offset"].as_i64(), Some(offset));
        if offset + n as i64 >= body["total"].as_i64().unwrap() {
            break;
        }
        offset += n as i64;
    }
    assert_eq!(rows, 200);
}

#[tokio::test]
async fn timestamp_and_replay_seed_requests() {
    let p = playground(config()).await;
    let first = get(&p, &format!("/incremental/timestamp?since={EPOCH}")).await.data();
    assert_eq!(first.len(), 200);
    let newest = field(&first, "updatedAt")[199].to_owned();
    let again = get(&p, &format!("/incremental/timestamp?since={newest}")).await.data();
    assert_eq!(
        ids(&again),
        ids(&first[199..]),
        "the inclusive filter returns the newest row again, as the seed's endless loop shows"
    );
    let stamp = inlet_playground::parse_timestamp(newest.trim_end_matches('Z'), false).unwrap();
    let replay =
        get(&p, &format!("/incremental/timestamp?since={}", inlet_playground::format_timestamp(stamp - 2 * 3600)))
            .await
            .data();
    assert!((2..=3).contains(&replay.len()), "two hours back holds two or three users of one an hour");
}

#[tokio::test]
async fn step_seed_walk_stops_on_the_first_empty_window() {
    let p = playground(config()).await;
    let (mut current, step, mut rows) = (1, 100, 0);
    loop {
        let data = get(&p, &format!("/incremental/step?start_id={current}&end_id={}", current + step - 1)).await.data();
        if data.is_empty() {
            break;
        }
        rows += data.len();
        current += step;
    }
    assert_eq!((rows, current), (200, 201));
}
