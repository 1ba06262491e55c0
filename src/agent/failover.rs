//! Several relay URLs for one agent (`--relay` repeated, or `relay = [...]` in
//! agent.toml): which one to dial next, and when a whole round has failed.
//!
//! Policy — sticky rotation:
//!
//! - The agent starts with the first URL.
//! - When dialling the current URL fails (refused, TLS, timeout, an error status at
//!   the upgrade) or a session on it ends by error or idle timeout, the next attempt
//!   goes to the next URL in the list, at once, wrapping around.
//! - When every URL has failed once since the last wait (a round), the supervisor
//!   waits its backoff before the next round: the backoff grows per round, not per
//!   URL, and a session that got as far as `Welcome` resets it as before.
//! - A URL that works is kept until it fails: the agent does not go back to the first
//!   URL on its own. Every switch costs a reconnect, a resubscription and possibly the
//!   redelivery of the events in flight, so moving back to a "preferred" node as soon
//!   as it answers again would make an agent flap between two nodes while one of them
//!   is unsteady; and the URLs are meant to be equivalent (nodes sharing one log), so
//!   there is nothing to gain by preferring one once the agent is connected.
//!
//! Counting the failures of a round since the last wait (rather than since the last
//! good session) keeps a pair of relays that accept connections and then drop them
//! from spinning the agent without any pause: there is one wait per round at most
//! every `len()` attempts, exactly like one wait per attempt with a single URL.

use super::dial::Endpoint;

/// The relay endpoints of a run and the one in use; never empty.
#[derive(Debug, Clone)]
pub struct Relays {
    endpoints: Vec<Endpoint>,
    current: usize,
    /// Attempts that failed since the last backoff wait.
    failed_in_round: usize,
}

impl Relays {
    /// The endpoints in order of preference; None when there are none.
    pub fn new(endpoints: Vec<Endpoint>) -> Option<Relays> {
        if endpoints.is_empty() {
            return None;
        }
        Some(Relays {
            endpoints,
            current: 0,
            failed_in_round: 0,
        })
    }

    /// A single endpoint (`replay`, `tail`): every failure ends a round.
    pub fn one(endpoint: Endpoint) -> Relays {
        Relays {
            endpoints: vec![endpoint],
            current: 0,
            failed_in_round: 0,
        }
    }

    /// How many URLs there are.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Always false: a `Relays` has at least one endpoint.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// The endpoint to dial now.
    pub fn current(&self) -> &Endpoint {
        // `current` stays below `len()`, and `len()` is at least 1.
        &self.endpoints[self.current % self.endpoints.len()]
    }

    /// Records that the attempt on the current endpoint failed and moves to the next
    /// one. Returns true when that completed a round: every URL failed since the last
    /// wait, so the caller waits its backoff now (and the round starts over).
    pub fn failed(&mut self) -> bool {
        self.current = (self.current + 1) % self.endpoints.len();
        self.failed_in_round += 1;
        if self.failed_in_round >= self.endpoints.len() {
            self.failed_in_round = 0;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::dial::TlsFiles;

    fn relays(urls: &[&str]) -> Relays {
        let endpoints = urls
            .iter()
            .map(|u| Endpoint::new(u, None, TlsFiles::default()).expect("url"))
            .collect();
        Relays::new(endpoints).expect("not empty")
    }

    fn host(r: &Relays) -> String {
        r.current().display_url()
    }

    #[test]
    fn rotates_and_waits_once_per_round() {
        let mut r = relays(&["ws://a", "ws://b", "ws://c"]);
        assert_eq!(host(&r), "ws://a/v1/stream", "the first URL is preferred");
        let rounds: Vec<(bool, String)> = (0..6).map(|_| (r.failed(), host(&r))).collect();
        let want = [
            (false, "ws://b/v1/stream"),
            (false, "ws://c/v1/stream"),
            (true, "ws://a/v1/stream"),
            (false, "ws://b/v1/stream"),
            (false, "ws://c/v1/stream"),
            (true, "ws://a/v1/stream"),
        ];
        let want: Vec<(bool, String)> = want.iter().map(|(b, u)| (*b, u.to_string())).collect();
        assert_eq!(rounds, want);
    }

    #[test]
    fn one_url_waits_after_every_failure() {
        let mut r = Relays::one(Endpoint::new("ws://a", None, TlsFiles::default()).expect("url"));
        assert!(r.failed() && r.failed());
        assert_eq!(host(&r), "ws://a/v1/stream");
        assert!(Relays::new(Vec::new()).is_none());
    }
}
