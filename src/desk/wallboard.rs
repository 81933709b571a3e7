//! The supervisor's wallboard: per queue, who is waiting and for how long, agents by state, and
//! today's service level (answered within the threshold, out of answered plus abandoned; callers
//! who hang up within [`SHORT_ABANDON_S`] are not counted against it).

use crate::acd::{AgentState, CallId};
use crate::events::Event;
use crate::net::StatusReport;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Callers who give up this fast never had a fair chance to be served.
pub const SHORT_ABANDON_S: u64 = 5;

/// The names the desk, the wallboard and `/metrics` use for agent states.
pub fn state_name(s: AgentState) -> &'static str {
    match s {
        AgentState::Offline => "offline",
        AgentState::LoggedOut => "logged_out",
        AgentState::Idle => "idle",
        AgentState::Ringing(_) => "ringing",
        AgentState::Busy(_) => "busy",
        AgentState::Resting => "resting",
        AgentState::Paused => "paused",
        AgentState::WrapUp => "wrap_up",
    }
}

/// One queue's day so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueDay {
    pub answered: u64,
    pub answered_in_threshold: u64,
    pub abandoned: u64,
    pub abandoned_short: u64,
}

impl QueueDay {
    /// Percent, or None before the first counted call.
    pub fn service_level(&self) -> Option<f64> {
        let base = self.answered + self.abandoned - self.abandoned_short;
        (base > 0).then(|| 100.0 * self.answered_in_threshold as f64 / base as f64)
    }
}

#[derive(Default)]
struct Levels {
    day: i64,
    queues: HashMap<String, QueueDay>,
    queue_of: HashMap<CallId, String>,
}

/// Today's counts per queue (UTC day), from the event stream.
pub struct ServiceLevels {
    threshold_ms: u64,
    inner: Mutex<Levels>,
}

impl ServiceLevels {
    pub fn new(threshold_s: u64) -> ServiceLevels {
        ServiceLevels {
            threshold_ms: threshold_s * 1000,
            inner: Mutex::new(Levels::default()),
        }
    }

    pub fn threshold_s(&self) -> u64 {
        self.threshold_ms / 1000
    }

    pub fn apply(&self, ev: &Event) {
        self.apply_on(ev, crate::context::time::unix_now() / 86_400);
    }

    fn apply_on(&self, ev: &Event, day: i64) {
        let mut l = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if l.day != day {
            l.day = day;
            l.queues.clear();
        }
        match ev {
            Event::Queued { call, queue } => {
                l.queue_of.insert(*call, queue.clone());
            }
            Event::Connected { call, wait_ms, .. } => {
                if let Some(q) = l.queue_of.remove(call) {
                    let within = *wait_ms <= self.threshold_ms;
                    let d = l.queues.entry(q).or_default();
                    d.answered += 1;
                    d.answered_in_threshold += within as u64;
                }
            }
            Event::Abandoned {
                call,
                queue,
                wait_ms,
            } => {
                l.queue_of.remove(call);
                let d = l.queues.entry(queue.clone()).or_default();
                d.abandoned += 1;
                d.abandoned_short += (*wait_ms < SHORT_ABANDON_S * 1000) as u64;
            }
            Event::Ended { call, .. } => {
                l.queue_of.remove(call);
            }
            _ => {}
        }
    }

    pub fn today(&self) -> HashMap<String, QueueDay> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .queues
            .clone()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueBoard {
    pub name: String,
    pub waiting: usize,
    pub ringing: usize,
    pub longest_wait_s: u64,
    /// Agents with the queue's skill, by state.
    pub agents: BTreeMap<&'static str, usize>,
    pub today: QueueDay,
    pub service_level: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentBoard {
    pub id: String,
    pub state: &'static str,
    pub reason: Option<String>,
    pub in_state_s: u64,
    pub skills: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Wallboard {
    pub sl_threshold_s: u64,
    pub queues: Vec<QueueBoard>,
    pub agents: Vec<AgentBoard>,
}

/// Builds the board from a core snapshot and today's counts.
pub fn build(s: &StatusReport, levels: &ServiceLevels) -> Wallboard {
    let today = levels.today();
    let queues = s
        .queues
        .iter()
        .map(|q| {
            let mut agents = BTreeMap::new();
            for a in s.agents.iter().filter(|a| a.skills.contains(&q.skill)) {
                *agents.entry(state_name(a.state)).or_insert(0) += 1;
            }
            let d = today.get(&q.name).cloned().unwrap_or_default();
            QueueBoard {
                name: q.name.clone(),
                waiting: q.waiting,
                ringing: q.ringing,
                longest_wait_s: q.longest_wait_s,
                agents,
                service_level: d.service_level(),
                today: d,
            }
        })
        .collect();
    // Desk users without skills (marketers, admins) take no calls: not on the board.
    let agents = s
        .agents
        .iter()
        .filter(|a| !a.skills.is_empty())
        .map(|a| AgentBoard {
            id: a.id.clone(),
            state: state_name(a.state),
            reason: a.reason.clone(),
            in_state_s: a.in_state_s,
            skills: a.skills.clone(),
        })
        .collect();
    Wallboard {
        sl_threshold_s: levels.threshold_s(),
        queues,
        agents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_level_counts_answers_within_the_threshold_and_forgives_short_abandons() {
        let l = ServiceLevels::new(20);
        let q = |call| Event::Queued {
            call,
            queue: "sales".into(),
        };
        for c in 1..=4 {
            l.apply_on(&q(c), 1);
        }
        let conn = |call, wait_ms| Event::Connected {
            call,
            agent: "a".into(),
            wait_ms,
        };
        l.apply_on(&conn(1, 5_000), 1);
        l.apply_on(&conn(2, 25_000), 1);
        let ab = |call, wait_ms| Event::Abandoned {
            call,
            queue: "sales".into(),
            wait_ms,
        };
        l.apply_on(&ab(3, 2_000), 1);
        l.apply_on(&ab(4, 40_000), 1);
        let d = l.today().remove("sales").unwrap();
        assert_eq!(d.answered, 2);
        assert_eq!(d.abandoned_short, 1);
        // 1 in threshold out of (2 answered + 2 abandoned − 1 short) = 33.3 %.
        let sl = d.service_level().unwrap();
        assert!((sl - 100.0 / 3.0).abs() < 0.01, "{sl}");
        l.apply_on(&q(5), 2);
        assert!(l.today().is_empty(), "a new day starts from zero");
    }
}
