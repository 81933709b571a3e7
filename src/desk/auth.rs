//! Desk log-in: the same id and password as the agent's SIP account (checked against the stored
//! SHA-256 HA1, so no plain password is ever kept), a session token, roles, and a limit on
//! failed log-ins per address and per account.

use crate::sip::auth::{ha1, Algorithm};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whether `password` is `id`'s, given the stored SHA-256 HA1 for `realm`. Constant time.
pub fn password_matches(id: &str, realm: &str, password: &str, stored_ha1: &str) -> bool {
    let mine = ha1(Algorithm::Sha256, id, realm, password);
    crate::sip::auth::constant_eq(mine.as_bytes(), stored_ha1.as_bytes())
}

/// What the limiter says about a log-in attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Go ahead, after waiting this long (an account under attack answers slowly, for everyone,
    /// instead of being locked for everyone).
    Go(Duration),
    /// Refused for this many seconds (this address guessed too often).
    Blocked(u64),
}

/// Failed log-ins. An address that fails `max` times within `window` on one account, or
/// `4 × max` times over any accounts (spraying), is refused until the window has passed. An
/// account that fails `max` times from anywhere is **slowed down**, not locked: each further
/// attempt waits a second more (at most 5 s), so a stranger cannot lock a real agent out of their
/// desk by guessing wrong, and guessing gets slow. Tables are bounded (two generations of at most
/// 50,000 keys each, O(1) expiry) since the keys come from outside.
pub struct LoginLimiter {
    max: usize,
    window: Duration,
    failures: Mutex<crate::sip::budget::Generations<String, Vec<Instant>>>,
}

/// Keys tracked per table generation.
const MAX_KEYS: usize = 50_000;

impl LoginLimiter {
    pub fn new(max: usize, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max: max.max(1),
            window,
            failures: Mutex::new(crate::sip::budget::Generations::new(MAX_KEYS, window)),
        }
    }

    fn pair(ip: Option<IpAddr>, id: &str) -> String {
        format!(
            "pair:{}|{id}",
            ip.map(|i| i.to_string()).unwrap_or_default()
        )
    }

    fn addr(ip: Option<IpAddr>) -> String {
        format!("ip:{}", ip.map(|i| i.to_string()).unwrap_or_default())
    }

    fn account(id: &str) -> String {
        format!("id:{id}")
    }

    /// Recent failures under `key` (pruned to the window).
    fn recent(
        &self,
        f: &mut crate::sip::budget::Generations<String, Vec<Instant>>,
        now: Instant,
        key: String,
    ) -> (usize, Option<Instant>) {
        let v = f.entry(now, key, Vec::new);
        v.retain(|t| now.saturating_duration_since(*t) < self.window);
        (v.len(), v.first().copied())
    }

    /// Whether (and when) an attempt from `ip` on `id` may go ahead.
    pub fn check(&self, now: Instant, ip: Option<IpAddr>, id: &str) -> Gate {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for (key, max) in [
            (Self::pair(ip, id), self.max),
            (Self::addr(ip), self.max * 4),
        ] {
            let (n, first) = self.recent(&mut f, now, key);
            if n >= max {
                let left = first.map_or(self.window, |t| {
                    self.window.saturating_sub(now.saturating_duration_since(t))
                });
                wait = Some(wait.unwrap_or(0).max(left.as_secs().max(1)));
            }
        }
        if let Some(w) = wait {
            return Gate::Blocked(w);
        }
        let (n, _) = self.recent(&mut f, now, Self::account(id));
        let over = n.saturating_sub(self.max.saturating_sub(1)) as u64;
        Gate::Go(Duration::from_secs(over.min(5)))
    }

    pub fn failed(&self, now: Instant, ip: Option<IpAddr>, id: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for key in [Self::pair(ip, id), Self::addr(ip), Self::account(id)] {
            let v = f.entry(now, key, Vec::new);
            // A key never needs more than the spraying limit's worth of times.
            if v.len() >= self.max * 4 {
                v.remove(0);
            }
            v.push(now);
        }
    }

    /// A good log-in clears the account's and this address's count on it.
    pub fn succeeded(&self, ip: Option<IpAddr>, id: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.remove(&Self::account(id));
        f.remove(&Self::pair(ip, id));
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
    fn a_guessing_address_is_blocked_but_the_agent_is_only_slowed_elsewhere() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        let ip = Some("203.0.113.9".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(l.check(t0, ip, "1001"), Gate::Go(Duration::ZERO));
            l.failed(t0, ip, "1001");
        }
        assert_eq!(l.check(t0, ip, "1001"), Gate::Blocked(60));
        // The real agent, from their own desk: not locked out, only slowed.
        let desk = Some("192.0.2.5".parse().unwrap());
        assert_eq!(l.check(t0, desk, "1001"), Gate::Go(Duration::from_secs(1)));
        // The guesser may try another account a few times (spraying is capped at 4 x 3).
        assert_eq!(l.check(t0, ip, "1002"), Gate::Go(Duration::ZERO));
        for id in [
            "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009", "1010",
        ] {
            l.failed(t0, ip, id);
        }
        assert!(
            matches!(l.check(t0, ip, "1011"), Gate::Blocked(_)),
            "spraying blocked"
        );
        assert_eq!(
            l.check(t0 + Duration::from_secs(60), ip, "1001"),
            Gate::Go(Duration::ZERO)
        );
        // A good log-in clears the account.
        l.succeeded(desk, "1001");
        assert_eq!(l.check(t0, desk, "1001"), Gate::Go(Duration::ZERO));
    }

    #[test]
    fn the_slow_down_grows_and_is_capped() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..20u8 {
            l.failed(t0, Some(std::net::IpAddr::from([198, 51, 100, i])), "1001");
        }
        assert_eq!(
            l.check(t0, Some("192.0.2.5".parse().unwrap()), "1001"),
            Gate::Go(Duration::from_secs(5))
        );
    }
}
