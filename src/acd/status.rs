//! Live views of queues and agents for the status API, the wallboard and `/metrics`.

use super::engine::{Acd, Desk};
use super::{AgentState, AgentStatus, QueueStatus};
use std::time::Instant;

impl Acd {
    /// How many calls the engine keeps a record of: waiting, ringing, or named and about to
    /// join a line (for leak checks and the status page: 0 once every call is over).
    pub fn calls_in_system(&self) -> usize {
        self.calls.len()
    }

    pub fn queue_status(&self, now: Instant) -> Vec<QueueStatus> {
        let mut v: Vec<QueueStatus> = self
            .queues
            .values()
            .map(|q| {
                let lines = || {
                    self.calls
                        .values()
                        .filter_map(|r| r.line.as_ref())
                        .filter(|p| p.queue == q.name)
                };
                QueueStatus {
                    name: q.name.clone(),
                    skill: q.skill.clone(),
                    waiting: self.waiting.get(&q.name).map_or(0, |w| w.len()),
                    callbacks: self
                        .waiting
                        .get(&q.name)
                        .map_or(0, |w| w.values().filter(|c| self.is_callback(**c)).count()),
                    ringing: lines().filter(|p| p.offer.is_some()).count(),
                    longest_wait_s: lines()
                        .filter(|p| p.offer.is_none())
                        .map(|p| now.saturating_duration_since(p.enqueued).as_secs())
                        .max()
                        .unwrap_or(0),
                }
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn agent_status(&self, now: Instant) -> Vec<AgentStatus> {
        let mut v: Vec<AgentStatus> = self
            .agents
            .iter()
            .map(|(id, a)| {
                let mut skills: Vec<String> = a.skills.keys().cloned().collect();
                skills.sort();
                AgentStatus {
                    id: id.clone(),
                    state: a.state,
                    reason: match (&a.desk, a.state) {
                        (Desk::Paused(r), AgentState::Paused) => Some(r.clone()),
                        _ => None,
                    },
                    in_state_s: now.saturating_duration_since(a.since).as_secs(),
                    skills,
                }
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}
