//! Exit codes, and the one error type of the command line: each error carries the code
//! it exits with. 0 success, 1 runtime failure, 2 usage or configuration error.

use crate::agent::AgentError;

/// Exit code for a runtime failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// The process's exit code.
    pub code: u8,
    /// What went wrong, printed as `error: ...` with its causes.
    pub error: anyhow::Error,
}

impl Failure {
    /// A usage or configuration error (exit 2).
    pub fn usage(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            code: EXIT_FAILURE,
            error: e.into(),
        }
    }
}

impl Failure {
    /// The exit code an agent command's error maps to.
    pub fn from_agent(e: AgentError) -> Failure {
        match e {
            AgentError::Usage(_) => Failure::usage(e),
            AgentError::Runtime(_) => Failure::from(e),
        }
    }
}
