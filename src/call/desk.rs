//! What the agent desk asks of the call layer: presence changes and blind transfers.

use super::manager::CallManager;
use crate::acd::{CallId, DeskCommand};
use std::time::Instant;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DeskError {
    #[error(transparent)]
    Presence(#[from] crate::acd::PresenceError),
    /// The agent's partition is led by another node (the request goes there).
    #[error("agent '{agent}' is dispatched by partition '{partition}', led elsewhere")]
    Elsewhere { agent: String, partition: String },
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
    /// Where recordings of queues with `record = true` go (`None`: recording off).
    pub fn set_recordings_dir(&mut self, dir: Option<std::path::PathBuf>) {
        self.recordings = dir;
    }

    /// The WAV file for `call` if its queue records and recording is configured.
    pub(super) fn recording_path(&self, call: CallId) -> Option<std::path::PathBuf> {
        let dir = self.recordings.as_ref()?;
        let c = self.calls.get(&call)?;
        self.dialplan
            .records(&c.queue)
            .then(|| dir.join(format!("{}.wav", c.interaction)))
    }

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

/// Where a blind transfer sends the caller.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferTarget {
    /// Back in line in another queue (by its own priority order).
    Queue(String),
    /// To one agent: kept for them for [`TRANSFER_HOLD_S`], then anyone in the call's queue.
    Agent(String),
}

/// How long a call transferred to a named agent waits for that agent before anyone may take it.
pub const TRANSFER_HOLD_S: u64 = 60;

impl CallManager {
    /// Blind transfer: the agent's leg is hung up, the caller hears hold music and waits for
    /// the target, whose pop carries the context, the notes and the transfer count.
    pub fn transfer(
        &mut self,
        now: Instant,
        agent: &str,
        call: CallId,
        target: TransferTarget,
        note: String,
    ) -> Result<u32, DeskError> {
        match &target {
            TransferTarget::Queue(q) if !self.dialplan.queues.iter().any(|x| &x.name == q) => {
                return Err(DeskError::UnknownQueue(q.clone()))
            }
            TransferTarget::Agent(a) if !self.acd.knows_agent(a) => {
                return Err(DeskError::UnknownAgent(a.clone()))
            }
            _ => {}
        }
        let via = self.via_host();
        let c = self
            .calls
            .get_mut(&call)
            .ok_or(DeskError::NoSuchCall(call))?;
        let mine = c
            .talk()
            .is_some_and(|t| t.agent.agent == agent && t.agent.dialog().is_some());
        if !mine {
            return Err(DeskError::NotYourCall(call, agent.to_string()));
        }
        let super::phase::Phase::Connected(talk) =
            std::mem::replace(&mut c.phase, super::phase::Phase::Waiting)
        else {
            return Err(DeskError::NotYourCall(call, agent.to_string()));
        };
        let mut leg = talk.agent;
        c.transfers += 1;
        let note = note.trim();
        if !note.is_empty() {
            c.notes.push(format!(
                "{agent}: {}",
                note.chars().take(500).collect::<String>()
            ));
        }
        let (queue, pref) = match &target {
            TransferTarget::Queue(q) => (q.clone(), None),
            TransferTarget::Agent(a) => (
                c.queue.clone(),
                Some((a.clone(), std::time::Duration::from_secs(TRANSFER_HOLD_S))),
            ),
        };
        c.queue = queue.clone();
        let (priority, transfers) = (c.priority, c.transfers);
        {
            let _g = c.span.enter();
            tracing::info!(%agent, ?target, transfers, "blind transfer");
        }
        if let Some(bye) = leg.uac.hang_up(&via) {
            self.ep.send_request(now, &bye, leg.uac.peer);
        }
        self.by_sip_id.remove(&leg.uac.invite.core.call_id);
        self.by_agent_tx.remove(&leg.uac.key);
        self.media.push_back(super::MediaCommand::Hold { call });
        self.acd.agent_free(now, agent);
        self.events.push_back(crate::events::Event::Transferred {
            call,
            from_agent: agent.to_string(),
            to: match &target {
                TransferTarget::Queue(q) => format!("queue:{q}"),
                TransferTarget::Agent(a) => format!("agent:{a}"),
            },
            transfers,
        });
        self.events.push_back(crate::events::Event::Queued {
            call,
            queue: queue.clone(),
        });
        // The first route's skill needs belonged to the first queue.
        self.acd.require(call, Vec::new());
        let pref = pref.as_ref().map(|(a, d)| (a.as_str(), *d));
        if let Err(e) = self.acd.enqueue_for(now, call, &queue, priority, pref) {
            tracing::warn!(call, error = %e, "transfer could not queue the call");
            self.end_call(now, call, crate::events::Side::System, 503);
        }
        self.process(now);
        Ok(transfers)
    }
}

impl From<crate::cluster::MatchError> for DeskError {
    fn from(e: crate::cluster::MatchError) -> Self {
        match e {
            crate::cluster::MatchError::Presence(p) => DeskError::Presence(p),
            crate::cluster::MatchError::Elsewhere { agent, partition } => {
                DeskError::Elsewhere { agent, partition }
            }
        }
    }
}
