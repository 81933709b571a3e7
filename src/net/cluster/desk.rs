//! Desk commands for an agent whose partition another node leads: asked of that leader by
//! NATS request/reply on `<c>.deskcmd.<partition>` (every node hears it, only the leader's core
//! accepts it, and only then is it answered).

use super::Task;
use crate::control::Input;
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// A desk command for an agent whose partition another node leads, and where its answer goes.
pub struct DeskRequest {
    pub partition: String,
    pub agent: String,
    pub cmd: crate::acd::DeskCommand,
    pub reply: tokio::sync::oneshot::Sender<Result<(), crate::call::DeskError>>,
}

/// A desk command on the wire (`<c>.deskcmd.<partition>`, request/reply; only the leader
/// answers) and its answer.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct DeskCall {
    agent: String,
    cmd: crate::acd::DeskCommand,
}

/// How long a desk command waits for the leader elsewhere.
pub(super) const DESK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

impl Task {
    /// Sends a desk command to the partition's leader and hands its answer back.
    pub(super) fn ask_leader(&self, r: DeskRequest) {
        let subject = format!("{}.deskcmd.{}", self.cfg.name, r.partition);
        let Ok(body) = serde_json::to_vec(&DeskCall {
            agent: r.agent.clone(),
            cmd: r.cmd.clone(),
        }) else {
            return;
        };
        let client = self.nats.client.clone();
        tokio::spawn(async move {
            let asked =
                tokio::time::timeout(DESK_DEADLINE, client.request(subject, Bytes::from(body)))
                    .await;
            let answer = match asked {
                Ok(Ok(m)) => {
                    serde_json::from_slice::<Result<(), crate::acd::PresenceError>>(&m.payload)
                        .map(|r| r.map_err(crate::call::DeskError::Presence))
                        .unwrap_or(Err(crate::call::DeskError::Elsewhere {
                            agent: r.agent.clone(),
                            partition: r.partition.clone(),
                        }))
                }
                // No leader now (between two), or it did not answer in time.
                _ => Err(crate::call::DeskError::Elsewhere {
                    agent: r.agent.clone(),
                    partition: r.partition.clone(),
                }),
            };
            let _ = r.reply.send(answer);
        });
    }

    /// A desk command from another node: the core applies it if this node leads the agent's
    /// partition, and only then is it answered.
    pub(super) async fn desk_call_heard(&self, m: async_nats::Message) {
        let (Some(to), Ok(call)) = (
            m.reply.clone(),
            serde_json::from_slice::<DeskCall>(&m.payload),
        ) else {
            self.counters.unreadable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = self
            .core
            .send(Input::Desk {
                agent: call.agent,
                cmd: call.cmd,
                reply: tx,
            })
            .await;
        let client = self.nats.client.clone();
        tokio::spawn(async move {
            let answer: Result<(), crate::acd::PresenceError> = match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(crate::call::DeskError::Presence(p))) => Err(p),
                // Not the leader here (or gone): someone else answers.
                _ => return,
            };
            if let Ok(body) = serde_json::to_vec(&answer) {
                let _ = client.publish(to, Bytes::from(body)).await;
            }
        });
    }
}
