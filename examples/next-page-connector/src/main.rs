//! A connector written as an inlet user would write one, in their own crate: it syncs the
//! `user` table of an API that paginates with `next_page_url` links (such as the playground's
//! `/pagination/next_page_url`), a pattern none of the six built-in strategies covers.
//!
//! ```text
//! cargo run -p next-page-connector -- sync --config configuration.json
//! ```
//!
//! with `configuration.json` = `{"base_url": "http://127.0.0.1:5001/pagination/next_page_url"}`.
//! The whole `inlet` command line comes with the one call in `main`.

use inlet_sdk::{ColumnType, Configuration, Connector, Error, Operations, Record, State, Table};
use serde::{Deserialize, Serialize};

/// The settings this connector reads from `configuration.json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    base_url: String,
    #[serde(default, with = "inlet_sdk::lenient::option")]
    per_page: Option<u32>,
}

/// What a sync leaves for the next one: every user updated before `synced_before` is synced.
#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    synced_before: Option<String>,
}

/// One page of the API.
#[derive(Deserialize)]
struct Page {
    data: Vec<Record>,
    next_page_url: Option<String>,
}

struct NextPage;

impl Connector for NextPage {
    fn name(&self, _: &Configuration) -> String {
        "next-page-connector".into()
    }

    fn schema(&self, configuration: &Configuration) -> Result<Vec<Table>, Error> {
        configuration.parse::<Settings>()?;
        Ok(vec![
            Table::new("user")
                .primary_key(["id"])
                .column("id", ColumnType::String)
                .column("createdAt", ColumnType::UtcDateTime)
                .column("updatedAt", ColumnType::UtcDateTime)
                .version_column("updatedAt"),
        ])
    }

    async fn update(&self, configuration: &Configuration, state: &State, ops: &mut Operations) -> Result<(), Error> {
        let settings: Settings = configuration.parse()?;
        let cursor: Cursor = state.parse()?;
        let client = reqwest::Client::new();
        let table = self.schema(configuration)?.remove(0);
        let mut url = format!(
            "{}?order_by=updatedAt&order_type=asc&per_page={}",
            settings.base_url,
            settings.per_page.unwrap_or(50)
        );
        if let Some(since) = &cursor.synced_before {
            url.push_str(&format!("&updated_since={since}"));
        }
        let mut newest: Option<String> = cursor.synced_before;
        loop {
            let response =
                client.get(&url).send().await.map_err(|e| Error::source(format!("GET {url} failed")).with_source(e))?;
            let status = response.status();
            let body = response
                .text()
                .await
                .map_err(|e| Error::source(format!("GET {url}: the body was cut short")).with_source(e))?;
            if !status.is_success() {
                return Err(Error::source(format!("GET {url} answered {status}: {body}")));
            }
            let page: Page =
                serde_json::from_str(&body).map_err(|e| Error::source(format!("GET {url}: unexpected body ({e})")))?;
            for record in page.data {
                table.validate(&record).map_err(Error::source)?;
                if let Some(updated) = record.get("updatedAt").and_then(|v| v.as_str()) {
                    newest = newest.max(Some(updated.to_owned()));
                }
                ops.upsert("user", record).await?;
            }
            // The API's pages are ordered by `updatedAt`: everything before the newest instant
            // seen is synced (rows at that instant are read again next time, harmlessly).
            ops.checkpoint(&Cursor { synced_before: newest.clone() }).await?;
            match page.next_page_url {
                Some(next) => url = next,
                None => return Ok(()),
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    inlet::run(NextPage)
}
