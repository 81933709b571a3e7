//! Per-source request budgets, the Kamailio `pike` idea in sans-IO form: each source address
//! (IPv4 address, or IPv6 /64 since one host owns a whole /64) may send so many requests of a
//! class per second. Past the budget it gets 503 + Retry-After; past `drop_factor` times the
//! budget it is not answered at all (answering a flood is itself a flood). Trusted peers (trunks,
//! the Kamailio edge) are on an allow-list and never limited.
//!
//! The table of sources is keyed by remote input, so it is bounded: [`Generations`] keeps two
//! generations of entries and drops the older one whole when the newer fills up or ages out, so
//! expiry is O(1) per insert with no sweep, and memory is at most twice the cap.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A map with at most `2 × cap` entries whose entries live at least `ttl` unless the map is
/// full: entries are looked up in the current generation, then the previous one (and moved
/// forward); when the current one holds `cap` entries or is older than `ttl`, the previous one
/// is dropped and the current one becomes previous.
#[derive(Debug)]
pub struct Generations<K, V> {
    cap: usize,
    ttl: Duration,
    current: HashMap<K, V>,
    previous: HashMap<K, V>,
    started: Option<Instant>,
    /// Generations dropped because the map was full before `ttl` (a flood of new keys).
    pub evictions: u64,
}

impl<K: Hash + Eq, V> Generations<K, V> {
    pub fn new(cap: usize, ttl: Duration) -> Self {
        Generations {
            cap: cap.max(1),
            ttl,
            current: HashMap::new(),
            previous: HashMap::new(),
            started: None,
            evictions: 0,
        }
    }

    fn rotate_if_due(&mut self, now: Instant) {
        let started = *self.started.get_or_insert(now);
        let full = self.current.len() >= self.cap;
        if full || now.saturating_duration_since(started) >= self.ttl {
            if full && now.saturating_duration_since(started) < self.ttl {
                self.evictions += 1;
            }
            self.previous = std::mem::take(&mut self.current);
            self.started = Some(now);
        }
    }

    /// The entry for `k`, created with `make` if absent.
    pub fn entry(&mut self, now: Instant, k: K, make: impl FnOnce() -> V) -> &mut V {
        if !self.current.contains_key(&k) {
            self.rotate_if_due(now);
            let v = self.previous.remove(&k).unwrap_or_else(make);
            return self.current.entry(k).or_insert(v);
        }
        self.current.entry(k).or_insert_with(make)
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        self.current.get(k).or_else(|| self.previous.get(k))
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        self.current.remove(k).or_else(|| self.previous.remove(k))
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which budget a request draws on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// An INVITE outside a dialog: a new call.
    Invite = 0,
    Register = 1,
    Options = 2,
    /// Everything else (in-dialog requests, BYE, CANCEL, INFO, ACK …).
    Other = 3,
}

impl Class {
    pub const ALL: [Class; 4] = [Class::Invite, Class::Register, Class::Options, Class::Other];

    pub fn label(self) -> &'static str {
        match self {
            Class::Invite => "invite",
            Class::Register => "register",
            Class::Options => "options",
            Class::Other => "other",
        }
    }
}

/// An address or network on the allow-list (`198.51.100.7`, `198.51.100.0/24`, `2001:db8::/32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub net: IpAddr,
    pub bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("'{s}' is not an address or CIDR (like 198.51.100.0/24)");
        let (ip, bits) = match s.split_once('/') {
            Some((ip, b)) => (ip, Some(b.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let net: IpAddr = ip.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(bad());
        }
        Ok(Cidr { net, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net.to_canonical(), ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let bits = u32::from(self.bits.min(32));
                bits == 0 || (u32::from(n) ^ u32::from(a)) >> (32 - bits) == 0
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let bits = u32::from(self.bits.min(128));
                bits == 0 || (u128::from(n) ^ u128::from(a)) >> (128 - bits) == 0
            }
            _ => false,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Budgets per source per second; `sip.budget` in acd.toml.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetConfig {
    /// Requests per second per source, by [`Class`] order (0: unlimited).
    pub per_s: [u32; 4],
    /// Past this many times the budget in one second the source is not answered at all.
    pub drop_factor: u32,
    /// The Retry-After of the 503.
    pub retry_after_s: u32,
    /// Sources never limited (trunks, the Kamailio edge).
    pub allow: Vec<Cidr>,
    /// Sources tracked at once (twice this at most).
    pub max_sources: usize,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            per_s: [20, 20, 20, 200],
            drop_factor: 3,
            retry_after_s: 5,
            allow: Vec::new(),
            max_sources: 50_000,
        }
    }
}

/// What to do with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Answer 503 with Retry-After (seconds).
    Refuse(u32),
    /// Say nothing.
    Drop,
}

/// The key a source is counted under: its address, or its /64 for IPv6.
pub(crate) fn source_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(a) >> 64 << 64) | 1 << 32,
        },
    }
}

/// Counts of one source in the current one-second window, per class.
#[derive(Clone, Copy, Debug)]
struct Window {
    since: Instant,
    counts: [u32; 4],
}

/// Counters for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BudgetStats {
    /// Requests answered 503 + Retry-After, by class order.
    pub refused: [u64; 4],
    /// Requests dropped unanswered, by class order.
    pub dropped: [u64; 4],
    /// Sources currently tracked, and generations dropped early because the table filled.
    pub sources: usize,
    pub evictions: u64,
}

/// The budgets of one endpoint.
#[derive(Debug)]
pub struct Budgets {
    cfg: BudgetConfig,
    windows: Generations<u128, Window>,
    pub stats: BudgetStats,
}

impl Budgets {
    pub fn new(cfg: BudgetConfig) -> Budgets {
        Budgets {
            windows: Generations::new(cfg.max_sources, Duration::from_secs(10)),
            cfg,
            stats: BudgetStats::default(),
        }
    }

    /// Whether `ip` is on the allow-list.
    pub fn trusted(&self, ip: IpAddr) -> bool {
        self.cfg.allow.iter().any(|c| c.contains(ip))
    }

    /// Counts one request of `class` from `ip` at `now` and says what to do with it.
    pub fn check(&mut self, now: Instant, ip: IpAddr, class: Class) -> Verdict {
        let limit = self.cfg.per_s[class as usize];
        if limit == 0 || self.trusted(ip) {
            return Verdict::Accept;
        }
        let w = self.windows.entry(now, source_key(ip), || Window {
            since: now,
            counts: [0; 4],
        });
        if now.saturating_duration_since(w.since) >= Duration::from_secs(1) {
            *w = Window {
                since: now,
                counts: [0; 4],
            };
        }
        let n = &mut w.counts[class as usize];
        *n = n.saturating_add(1);
        let n = *n;
        self.stats.sources = self.windows.len();
        self.stats.evictions = self.windows.evictions;
        if n <= limit {
            Verdict::Accept
        } else if n <= limit.saturating_mul(self.cfg.drop_factor.max(1)) {
            self.stats.refused[class as usize] += 1;
            Verdict::Refuse(self.cfg.retry_after_s)
        } else {
            self.stats.dropped[class as usize] += 1;
            Verdict::Drop
        }
    }
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
