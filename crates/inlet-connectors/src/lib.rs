//! The six incremental sync strategies of the seed documents, as ready connectors built on
//! the public SDK (`inlet-sdk`), each fixing its seed's defects. `configuration.json` selects
//! one with `strategy`; [`Builtin`] is the connector that reads it.
//!
//! | strategy | requests | fix over the seed |
//! |---|---|---|
//! | `keyset` | `updated_since`, then `scroll_param` | tie groups cut by a page end are read whole; a group larger than a page is reported with its size |
//! | `offset` | `updated_since` + `offset`/`limit` | anchored on the last instant read, with a one-row overlap that detects rows moving mid-sync |
//! | `timestamp` | `since` | one request per sync, streamed; unchanged rows are not written again |
//! | `step_size` | `start_id`/`end_id` windows | walks through id gaps up to `max_id`; re-reads the last partly filled window |
//! | `replay` | `since` = cursor − buffer | the buffer moves the request, not the cursor; the cursor keeps the API's format |
//! | `priority_first` | keyset windows | recent data first on every run, history backwards; errors fail the sync |
//!
//! `docs/strategies.md` describes each in full: requests, state, checkpoints, end, guarantees.

mod config;
mod page;
mod source;
pub mod strategy;
mod user;

use std::sync::Arc;

use inlet_sdk::{Configuration, Connector, Error, Operations, State, Table};

pub use config::{Settings, StrategyName};
pub use page::RecordStream;
pub use source::{Auth, RetryPolicy, Source, SourceStats, install_tls_provider};
pub use user::{Row, check as check_record, user_table};

/// The built-in connector: runs the strategy that `configuration.json` names.
#[derive(Clone, Default)]
pub struct Builtin {
    stats: Arc<SourceStats>,
}

impl Builtin {
    /// A connector counting its requests into fresh statistics.
    pub fn new() -> Self {
        Builtin::default()
    }

    /// Requests, retries and bytes so far.
    pub fn stats(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }
}

/// An instant far in the future: the check's filters match nothing, so it costs one tiny page.
const FAR_FUTURE: &str = "9999-01-01T00:00:00Z";

impl Connector for Builtin {
    fn name(&self, configuration: &Configuration) -> String {
        Settings::from_configuration(configuration)
            .map_or_else(|_| "builtin".into(), |s| s.strategy.as_str().to_owned())
    }

    fn schema(&self, configuration: &Configuration) -> Result<Vec<Table>, Error> {
        Settings::from_configuration(configuration)?;
        Ok(vec![user_table()])
    }

    fn check_state(&self, configuration: &Configuration, state: &State) -> Result<(), Error> {
        strategy::build(&Settings::from_configuration(configuration)?, state).map(|_| ())
    }

    async fn update(
        &self,
        configuration: &Configuration,
        state: &State,
        operations: &mut Operations,
    ) -> Result<(), Error> {
        let settings = Settings::from_configuration(configuration)?;
        let source =
            Source::new(settings.auth.clone(), settings.retry.clone(), self.stats.clone(), settings.uses_tls())?;
        let mut strategy = strategy::build(&settings, state)?;
        strategy::drive(strategy.as_mut(), &source, &settings, &user_table(), operations).await
    }

    async fn check(&self, configuration: &Configuration) -> Result<String, Error> {
        let settings = Settings::from_configuration(configuration)?;
        let source =
            Source::new(settings.auth.clone(), settings.retry.clone(), self.stats.clone(), settings.uses_tls())?;
        let mut url = settings.base_url.clone();
        let params: Vec<(&str, String)> = match settings.strategy {
            StrategyName::Keyset | StrategyName::PriorityFirst => vec![("updated_since", FAR_FUTURE.into())],
            StrategyName::Offset => vec![
                ("order_by", "updatedAt".into()),
                ("order_type", "asc".into()),
                ("updated_since", FAR_FUTURE.into()),
                ("limit", settings.page_size.to_string()),
                ("offset", "0".into()),
            ],
            StrategyName::Timestamp | StrategyName::Replay => vec![("since", FAR_FUTURE.into())],
            StrategyName::StepSize => {
                vec![("start_id", settings.initial_id.to_string()), ("end_id", settings.initial_id.to_string())]
            }
        };
        url.query_pairs_mut().extend_pairs(params);
        let shape = match settings.strategy {
            StrategyName::Keyset | StrategyName::PriorityFirst => "`data` and `scroll_param`",
            StrategyName::Offset => "`data` and `total`",
            _ => "`data`",
        };
        source
            .get(&url, |body| {
                let value: serde_json::Value = page::parse(body)?;
                let has = |key: &str| value.get(key).is_some();
                let ok = has("data")
                    && match settings.strategy {
                        StrategyName::Keyset | StrategyName::PriorityFirst => has("scroll_param"),
                        StrategyName::Offset => has("total"),
                        _ => true,
                    };
                if ok { Ok(()) } else { Err(format!("the answer lacks {shape}")) }
            })
            .await
            .map_err(|e| Error::source(format!("{e} (is `base_url` the {} endpoint?)", settings.strategy.as_str())))?;
        Ok(format!(
            "configuration valid; {} answered with {shape}, as the {} strategy expects",
            settings.base_url,
            settings.strategy.as_str()
        ))
    }
}
