//! The supervisor's wallboard: per queue, who is waiting and for how long, agents by state, and
//! today's figures (service level, speed of answer, abandonment…) from the same code as
//! `acd report queues`, so the board and the reports never disagree.

use crate::acd::AgentState;
use crate::control::StatusReport;
use crate::report::queues::{Figures, QueueReport};
use serde::Serialize;
use std::collections::BTreeMap;

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

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueBoard {
    pub name: String,
    pub waiting: usize,
    /// Of those waiting, callers to be called back.
    pub callbacks: usize,
    pub ringing: usize,
    pub longest_wait_s: u64,
    /// Agents with the queue's skill, by state.
    pub agents: BTreeMap<&'static str, usize>,
    /// Today so far (UTC day), from the interaction history.
    pub today: Figures,
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
    /// All queues today.
    pub total: Figures,
    pub queues: Vec<QueueBoard>,
    pub agents: Vec<AgentBoard>,
}

/// Builds the board from a core snapshot and today's report.
pub fn build(s: &StatusReport, today: &QueueReport) -> Wallboard {
    let queues = s
        .queues
        .iter()
        .map(|q| {
            let mut agents = BTreeMap::new();
            for a in s.agents.iter().filter(|a| a.skills.contains(&q.skill)) {
                *agents.entry(state_name(a.state)).or_insert(0) += 1;
            }
            QueueBoard {
                name: q.name.clone(),
                waiting: q.waiting,
                callbacks: q.callbacks,
                ringing: q.ringing,
                longest_wait_s: q.longest_wait_s,
                agents,
                today: today.queues.get(&q.name).cloned().unwrap_or_default(),
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
        sl_threshold_s: today.thresholds.sl_s,
        total: today.total.clone(),
        queues,
        agents,
    }
}
