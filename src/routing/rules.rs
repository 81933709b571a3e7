//! Context rules: ordered `[[rule]]` entries whose conditions read the caller context and whose
//! actions pick the queue. The first rule whose every condition holds wins; every decision
//! carries a trace saying, rule by rule, which condition held or failed and why.

use crate::context::CallerContext;
use serde::{Deserialize, Serialize};

/// Conditions; all given ones must hold. Absent means "don't care".
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Dialled numbers this rule applies to.
    pub dialed: Option<Vec<String>>,
    /// A campaign sent to the caller, inside its attribution window (`"*"`: any campaign).
    pub campaign: Option<String>,
    /// …and sent at most this many minutes ago.
    pub campaign_within_min: Option<i64>,
    pub open_ticket: Option<bool>,
    /// An open ticket needing this skill.
    pub ticket_skill: Option<String>,
    /// A customer tag, e.g. `vip`, `complaint`.
    pub tag: Option<String>,
    /// The caller is a known customer.
    pub known_customer: Option<bool>,
    /// The caller talked to an agent within this many days.
    pub last_agent_within_days: Option<i64>,
    /// The caller's E.164 number starts with this.
    pub caller_prefix: Option<String>,
    /// Local time window `HH:MM-HH:MM` (may cross midnight), in the plan's `utc_offset`.
    pub hours: Option<String>,
    /// Local weekdays: `mon` … `sun`.
    pub weekdays: Option<Vec<String>>,
    /// `true`: only on the plan's holidays; `false`: never on them.
    pub holiday: Option<bool>,
}

/// Actions of a matching rule.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Then {
    pub queue: Option<String>,
    pub priority: Option<i32>,
    /// Send the caller straight to the queue without the menu (default: yes).
    pub skip_ivr: Option<bool>,
    /// Offer the call to the caller's last agent first (`"last"`) or to a named agent.
    pub preferred_agent: Option<String>,
    /// How long the call waits for the preferred agent before anyone may take it (default 20 s).
    pub fallback_s: Option<u64>,
    /// Why, for the agent's screen pop; `{campaign}`, `{minutes}`, `{tag}`, `{ticket}` are filled in.
    pub reason: Option<String>,
    /// A recording (8 kHz mono WAV, relative to the dialplan) played to the caller before hold
    /// music, e.g. "we see you have an open ticket".
    pub prompt: Option<std::path::PathBuf>,
    /// Extra fields for the agent's screen pop, with the same `{…}` fill-ins as `reason`.
    pub pop: Option<std::collections::BTreeMap<String, String>>,
    /// Skills the agent needs besides the queue's, with minimum levels: `["service:3"]`.
    pub skills: Option<Vec<String>>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    #[serde(default)]
    pub when: When,
    pub then: Then,
}

/// How the plan reads clocks and calendars.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Calendar {
    /// Minutes east of UTC for `hours` and `weekdays` (when no `zone`).
    pub utc_offset_min: i64,
    /// An IANA zone (`timezone = "Europe/Berlin"`): local time follows its daylight saving.
    pub zone: Option<Zone>,
    /// Local dates `YYYY-MM-DD`.
    pub holidays: Vec<String>,
}

/// A named IANA time zone; equal when the names are.
#[derive(Clone, Debug)]
pub struct Zone {
    pub name: String,
    pub tz: jiff::tz::TimeZone,
}

impl Zone {
    /// The zone called `name`, if the time zone database has it.
    pub fn get(name: &str) -> Option<Zone> {
        let tz = jiff::tz::TimeZone::get(name).ok()?;
        Some(Zone {
            name: name.to_string(),
            tz,
        })
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

/// What evaluation is given.
pub struct Input<'a> {
    pub dialed: &'a str,
    /// E.164 when known, else as received.
    pub caller: &'a str,
    pub context: Option<&'a CallerContext>,
    /// Unix seconds.
    pub now: i64,
}

/// One rule's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleTrace {
    pub rule: String,
    pub matched: bool,
    /// One line per condition: `campaign 'x': sent 6 min ago (window 60 min)` or why not.
    pub why: Vec<String>,
}

/// The outcome of the rules (before the number's default applies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Matched {
    pub rule: String,
    pub queue: Option<String>,
    pub priority: Option<i32>,
    pub skip_ivr: bool,
    pub preferred_agent: Option<String>,
    pub fallback_s: u64,
    pub reason: String,
    pub pop: std::collections::BTreeMap<String, String>,
    pub skills: Vec<String>,
}

/// Minute of the day, weekday (0 = Monday) and date, in the plan's local time.
fn local(now: i64, cal: &Calendar) -> (i64, i64, String) {
    if let Some(z) = &cal.zone {
        if let Ok(t) = jiff::Timestamp::from_second(now) {
            let l = t.to_zoned(z.tz.clone());
            let minute = i64::from(l.hour()) * 60 + i64::from(l.minute());
            let weekday = i64::from(l.weekday().to_monday_zero_offset());
            return (minute, weekday, l.date().to_string());
        }
    }
    let t = now + cal.utc_offset_min * 60;
    let days = t.div_euclid(86_400);
    let minute = t.rem_euclid(86_400) / 60;
    let weekday = (days + 3).rem_euclid(7); // 1970-01-01 was a Thursday; 0 = Monday
    let date = crate::context::time::format_iso8601(days * 86_400)[..10].to_string();
    (minute, weekday, date)
}

/// Parses `HH:MM-HH:MM` into minutes of the day.
pub fn parse_hours(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('-')?;
    let m = |x: &str| -> Option<i64> {
        let (h, mi) = x.trim().split_once(':')?;
        let (h, mi): (i64, i64) = (h.parse().ok()?, mi.parse().ok()?);
        ((0..=24).contains(&h) && (0..60).contains(&mi) && h * 60 + mi <= 1440)
            .then_some(h * 60 + mi)
    };
    Some((m(a)?, m(b)?))
}

pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Checks one rule; returns whether it matched and the reasons, plus fill-ins for `reason`.
fn check(
    rule: &Rule,
    input: &Input,
    cal: &Calendar,
) -> (bool, Vec<String>, Vec<(&'static str, String)>) {
    let w = &rule.when;
    let ctx = input.context;
    let mut why = Vec::new();
    let mut fills = Vec::new();
    let mut ok = true;
    let mut cond = |holds: bool, text: String| {
        why.push(format!("{} {text}", if holds { "✓" } else { "✗" }));
        ok &= holds;
    };
    if let Some(d) = &w.dialed {
        cond(
            d.iter().any(|x| x == input.dialed),
            format!("dialled {} in {d:?}", input.dialed),
        );
    }
    if w.campaign.is_some() || w.campaign_within_min.is_some() {
        let want = w.campaign.as_deref().unwrap_or("*");
        let hit = ctx.and_then(|c| {
            c.campaigns.iter().find(|s| {
                (want == "*" || s.campaign == want)
                    && w.campaign_within_min
                        .is_none_or(|m| input.now - s.sent_at <= m * 60)
            })
        });
        match hit {
            Some(s) => {
                let mins = (input.now - s.sent_at) / 60;
                fills.push(("campaign", s.campaign.clone()));
                fills.push(("minutes", mins.to_string()));
                cond(
                    true,
                    format!(
                        "campaign '{}' sent {mins} min ago (window {} min)",
                        s.campaign, s.window_minutes
                    ),
                );
            }
            None => cond(
                false,
                match ctx {
                    None => "campaign: no caller context".into(),
                    Some(c) if c.campaigns.is_empty() => {
                        format!("campaign '{want}': none inside its window")
                    }
                    Some(c) => format!(
                        "campaign '{want}'{}: caller has {:?}",
                        w.campaign_within_min
                            .map(|m| format!(" within {m} min"))
                            .unwrap_or_default(),
                        c.campaigns
                            .iter()
                            .map(|s| format!(
                                "{} {} min ago",
                                s.campaign,
                                (input.now - s.sent_at) / 60
                            ))
                            .collect::<Vec<_>>()
                    ),
                },
            ),
        }
    }
    if let Some(want) = w.open_ticket {
        let t = ctx.and_then(|c| c.tickets.first());
        if let Some(t) = t {
            fills.push(("ticket", t.id.clone()));
        }
        cond(
            t.is_some() == want,
            format!(
                "open ticket: {}",
                t.map_or("none".into(), |t| format!("{} '{}'", t.id, t.subject))
            ),
        );
    }
    if let Some(skill) = &w.ticket_skill {
        let t = ctx.and_then(|c| c.tickets.iter().find(|t| t.skill.as_deref() == Some(skill)));
        if let Some(t) = t {
            fills.push(("ticket", t.id.clone()));
        }
        cond(
            t.is_some(),
            format!(
                "open ticket needing '{skill}': {}",
                t.map_or("none".into(), |t| t.id.clone())
            ),
        );
    }
    if let Some(tag) = &w.tag {
        let tags = ctx.map(|c| c.tags.clone()).unwrap_or_default();
        if tags.iter().any(|t| t == tag) {
            fills.push(("tag", tag.clone()));
        }
        cond(
            tags.iter().any(|t| t == tag),
            format!("tag '{tag}' in {tags:?}"),
        );
    }
    if let Some(want) = w.known_customer {
        let c = ctx.and_then(|c| c.customer.as_ref());
        cond(
            c.is_some() == want,
            format!(
                "known customer: {}",
                c.map_or("no".into(), |c| c.name.clone())
            ),
        );
    }
    if let Some(days) = w.last_agent_within_days {
        let last = ctx.and_then(|c| c.last_agent.clone());
        let holds = last
            .as_ref()
            .is_some_and(|(_, at)| input.now - at <= days * 86_400);
        cond(
            holds,
            format!(
                "last agent within {days} days: {}",
                last.map_or("none".into(), |(a, at)| format!(
                    "{a}, {} days ago",
                    (input.now - at) / 86_400
                ))
            ),
        );
    }
    if let Some(p) = &w.caller_prefix {
        cond(
            input.caller.starts_with(p.as_str()),
            format!("caller {} starts with {p}", input.caller),
        );
    }
    let (minute, weekday, date) = local(input.now, cal);
    if let Some((from, to)) = w.hours.as_deref().and_then(parse_hours) {
        let inside = if from <= to {
            minute >= from && minute < to
        } else {
            minute >= from || minute < to
        };
        cond(
            inside,
            format!(
                "local time {:02}:{:02} in {}",
                minute / 60,
                minute % 60,
                w.hours.as_deref().unwrap_or("")
            ),
        );
    }
    if let Some(days) = &w.weekdays {
        let today = WEEKDAYS[weekday as usize];
        cond(
            days.iter().any(|d| d.eq_ignore_ascii_case(today)),
            format!("weekday {today} in {days:?}"),
        );
    }
    if let Some(want) = w.holiday {
        let is = cal.holidays.iter().any(|h| h == &date);
        cond(
            is == want,
            format!("{date} is {}a holiday", if is { "" } else { "not " }),
        );
    }
    (ok, why, fills)
}

/// Runs the rules in order; the first match wins, and the trace covers every rule tried.
pub fn evaluate(
    rules: &[Rule],
    input: &Input,
    cal: &Calendar,
) -> (Option<Matched>, Vec<RuleTrace>) {
    let mut trace = Vec::new();
    for r in rules {
        let (matched, why, fills) = check(r, input, cal);
        trace.push(RuleTrace {
            rule: r.name.clone(),
            matched,
            why,
        });
        if matched {
            let fill = |text: &str| {
                fills.iter().fold(text.to_string(), |t, (k, v)| {
                    t.replace(&format!("{{{k}}}"), v)
                })
            };
            let reason = fill(
                &r.then
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("rule '{}'", r.name)),
            );
            let pop = r
                .then
                .pop
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), fill(v)))
                .collect();
            let preferred = match r.then.preferred_agent.as_deref() {
                Some("last") => input
                    .context
                    .and_then(|c| c.last_agent.clone())
                    .map(|(a, _)| a),
                other => other.map(str::to_string),
            };
            return (
                Some(Matched {
                    rule: r.name.clone(),
                    queue: r.then.queue.clone(),
                    priority: r.then.priority,
                    skip_ivr: r.then.skip_ivr.unwrap_or(true),
                    preferred_agent: preferred,
                    fallback_s: r.then.fallback_s.unwrap_or(20),
                    reason,
                    pop,
                    skills: r.then.skills.clone().unwrap_or_default(),
                }),
                trace,
            );
        }
    }
    (None, trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{CampaignSend, Customer, Ticket};
    use crate::routing::Dialplan;

    // 2026-11-23 (a Monday) 10:00 UTC.
    const NOW: i64 = 1_795_428_000;

    const PLAN: &str = r#"
utc_offset = "+03:00"
holidays = ["2026-12-25"]

[[queue]]
name = "sales"
skill = "sales"
[[queue]]
name = "service-sales"
skill = "service"
[[queue]]
name = "support"
skill = "support"
[[queue]]
name = "management"
skill = "management"
[[queue]]
name = "night"
skill = "night"

[[number]]
dial = "100"
queue = "sales"
[[number]]
dial = "200"
queue = "support"

[[rule]]
name = "complaint"
when = { tag = "complaint" }
then = { queue = "management", priority = 20, reason = "tagged {tag}" }

[[rule]]
name = "spring-campaign"
when = { campaign = "spring-ac-offer", campaign_within_min = 30, dialed = ["100"] }
then = { queue = "service-sales", priority = 10, skills = ["service:3"], reason = "SMS campaign '{campaign}' sent {minutes} min ago" }

[[rule]]
name = "open-ticket"
when = { ticket_skill = "support" }
then = { queue = "support", reason = "open ticket {ticket}", pop = { ticket = "{ticket}", script = "Ask about the leak" } }

[[rule]]
name = "regular"
when = { last_agent_within_days = 7 }
then = { preferred_agent = "last", skip_ivr = false }

[[rule]]
name = "after-hours"
when = { hours = "20:00-08:00", weekdays = ["mon", "tue", "wed", "thu", "fri"] }
then = { queue = "night" }

[[rule]]
name = "christmas"
when = { holiday = true }
then = { queue = "night", reason = "holiday" }
"#;

    fn plan() -> Dialplan {
        Dialplan::parse(PLAN, "t.toml").unwrap()
    }

    fn ctx() -> CallerContext {
        CallerContext {
            number: "+15551230001".into(),
            ..Default::default()
        }
    }

    fn decide(c: Option<&CallerContext>, dialed: &str, now: i64) -> crate::routing::Decision {
        plan()
            .decide(&Input {
                dialed,
                caller: c.map_or("+15550000000", |c| c.number.as_str()),
                context: c,
                now,
            })
            .unwrap()
    }

    fn send(campaign: &str, mins_ago: i64) -> CampaignSend {
        CampaignSend {
            campaign: campaign.into(),
            sent_at: NOW - mins_ago * 60,
            offer: String::new(),
            queue: None,
            skills: String::new(),
            window_minutes: 60,
        }
    }

    #[test]
    fn campaign_within_minutes_on_the_right_number_skips_the_menu() {
        let mut c = ctx();
        c.campaigns.push(send("spring-ac-offer", 6));
        let d = decide(Some(&c), "100", NOW);
        assert_eq!(
            (d.queue.as_str(), d.priority, d.skip_ivr),
            ("service-sales", 10, true)
        );
        assert_eq!(d.rule.as_deref(), Some("spring-campaign"));
        assert_eq!(d.reason, "SMS campaign 'spring-ac-offer' sent 6 min ago");
        assert_eq!(d.skills, vec!["service", "service:3"]);
        assert_eq!(d.required, vec![("service".to_string(), 3)]);
        assert!(!d.trace[0].matched && d.trace[1].matched, "{:?}", d.trace);
        // Too old for the rule's 30 minutes, or dialled on another number: no match.
        c.campaigns = vec![send("spring-ac-offer", 45)];
        assert_eq!(decide(Some(&c), "100", NOW).rule, None);
        c.campaigns = vec![send("spring-ac-offer", 6)];
        assert_eq!(decide(Some(&c), "200", NOW).rule, None);
    }

    #[test]
    fn first_matching_rule_wins_and_the_trace_says_why() {
        let mut c = ctx();
        c.campaigns.push(send("spring-ac-offer", 6));
        c.tags = vec!["complaint".into()];
        let d = decide(Some(&c), "100", NOW);
        assert_eq!(
            (d.queue.as_str(), d.rule.as_deref(), d.reason.as_str()),
            ("management", Some("complaint"), "tagged complaint")
        );
        assert_eq!(d.trace.len(), 1);
        assert!(d.trace[0].why[0].starts_with("✓ tag 'complaint'"));
    }

    #[test]
    fn tickets_customers_and_last_agent() {
        let mut c = ctx();
        c.tickets.push(Ticket {
            id: "T-7".into(),
            status: "open".into(),
            subject: "leak".into(),
            skill: Some("support".into()),
            opened_at: NOW - 3600,
        });
        let d = decide(Some(&c), "100", NOW);
        assert_eq!(
            (d.queue.as_str(), d.reason.as_str()),
            ("support", "open ticket T-7")
        );
        let mut c = ctx();
        c.customer = Some(Customer {
            id: "c".into(),
            name: "C".into(),
            email: None,
        });
        c.last_agent = Some(("1003".into(), NOW - 2 * 86_400));
        let d = decide(Some(&c), "100", NOW);
        assert_eq!(
            (d.queue.as_str(), d.preferred_agent.as_deref(), d.skip_ivr),
            ("sales", Some("1003"), false),
            "action without a queue keeps the number's"
        );
        c.last_agent = Some(("1003".into(), NOW - 8 * 86_400));
        assert_eq!(decide(Some(&c), "100", NOW).rule, None);
    }

    #[test]
    fn hours_weekdays_and_holidays_use_local_time() {
        // 10:00 UTC = 13:00 at +03:00 on a Monday: daytime.
        assert_eq!(decide(None, "100", NOW).rule, None);
        // 18:00 UTC = 21:00 local Monday: after hours.
        assert_eq!(
            decide(None, "100", NOW + 8 * 3600).rule.as_deref(),
            Some("after-hours")
        );
        // 21:00 local on Saturday: after hours but not a weekday rule day.
        assert_eq!(decide(None, "100", NOW + 5 * 86_400 + 8 * 3600).rule, None);
        // Christmas, midday local.
        let xmas = crate::context::time::parse_iso8601("2026-12-25T09:00:00Z").unwrap();
        assert_eq!(decide(None, "100", xmas).rule.as_deref(), Some("christmas"));
    }

    /// An IANA zone follows daylight saving: 06:30 UTC is 08:30 in a Berlin summer (open) and
    /// 07:30 in its winter (after hours), which no fixed offset gets right both times.
    #[test]
    fn an_iana_timezone_follows_daylight_saving() {
        let berlin = PLAN.replace("utc_offset = \"+03:00\"", "timezone = \"Europe/Berlin\"");
        let plan = Dialplan::parse(&berlin, "t.toml").unwrap();
        let at = |iso: &str| {
            let now = crate::context::time::parse_iso8601(iso).unwrap();
            plan.decide(&Input {
                dialed: "100",
                caller: "+15550000000",
                context: None,
                now,
            })
            .unwrap()
            .rule
        };
        // Wednesdays both.
        assert_eq!(at("2026-07-01T06:30:00Z"), None, "08:30 CEST: open");
        assert_eq!(
            at("2026-01-14T06:30:00Z").as_deref(),
            Some("after-hours"),
            "07:30 CET: closed"
        );
        for (bad, want) in [
            ("timezone = \"Mars/Olympus\"", "not an IANA time zone"),
            (
                "timezone = \"Europe/Berlin\"\nutc_offset = \"+01:00\"",
                "not both",
            ),
        ] {
            let e = Dialplan::parse(&PLAN.replace("utc_offset = \"+03:00\"", bad), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.starts_with("t.toml:"), "{e}");
        }
    }

    #[test]
    fn no_context_means_context_rules_do_not_match() {
        let d = decide(None, "200", NOW);
        assert_eq!(
            (d.queue.as_str(), d.skip_ivr, d.rule.as_deref()),
            ("support", false, None)
        );
        assert!(
            d.trace
                .iter()
                .any(|t| t.why.iter().any(|w| w.contains("no caller context")))
                || d.trace.iter().all(|t| !t.matched)
        );
        assert!(plan()
            .decide(&Input {
                dialed: "999",
                caller: "x",
                context: None,
                now: NOW
            })
            .is_none());
    }

    #[test]
    fn bad_rules_are_refused_with_their_line() {
        let cases = [
            (
                "then = { queue = \"night\" }",
                "then = { queue = \"nowhere\" }",
                "unknown queue 'nowhere'",
            ),
            (
                "when = { hours = \"20:00-08:00\"",
                "when = { hours = \"8pm\"",
                "hours '8pm'",
            ),
            (
                "weekdays = [\"mon\", \"tue\"",
                "weekdays = [\"monday\", \"tue\"",
                "weekday 'monday'",
            ),
            (
                "campaign_within_min = 30",
                "campaign_within_min = 0",
                "time limits must be positive",
            ),
            (
                "dialed = [\"100\"]",
                "dialed = [\"101\"]",
                "dialled number '101'",
            ),
            (
                "utc_offset = \"+03:00\"",
                "utc_offset = \"MSK\"",
                "utc_offset 'MSK'",
            ),
        ];
        for (from, to, want) in cases {
            let e = Dialplan::parse(&PLAN.replacen(from, to, 1), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.starts_with("t.toml:"), "{e}");
        }
        let e = Dialplan::parse(
            &PLAN.replace(
                "then = { queue = \"night\", reason = \"holiday\" }",
                "then = {}",
            ),
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("rule 'christmas': has no action"), "{e}");
    }
}
