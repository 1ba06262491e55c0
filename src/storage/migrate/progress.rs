//! What a migration reports while it runs, for the command line to print.

use std::time::Duration;

/// One step of a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A channel was checked: what the source holds and where copying starts.
    Planned {
        /// The channel.
        channel: String,
        /// The source's first retained offset.
        earliest: u64,
        /// The source's head (last offset ever assigned).
        head: u64,
        /// The first offset still to copy (`head + 1`: nothing to copy).
        from: u64,
    },
    /// Events copied so far in a channel (of those this run copies).
    Copied {
        /// The channel.
        channel: String,
        /// Copied so far.
        done: u64,
        /// To copy in all.
        total: u64,
    },
    /// A channel is done.
    Finished(ChannelSummary),
}

/// What was copied for one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelSummary {
    /// The channel.
    pub channel: String,
    /// Events published.
    pub events: u64,
    /// How long publishing them took.
    pub elapsed: Duration,
    /// Cursors written.
    pub cursors: usize,
    /// Dead letters written.
    pub dead_letters: usize,
    /// Redrive marks written.
    pub redrives: usize,
    /// Delivery-id claims written.
    pub claims: usize,
}

impl ChannelSummary {
    /// Whether this run wrote nothing for the channel (it was already migrated).
    pub fn nothing_written(&self) -> bool {
        self.events == 0
            && self.cursors == 0
            && self.dead_letters == 0
            && self.redrives == 0
            && self.claims == 0
    }
}
