//! Storage: the durable log behind the relay.

pub mod sled;

pub use self::sled::retention::{Limits, Pass};
pub use self::sled::{
    Appended, CursorWrite, DeadLetter, Dedup, EventLog, LogError, LogStats, NewEvent,
};
