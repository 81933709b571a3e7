//! Brute-force protection for digest logins: a source address that sends too many wrong
//! credentials within a window is refused (403) for a while, like fail2ban in front of a PBX.
//! Only wrong answers count, not the first unauthenticated REGISTER every phone sends.

use super::budget::{source_key, Generations};
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

/// Sources tracked at once by each table (twice this at most; see [`Generations`]).
const MAX_SOURCES: usize = 50_000;

/// Failure counts and bans per source (an IPv4 address or an IPv6 /64, so rotating addresses
/// inside one's own /64 does not reset the count). Both tables are bounded and expire in O(1).
pub struct AuthGuard {
    cfg: GuardConfig,
    failures: Generations<u128, (u32, Instant)>,
    banned: Generations<u128, Instant>,
}

impl Default for AuthGuard {
    fn default() -> Self {
        AuthGuard::new(GuardConfig::default())
    }
}

impl AuthGuard {
    pub fn new(cfg: GuardConfig) -> AuthGuard {
        AuthGuard {
            cfg,
            failures: Generations::new(MAX_SOURCES, cfg.window),
            banned: Generations::new(MAX_SOURCES, cfg.ban.max(Duration::from_secs(1))),
        }
    }

    /// Source addresses with failures or bans on record (bounded by twice the cap each).
    pub fn tracked(&self) -> usize {
        self.failures.len() + self.banned.len()
    }

    /// True while `ip` is banned.
    pub fn is_banned(&mut self, ip: IpAddr, now: Instant) -> bool {
        let k = source_key(ip);
        match self.banned.get(&k) {
            Some(until) if *until > now => true,
            Some(_) => {
                self.banned.remove(&k);
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
        let k = source_key(ip);
        let e = self.failures.entry(now, k, || (0, now));
        if now.saturating_duration_since(e.1) >= self.cfg.window {
            *e = (0, now);
        }
        e.0 += 1;
        if e.0 >= self.cfg.max_failures {
            self.failures.remove(&k);
            *self.banned.entry(now, k, || now) = now + self.cfg.ban;
            return true;
        }
        false
    }

    /// A successful login clears the address's failures.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.failures.remove(&source_key(ip));
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

    #[test]
    fn a_flood_of_sources_stays_bounded_and_a_64_counts_as_one() {
        let t0 = Instant::now();
        let mut g = AuthGuard::new(GuardConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(300),
        });
        for i in 0..200_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            g.failed(ip, t0);
        }
        assert!(g.tracked() <= 2 * MAX_SOURCES, "{}", g.tracked());
        // Three addresses of one /64 are one source.
        for host in ["2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1:ffff::3"] {
            g.failed(host.parse().unwrap(), t0);
        }
        assert!(g.is_banned("2001:db8:0:1::99".parse().unwrap(), t0));
        assert!(!g.is_banned("2001:db8:0:2::1".parse().unwrap(), t0));
    }
}
