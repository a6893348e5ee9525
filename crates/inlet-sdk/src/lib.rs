//! The inlet connector SDK: write a connector in Rust with the programming model of the
//! Fivetran Connector SDK, and get the whole `inlet` command line for it.
//!
//! A connector declares its tables ([`Connector::schema`]) and, given the saved state,
//! emits operations ([`Connector::update`]): [`upsert`](Operations::upsert),
//! [`update`](Operations::update), [`delete`](Operations::delete),
//! [`truncate`](Operations::truncate) and [`checkpoint`](Operations::checkpoint). The engine
//! commits the data of each checkpoint together with its state, in one transaction.
//!
//! ```
//! use inlet_sdk::{ColumnType, Configuration, Connector, Error, Operations, Record, State, Table};
//!
//! struct Hello;
//!
//! impl Connector for Hello {
//!     fn schema(&self, _: &Configuration) -> Result<Vec<Table>, Error> {
//!         Ok(vec![Table::new("greeting").primary_key(["id"]).column("id", ColumnType::Long)])
//!     }
//!
//!     async fn update(&self, _: &Configuration, state: &State, ops: &mut Operations) -> Result<(), Error> {
//!         #[derive(serde::Deserialize, serde::Serialize, Default)]
//!         struct Cursor { next: i64 }
//!         let mut cursor: Cursor = if state.is_empty() { Cursor::default() } else { state.parse()? };
//!         ops.upsert("greeting", Record::new().with("id", cursor.next).with("text", "hello")).await?;
//!         cursor.next += 1;
//!         ops.checkpoint(&cursor).await
//!     }
//! }
//! ```

mod configuration;
mod connector;
mod error;
mod operations;
mod schema;
mod state;
mod value;

pub use configuration::{Configuration, Secret, is_secret_key, lenient};
pub use connector::Connector;
pub use error::{Error, ErrorKind};
pub use operations::{Batch, Batches, Change, OperationCounts, Operations, TableName};
pub use schema::{Column, ColumnType, Conformer, ConversionError, MAX_DECIMAL_PRECISION, Table};
pub use state::State;
pub use value::{ColumnName, Layout, Record, RecordIntoIter, Value, intern};

pub use rust_decimal::Decimal;
