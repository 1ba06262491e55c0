//! The one error type every storage backend answers with.

/// Why storage could not do what was asked. Messages never hold a secret: they name
/// channels, offsets and the backend's own error text, never event contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The backend failed; nothing of the request was acknowledged.
    #[error("storage failure: {0}")]
    Failed(String),
    /// The storage is shut down (or its writer is gone).
    #[error("the log is closed")]
    Closed,
    /// A stored record did not decode.
    #[error("{0}")]
    Corrupt(String),
}

impl StorageError {
    /// The backend's own text, without the "storage failure:" prefix, so that a caller
    /// wrapping it in its own sentence does not say it twice.
    pub fn detail(&self) -> String {
        match self {
            StorageError::Failed(m) | StorageError::Corrupt(m) => m.clone(),
            StorageError::Closed => "the log is closed".to_string(),
        }
    }
}
