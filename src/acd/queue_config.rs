//! A queue's settings as the dialplan gives them: ring and retry times, strategy, limits,
//! overflow, ageing and time-based widening.

use std::time::Duration;

/// One queue's settings, from the dialplan.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueConfig {
    pub name: String,
    /// The skill an agent needs to take this queue's calls.
    pub skill: String,
    /// How long an agent's phone rings before the call moves on.
    pub ring_timeout: Duration,
    /// How long an agent who missed or rejected a call is left alone (Asterisk's `retry`).
    pub retry_after: Duration,
    /// After-call work: how long an agent stays out of the queues once a call of this queue
    /// ends, unless they end it sooner from the desk.
    pub wrapup: Duration,
    pub strategy: Strategy,
    /// An agent who lets this many offers in a row ring out is paused (0: never).
    pub autopause_after: u32,
    /// A caller waiting this long moves to `overflow` (keeping their place by arrival).
    pub max_wait: Option<Duration>,
    pub overflow: Option<String>,
    /// Priority ageing: a waiting caller gains one priority point per `age` waited, so
    /// low-priority callers are never starved (`None`: strict priority).
    pub age: Option<Duration>,
    /// No more than this many callers wait (more go to `overflow`, or are turned away).
    pub max_len: Option<usize>,
    /// Callers may join while no agent with the skill is logged in (else `overflow` or away).
    pub join_empty: bool,
    /// When the last agent with the skill logs out, waiting callers move to `overflow`.
    pub leave_empty: bool,
    /// Agents need at least this level in `skill` (0: any level).
    pub min_level: u8,
    /// How the search widens as a caller waits (steps in order of `after`).
    pub widen: Vec<Widen>,
    /// Under [`CrossQueue::QueueWeight`], agents in several queues serve higher weights first.
    pub weight: i32,
}

impl QueueConfig {
    /// A queue with the dialplan's defaults: 15 s ring, 5 s retry, longest-idle, no limits.
    pub fn new(name: &str, skill: &str) -> QueueConfig {
        QueueConfig {
            name: name.to_string(),
            skill: skill.to_string(),
            ring_timeout: Duration::from_secs(15),
            retry_after: Duration::from_secs(5),
            wrapup: Duration::ZERO,
            strategy: Strategy::default(),
            autopause_after: 0,
            max_wait: None,
            overflow: None,
            age: None,
            max_len: None,
            join_empty: true,
            leave_empty: false,
            min_level: 0,
            widen: Vec::new(),
            weight: 0,
        }
    }
}

/// One step of time-based widening: once a caller has waited `after` in the queue, agents at
/// `min_level` in the queue's skill may take them, and so may agents with any of `skills` (at
/// the level given). Later steps keep what earlier ones allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Widen {
    pub after: Duration,
    pub min_level: Option<u8>,
    pub skills: Vec<(String, u8)>,
}

/// Which caller an agent who works several queues gets first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrossQueue {
    /// The caller who has waited longest (after priority), whatever their queue.
    #[default]
    LongestWaiting,
    /// The queue with the highest `weight` first, then the longest-waiting caller in it.
    QueueWeight,
}

/// How a queue picks agents for a caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The agent idle longest (fair to agents, Asterisk's `leastrecent`).
    #[default]
    LongestIdle,
    /// Every free agent at once; the first to answer takes the call, the others' pops are
    /// withdrawn and their phones stop ringing.
    RingAll,
    /// The next free agent after the one offered last, in id order (remembered per queue).
    RoundRobin,
    /// The free agent who has answered the fewest calls since start.
    FewestCalls,
    /// The free agent with the least talk time since start.
    LeastTalkTime,
    /// Always top-down: highest skill level first, then agent id.
    Linear,
    /// Any free agent, uniformly.
    Random,
    /// Any free agent, weighted by their level in the queue's skill.
    WeightedRandom,
}
