//! Brute-force protection for digest logins: a source address that sends too many wrong
//! credentials within a window is refused (403) for a while, like fail2ban in front of a PBX.
//! Only wrong answers count, not the first unauthenticated REGISTER every phone sends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Limits; `ban` of zero turns the guard off.
#[derive(Clone, Copy, Debug)]
pub struct GuardConfig {
    pub max_failures: u32,
    pub window: Duration,
    pub ban: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            max_failures: 20,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(300),
        }
    }
}

#[derive(Default)]
pub struct AuthGuard {
    cfg: GuardConfig,
    failures: HashMap<IpAddr, (u32, Instant)>,
    banned: HashMap<IpAddr, Instant>,
}

impl AuthGuard {
    pub fn new(cfg: GuardConfig) -> AuthGuard {
        AuthGuard {
            cfg,
            ..Default::default()
        }
    }

    /// True while `ip` is banned.
    pub fn is_banned(&mut self, ip: IpAddr, now: Instant) -> bool {
        match self.banned.get(&ip) {
            Some(until) if *until > now => true,
            Some(_) => {
                self.banned.remove(&ip);
                false
            }
            None => false,
        }
    }

    /// Records wrong credentials from `ip`; returns true when this failure starts a ban.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.cfg.ban.is_zero() {
            return false;
        }
        if self.failures.len() > 10_000 {
            let w = self.cfg.window;
            self.failures
                .retain(|_, (_, since)| now.saturating_duration_since(*since) < w);
        }
        let e = self.failures.entry(ip).or_insert((0, now));
        if now.saturating_duration_since(e.1) >= self.cfg.window {
            *e = (0, now);
        }
        e.0 += 1;
        if e.0 >= self.cfg.max_failures {
            self.failures.remove(&ip);
            self.banned.insert(ip, now + self.cfg.ban);
            return true;
        }
        false
    }

    /// A successful login clears the address's failures.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.failures.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_after_repeated_failures_then_forgives() {
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let mut g = AuthGuard::new(GuardConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(300),
        });
        assert!(!g.failed(ip, t0));
        assert!(!g.failed(ip, t0));
        assert!(g.failed(ip, t0 + Duration::from_secs(1)));
        assert!(g.is_banned(ip, t0 + Duration::from_secs(299)));
        assert!(!g.is_banned(ip, t0 + Duration::from_secs(302)));
        assert!(
            !g.is_banned("192.0.2.8".parse().unwrap(), t0),
            "only that address"
        );
    }

    #[test]
    fn failures_outside_the_window_and_successes_reset() {
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let mut g = AuthGuard::new(GuardConfig {
            max_failures: 2,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(300),
        });
        assert!(!g.failed(ip, t0));
        assert!(
            !g.failed(ip, t0 + Duration::from_secs(61)),
            "window restarted"
        );
        g.succeeded(ip);
        assert!(!g.failed(ip, t0 + Duration::from_secs(62)));
        let mut off = AuthGuard::new(GuardConfig {
            ban: Duration::ZERO,
            ..GuardConfig::default()
        });
        assert!((0..100).all(|_| !off.failed(ip, t0)));
    }
}
