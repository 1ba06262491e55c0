//! Consumer groups across connections and nodes' worth of agents: who is the active
//! member of a (channel, group), who waits as hot standby, where a member starts, and
//! how an operator's reset or redrive reaches a running subscription.
//!
//! The stream ([`crate::relay::stream`]) joins groups through [`Hub`]; the admin API
//! ([`crate::relay::admin`]) resets and redrives through it. Neither imports the other.

mod hub;
pub mod presence;
pub mod start;

pub(crate) use hub::lease::LeaseHold;
pub(crate) use hub::{Advance, Joined, Member, OpenConnection};
pub use hub::{GroupMembers, Hub};
