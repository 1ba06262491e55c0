//! How an agent command ends badly, sorted by what a person should do about it: fix
//! the command or its files (`Usage`), or look at the relay and the network
//! (`Runtime`). The command line maps the two to exit codes 2 and 1.

use super::supervisor::RunError;

/// Why `agent`, `replay` or `tail` ended with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// A usage or configuration problem that no retry fixes: a bad flag, URL, token or
    /// file, or a relay that refused the token or the channel.
    #[error("{0}")]
    Usage(String),
    /// The work could not be done at run time: the relay was unreachable, or some
    /// events failed.
    #[error("{0}")]
    Runtime(String),
}

impl AgentError {
    /// A usage error with `e`'s message and its sources, outermost first.
    pub fn usage(e: impl Into<Box<dyn std::error::Error>>) -> AgentError {
        AgentError::Usage(chain(e.into().as_ref()))
    }
}

impl From<RunError> for AgentError {
    fn from(e: RunError) -> AgentError {
        match e {
            RunError::Fatal(m) => AgentError::Usage(m),
            RunError::Unreachable(m) => AgentError::Runtime(m),
        }
    }
}

/// `outer: inner: ...`, as `anyhow` prints a chain with `{:#}`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_kept_in_the_message() {
        let io = std::io::Error::other("disk on fire");
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read agent.toml")]
        struct Outer(#[source] std::io::Error);
        assert_eq!(
            AgentError::usage(Outer(io)),
            AgentError::Usage("cannot read agent.toml: disk on fire".into())
        );
        assert_eq!(
            AgentError::usage("--from never"),
            AgentError::Usage("--from never".into())
        );
    }
}
