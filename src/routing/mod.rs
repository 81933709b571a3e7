//! The dialplan: which dialled number goes to which queue, the context rules that can send a
//! known caller elsewhere, and the queues' settings. Loaded from TOML and validated up front;
//! errors name the file and line.

pub mod callback_policy;
mod load;
mod menu;
mod prompt_file;
pub mod rules;
pub mod survey;

pub use callback_policy::CallbackPolicy;
pub use load::Problem;
pub use menu::{Menu, Target, AGENT_FALLBACK_S};

use crate::acd::QueueConfig;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DialplanError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    /// Every mistake of the file, each `file:line: msg` on a line of its own.
    #[error("{}", load::render(file, problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

/// When the caller's INVITE gets its 200 OK.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerMode {
    /// Answer at once and play prompts/hold music in the call (Asterisk's Answer()+Queue()).
    #[default]
    Immediate,
    /// Play hold music as early media (183) and answer only when an agent does; the caller pays
    /// nothing while waiting and can CANCEL.
    EarlyMedia,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueToml {
    name: String,
    skill: String,
    #[serde(default = "default_ring")]
    ring_timeout_s: u64,
    #[serde(default = "default_retry")]
    retry_s: u64,
    /// After-call work time; 0 = the agent is free as soon as the call ends.
    #[serde(default)]
    wrapup_s: u64,
    /// longest-idle (default) or ring-all.
    #[serde(default)]
    strategy: crate::acd::Strategy,
    /// Record this queue's conversations (to `media.recordings_dir`).
    #[serde(default)]
    record: bool,
    /// Pause an agent after this many offers in a row rang out (0: never).
    #[serde(default)]
    autopause_after: u32,
    /// After this long in the queue a caller moves to `overflow`.
    max_wait_s: Option<u64>,
    overflow: Option<String>,
    /// Priority ageing: one priority point per this many seconds waited.
    age_s: Option<u64>,
    /// Tell waiting callers their position and expected wait, first after this many seconds…
    announce_position_s: Option<u64>,
    /// … then every this many (default: the same).
    announce_every_s: Option<u64>,
    /// A folder of recorded words (`you-are-caller.wav`, `0.wav` …) to speak announcements.
    announce_voice: Option<std::path::PathBuf>,
    /// A recording played to waiting callers every `message_every_s` ("thank you for holding").
    message: Option<std::path::PathBuf>,
    message_every_s: Option<u64>,
    /// At most this many callers waiting; more go to `overflow` or are turned away.
    max_len: Option<usize>,
    /// Callers may join while no agent is logged in (default true).
    #[serde(default = "yes")]
    join_empty: bool,
    /// When the last agent logs out, waiting callers move to `overflow`.
    #[serde(default)]
    leave_empty: bool,
    #[serde(default)]
    answer: AnswerMode,
    /// Agents need at least this level in `skill` (0: any).
    #[serde(default)]
    min_level: u8,
    /// Steps that widen the search as a caller waits.
    #[serde(default)]
    widen: Vec<toml::Spanned<WidenToml>>,
    /// With `cross_queue = "queue-weight"`, agents serve higher weights first.
    #[serde(default)]
    weight: i32,
    /// The key a waiting caller presses to hang up and be called back in their turn.
    callback_key: Option<String>,
    /// Without an overflow queue: what a caller hears at `max_wait_s` before being let go.
    timeout_prompt: Option<std::path::PathBuf>,
}

/// `[callback]`: how callers who asked for one are called back.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackToml {
    trunk: Option<String>,
    #[serde(default = "default_dial")]
    dial_timeout_s: u64,
    #[serde(default = "default_attempts")]
    attempts: u32,
    #[serde(default = "default_callback_retry")]
    retry_s: u64,
    /// Numbers a callback may dial through the trunk start with one of these (E.164, "+44");
    /// empty: the configured country's calling code.
    #[serde(default)]
    allowed_prefixes: Vec<String>,
    /// A caller whose number no trunk vouches for: "refuse" (the key does nothing), or
    /// "contact" (called back only at their own call's Contact, never through the trunk).
    #[serde(default)]
    untrusted: callback_policy::Untrusted,
    #[serde(default = "callback_policy::default_per_number")]
    max_per_number_per_day: u32,
    #[serde(default = "callback_policy::default_per_day")]
    max_per_day: u32,
}

fn default_dial() -> u64 {
    30
}
fn default_attempts() -> u32 {
    3
}
fn default_callback_retry() -> u64 {
    120
}

/// How callers who pressed the callback key are called back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackPlan {
    /// The SIP trunk or gateway outbound calls go to (`sip:NUMBER@trunk`); `None`: straight to
    /// the Contact of the caller's own call, from where it came.
    pub trunk: Option<std::net::SocketAddr>,
    /// How long the customer's phone rings.
    pub dial_timeout: Duration,
    /// Tries before giving up.
    pub attempts: u32,
    /// Wait between tries (the caller keeps their place meanwhile).
    pub retry: Duration,
    /// Who may be called back, where, and how often (toll-fraud limits).
    pub policy: CallbackPolicy,
}

impl Default for CallbackPlan {
    fn default() -> Self {
        CallbackPlan {
            trunk: None,
            dial_timeout: Duration::from_secs(default_dial()),
            attempts: default_attempts(),
            retry: Duration::from_secs(default_callback_retry()),
            policy: CallbackPolicy::default(),
        }
    }
}

/// `[[queue.widen]]`: after `after_s` in the queue, accept `min_level` in the queue's skill
/// and/or agents with `skill` at `level`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WidenToml {
    after_s: u64,
    min_level: Option<u8>,
    skill: Option<String>,
    #[serde(default)]
    level: u8,
}

fn default_ring() -> u64 {
    15
}
fn default_retry() -> u64 {
    5
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberToml {
    dial: String,
    queue: String,
    #[serde(default)]
    priority: i32,
    /// The IVR menu for callers no rule sends straight to a queue.
    #[serde(default)]
    menu: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DialplanToml {
    // Spanned: a semantic error names the line in the table it is about, not the first
    // occurrence of the key anywhere in the file.
    #[serde(default, rename = "queue")]
    queues: Vec<toml::Spanned<QueueToml>>,
    #[serde(default, rename = "number")]
    numbers: Vec<toml::Spanned<NumberToml>>,
    #[serde(default, rename = "rule")]
    rules: Vec<toml::Spanned<rules::Rule>>,
    #[serde(default, rename = "menu")]
    menus: Vec<toml::Spanned<menu::MenuToml>>,
    /// Local time for rule `hours`/`weekdays`/`holiday`, as `+HH:MM` east of UTC…
    #[serde(default)]
    utc_offset: Option<toml::Spanned<String>>,
    /// …or as an IANA zone, which follows daylight saving (`Europe/Berlin`).
    #[serde(default)]
    timezone: Option<toml::Spanned<String>>,
    /// Local dates `YYYY-MM-DD`.
    #[serde(default)]
    holidays: Vec<toml::Spanned<String>>,
    survey: Option<toml::Spanned<survey::SurveyToml>>,
    /// Which caller an agent in several queues gets first.
    #[serde(default)]
    cross_queue: crate::acd::CrossQueue,
    callback: Option<toml::Spanned<CallbackToml>>,
}

/// Position announcements of one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    pub first: Duration,
    pub every: Duration,
    /// Recorded words to speak it with; `None`: the built-in tones.
    pub voice: Option<std::sync::Arc<crate::media::voice::Voice>>,
}

fn yes() -> bool {
    true
}

/// Where a dialled number goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub queue: String,
    pub priority: i32,
    pub answer: AnswerMode,
}

/// A validated dialplan.
#[derive(Clone, Debug)]
pub struct Dialplan {
    pub queues: Vec<QueueConfig>,
    /// Which caller an agent in several queues gets first.
    pub cross_queue: crate::acd::CrossQueue,
    /// How callbacks are placed.
    pub callback: CallbackPlan,
    /// Queues that offer a callback, and the key for it.
    callback_keys: HashMap<String, char>,
    /// The post-call survey, when enabled.
    pub survey: Option<survey::Survey>,
    /// Queues whose conversations are recorded.
    record: std::collections::HashSet<String>,
    /// Queues that announce position and expected wait.
    announce: HashMap<String, Announce>,
    /// What callers hear before being let go at a queue's maximum wait (no overflow).
    timeout_prompts: HashMap<String, crate::media::prompt::PromptRef>,
    /// Queues that play a recorded message to waiting callers, and how often.
    messages: HashMap<String, (crate::media::prompt::PromptRef, Duration)>,
    answer: HashMap<String, AnswerMode>,
    numbers: HashMap<String, (String, i32)>,
    number_menu: HashMap<String, String>,
    menus: HashMap<String, Menu>,
    rule_prompts: HashMap<String, crate::media::prompt::PromptRef>,
    rules: Vec<rules::Rule>,
    calendar: rules::Calendar,
}

/// Where a call goes and why, with the trace of every rule tried.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub queue: String,
    pub priority: i32,
    pub skills: Vec<String>,
    pub skip_ivr: bool,
    /// The rule that matched, if any.
    pub rule: Option<String>,
    pub reason: String,
    pub preferred_agent: Option<String>,
    /// Seconds the call is kept for the preferred agent.
    pub fallback_s: u64,
    /// A recording the rule plays before hold music.
    #[serde(skip)]
    pub prompt: Option<crate::media::prompt::PromptRef>,
    /// Extra fields for the agent's screen pop.
    pub pop: std::collections::BTreeMap<String, String>,
    /// Skills beyond the queue's the agent must have, with minimum levels.
    #[serde(skip)]
    pub required: Vec<(String, u8)>,
    /// The menu the caller hears first (when no rule skipped it and the number has one).
    pub menu: Option<String>,
    pub trace: Vec<rules::RuleTrace>,
}

impl Dialplan {
    /// What `queue` plays to a caller it lets go at its maximum wait, if anything.
    pub fn timeout_prompt(&self, queue: &str) -> Option<&crate::media::prompt::PromptRef> {
        self.timeout_prompts.get(queue)
    }

    /// The key that asks for a callback in `queue`, if it offers one.
    pub fn callback_key(&self, queue: &str) -> Option<char> {
        self.callback_keys.get(queue).copied()
    }

    /// The recording `queue` plays to waiting callers and how often, if any.
    pub fn message(&self, queue: &str) -> Option<&(crate::media::prompt::PromptRef, Duration)> {
        self.messages.get(queue)
    }

    /// When `queue` tells waiting callers their position, if it does.
    pub fn announcements(&self, queue: &str) -> Option<&Announce> {
        self.announce.get(queue)
    }

    /// Whether `queue`'s conversations are recorded.
    pub fn records(&self, queue: &str) -> bool {
        self.record.contains(queue)
    }

    /// Routes a call: the first matching rule, else the dialled number's queue. `None` when the
    /// number is not in the plan.
    pub fn decide(&self, input: &rules::Input) -> Option<Decision> {
        let (default_queue, default_priority) = self.numbers.get(input.dialed)?;
        let (hit, trace) = rules::evaluate(&self.rules, input, &self.calendar);
        let queue = hit
            .as_ref()
            .and_then(|m| m.queue.clone())
            .unwrap_or_else(|| default_queue.clone());
        let skills = self
            .queues
            .iter()
            .find(|q| q.name == queue)
            .map(|q| vec![q.skill.clone()])
            .unwrap_or_default();
        let mut skills = skills;
        if let Some(m) = &hit {
            skills.extend(m.skills.iter().cloned());
        }
        Some(match hit {
            Some(m) => Decision {
                queue,
                priority: m.priority.unwrap_or(*default_priority),
                skills,
                skip_ivr: m.skip_ivr,
                menu: (!m.skip_ivr)
                    .then(|| self.number_menu.get(input.dialed).cloned())
                    .flatten(),
                rule: Some(m.rule.clone()),
                reason: m.reason,
                preferred_agent: m.preferred_agent,
                required: crate::context::parse_skills(&m.skills.join(",")).unwrap_or_default(),
                prompt: self.rule_prompts.get(&m.rule).cloned(),
                pop: m.pop.clone(),
                fallback_s: m.fallback_s,
                trace,
            },
            None => Decision {
                queue,
                priority: *default_priority,
                skills,
                skip_ivr: false,
                menu: self.number_menu.get(input.dialed).cloned(),
                rule: None,
                reason: match self.number_menu.get(input.dialed) {
                    Some(m) => format!("no rule matched: menu '{m}'"),
                    None => "no rule matched: the number's queue".into(),
                },
                preferred_agent: None,
                required: Vec::new(),
                prompt: None,
                pop: Default::default(),
                fallback_s: 0,
                trace,
            },
        })
    }

    /// The route for a dialled number (the Request-URI user part).
    pub fn route(&self, dialed: &str) -> Option<Route> {
        let (queue, priority) = self.numbers.get(dialed)?;
        Some(Route {
            queue: queue.clone(),
            priority: *priority,
            answer: self.answer.get(queue).copied().unwrap_or_default(),
        })
    }

    pub fn menu(&self, name: &str) -> Option<&Menu> {
        self.menus.get(name)
    }

    pub fn numbers(&self) -> impl Iterator<Item = (&String, &String)> {
        self.numbers.iter().map(|(k, (q, _))| (k, q))
    }
}

fn parse_offset(o: &str) -> Option<i64> {
    let sign = match o.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = o[1..].split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60).then_some(sign * (h * 60 + m))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"

[[queue]]
name = "support"
skill = "support"
answer = "early-media"

[[number]]
dial = "100"
queue = "sales"

[[number]]
dial = "200"
queue = "support"
"#;

    #[test]
    fn routes_numbers_to_queues() {
        let d = Dialplan::parse(PLAN, "t.toml").unwrap();
        assert_eq!(d.route("100").unwrap().queue, "sales");
        assert_eq!(d.route("200").unwrap().answer, AnswerMode::EarlyMedia);
        assert!(d.route("300").is_none());
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = PLAN.replace("queue = \"support\"", "queue = \"nosuch\"");
        let e = Dialplan::parse(&bad, "t.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "t.toml:17: number '200' routes to unknown queue 'nosuch'"
        );
        let e = Dialplan::parse("[[queue]]\nname = 1\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.toml:2:"), "{e}");
        let e = Dialplan::parse(
            "[[queue]]\nname = \"a\"\nskill = \"b\"\ncolour = 1\n",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("x.toml:4:") && e.contains("colour"), "{e}");
    }

    /// The error names the line in the table at fault, not the key's first use in the file.
    #[test]
    fn errors_point_at_the_table_at_fault() {
        let plan = "[[queue]]\nname = \"a\"\nskill = \"a\"\nring_timeout_s = 20\n\
                    [[queue]]\nname = \"b\"\nskill = \"b\"\nring_timeout_s = 0\n\
                    [[number]]\ndial = \"1\"\nqueue = \"a\"\n\
                    [[number]]\ndial = \"2\"\nqueue = \"zz\"\n";
        let e = Dialplan::parse(plan, "p.toml").unwrap_err().to_string();
        assert!(e.starts_with("p.toml:8: queue 'b'"), "{e}");
        let plan = plan.replace("ring_timeout_s = 0", "ring_timeout_s = 30");
        let e = Dialplan::parse(&plan, "p.toml").unwrap_err().to_string();
        assert_eq!(e, "p.toml:14: number '2' routes to unknown queue 'zz'");
    }

    /// Every mistake of a file at once, in file order, each at its own line.
    #[test]
    fn every_mistake_is_reported_at_once_at_its_own_line() {
        let plan = "holidays = [\"2026-12-25\", \"2026-13-01\"]\n\
                    [[queue]]\nname = \"a\"\nskill = \"a\"\nring_timeout_s = 0\n\
                    [[queue]]\nname = \"b\"\nskill = \"b\"\nring_timeout_s = 0\n\
                    [[number]]\ndial = \"1\"\nqueue = \"zz\"\n";
        let e = Dialplan::parse(plan, "m.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "m.toml:1: holiday '2026-13-01' must be a date YYYY-MM-DD\n\
             m.toml:5: queue 'a': ring_timeout_s must be 1..=300\n\
             m.toml:9: queue 'b': ring_timeout_s must be 1..=300\n\
             m.toml:12: number '1' routes to unknown queue 'zz'"
        );
        // The step at fault, not the first line with the same text: both say after_s = 30.
        let plan = "[[queue]]\nname = \"s\"\nskill = \"s\"\n\
                    [[queue.widen]]\nafter_s = 30\nmin_level = 1\n\
                    [[queue.widen]]\nafter_s = 30\nmin_level = 0\n";
        let e = Dialplan::parse(plan, "w.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "w.toml:8: queue 's': widen steps need after_s above 0 and rising"
        );
    }

    #[test]
    fn overflow_needs_a_real_other_queue() {
        let plan = "[[queue]]\nname = \"a\"\nskill = \"a\"\nmax_wait_s = 60\n[[queue]]\nname = \"b\"\nskill = \"b\"\n";
        let e = Dialplan::parse(plan, "o.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "o.toml:2: queue 'a': max_wait_s needs an overflow queue or a timeout_prompt"
        );
        let plan = plan.replace("max_wait_s = 60", "max_wait_s = 60\noverflow = \"c\"");
        let e = Dialplan::parse(&plan, "o.toml").unwrap_err().to_string();
        assert!(e.starts_with("o.toml:5:") && e.contains("'c'"), "{e}");
        let ok = plan.replace(
            "overflow = \"c\"",
            "overflow = \"b\"\nstrategy = \"round-robin\"\nautopause_after = 3",
        );
        let d = Dialplan::parse(&ok, "o.toml").unwrap();
        let a = d.queues.iter().find(|q| q.name == "a").unwrap();
        assert_eq!(a.overflow.as_deref(), Some("b"));
        assert_eq!(a.strategy, crate::acd::Strategy::RoundRobin);
        assert_eq!(a.autopause_after, 3);
    }

    #[test]
    fn widening_steps_are_read_in_order_and_checked() {
        let plan = "cross_queue = \"queue-weight\"\n[[queue]]\nname = \"s\"\nskill = \"support\"\nmin_level = 4\nweight = 3\n\
                    [[queue.widen]]\nafter_s = 30\nmin_level = 1\n\
                    [[queue.widen]]\nafter_s = 90\nskill = \"billing\"\nlevel = 2\n";
        let d = Dialplan::parse(plan, "w.toml").unwrap();
        assert_eq!(d.cross_queue, crate::acd::CrossQueue::QueueWeight);
        let q = &d.queues[0];
        assert_eq!((q.min_level, q.weight), (4, 3));
        assert_eq!(q.widen.len(), 2);
        assert_eq!(q.widen[0].min_level, Some(1));
        assert_eq!(q.widen[1].skills, vec![("billing".to_string(), 2)]);
        assert_eq!(q.widen[1].after, Duration::from_secs(90));

        let bad = plan.replace("after_s = 90", "after_s = 20");
        let e = Dialplan::parse(&bad, "w.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "w.toml:11: queue 's': widen steps need after_s above 0 and rising"
        );
        let bad = plan.replace("after_s = 30\nmin_level = 1", "after_s = 30");
        let e = Dialplan::parse(&bad, "w.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "w.toml:8: queue 's': a widen step needs min_level or skill"
        );
    }

    #[test]
    fn callback_settings_are_checked() {
        let plan = "[callback]\ntrunk = \"127.0.0.1:5070\"\nattempts = 2\n[[queue]]\nname = \"s\"\nskill = \"s\"\ncallback_key = \"*\"\n";
        let d = Dialplan::parse(plan, "c.toml").unwrap();
        assert_eq!(d.callback_key("s"), Some('*'));
        assert_eq!(d.callback.attempts, 2);
        assert_eq!(d.callback.trunk, Some("127.0.0.1:5070".parse().unwrap()));
        assert_eq!(d.callback.retry, Duration::from_secs(120));
        let e = Dialplan::parse(&plan.replace("\"*\"", "\"12\""), "c.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "c.toml:7: queue 's': callback_key '12' must be one of 0-9, * or #"
        );
        let e = Dialplan::parse(&plan.replace("127.0.0.1:5070", "pbx.example"), "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml:2: callback trunk 'pbx.example'"),
            "{e}"
        );
    }
}
