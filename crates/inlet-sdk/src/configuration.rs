//! `configuration.json`: a JSON object of settings.
//!
//! In the Fivetran ecosystem every value is a string (`"page_size": "100"`); inlet accepts
//! strings and plain JSON numbers and booleans alike (see [`lenient`]). Connectors read their
//! settings into a struct with [`Configuration::parse`], whose errors name the key.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// The settings of one connector.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Configuration {
    values: serde_json::Map<String, serde_json::Value>,
}

impl Configuration {
    /// Reads a JSON object from `path`.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::configuration(format!("cannot read the configuration file {}", path.display())).with_source(e)
        })?;
        Self::from_json(&text).map_err(|e| Error::configuration(format!("{}: {}", path.display(), e.message())))
    }

    /// Parses a JSON object.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(values)) => Ok(Configuration { values }),
            Ok(other) => Err(Error::configuration(format!(
                "the configuration must be a JSON object of settings, not {}",
                json_kind(&other)
            ))),
            Err(e) => Err(Error::configuration(format!("the configuration is not valid JSON: {e}"))),
        }
    }

    /// A configuration of these settings.
    pub fn from_map(values: serde_json::Map<String, serde_json::Value>) -> Self {
        Configuration { values }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.values.get(key)
    }

    /// Every setting.
    pub fn values(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.values
    }

    /// Reads the settings into `T`; an error names the key and says what was expected. Use
    /// `#[serde(deny_unknown_fields)]` so that a misspelt key is an error too.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let value = serde_json::Value::Object(self.values.clone());
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let message = if path == "." { inner } else { format!("configuration key `{path}`: {inner}") };
            Error::configuration(message)
        })
    }

    /// The settings with every secret replaced by `"<redacted>"`, safe to print or log.
    pub fn redacted(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.values
                .iter()
                .map(|(k, v)| (k.clone(), if is_secret_key(k) { serde_json::json!("<redacted>") } else { v.clone() }))
                .collect(),
        )
    }
}

/// Whether a setting of this name holds a secret (`password`, `token`, `api_key`, `secret`…).
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "token", "secret", "api_key", "apikey", "credential"].iter().any(|s| key.contains(s))
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A secret setting: readable by the connector, never printed (`Debug` and `Display` show
/// `<redacted>`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Serde helpers for settings that may be given as strings, as Fivetran requires:
/// `#[serde(with = "inlet_sdk::lenient")]` on a number or boolean field, and
/// `#[serde(default, with = "inlet_sdk::lenient::option")]` on an optional one.
pub mod lenient {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StringOr<T> {
        Text(String),
        Plain(T),
    }

    /// Reads a `T` given as itself or as a string.
    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + FromStr,
        T::Err: Display,
    {
        match StringOr::<T>::deserialize(deserializer) {
            Ok(StringOr::Plain(v)) => Ok(v),
            Ok(StringOr::Text(s)) => {
                s.trim().parse().map_err(|e| serde::de::Error::custom(format!("{s:?} is not a valid value ({e})")))
            }
            Err(_) => Err(serde::de::Error::custom(format!(
                "expected a {}, as a JSON value or a string",
                short_type_name::<T>()
            ))),
        }
    }

    /// [`deserialize`] for optional settings; an empty string counts as absent.
    pub mod option {
        use super::*;

        /// Reads an optional `T` given as itself or as a string.
        pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
        where
            D: Deserializer<'de>,
            T: Deserialize<'de> + FromStr,
            T::Err: Display,
        {
            match Option::<StringOr<T>>::deserialize(deserializer) {
                Ok(None) => Ok(None),
                Ok(Some(StringOr::Plain(v))) => Ok(Some(v)),
                Ok(Some(StringOr::Text(s))) if s.trim().is_empty() => Ok(None),
                Ok(Some(StringOr::Text(s))) => s
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a valid value ({e})"))),
                Err(_) => Err(serde::de::Error::custom(format!(
                    "expected a {}, as a JSON value or a string",
                    short_type_name::<T>()
                ))),
            }
        }
    }

    fn short_type_name<T>() -> &'static str {
        let name = std::any::type_name::<T>();
        match name.rsplit("::").next().unwrap_or(name) {
            "u8" | "u16" | "u32" | "u64" | "usize" => "non-negative whole number",
            "i8" | "i16" | "i32" | "i64" | "isize" => "whole number",
            "f32" | "f64" => "number",
            "bool" => "boolean (true or false)",
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        base_url: String,
        #[serde(default, with = "lenient::option")]
        page_size: Option<u32>,
        #[serde(default, with = "lenient::option")]
        verbose: Option<bool>,
        #[serde(default)]
        api_key: Option<Secret>,
    }

    fn parse(json: &str) -> Result<Settings, Error> {
        Configuration::from_json(json).and_then(|c| c.parse())
    }

    #[test]
    fn strings_and_numbers_are_both_accepted() {
        let a = parse(r#"{"base_url": "http://x", "page_size": "100", "verbose": "true"}"#).unwrap();
        let b = parse(r#"{"base_url": "http://x", "page_size": 100, "verbose": true}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.page_size, Some(100));
        assert_eq!(parse(r#"{"base_url": "http://x", "page_size": ""}"#).unwrap().page_size, None);
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse(r#"{"base_url": "http://x", "page_size": "ten"}"#).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Configuration);
        assert!(e.to_string().starts_with("configuration key `page_size`: \"ten\" is not a valid value"), "{e}");
        let e = parse(r#"{"base_url": "http://x", "page_size": -1}"#).unwrap_err();
        assert!(e.to_string().contains("`page_size`: expected a non-negative whole number"), "{e}");
        let e = parse(r#"{"base_url": "http://x", "pagesize": 5}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `pagesize`"), "{e}");
        let e = parse(r#"{"page_size": 5}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `base_url`"), "{e}");
        assert!(Configuration::from_json("[1]").unwrap_err().to_string().contains("not an array"));
        assert!(Configuration::from_json("{").unwrap_err().to_string().contains("not valid JSON"));
    }

    #[test]
    fn secrets_never_print() {
        let s = parse(r#"{"base_url": "http://x", "api_key": "hunter2"}"#).unwrap();
        let key = s.api_key.unwrap();
        assert_eq!(key.expose(), "hunter2");
        assert_eq!(format!("{key} {key:?}"), "<redacted> <redacted>");
        let c = Configuration::from_json(r#"{"api_key": "k", "password": "p", "page_size": "5"}"#).unwrap();
        assert_eq!(
            c.redacted(),
            serde_json::json!({"api_key": "<redacted>", "password": "<redacted>", "page_size": "5"})
        );
    }
}
