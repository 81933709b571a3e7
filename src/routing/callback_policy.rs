//! Who may be called back, where and how often: the toll-fraud limits of `[callback]`. A
//! callback through the trunk costs money and dials a number the caller gave, so it needs a
//! number a trunk vouched for, inside the allowed prefixes, under a per-number and a per-day
//! cap. A caller nobody vouches for is called back, if at all, only at their own call's Contact.

use serde::Deserialize;
use std::collections::HashMap;

/// What to do for a caller whose number no trunk vouches for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Untrusted {
    /// The callback key does nothing for them.
    #[default]
    Refuse,
    /// Called back at the Contact of their own call (never through the trunk).
    Contact,
}

pub fn default_per_number() -> u32 {
    3
}
pub fn default_per_day() -> u32 {
    1000
}

/// The limits, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackPolicy {
    /// E.164 prefixes a trunk callback may dial; empty: the configured country's code.
    pub allowed_prefixes: Vec<String>,
    pub untrusted: Untrusted,
    pub max_per_number_per_day: u32,
    pub max_per_day: u32,
}

impl Default for CallbackPolicy {
    fn default() -> Self {
        CallbackPolicy {
            allowed_prefixes: Vec::new(),
            untrusted: Untrusted::Refuse,
            max_per_number_per_day: default_per_number(),
            max_per_day: default_per_day(),
        }
    }
}

/// Why a callback was not granted (said in the log and the trace).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the caller's number is not vouched for by a trunk ({0})")]
    Untrusted(String),
    #[error("{0} is outside the allowed prefixes {1:?}")]
    Prefix(String, Vec<String>),
    #[error("{0} was already called back {1} times today")]
    PerNumber(String, u32),
    #[error("the day's {0} callbacks are used up")]
    PerDay(u32),
}

impl CallbackPolicy {
    pub fn new(
        prefixes: &[String],
        untrusted: Untrusted,
        per_number: u32,
        per_day: u32,
    ) -> Result<CallbackPolicy, String> {
        for p in prefixes {
            let digits = p.strip_prefix('+').unwrap_or("");
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "callback allowed_prefixes entry '{p}' must be '+' and digits, e.g. \"+44\""
                ));
            }
        }
        Ok(CallbackPolicy {
            allowed_prefixes: prefixes.to_vec(),
            untrusted,
            max_per_number_per_day: per_number,
            max_per_day: per_day,
        })
    }

    /// The prefixes in force: the configured ones, else `+<country code>`.
    pub fn prefixes(&self, country_code: &str) -> Vec<String> {
        if self.allowed_prefixes.is_empty() {
            vec![format!("+{country_code}")]
        } else {
            self.allowed_prefixes.clone()
        }
    }
}

/// Callbacks granted today, per number and in all; resets when the UTC day changes. Its table
/// holds at most `max_per_day` numbers, since only granted callbacks are counted.
#[derive(Debug, Default)]
pub struct CallbackLedger {
    day: i64,
    per_number: HashMap<String, u32>,
    total: u32,
    /// Callbacks refused by the policy since start.
    pub refused: u64,
}

impl CallbackLedger {
    /// The counts of `day` (days since the epoch, UTC) as saved before a restart.
    pub fn restore(&mut self, day: i64, granted: Vec<(String, u32)>) {
        self.day = day;
        self.total = granted.iter().map(|(_, n)| *n).sum();
        self.per_number = granted.into_iter().collect();
    }

    /// Grants (and counts) a trunk callback to `number` at `unix_s`, or says why not.
    pub fn grant_trunk(
        &mut self,
        policy: &CallbackPolicy,
        country_code: &str,
        number: &str,
        trusted: bool,
        basis: &str,
        unix_s: i64,
    ) -> Result<(), Refusal> {
        let r = self.check(policy, country_code, number, trusted, basis, unix_s);
        if r.is_err() {
            self.refused += 1;
        }
        r
    }

    fn check(
        &mut self,
        policy: &CallbackPolicy,
        country_code: &str,
        number: &str,
        trusted: bool,
        basis: &str,
        unix_s: i64,
    ) -> Result<(), Refusal> {
        if !trusted {
            return Err(Refusal::Untrusted(basis.to_string()));
        }
        let prefixes = policy.prefixes(country_code);
        if !prefixes.iter().any(|p| number.starts_with(p.as_str())) {
            return Err(Refusal::Prefix(number.to_string(), prefixes));
        }
        let day = unix_s.div_euclid(86_400);
        if day != self.day {
            self.day = day;
            self.per_number.clear();
            self.total = 0;
        }
        if self.total >= policy.max_per_day {
            return Err(Refusal::PerDay(policy.max_per_day));
        }
        let n = self.per_number.get(number).copied().unwrap_or(0);
        if n >= policy.max_per_number_per_day {
            return Err(Refusal::PerNumber(number.to_string(), n));
        }
        self.per_number.insert(number.to_string(), n + 1);
        self.total += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn only_trusted_numbers_inside_the_prefixes_under_the_caps() {
        let p = CallbackPolicy {
            max_per_number_per_day: 2,
            max_per_day: 3,
            ..CallbackPolicy::default()
        };
        let mut l = CallbackLedger::default();
        let t = 100 * DAY + 10;
        assert!(matches!(
            l.grant_trunk(&p, "1", "+15551230001", false, "From header", t),
            Err(Refusal::Untrusted(_))
        ));
        // A premium-rate number abroad (the IRSF pattern): outside +1.
        assert!(matches!(
            l.grant_trunk(&p, "1", "+8823460000", true, "", t),
            Err(Refusal::Prefix(..))
        ));
        assert!(l.grant_trunk(&p, "1", "+15551230001", true, "", t).is_ok());
        assert!(l.grant_trunk(&p, "1", "+15551230001", true, "", t).is_ok());
        assert!(matches!(
            l.grant_trunk(&p, "1", "+15551230001", true, "", t),
            Err(Refusal::PerNumber(_, 2))
        ));
        assert!(l.grant_trunk(&p, "1", "+15551230002", true, "", t).is_ok());
        assert!(matches!(
            l.grant_trunk(&p, "1", "+15551230003", true, "", t),
            Err(Refusal::PerDay(3))
        ));
        assert_eq!(l.refused, 4);
        // A new UTC day starts over.
        assert!(l
            .grant_trunk(&p, "1", "+15551230001", true, "", t + DAY)
            .is_ok());
    }

    #[test]
    fn configured_prefixes_replace_the_country_and_are_validated() {
        let p =
            CallbackPolicy::new(&["+44".into(), "+353".into()], Untrusted::Refuse, 3, 10).unwrap();
        let mut l = CallbackLedger::default();
        assert!(l.grant_trunk(&p, "1", "+442071230000", true, "", 0).is_ok());
        assert!(l.grant_trunk(&p, "1", "+15551230001", true, "", 0).is_err());
        for bad in ["44", "+", "+4a"] {
            assert!(CallbackPolicy::new(&[bad.into()], Untrusted::Refuse, 3, 10).is_err());
        }
    }
}
