//! The process's log: `HOOKRELAY_LOG` (an `EnvFilter`, e.g. `debug` or
//! `hookrelay=trace`) to stderr — with a ceiling on the transport crates under it.
//!
//! Some of them log requests at their most detailed levels: tungstenite logs the whole
//! WebSocket upgrade request at trace, `Authorization: Bearer <token>` and the relay
//! URL's query included. A log level must never be a way to print a secret, so each
//! of those crates is held at the most detailed level where it logs no request line,
//! header or URL, whatever `HOOKRELAY_LOG` asks — also for a directive that names one
//! of their modules directly, which would outrank a plain added directive.
//!
//! `--log-format json` writes one JSON object per line with the event's fields at the
//! top level (`timestamp`, `level`, `target`, `message`, `channel`, `offset`, ...);
//! `--log-syslog` adds RFC 5424 frames ([`crate::cli::syslog`]) under the same filter.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::cli::syslog::{SyslogError, SyslogLayer};
use crate::common::logs::{LogArgs, LogFormat};

/// The environment variable with the log filter.
pub const LOG_ENV: &str = "HOOKRELAY_LOG";

/// Crates (and their modules) and the most detailed level each may log at. Checked
/// against their sources: tungstenite logs the upgrade request (headers, path and
/// query) at trace; reqwest logs proxy and connection targets at debug; hyper,
/// hyper-util, h2 and rustls log connection and pool events at debug and frame or
/// handshake details at trace, which are held back too, as a margin.
const LEVEL_CEILINGS: &[(&str, LevelFilter)] = &[
    ("tungstenite", LevelFilter::DEBUG),
    ("tokio_tungstenite", LevelFilter::DEBUG),
    ("hyper", LevelFilter::DEBUG),
    ("hyper_util", LevelFilter::DEBUG),
    ("hyper_rustls", LevelFilter::DEBUG),
    ("h2", LevelFilter::DEBUG),
    ("rustls", LevelFilter::DEBUG),
    ("tokio_rustls", LevelFilter::DEBUG),
    ("reqwest", LevelFilter::INFO),
];

/// The most detailed level `target` may log at, if it is held back.
fn ceiling(target: &str) -> Option<LevelFilter> {
    LEVEL_CEILINGS.iter().find_map(|(krate, level)| {
        let inside = target
            .strip_prefix(krate)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
        inside.then_some(*level)
    })
}

/// Whether an event of `target` at `level` may be logged at all.
fn allowed(target: &str, level: &tracing::Level) -> bool {
    ceiling(target).is_none_or(|max| *level <= max)
}

/// The filter every output shares: `HOOKRELAY_LOG` (or `default`) under the ceilings.
fn filter(default: &str) -> impl tracing_subscriber::layer::Filter<Registry> {
    let env = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default));
    // The hint keeps the combined filter's maximum level that of `HOOKRELAY_LOG`: without
    // it, `log` records of every level (sled logs at trace) would be turned into events
    // and only then thrown away, on every request.
    let ceilings = filter_fn(|meta| allowed(meta.target(), meta.level()))
        .with_max_level_hint(LevelFilter::TRACE);
    env.and(ceilings)
}

/// Logs to stderr with `HOOKRELAY_LOG`, or `default` when it is unset or invalid, in
/// `opts.log_format`, and to syslog too with `--log-syslog`. Also applies
/// `--log-bodies`. Fails only on a syslog target that cannot be used.
pub fn init(default: &str, opts: &LogArgs) -> Result<(), SyslogError> {
    crate::common::logs::set_log_bodies(opts.log_bodies);
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::with_capacity(2);
    if let Some(target) = &opts.log_syslog {
        layers.push(
            SyslogLayer::connect(target)?
                .with_filter(filter(default))
                .boxed(),
        );
    }
    let stderr = match opts.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(filter(default))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(filter(default))
            .boxed(),
    };
    layers.push(stderr);
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn transport_crates_are_held_below_their_request_logs() {
        assert!(!allowed("tungstenite::handshake::client", &Level::TRACE));
        assert!(allowed("tungstenite::handshake::client", &Level::DEBUG));
        assert!(!allowed("tungstenite", &Level::TRACE));
        assert!(!allowed("tokio_tungstenite::compat", &Level::TRACE));
        assert!(!allowed("reqwest::connect", &Level::DEBUG));
        assert!(allowed("reqwest::connect", &Level::INFO));
        assert!(!allowed("hyper_util::client::legacy::pool", &Level::TRACE));
        assert!(allowed("h2::codec", &Level::WARN));
    }

    #[test]
    fn other_targets_are_left_to_the_filter() {
        for target in [
            "hookrelay::agent::session",
            "tungstenite_extra",
            "hyperx",
            "h2o",
        ] {
            assert!(allowed(target, &Level::TRACE), "{target}");
        }
    }
}
