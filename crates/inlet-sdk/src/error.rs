//! The connector error: what went wrong, in words a user can act on, and which kind of
//! failure it is, because the kind decides the exit code and whether a retry can help.

use std::fmt;

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The configuration is wrong: fix it and run again (exit code 2).
    Configuration,
    /// The saved state cannot be used with this configuration (exit code 2).
    State,
    /// The source failed, or answered something unusable (exit code 1).
    Source,
    /// The engine stopped the connector: Ctrl-C, or a failed write. Not the connector's fault.
    Stopped,
}

/// A connector failure.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error of `kind` described by `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), source: None }
    }

    /// A configuration mistake; the message should name the key and the fix.
    pub fn configuration(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Configuration, message)
    }

    /// A saved state that cannot be used.
    pub fn state(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::State, message)
    }

    /// A failure of the source.
    pub fn source(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Source, message)
    }

    /// The engine asked the connector to stop.
    pub fn stopped() -> Self {
        Error::new(ErrorKind::Stopped, "the sync was stopped")
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without its causes.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}
