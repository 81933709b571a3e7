//! Desk log-in: the same id and password as the agent's SIP account (checked against the stored
//! SHA-256 HA1, so no plain password is ever kept), a session token, roles, and a limit on
//! failed log-ins per address and per account.

use crate::context::Role;
use crate::sip::auth::{ha1, Algorithm};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A logged-in desk user.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Session {
    pub agent: String,
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub expires: Instant,
}

/// Tokens → sessions, in memory: a restart asks everyone to log in again.
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    ttl: Duration,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// Opens a session and returns its token (256 random bits).
    pub fn open(&self, now: Instant, agent: &str, name: &str, role: Role) -> String {
        let token: String = (0..4)
            .map(|_| format!("{:016x}", rand::random::<u64>()))
            .collect();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.expires > now);
        map.insert(
            token.clone(),
            Session {
                agent: agent.to_string(),
                name: name.to_string(),
                role,
                expires: now + self.ttl,
            },
        );
        token
    }

    pub fn get(&self, now: Instant, token: &str) -> Option<Session> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(token).filter(|s| s.expires > now).cloned()
    }

    pub fn close(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }

    /// Ends every session of an agent (removed or role changed).
    pub fn close_agent(&self, agent: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, s| s.agent != agent);
    }
}

/// Whether `password` is `id`'s, given the stored SHA-256 HA1 for `realm`. Constant time.
pub fn password_matches(id: &str, realm: &str, password: &str, stored_ha1: &str) -> bool {
    let mine = ha1(Algorithm::Sha256, id, realm, password);
    mine.len() == stored_ha1.len()
        && mine
            .bytes()
            .zip(stored_ha1.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Failed log-ins: after `max` failures within `window` from one address, or against one
/// account, further attempts are refused until the window has passed.
pub struct LoginLimiter {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    pub fn new(max: usize, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max: max.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(ip: Option<IpAddr>, id: &str) -> [String; 2] {
        [
            format!("ip:{}", ip.map(|i| i.to_string()).unwrap_or_default()),
            format!("id:{id}"),
        ]
    }

    /// `Some(seconds to wait)` while blocked.
    pub fn blocked(&self, now: Instant, ip: Option<IpAddr>, id: &str) -> Option<u64> {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for k in Self::keys(ip, id) {
            if let Some(v) = f.get_mut(&k) {
                v.retain(|t| now.saturating_duration_since(*t) < self.window);
                if v.len() >= self.max {
                    let left = self.window - now.saturating_duration_since(v[0]);
                    wait = Some(wait.unwrap_or(0).max(left.as_secs().max(1)));
                }
            }
        }
        wait
    }

    pub fn failed(&self, now: Instant, ip: Option<IpAddr>, id: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if f.len() > 100_000 {
            f.retain(|_, v| {
                v.iter()
                    .any(|t| now.saturating_duration_since(*t) < self.window)
            });
        }
        for k in Self::keys(ip, id) {
            f.entry(k).or_default().push(now);
        }
    }

    /// A good log-in clears the account's count (not the address's).
    pub fn succeeded(&self, id: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&format!("id:{id}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sip_password_opens_the_desk_and_nothing_else_does() {
        let stored = ha1(Algorithm::Sha256, "1001", "acd", "secret");
        assert!(password_matches("1001", "acd", "secret", &stored));
        assert!(!password_matches("1001", "acd", "Secret", &stored));
        assert!(!password_matches("1002", "acd", "secret", &stored));
    }

    #[test]
    fn repeated_failures_block_the_account_until_the_window_passes() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        let ip = Some("127.0.0.1".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(l.blocked(t0, ip, "1001"), None);
            l.failed(t0, ip, "1001");
        }
        assert_eq!(l.blocked(t0, ip, "1001"), Some(60));
        let other = Some("127.0.0.2".parse().unwrap());
        assert_eq!(
            l.blocked(t0, other, "1001"),
            Some(60),
            "the account is blocked from any address"
        );
        assert_eq!(
            l.blocked(t0, ip, "1002"),
            Some(60),
            "the address is blocked for any account"
        );
        assert_eq!(l.blocked(t0 + Duration::from_secs(60), ip, "1001"), None);
    }

    #[test]
    fn sessions_expire_and_close() {
        let s = Sessions::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let tok = s.open(t0, "1001", "Anna", Role::Agent);
        assert_eq!(tok.len(), 64);
        assert_eq!(s.get(t0, &tok).map(|x| x.agent), Some("1001".into()));
        assert!(s.get(t0 + Duration::from_secs(10), &tok).is_none());
        s.close(&tok);
        assert!(s.get(t0, &tok).is_none());
    }
}
