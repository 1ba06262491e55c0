//! Who the members of consumer groups are, for people: each member's peer address and
//! since when it is subscribed. The hub keeps the membership itself; this leaf only
//! labels member ids, so the console can show "active, 10.0.0.7:51234, since 12:03".

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

/// One connected agent subscription, as the console and `GET /v1/overview` show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AgentView {
    /// The consumer group.
    pub group: String,
    /// `active` (receiving events) or `standby` (waiting to take over).
    pub state: &'static str,
    /// The agent's TCP peer address (empty when unknown).
    pub peer: String,
    /// When it subscribed, unix ms (0 when unknown).
    pub since_ms: u64,
}

/// Labels (peer, subscribed-at) of live members, by member id.
#[derive(Debug, Default)]
pub struct Presence {
    members: Mutex<HashMap<u64, (String, u64)>>,
}

impl Presence {
    /// Labels member `id`.
    pub fn insert(&self, id: u64, peer: &str, since_ms: u64) {
        self.lock().insert(id, (peer.to_string(), since_ms));
    }

    /// Forgets member `id` (it left its group).
    pub fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// The view of member `id` of `group` in `state`.
    pub fn view(&self, id: u64, group: &str, state: &'static str) -> AgentView {
        let (peer, since_ms) = self.lock().get(&id).cloned().unwrap_or_default();
        AgentView {
            group: group.to_string(),
            state,
            peer,
            since_ms,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (String, u64)>> {
        // Inserts and removes cannot panic halfway; a poisoned map is still consistent.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_and_go() {
        let p = Presence::default();
        p.insert(3, "10.0.0.1:5", 42);
        let v = p.view(3, "g", "active");
        assert_eq!(
            (v.peer.as_str(), v.since_ms, v.state),
            ("10.0.0.1:5", 42, "active")
        );
        p.remove(3);
        assert_eq!(p.view(3, "g", "standby").peer, "");
    }
}
