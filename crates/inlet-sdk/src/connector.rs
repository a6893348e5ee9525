//! The connector contract.

use std::future::Future;

use crate::configuration::Configuration;
use crate::error::Error;
use crate::operations::Operations;
use crate::schema::Table;
use crate::state::State;

/// A source of data: what a user writes to sync an API with inlet.
///
/// The contract, as in the Fivetran Connector SDK:
/// - [`schema`](Connector::schema) declares the tables, their primary keys and the columns
///   whose types matter; it must not do I/O.
/// - [`update`](Connector::update) reads the source from `state` onwards and emits
///   operations. Everything emitted before a checkpoint is committed with that checkpoint's
///   state, atomically; what follows the last checkpoint may be emitted again by the next
///   sync, so operations must be idempotent (upserts are).
/// - A state must never claim more than was emitted before it.
/// - `update` may be stopped at any await point (Ctrl-C, a failed write); the operations
///   then return [`crate::ErrorKind::Stopped`], to be passed on with `?`.
pub trait Connector: Send + Sync + 'static {
    /// A short name for what wrote a saved state, shown by `inlet state show`.
    fn name(&self, configuration: &Configuration) -> String {
        let _ = configuration;
        "connector".to_owned()
    }

    /// The tables this connector delivers with this configuration.
    fn schema(&self, configuration: &Configuration) -> Result<Vec<Table>, Error>;

    /// One sync: read what changed since `state` and emit it.
    fn update(
        &self,
        configuration: &Configuration,
        state: &State,
        operations: &mut Operations,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Checks that `state` can be resumed from with this configuration, without any I/O; used
    /// before a state is set by hand (`inlet state set`). The default accepts any state.
    fn check_state(&self, configuration: &Configuration, state: &State) -> Result<(), Error> {
        let _ = (configuration, state);
        Ok(())
    }

    /// Checks the configuration and that the source answers, for `inlet check`; returns
    /// what was verified. The default checks the schema only.
    fn check(&self, configuration: &Configuration) -> impl Future<Output = Result<String, Error>> + Send {
        let result =
            self.schema(configuration).map(|tables| format!("configuration valid; {} table(s) declared", tables.len()));
        async move { result }
    }
}
