//! Reading a dialplan: the TOML, every check over it, then the recordings it names. Every
//! mistake of a file is reported at once, each at the line it is on (tables and the values
//! inside them are `toml::Spanned`), so an operator fixes a broken plan in one round instead
//! of one error per reload. The checks never touch the disk; the files (prompts, voices, menu
//! recordings) are read after them, relative to the dialplan's folder.

use super::*;
use crate::toml_source::line_after;
use toml::Spanned;

/// One mistake in a dialplan file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub msg: String,
}

/// `file:line: msg`, one line per problem, in file order.
pub(super) fn render(file: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{file}:{}: {}", p.line, p.msg))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The problems found so far.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, line: usize, msg: impl Into<String>) {
        self.0.push(Problem {
            line,
            msg: msg.into(),
        });
    }

    /// `r`'s value, or `None` with its error added at `line`.
    fn ok<T>(&mut self, line: usize, r: Result<T, String>) -> Option<T> {
        r.map_err(|m| self.add(line, m)).ok()
    }
}

/// Where a spanned value is: its 1-based line.
fn line_of<T>(text: &str, s: &Spanned<T>) -> usize {
    line_after(text, s.span().start, "")
}

impl Dialplan {
    /// Reads `path` and everything it names.
    pub fn load(path: &Path) -> Result<Dialplan, DialplanError> {
        let (text, file) = crate::toml_source::read(path)
            .map_err(|(file, source)| DialplanError::Io { file, source })?;
        Dialplan::parse(&text, &file)
    }

    /// Parses and validates `text`; `file` names it in errors and its folder is where the
    /// recordings it names are read from.
    pub fn parse(text: &str, file: &str) -> Result<Dialplan, DialplanError> {
        let fail = |problems: Vec<Problem>| DialplanError::Invalid {
            file: file.to_string(),
            problems,
        };
        let raw: DialplanToml = crate::toml_source::parse(text)
            .map_err(|(line, msg)| fail(vec![Problem { line, msg }]))?;
        let mut p = Problems::default();
        let checked = check(&raw, text, &mut p);
        let base = Path::new(file).parent().unwrap_or(Path::new("."));
        let files = read_files(&raw, text, base, &checked, &mut p);
        if !p.0.is_empty() {
            let mut all = p.0;
            all.sort_by_key(|x| x.line);
            all.dedup();
            return Err(fail(all));
        }
        Ok(assemble(raw, checked, files))
    }
}

/// What the checks made of the plan (everything but the recordings).
struct Checked {
    queues: Vec<QueueConfig>,
    answer: HashMap<String, AnswerMode>,
    callback_keys: HashMap<String, char>,
    callback: CallbackPlan,
    numbers: HashMap<String, (String, i32)>,
    number_menu: HashMap<String, String>,
    calendar: rules::Calendar,
}

/// The recordings the plan names, read.
#[derive(Default)]
struct Files {
    menus: HashMap<String, Menu>,
    rule_prompts: HashMap<String, crate::media::prompt::PromptRef>,
    survey: Option<survey::Survey>,
    announce: HashMap<String, Announce>,
    messages: HashMap<String, (crate::media::prompt::PromptRef, Duration)>,
    timeout_prompts: HashMap<String, crate::media::prompt::PromptRef>,
}

/// The names of the plan's menus (what numbers and menu options may point at).
fn menu_names(raw: &DialplanToml) -> std::collections::HashSet<&str> {
    raw.menus
        .iter()
        .map(|m| m.get_ref().name.as_str())
        .collect()
}

fn check(raw: &DialplanToml, text: &str, p: &mut Problems) -> Checked {
    let line_in = |at: usize, needle: &str| line_after(text, at, needle);
    let mut queues = Vec::new();
    let mut answer = HashMap::new();
    for sq in &raw.queues {
        let (at, q) = (sq.span().start, sq.get_ref());
        if q.name.is_empty() || q.skill.is_empty() {
            p.add(line_in(at, "[[queue]]"), "queue needs a name and a skill");
            continue;
        }
        if answer.insert(q.name.clone(), q.answer).is_some() {
            p.add(
                line_in(at, "name"),
                format!("queue '{}' is defined twice", q.name),
            );
            continue;
        }
        if q.ring_timeout_s == 0 || q.ring_timeout_s > 300 {
            p.add(
                line_in(at, "ring_timeout_s"),
                format!("queue '{}': ring_timeout_s must be 1..=300", q.name),
            );
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
                .map(|w| w.get_ref())
                .map(|w| crate::acd::Widen {
                    after: Duration::from_secs(w.after_s),
                    min_level: w.min_level,
                    skills: w.skill.iter().map(|s| (s.clone(), w.level)).collect(),
                })
                .collect(),
            weight: q.weight,
        });
    }
    let mut callback_keys = HashMap::new();
    for sq in &raw.queues {
        let (at, q) = (sq.span().start, sq.get_ref());
        let named = line_in(at, "name");
        if q.leave_empty && q.overflow.is_none() {
            p.add(
                named,
                format!("queue '{}': leave_empty needs an overflow queue", q.name),
            );
        }
        match (&q.max_wait_s, &q.overflow) {
            (Some(0), _) => p.add(
                named,
                format!("queue '{}': max_wait_s must be at least 1", q.name),
            ),
            (Some(_), None) if q.timeout_prompt.is_some() => {}
            (Some(_), None) => p.add(
                named,
                format!(
                    "queue '{}': max_wait_s needs an overflow queue or a timeout_prompt",
                    q.name
                ),
            ),
            (_, Some(o)) if !answer.contains_key(o) || o == &q.name => p.add(
                line_in(at, "overflow"),
                format!(
                    "queue '{}': overflow to unknown or same queue '{o}'",
                    q.name
                ),
            ),
            _ => {}
        }
        let mut last = 0;
        for sw in &q.widen {
            let (w, line) = (sw.get_ref(), line_in(sw.span().start, "after_s"));
            if w.after_s <= last {
                p.add(
                    line,
                    format!(
                        "queue '{}': widen steps need after_s above 0 and rising",
                        q.name
                    ),
                );
            }
            if w.min_level.is_none() && w.skill.is_none() {
                p.add(
                    line,
                    format!("queue '{}': a widen step needs min_level or skill", q.name),
                );
            }
            last = last.max(w.after_s);
        }
        if let Some(key) = &q.callback_key {
            let mut chars = key.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => {
                    callback_keys.insert(q.name.clone(), c);
                }
                _ => p.add(
                    line_in(at, "callback_key"),
                    format!(
                        "queue '{}': callback_key '{key}' must be one of 0-9, * or #",
                        q.name
                    ),
                ),
            }
        }
        if let Some(first) = q.announce_position_s {
            if first == 0 || q.announce_every_s.unwrap_or(first) < 5 {
                p.add(
                    line_in(at, "announce_"),
                    format!(
                        "queue '{}': announce_position_s must be at least 1 and announce_every_s at least 5",
                        q.name
                    ),
                );
            }
        }
        if q.message.is_some() && q.message_every_s.is_some_and(|e| e < 5) {
            p.add(
                line_in(at, "message"),
                format!("queue '{}': message_every_s must be at least 5", q.name),
            );
        }
    }
    let callback = match &raw.callback {
        None => CallbackPlan::default(),
        Some(sc) => {
            let (at, c) = (sc.span().start, sc.get_ref());
            let trunk = c.trunk.as_ref().and_then(|t| {
                p.ok(
                    line_in(at, "trunk"),
                    t.parse().map_err(|_| {
                        format!("callback trunk '{t}' must be IP:port, e.g. 192.0.2.10:5060")
                    }),
                )
            });
            if c.attempts == 0 || c.dial_timeout_s == 0 {
                p.add(
                    line_of(text, sc),
                    "callback attempts and dial_timeout_s must be at least 1",
                );
            }
            let policy = p.ok(
                line_in(at, "allowed_prefixes"),
                CallbackPolicy::new(
                    &c.allowed_prefixes,
                    c.untrusted,
                    c.max_per_number_per_day,
                    c.max_per_day,
                ),
            );
            CallbackPlan {
                trunk,
                dial_timeout: Duration::from_secs(c.dial_timeout_s),
                attempts: c.attempts,
                retry: Duration::from_secs(c.retry_s),
                policy: policy.unwrap_or_default(),
            }
        }
    };
    let menus = menu_names(raw);
    let mut numbers = HashMap::new();
    let mut number_menu = HashMap::new();
    for sn in &raw.numbers {
        let (at, n) = (sn.span().start, sn.get_ref());
        if !answer.contains_key(&n.queue) {
            p.add(
                line_in(at, "queue"),
                format!("number '{}' routes to unknown queue '{}'", n.dial, n.queue),
            );
        }
        if numbers
            .insert(n.dial.clone(), (n.queue.clone(), n.priority))
            .is_some()
        {
            p.add(
                line_in(at, "dial"),
                format!("number '{}' is listed twice", n.dial),
            );
        }
        if let Some(m) = &n.menu {
            if !menus.contains(m.as_str()) {
                p.add(
                    line_in(at, "menu"),
                    format!("number '{}' uses unknown menu '{m}'", n.dial),
                );
            }
            number_menu.insert(n.dial.clone(), m.clone());
        }
    }
    let utc_offset_min = match &raw.utc_offset {
        None => 0,
        Some(o) => match parse_offset(o.get_ref()) {
            Some(m) => m,
            None => {
                p.add(
                    line_of(text, o),
                    format!(
                        "utc_offset '{}' must look like +03:00 or -05:00",
                        o.get_ref()
                    ),
                );
                0
            }
        },
    };
    let zone = match &raw.timezone {
        None => None,
        Some(z) if raw.utc_offset.is_some() => {
            p.add(line_of(text, z), "set timezone or utc_offset, not both");
            None
        }
        Some(z) => {
            let name = z.get_ref();
            let zone = rules::Zone::get(name);
            if zone.is_none() {
                p.add(
                    line_of(text, z),
                    format!("timezone '{name}' is not an IANA time zone (e.g. Europe/Berlin)"),
                );
            }
            zone
        }
    };
    for h in &raw.holidays {
        let d = h.get_ref();
        if crate::context::time::parse_iso8601(d).is_none() || d.len() != 10 {
            p.add(
                line_of(text, h),
                format!("holiday '{d}' must be a date YYYY-MM-DD"),
            );
        }
    }
    for sr in &raw.rules {
        let (at, r) = (sr.span().start, sr.get_ref());
        let line = line_in(at, "name");
        let mut bad = |msg: String| p.add(line, format!("rule '{}': {msg}", r.name));
        if let Some(q) = &r.then.queue {
            if !answer.contains_key(q) {
                bad(format!("unknown queue '{q}'"));
            }
        }
        if r.then == rules::Then::default() {
            bad("has no action (then.queue, then.priority, …)".into());
        }
        if r.when.campaign_within_min.is_some_and(|m| m <= 0)
            || r.when.last_agent_within_days.is_some_and(|d| d <= 0)
        {
            bad("time limits must be positive".into());
        }
        if let Some(sk) = &r.then.skills {
            if let Err(e) = crate::context::parse_skills(&sk.join(",")) {
                bad(format!("skills: {e}"));
            }
        }
        if let Some(h) = &r.when.hours {
            if rules::parse_hours(h).is_none() {
                bad(format!("hours '{h}' must look like 08:00-18:00"));
            }
        }
        for d in r.when.weekdays.iter().flatten() {
            if !rules::WEEKDAYS.contains(&d.to_ascii_lowercase().as_str()) {
                bad(format!("weekday '{d}' is not one of {:?}", rules::WEEKDAYS));
            }
        }
        for n in r.when.dialed.iter().flatten() {
            if !numbers.contains_key(n) {
                bad(format!("dialled number '{n}' is not a [[number]]"));
            }
        }
    }
    Checked {
        queues,
        answer,
        callback_keys,
        callback,
        numbers,
        number_menu,
        calendar: rules::Calendar {
            utc_offset_min,
            zone,
            holidays: raw.holidays.iter().map(|h| h.get_ref().clone()).collect(),
        },
    }
}

/// Reads the recordings the plan names (and builds what needs them: menus, the survey,
/// announcements), adding a problem for each that cannot be read.
fn read_files(
    raw: &DialplanToml,
    text: &str,
    base: &Path,
    checked: &Checked,
    p: &mut Problems,
) -> Files {
    let line_in = |at: usize, needle: &str| line_after(text, at, needle);
    let queue_exists = |q: &str| checked.answer.contains_key(q);
    let menu_names = menu_names(raw);
    let mut f = Files::default();
    for sm in &raw.menus {
        let (at, m) = (sm.span().start, sm.get_ref());
        let line = line_in(at, "name");
        let built = m
            .build(base, queue_exists, |n| menu_names.contains(n))
            .map_err(|e| format!("menu '{}': {e}", m.name));
        if let Some(built) = p.ok(line, built) {
            if f.menus.insert(m.name.clone(), built).is_some() {
                p.add(line, format!("menu '{}' is defined twice", m.name));
            }
        }
    }
    for sr in &raw.rules {
        let (at, r) = (sr.span().start, sr.get_ref());
        if let Some(path) = &r.then.prompt {
            let prompt =
                prompt_file::load(base, path).map_err(|e| format!("rule '{}': prompt {e}", r.name));
            if let Some(prompt) = p.ok(line_in(at, "name"), prompt) {
                f.rule_prompts.insert(r.name.clone(), prompt);
            }
        }
    }
    if let Some(s) = &raw.survey {
        f.survey = p
            .ok(line_of(text, s), s.get_ref().build(base, queue_exists))
            .flatten();
    }
    let mut voices: HashMap<std::path::PathBuf, std::sync::Arc<crate::media::voice::Voice>> =
        HashMap::new();
    for sq in &raw.queues {
        let (at, q) = (sq.span().start, sq.get_ref());
        if let Some(first) = q.announce_position_s {
            let voice = match &q.announce_voice {
                None => None,
                Some(dir) => {
                    let dir = base.join(dir);
                    match voices.get(&dir) {
                        Some(v) => Some(std::sync::Arc::clone(v)),
                        None => {
                            let v = crate::media::voice::Voice::load(&dir)
                                .map(std::sync::Arc::new)
                                .map_err(|e| format!("queue '{}': announce_voice {e}", q.name));
                            let v = p.ok(line_in(at, "announce_voice"), v);
                            if let Some(v) = &v {
                                voices.insert(dir, std::sync::Arc::clone(v));
                            }
                            v
                        }
                    }
                }
            };
            f.announce.insert(
                q.name.clone(),
                Announce {
                    first: Duration::from_secs(first),
                    every: Duration::from_secs(q.announce_every_s.unwrap_or(first)),
                    voice,
                },
            );
        }
        if let Some(path) = &q.message {
            let every = q.message_every_s.unwrap_or(45);
            let prompt = prompt_file::load(base, path)
                .map_err(|e| format!("queue '{}': message {e}", q.name));
            if let Some(prompt) = p.ok(line_in(at, "message"), prompt) {
                f.messages
                    .insert(q.name.clone(), (prompt, Duration::from_secs(every)));
            }
        }
        if let Some(path) = &q.timeout_prompt {
            let prompt = prompt_file::load(base, path)
                .map_err(|e| format!("queue '{}': timeout_prompt {e}", q.name));
            if let Some(prompt) = p.ok(line_in(at, "timeout_prompt"), prompt) {
                f.timeout_prompts.insert(q.name.clone(), prompt);
            }
        }
    }
    f
}

fn assemble(raw: DialplanToml, c: Checked, f: Files) -> Dialplan {
    let record = raw
        .queues
        .iter()
        .map(|q| q.get_ref())
        .filter(|q| q.record)
        .map(|q| q.name.clone())
        .collect();
    Dialplan {
        survey: f.survey,
        record,
        announce: f.announce,
        messages: f.messages,
        timeout_prompts: f.timeout_prompts,
        queues: c.queues,
        answer: c.answer,
        numbers: c.numbers,
        number_menu: c.number_menu,
        menus: f.menus,
        rule_prompts: f.rule_prompts,
        rules: raw.rules.into_iter().map(Spanned::into_inner).collect(),
        cross_queue: raw.cross_queue,
        callback: c.callback,
        callback_keys: c.callback_keys,
        calendar: c.calendar,
    }
}
