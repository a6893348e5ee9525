//! The state a connector checkpoints: a JSON object whose meaning is the connector's own.
//!
//! The engine saves it in the same transaction as the data it proves, and hands it back at
//! the next sync. The six built-in strategies keep the seeds' keys and JSON types, so a
//! state saved by the Python examples can be used as it is.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// A saved state: a JSON object, empty on the first sync.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct State(serde_json::Map<String, serde_json::Value>);

impl State {
    /// The empty state of a first sync.
    pub fn new() -> Self {
        State::default()
    }

    /// A state from JSON, which must be an object.
    pub fn from_json(value: serde_json::Value) -> Result<State, Error> {
        match value {
            serde_json::Value::Object(map) => Ok(State(map)),
            other => Err(Error::state(format!("a state must be a JSON object, not `{other}`"))),
        }
    }

    /// The state a connector checkpoints, from any serializable value that is an object.
    pub fn from_serializable<T: Serialize + ?Sized>(value: &T) -> Result<State, Error> {
        let json = serde_json::to_value(value)
            .map_err(|e| Error::state("the checkpointed state cannot be written as JSON").with_source(e))?;
        State::from_json(json)
    }

    /// Reads the state into `T`; an error names the key at fault.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_path_to_error::deserialize(serde_json::Value::Object(self.0.clone())).map_err(|e| {
            let path = e.path().to_string();
            Error::state(format!("saved state key `{path}`: {}", e.into_inner()))
        })
    }

    /// Whether this is a first sync's state.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys present.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The state as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Serialize, Debug, PartialEq)]
    struct Cursor {
        last_updated_at: String,
    }

    #[test]
    fn round_trips_and_names_bad_keys() {
        let state = State::from_serializable(&Cursor { last_updated_at: "2026-01-01T00:00:00Z".into() }).unwrap();
        assert_eq!(state.to_json(), serde_json::json!({"last_updated_at": "2026-01-01T00:00:00Z"}));
        assert_eq!(state.parse::<Cursor>().unwrap().last_updated_at, "2026-01-01T00:00:00Z");
        let bad = State::from_json(serde_json::json!({"last_updated_at": 5})).unwrap();
        let e = bad.parse::<Cursor>().unwrap_err();
        assert!(e.to_string().starts_with("saved state key `last_updated_at`: invalid type: integer `5`"), "{e}");
        assert!(State::from_json(serde_json::json!([1])).is_err());
    }
}
