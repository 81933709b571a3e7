//! The handle the HTTP layer, `main` and tests hold to talk to a running core.

use super::{Input, StatusReport};
use crate::events::Event;
use std::net::SocketAddr;
use tokio::sync::{broadcast, mpsc, oneshot};

/// A handle to a running core, for the HTTP layer and tests.
#[derive(Clone)]
pub struct CoreHandle {
    pub input: mpsc::Sender<Input>,
    pub events: broadcast::Sender<Event>,
    pub sip_addr: SocketAddr,
}

impl CoreHandle {
    /// Ends all calls (BYE / 503 / CANCEL) and stops the core.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.input.send(Input::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops the core leaving its calls to the next start (`shutdown = "resume"`): their
    /// latest snapshots are handed to the writer, nothing is sent to the phones.
    pub async fn hand_over(&self) {
        let (tx, rx) = oneshot::channel();
        if self.input.send(Input::HandOver(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Takes over calls saved by an earlier process; the report says how many were resumed.
    pub async fn resume(
        &self,
        saved: Vec<crate::call::CallSnapshot>,
    ) -> Option<crate::call::ResumeReport> {
        let (tx, rx) = oneshot::channel();
        self.input.send(Input::Resume(saved, tx)).await.ok()?;
        rx.await.ok()
    }

    /// Starts or stops draining (no new calls; those in progress finish).
    pub async fn set_draining(&self, on: bool) -> bool {
        self.input
            .send(Input::Drain { on, done: None })
            .await
            .is_ok()
    }

    /// Drains and waits until the last call in progress has ended (callers away for a
    /// callback stay for the next start). False if draining was called off meanwhile.
    pub async fn drain(&self) -> bool {
        let (tx, rx) = oneshot::channel();
        let on = Input::Drain {
            on: true,
            done: Some(tx),
        };
        self.input.send(on).await.is_ok() && rx.await.is_ok()
    }

    /// Swaps the dialplan without touching calls in progress.
    pub async fn set_dialplan(&self, d: crate::routing::Dialplan) -> bool {
        self.input.send(Input::Dialplan(Box::new(d))).await.is_ok()
    }

    /// Tells the core the pop for `call` reached `agent`'s desk, so the phone may ring.
    pub fn pop_delivered(&self, call: crate::acd::CallId, agent: &str) {
        let _ = self.input.try_send(Input::PopDelivered {
            call,
            agent: agent.to_string(),
        });
    }

    /// Tells the core whether `agent` has a desk open (their phone then waits for the pop).
    pub fn desk_open(&self, agent: &str, open: bool) {
        let _ = self.input.try_send(Input::DeskOpen {
            agent: agent.to_string(),
            open,
        });
    }

    /// Applies an agent's desk choice; `None` if the core is gone.
    pub async fn desk(
        &self,
        agent: &str,
        cmd: crate::acd::DeskCommand,
    ) -> Option<Result<(), crate::call::DeskError>> {
        let (reply, rx) = oneshot::channel();
        let agent = agent.to_string();
        self.input
            .send(Input::Desk { agent, cmd, reply })
            .await
            .ok()?;
        rx.await.ok()
    }

    /// Sends `agent`'s caller on; the answer is the call's transfer count.
    pub async fn transfer(
        &self,
        agent: &str,
        call: crate::acd::CallId,
        target: crate::call::TransferTarget,
        note: String,
    ) -> Option<Result<u32, crate::call::DeskError>> {
        let (reply, rx) = oneshot::channel();
        let agent = agent.to_string();
        self.input
            .send(Input::Transfer {
                agent,
                call,
                target,
                note,
                reply,
            })
            .await
            .ok()?;
        rx.await.ok()
    }

    pub async fn status(&self) -> Option<StatusReport> {
        let (tx, rx) = oneshot::channel();
        self.input.send(Input::Status(tx)).await.ok()?;
        rx.await.ok()
    }
}
