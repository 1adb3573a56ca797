//! Errors a component returns, and config errors that carry the field path.

use std::fmt;

/// One problem in a component's config. `path` is the field path inside the HCL `use` body
/// (`template.path`, `command[1]`; empty for the body itself) so the runner can point at
/// `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted field path, with `[i]` for list elements.
    pub path: String,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl ConfigError {
    /// A config error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every config error found in one component's config (validation collects them all).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// One error.
    pub fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![ConfigError::new(path, message)])
    }

    /// Adds an error.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, message));
    }

    /// `Ok(())` when empty, so validation code can collect and then return.
    pub fn into_result(self) -> Result<(), ConfigErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// What a component function, a mapper, or the host returns on failure.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The operation failed; the message is shown to the user as is.
    #[error("{0}")]
    Failed(String),
    /// An IO operation failed; `context` says what was being done (and names the path).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The component's config is invalid.
    #[error("invalid config: {0}")]
    Config(#[from] ConfigErrors),
    /// The call got no input of the type the function needs.
    #[error("{0}")]
    Input(String),
    /// The component does not implement the function.
    #[error("{component} does not support `{function}`")]
    Unsupported {
        /// `<kind> "<name>"`.
        component: String,
        /// The function name.
        function: String,
    },
    /// The cancellation token fired.
    #[error("cancelled")]
    Cancelled,
    /// An external plugin process failed (exited, crashed, or broke the protocol).
    #[error("{0}")]
    Plugin(String),
}

impl PluginError {
    /// A failure with a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// Wraps an IO error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
