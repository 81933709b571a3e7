//! What the agent desk asks of the call layer: presence changes and blind transfers.

use super::manager::CallManager;
use crate::acd::{CallId, DeskCommand};
use std::time::Instant;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DeskError {
    #[error(transparent)]
    Presence(#[from] crate::acd::PresenceError),
    #[error("call {0} is not in progress")]
    NoSuchCall(CallId),
    #[error("call {0} is not connected to agent '{1}'")]
    NotYourCall(CallId, String),
    #[error("unknown queue '{0}'")]
    UnknownQueue(String),
    #[error("unknown agent '{0}'")]
    UnknownAgent(String),
}

impl CallManager {
    /// Whether agents start Ready on registering (phones without a desk) or wait for the desk.
    pub fn set_ready_on_register(&mut self, on: bool) {
        self.acd.set_auto_ready(on);
    }

    /// An agent's choice at the desk (ready, pause, log out, end wrap-up).
    pub fn agent_desk(
        &mut self,
        now: Instant,
        agent: &str,
        cmd: DeskCommand,
    ) -> Result<(), DeskError> {
        let r = self.acd.desk(now, agent, cmd);
        self.process(now);
        Ok(r?)
    }
}
