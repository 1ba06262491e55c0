//! The two configuration files: the relay's `config.toml` and the agent's `agent.toml`.
//! Both are read at start, so a panic would be a crash loop; an error must name a
//! file position inside the text.

use std::path::Path;

use crate::agent::delivery::DeliverySettings;
use crate::agent::routes::{self, RouteDefaults};
use crate::common::config::Config;

/// `config.toml` text (lossy UTF-8, as a file with stray bytes would be refused
/// before parsing anyway).
pub fn config_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = Config::parse(&text, "fuzz.toml") {
        let _ = e.to_string();
    }
}

/// `agent.toml` text, with the command line's defaults.
pub fn agent_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let defaults = RouteDefaults {
        group: "default".into(),
        from: "earliest".into(),
        max_in_flight: 16,
        max_attempts: 5,
        filters: Vec::new(),
        max_rate: None,
        delivery: DeliverySettings::default(),
    };
    // The environment is empty: `env:` references resolve to nothing, never to the
    // fuzzing machine's variables.
    let no_env = |_: &str| None;
    if let Err(e) = routes::parse(&text, "agent.toml", Path::new("."), &defaults, &no_env) {
        let _ = e.to_string();
    }
}
