//! What agents choose at the desk: log in/out, ready, pause with a reason, end wrap-up. Combined
//! with registration and calls in progress, this decides who may be offered a call.

use super::engine::{Acd, Desk};
use super::AgentState;
use std::time::Instant;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PresenceError {
    #[error("unknown agent '{0}'")]
    UnknownAgent(String),
    #[error("agent '{0}' is not in wrap-up")]
    NotInWrapUp(String),
    #[error("a pause needs a reason")]
    NoReason,
}

/// A change the agent asks for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
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
        Ok(())
    }
}
