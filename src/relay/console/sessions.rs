//! The console's login sessions, kept in memory on the relay.
//!
//! A login gets a random session id (the cookie) and a random CSRF token (which the
//! page sends back in a header on every state-changing request). Only SHA-256 digests
//! of the ids are kept, so a lookup's timing says nothing about a valid id. Sessions
//! expire, and their number is bounded: a flood of logins evicts the oldest instead of
//! growing memory. A restart logs everyone out, which is what an operator expects.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The cookie that carries the session id.
pub const COOKIE_NAME: &str = "hookrelay_session";
/// How long a session lives after login.
pub const SESSION_TTL_SECS: u64 = 12 * 3600;
/// Most sessions kept at once; the one closest to expiry goes first.
pub const MAX_SESSIONS: usize = 64;
/// Random bytes in a session id and in a CSRF token.
const TOKEN_BYTES: usize = 32;

#[derive(Debug)]
struct Session {
    csrf: String,
    expires: Instant,
}

/// A new session: what goes into the cookie and what the page sends back.
#[derive(Debug)]
pub struct NewSession {
    /// The session id (the cookie's value).
    pub id: String,
    /// The CSRF token (the `X-CSRF-Token` header's value).
    pub csrf: String,
}

/// Live sessions by digest of their id.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Opens a session, evicting expired ones and, at the bound, the oldest.
    pub fn create(&self) -> NewSession {
        let new = NewSession {
            id: random_token(),
            csrf: random_token(),
        };
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, s| s.expires > now);
        while map.len() >= MAX_SESSIONS {
            let oldest = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k);
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(
            digest(&new.id),
            Session {
                csrf: new.csrf.clone(),
                expires: now + Duration::from_secs(SESSION_TTL_SECS),
            },
        );
        new
    }

    /// The CSRF token of a live session, `None` for an unknown or expired id.
    pub fn csrf(&self, id: &str) -> Option<String> {
        let key = digest(id);
        let mut map = self.lock();
        match map.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.csrf.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends a session (logout).
    pub fn remove(&self, id: &str) {
        self.lock().remove(&digest(id));
    }

    /// Live sessions (for tests and the bound).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // No critical section can panic halfway; a poisoned map is still consistent.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// 32 bytes from the thread's CSPRNG, hex-encoded.
fn random_token() -> String {
    hex::encode(rand::random::<[u8; TOKEN_BYTES]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_removed_and_bounded() {
        let s = Sessions::default();
        let a = s.create();
        assert_eq!(a.id.len(), 64);
        assert_ne!(a.id, a.csrf);
        assert_eq!(s.csrf(&a.id).as_deref(), Some(a.csrf.as_str()));
        assert_eq!(s.csrf("nope"), None);
        s.remove(&a.id);
        assert_eq!(s.csrf(&a.id), None);
        for _ in 0..MAX_SESSIONS + 5 {
            s.create();
        }
        assert_eq!(s.len(), MAX_SESSIONS);
    }
}
