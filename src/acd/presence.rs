//! What agents choose at the desk: log in/out, ready, pause with a reason, end wrap-up. Combined
//! with registration and calls in progress, this decides who may be offered a call.

use super::engine::{Acd, Decision, Desk, Wake};
use super::AgentState;
use std::time::Duration;
use std::time::Instant;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PresenceError {
    #[error("unknown agent '{0}'")]
    UnknownAgent(String),
    #[error("agent '{0}' is not in wrap-up")]
    NotInWrapUp(String),
    #[error("a pause needs a reason")]
    NoReason,
}

/// A change the agent asks for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum DeskCommand {
    /// Take calls.
    Ready,
    /// Take no new calls, for a reason (break, lunch, training, or the agent's own words).
    Pause { reason: String },
    /// Leave: no calls until the next log-in (the phone may stay registered).
    Logout,
    /// Done with after-call work before its time is up.
    EndWrapup,
}

impl Acd {
    /// Whether agents who were never set at the desk start Ready (phones without a desk) or
    /// LoggedOut (the desk decides). Applies to agents added from now on.
    pub fn set_auto_ready(&mut self, on: bool) {
        self.auto_ready = on;
    }

    /// Applies a desk command. A call ringing or in progress is not disturbed: a pause or log-out
    /// takes effect when it ends (after wrap-up).
    pub fn desk(&mut self, now: Instant, id: &str, cmd: DeskCommand) -> Result<(), PresenceError> {
        let a = self
            .agents
            .get_mut(id)
            .ok_or_else(|| PresenceError::UnknownAgent(id.to_string()))?;
        let state = a.state;
        let free = matches!(
            state,
            AgentState::Idle
                | AgentState::Resting
                | AgentState::LoggedOut
                | AgentState::Paused
                | AgentState::Offline
        );
        match cmd {
            DeskCommand::Ready => a.desk = Desk::Ready,
            DeskCommand::Pause { reason } => {
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(PresenceError::NoReason);
                }
                a.desk = Desk::Paused(reason.chars().take(60).collect());
            }
            DeskCommand::Logout => a.desk = Desk::LoggedOut,
            DeskCommand::EndWrapup => {
                if state != AgentState::WrapUp {
                    return Err(PresenceError::NotInWrapUp(id.to_string()));
                }
                self.make_idle(now, id, now);
                self.desk_changed(id);
                return Ok(());
            }
        }
        // A resting agent keeps resting if they stay ready; otherwise the new choice shows now.
        if free && !(state == AgentState::Resting && a.desk == Desk::Ready) {
            let idle_since = if state == AgentState::Idle {
                a.idle_since
            } else {
                now
            };
            self.make_idle(now, id, idle_since);
        }
        self.desk_changed(id);
        Ok(())
    }

    pub(super) fn set_state(&mut self, now: Instant, id: &str, state: AgentState) {
        let Some(a) = self.agents.get(id) else { return };
        let old = a.state;
        if old == AgentState::Idle {
            self.unindex(id);
        }
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        a.state = state;
        let reason = match &a.desk {
            Desk::Paused(r) if state == AgentState::Paused => Some(r.clone()),
            _ => None,
        };
        if old != state || state == AgentState::Paused {
            a.since = now;
            self.out.push_back(Decision::AgentChanged {
                agent: id.to_string(),
                state,
                reason,
            });
        }
        if state == AgentState::Idle {
            self.index(id);
        }
        let gone = matches!(state, AgentState::Offline | AgentState::LoggedOut);
        if gone && old != state {
            self.agent_left(now, id);
        }
    }

    /// Gives `id` their own after-call time (wins over every queue's), or back to the queues'.
    pub fn set_agent_wrapup(&mut self, id: &str, wrapup: Option<Duration>) {
        if let Some(a) = self.agents.get_mut(id) {
            a.wrapup = wrapup;
        }
    }

    /// The agent has no call: Idle (and offered the next caller) if registered and ready,
    /// otherwise whatever registration and the desk say.
    pub(super) fn make_idle(&mut self, now: Instant, id: &str, idle_since: Instant) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        a.idle_since = idle_since;
        a.rest_until = None;
        a.wrap_until = None;
        let state = match (&a.registered, &a.desk) {
            (false, _) => AgentState::Offline,
            (true, Desk::LoggedOut) => AgentState::LoggedOut,
            (true, Desk::Paused(_)) => AgentState::Paused,
            (true, Desk::Ready) => AgentState::Idle,
        };
        self.set_state(now, id, state);
        self.dispatch_agent(now, id);
    }

    /// A connected call ended: the agent goes to wrap-up for the queue's after-call time, or
    /// is free again at once (longest-idle order restarts now).
    pub fn agent_free(&mut self, now: Instant, agent: &str) {
        let Some(a) = self.agents.get(agent) else {
            return;
        };
        if !matches!(a.state, AgentState::Busy(_)) {
            return;
        }
        let talked = now.saturating_duration_since(a.since);
        let wrap = a.wrapup.unwrap_or_else(|| {
            a.last_queue
                .as_ref()
                .and_then(|q| self.queues.get(q))
                .map_or(Duration::ZERO, |q| q.wrapup)
        });
        if let Some(a) = self.agents.get_mut(agent) {
            a.talk += talked;
            if let Some(q) = a.last_queue.clone() {
                let h = self.handled.entry(q).or_default();
                h.0 += 1;
                h.1 += talked;
            }
        }
        if wrap.is_zero() || self.agents.get(agent).is_some_and(|a| !a.registered) {
            return self.make_idle(now, agent, now);
        }
        self.start_wrapup(now, agent, now + wrap);
        self.desk_changed(agent);
    }

    /// After-call work until `until`, then free (by the desk's choice).
    pub(super) fn start_wrapup(&mut self, now: Instant, agent: &str, until: Instant) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.wrap_until = Some(until);
        }
        self.set_state(now, agent, AgentState::WrapUp);
        self.timers.arm(until, Wake::WrapUp);
    }

    /// Tells the call layer what to keep of `agent`'s desk for the next start.
    pub(super) fn desk_changed(&mut self, agent: &str) {
        if let Some(a) = self.agents.get(agent) {
            self.out.push_back(Decision::DeskChanged {
                agent: agent.to_string(),
                desk: a.desk.clone(),
                wrap_until: a.wrap_until,
            });
        }
    }
}
