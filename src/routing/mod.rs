//! The dialplan: which dialled number goes to which queue, the context rules that can send a
//! known caller elsewhere, and the queues' settings. Loaded from TOML and validated up front;
//! errors name the file and line.

pub mod callback_policy;
mod menu;
mod prompt_file;
pub mod rules;
pub mod survey;

pub use callback_policy::CallbackPolicy;
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
    #[error("{file}:{line}: {msg}")]
    Invalid {
        file: String,
        line: usize,
        msg: String,
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
    widen: Vec<WidenToml>,
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
    utc_offset: Option<String>,
    /// …or as an IANA zone, which follows daylight saving (`Europe/Berlin`).
    #[serde(default)]
    timezone: Option<String>,
    /// Local dates `YYYY-MM-DD`.
    #[serde(default)]
    holidays: Vec<String>,
    survey: Option<survey::SurveyToml>,
    /// Which caller an agent in several queues gets first.
    #[serde(default)]
    cross_queue: crate::acd::CrossQueue,
    callback: Option<CallbackToml>,
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
    pub fn load(path: &Path) -> Result<Dialplan, DialplanError> {
        let (text, file) = crate::toml_source::read(path)
            .map_err(|(file, source)| DialplanError::Io { file, source })?;
        Dialplan::parse(&text, &file)
    }

    /// Parses and validates; `file` is used in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Dialplan, DialplanError> {
        let invalid = |line: usize, msg: String| DialplanError::Invalid {
            file: file.to_string(),
            line,
            msg,
        };
        let raw: DialplanToml = crate::toml_source::parse(text).map_err(|(l, m)| invalid(l, m))?;
        let line_of = |needle: &str| crate::toml_source::line_of(text, needle);
        // Tables with where they start; `line_in(start, key)`: the line of `key` in that table.
        fn split<T>(v: Vec<toml::Spanned<T>>) -> (Vec<usize>, Vec<T>) {
            v.into_iter()
                .map(|s| (s.span().start, s.into_inner()))
                .unzip()
        }
        let (queue_at, raw_queues) = split(raw.queues);
        let (number_at, raw_numbers) = split(raw.numbers);
        let (rule_at, raw_rules) = split(raw.rules);
        let (menu_at, raw_menus) = split(raw.menus);
        let line_in =
            |from: usize, needle: &str| crate::toml_source::line_after(text, from, needle);
        let mut queues = Vec::new();
        let mut answer = HashMap::new();
        for (qi, q) in raw_queues.iter().enumerate() {
            if q.name.is_empty() || q.skill.is_empty() {
                return Err(invalid(
                    line_in(queue_at[qi], "[[queue]]"),
                    "queue needs a name and a skill".into(),
                ));
            }
            if answer.insert(q.name.clone(), q.answer).is_some() {
                return Err(invalid(
                    line_in(queue_at[qi], "name"),
                    format!("queue '{}' is defined twice", q.name),
                ));
            }
            if q.ring_timeout_s == 0 || q.ring_timeout_s > 300 {
                return Err(invalid(
                    line_in(queue_at[qi], "ring_timeout_s"),
                    format!("queue '{}': ring_timeout_s must be 1..=300", q.name),
                ));
            }
            queues.push(QueueConfig {
                name: q.name.clone(),
                skill: q.skill.clone(),
                ring_timeout: Duration::from_secs(q.ring_timeout_s),
                retry_after: Duration::from_secs(q.retry_s),
                wrapup: Duration::from_secs(q.wrapup_s),
                strategy: q.strategy,
                autopause_after: q.autopause_after,
                max_wait: q.max_wait_s.map(Duration::from_secs),
                overflow: q.overflow.clone(),
                age: q.age_s.filter(|s| *s > 0).map(Duration::from_secs),
                max_len: q.max_len,
                join_empty: q.join_empty,
                leave_empty: q.leave_empty,
                min_level: q.min_level,
                widen: q
                    .widen
                    .iter()
                    .map(|w| crate::acd::Widen {
                        after: Duration::from_secs(w.after_s),
                        min_level: w.min_level,
                        skills: w.skill.iter().map(|s| (s.clone(), w.level)).collect(),
                    })
                    .collect(),
                weight: q.weight,
            });
        }
        for (qi, q) in raw_queues.iter().enumerate() {
            let at = line_in(queue_at[qi], "name");
            if q.leave_empty && q.overflow.is_none() {
                return Err(invalid(
                    at,
                    format!("queue '{}': leave_empty needs an overflow queue", q.name),
                ));
            }
            match (&q.max_wait_s, &q.overflow) {
                (Some(0), _) => {
                    return Err(invalid(
                        at,
                        format!("queue '{}': max_wait_s must be at least 1", q.name),
                    ))
                }
                (Some(_), None) if q.timeout_prompt.is_some() => {}
                (Some(_), None) => {
                    return Err(invalid(
                        at,
                        format!(
                            "queue '{}': max_wait_s needs an overflow queue or a timeout_prompt",
                            q.name
                        ),
                    ))
                }
                (_, Some(o)) if !answer.contains_key(o) || o == &q.name => {
                    return Err(invalid(
                        line_in(queue_at[qi], "overflow"),
                        format!(
                            "queue '{}': overflow to unknown or same queue '{o}'",
                            q.name
                        ),
                    ))
                }
                _ => {}
            }
        }
        for (qi, q) in raw_queues.iter().enumerate() {
            let mut last = 0;
            for w in &q.widen {
                let at = line_in(queue_at[qi], &format!("after_s = {}", w.after_s));
                if w.after_s <= last {
                    return Err(invalid(
                        at,
                        format!(
                            "queue '{}': widen steps need after_s above 0 and rising",
                            q.name
                        ),
                    ));
                }
                if w.min_level.is_none() && w.skill.is_none() {
                    return Err(invalid(
                        at,
                        format!("queue '{}': a widen step needs min_level or skill", q.name),
                    ));
                }
                last = w.after_s;
            }
        }
        let mut callback_keys = HashMap::new();
        for (qi, q) in raw_queues.iter().enumerate() {
            let Some(key) = &q.callback_key else { continue };
            let mut chars = key.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => {
                    callback_keys.insert(q.name.clone(), c);
                }
                _ => {
                    return Err(invalid(
                        line_in(queue_at[qi], "callback_key"),
                        format!(
                            "queue '{}': callback_key '{key}' must be one of 0-9, * or #",
                            q.name
                        ),
                    ))
                }
            }
        }
        let callback = match &raw.callback {
            None => CallbackPlan::default(),
            Some(c) => {
                let trunk = match &c.trunk {
                    None => None,
                    Some(t) => Some(t.parse().map_err(|_| {
                        invalid(
                            line_of("trunk"),
                            format!("callback trunk '{t}' must be IP:port, e.g. 192.0.2.10:5060"),
                        )
                    })?),
                };
                if c.attempts == 0 || c.dial_timeout_s == 0 {
                    return Err(invalid(
                        line_of("[callback]"),
                        "callback attempts and dial_timeout_s must be at least 1".to_string(),
                    ));
                }
                CallbackPlan {
                    trunk,
                    dial_timeout: Duration::from_secs(c.dial_timeout_s),
                    attempts: c.attempts,
                    retry: Duration::from_secs(c.retry_s),
                    policy: CallbackPolicy::new(
                        &c.allowed_prefixes,
                        c.untrusted,
                        c.max_per_number_per_day,
                        c.max_per_day,
                    )
                    .map_err(|m| invalid(line_of("allowed_prefixes"), m))?,
                }
            }
        };
        let mut numbers = HashMap::new();
        for (ni, n) in raw_numbers.iter().enumerate() {
            let at = line_in(number_at[ni], "dial");
            if !answer.contains_key(&n.queue) {
                return Err(invalid(
                    line_in(number_at[ni], "queue"),
                    format!("number '{}' routes to unknown queue '{}'", n.dial, n.queue),
                ));
            }
            if numbers
                .insert(n.dial.clone(), (n.queue.clone(), n.priority))
                .is_some()
            {
                return Err(invalid(at, format!("number '{}' is listed twice", n.dial)));
            }
        }
        let utc_offset_min = match &raw.utc_offset {
            None => 0,
            Some(o) => parse_offset(o).ok_or_else(|| {
                invalid(
                    line_of("utc_offset"),
                    format!("utc_offset '{o}' must look like +03:00 or -05:00"),
                )
            })?,
        };
        let zone = match &raw.timezone {
            None => None,
            Some(_) if raw.utc_offset.is_some() => {
                return Err(invalid(
                    line_of("timezone"),
                    "set timezone or utc_offset, not both".into(),
                ))
            }
            Some(name) => Some(rules::Zone::get(name).ok_or_else(|| {
                invalid(
                    line_of("timezone"),
                    format!("timezone '{name}' is not an IANA time zone (e.g. Europe/Berlin)"),
                )
            })?),
        };
        for h in &raw.holidays {
            if crate::context::time::parse_iso8601(h).is_none() || h.len() != 10 {
                return Err(invalid(
                    line_of(h),
                    format!("holiday '{h}' must be a date YYYY-MM-DD"),
                ));
            }
        }
        for (ri, r) in raw_rules.iter().enumerate() {
            let at = line_in(rule_at[ri], "name");
            let bad = |msg: String| invalid(at, format!("rule '{}': {msg}", r.name));
            if let Some(q) = &r.then.queue {
                if !answer.contains_key(q) {
                    return Err(bad(format!("unknown queue '{q}'")));
                }
            }
            if r.then == rules::Then::default() {
                return Err(bad("has no action (then.queue, then.priority, …)".into()));
            }
            if r.when.campaign_within_min.is_some_and(|m| m <= 0)
                || r.when.last_agent_within_days.is_some_and(|d| d <= 0)
            {
                return Err(bad("time limits must be positive".into()));
            }
            if let Some(sk) = &r.then.skills {
                crate::context::parse_skills(&sk.join(","))
                    .map_err(|e| bad(format!("skills: {e}")))?;
            }
            if let Some(h) = &r.when.hours {
                if rules::parse_hours(h).is_none() {
                    return Err(bad(format!("hours '{h}' must look like 08:00-18:00")));
                }
            }
            for d in r.when.weekdays.iter().flatten() {
                if !rules::WEEKDAYS.contains(&d.to_ascii_lowercase().as_str()) {
                    return Err(bad(format!(
                        "weekday '{d}' is not one of {:?}",
                        rules::WEEKDAYS
                    )));
                }
            }
            for n in r.when.dialed.iter().flatten() {
                if !numbers.contains_key(n) {
                    return Err(bad(format!("dialled number '{n}' is not a [[number]]")));
                }
            }
        }
        let menu_names: std::collections::HashSet<&str> =
            raw_menus.iter().map(|m| m.name.as_str()).collect();
        let base = Path::new(file).parent().unwrap_or(Path::new("."));
        let mut menus = HashMap::new();
        for (mi, m) in raw_menus.iter().enumerate() {
            let built = m
                .build(base, |q| answer.contains_key(q), |n| menu_names.contains(n))
                .map_err(|e| {
                    invalid(
                        line_in(menu_at[mi], "name"),
                        format!("menu '{}': {e}", m.name),
                    )
                })?;
            if menus.insert(m.name.clone(), built).is_some() {
                return Err(invalid(
                    line_in(menu_at[mi], "name"),
                    format!("menu '{}' is defined twice", m.name),
                ));
            }
        }
        let mut rule_prompts = HashMap::new();
        for (ri, r) in raw_rules.iter().enumerate() {
            if let Some(p) = &r.then.prompt {
                let prompt = prompt_file::load(base, p).map_err(|e| {
                    invalid(
                        line_in(rule_at[ri], "name"),
                        format!("rule '{}': prompt {e}", r.name),
                    )
                })?;
                rule_prompts.insert(r.name.clone(), prompt);
            }
        }
        let mut number_menu = HashMap::new();
        for (ni, n) in raw_numbers.iter().enumerate() {
            if let Some(m) = &n.menu {
                if !menus.contains_key(m) {
                    return Err(invalid(
                        line_in(number_at[ni], "menu"),
                        format!("number '{}' uses unknown menu '{m}'", n.dial),
                    ));
                }
                number_menu.insert(n.dial.clone(), m.clone());
            }
        }
        let survey = match &raw.survey {
            Some(s) => s
                .build(base, |q| answer.contains_key(q))
                .map_err(|e| invalid(line_of("[survey]"), e))?,
            None => None,
        };
        let record = raw_queues
            .iter()
            .filter(|q| q.record)
            .map(|q| q.name.clone())
            .collect();
        let mut announce = HashMap::new();
        let mut voices: HashMap<std::path::PathBuf, std::sync::Arc<crate::media::voice::Voice>> =
            HashMap::new();
        for (qi, q) in raw_queues.iter().enumerate() {
            if let Some(first) = q.announce_position_s {
                let every = q.announce_every_s.unwrap_or(first);
                if first == 0 || every < 5 {
                    return Err(invalid(
                        line_in(queue_at[qi], "announce_"),
                        format!(
                            "queue '{}': announce_position_s must be at least 1 and announce_every_s at least 5",
                            q.name
                        ),
                    ));
                }
                let voice = match &q.announce_voice {
                    None => None,
                    Some(dir) => {
                        let dir = base.join(dir);
                        match voices.get(&dir) {
                            Some(v) => Some(std::sync::Arc::clone(v)),
                            None => {
                                let v = crate::media::voice::Voice::load(&dir).map_err(|e| {
                                    invalid(
                                        line_in(queue_at[qi], "announce_voice"),
                                        format!("queue '{}': announce_voice {e}", q.name),
                                    )
                                })?;
                                let v = std::sync::Arc::new(v);
                                voices.insert(dir, std::sync::Arc::clone(&v));
                                Some(v)
                            }
                        }
                    }
                };
                announce.insert(
                    q.name.clone(),
                    Announce {
                        first: Duration::from_secs(first),
                        every: Duration::from_secs(every),
                        voice,
                    },
                );
            }
        }
        let mut messages = HashMap::new();
        for (qi, q) in raw_queues.iter().enumerate() {
            let Some(path) = &q.message else { continue };
            let every = q.message_every_s.unwrap_or(45);
            let at = line_in(queue_at[qi], "message");
            if every < 5 {
                return Err(invalid(
                    at,
                    format!("queue '{}': message_every_s must be at least 5", q.name),
                ));
            }
            let prompt = prompt_file::load(base, path)
                .map_err(|e| invalid(at, format!("queue '{}': message {e}", q.name)))?;
            messages.insert(q.name.clone(), (prompt, Duration::from_secs(every)));
        }
        let mut timeout_prompts = HashMap::new();
        for (qi, q) in raw_queues.iter().enumerate() {
            let Some(path) = &q.timeout_prompt else {
                continue;
            };
            let prompt = prompt_file::load(base, path).map_err(|e| {
                invalid(
                    line_in(queue_at[qi], "timeout_prompt"),
                    format!("queue '{}': timeout_prompt {e}", q.name),
                )
            })?;
            timeout_prompts.insert(q.name.clone(), prompt);
        }
        Ok(Dialplan {
            survey,
            record,
            announce,
            messages,
            timeout_prompts,
            queues,
            answer,
            numbers,
            number_menu,
            menus,
            rule_prompts,
            rules: raw_rules,
            cross_queue: raw.cross_queue,
            callback,
            callback_keys,
            calendar: rules::Calendar {
                utc_offset_min,
                zone,
                holidays: raw.holidays,
            },
        })
    }

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
