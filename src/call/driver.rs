//! The call layer's one door in and one door out, in the manner of str0m's `Rtc`: the driver
//! feeds [`Input`]s with [`CallManager::handle`] and drains [`Output`]s with
//! [`CallManager::poll_output`] until it returns [`Output::Timeout`].
//!
//! # Driver contract
//!
//! 1. Feed every input as it happens, with the `now` it happened at (the manager never reads
//!    a clock: tests drive it with a fake one).
//! 2. After each `handle`, call `poll_output` until it returns `Output::Timeout(at)`: the
//!    outputs before it come in the order they must be acted on (SIP first, then agent state,
//!    lookups, media, events and snapshots).
//! 3. Sleep until `at` (or until the next input, whichever comes first) and then feed
//!    `Input::Timeout`. `None`: nothing is scheduled; only an input wakes the manager.
//!
//! Requests that answer a caller at once (status, desk commands, transfers, resume, shutdown)
//! stay plain methods on [`CallManager`], since they return a value; the outputs they cause
//! come out of `poll_output` like any other.

use super::manager::{CallManager, Persist};
use super::{LookupRequest, MediaCommand, MediaEvent, SnapshotWrite};
use crate::acd::CallId;
use crate::events::Event;
use crate::sip::transaction::{Peer, Transmit};
use std::time::Instant;

/// Something that happened that the call layer must hear about.
// Passed by value once and never stored: a context answer's size costs nothing here.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input<'a> {
    /// A datagram or framed message from `from`.
    Sip { from: Peer, data: &'a [u8] },
    /// A new request that waited past the overload threshold: shed (503 + Retry-After) unless
    /// it belongs to a transaction already running.
    ShedSip { from: Peer, data: &'a [u8] },
    /// A report from a call's media task.
    Media(MediaEvent),
    /// The answer to a [`LookupRequest`], with how each source did.
    Context {
        call: CallId,
        result: Result<crate::context::CallerContext, String>,
        sources: Vec<crate::context::SourceReport>,
    },
    /// The desk wrote `call`'s screen pop to `agent` (or has no desk open for them).
    PopDelivered { call: CallId, agent: String },
    /// An agent's desk opened or closed.
    DeskOpen { agent: String, open: bool },
    /// From the cluster connection (a node of several).
    Cluster(crate::cluster::ClusterInput),
    /// The deadline of the last [`Output::Timeout`] has come.
    Timeout,
}

/// Something the driver must do.
#[derive(Debug)]
pub enum Output {
    /// Send these bytes.
    Transmit(Transmit),
    /// Write this agent state to the database (off the call path).
    Persist(Persist),
    /// Ask the context store about a caller, within the lookup budget.
    Lookup(LookupRequest),
    /// Tell a call's media task.
    Media(MediaCommand),
    /// Publish to the history, the desks and the supervisors.
    Event(Event),
    /// Write (or delete) one call's snapshot.
    Snapshot(SnapshotWrite),
    /// Send to the cluster (a leader, a node, every node).
    Cluster(crate::cluster::protocol::Outgoing),
    /// Nothing more now: feed [`Input::Timeout`] at this instant (`None`: no timer runs).
    Timeout(Option<Instant>),
}

impl CallManager {
    /// Feeds one input (see the module's driver contract).
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Sip { from, data } => self.handle_sip(now, from, data),
            Input::ShedSip { from, data } => self.shed_sip(now, from, data),
            Input::Media(ev) => self.handle_media(now, ev),
            Input::Context {
                call,
                result,
                sources,
            } => self.handle_context_from(now, call, result, sources),
            Input::PopDelivered { call, agent } => self.pop_delivered(now, call, &agent),
            Input::DeskOpen { agent, open } => self.set_desk_open(now, &agent, open),
            Input::Cluster(c) => self.handle_cluster(now, c),
            Input::Timeout => self.handle_timeout(now),
        }
    }

    /// The next thing for the driver to do; [`Output::Timeout`] last, when nothing else is.
    pub fn poll_output(&mut self, now: Instant) -> Output {
        if let Some(t) = self.poll_transmit() {
            return Output::Transmit(t);
        }
        if let Some(p) = self.poll_persist() {
            return Output::Persist(p);
        }
        if let Some(l) = self.poll_lookup() {
            return Output::Lookup(l);
        }
        if let Some(m) = self.poll_media() {
            return Output::Media(m);
        }
        if let Some(e) = self.poll_event() {
            return Output::Event(e);
        }
        if let Some(s) = self.poll_snapshot(now) {
            return Output::Snapshot(s);
        }
        if let Some(c) = self.acd.poll_outgoing() {
            return Output::Cluster(c);
        }
        if let Some(s) = self.strays.poll_relay() {
            return Output::Cluster(crate::cluster::protocol::Outgoing::Stray(s));
        }
        Output::Timeout(self.poll_timeout())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Rig, CALLER};
    use super::*;
    use std::time::Duration;

    /// Everything the manager has for the driver, up to and including the timeout.
    fn drain(r: &mut Rig) -> (Vec<Output>, Option<Instant>) {
        let mut out = Vec::new();
        loop {
            match r.m.poll_output(r.now) {
                Output::Timeout(at) => return (out, at),
                o => out.push(o),
            }
        }
    }

    fn texts(out: &[Output]) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                Output::Transmit(t) => Some(String::from_utf8_lossy(&t.data).into_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_driver_of_handle_and_poll_output_alone_answers_and_retransmits_on_time() {
        let mut r = Rig::new();
        let _ = drain(&mut r);
        let invite = format!(
            "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKdrv\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: drv\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:{CALLER}>\r\nContent-Length: 0\r\n\r\n"
        );
        let from = super::super::tests::peer(CALLER);
        r.m.handle(
            r.now,
            Input::Sip {
                from,
                data: invite.as_bytes(),
            },
        );
        let (out, at) = drain(&mut r);
        let sent = texts(&out);
        assert!(
            sent.iter().any(|m| m.starts_with("SIP/2.0 200")),
            "the late offer is answered with our SDP: {sent:#?}"
        );
        // Nothing is left once the timeout came: polling again gives the same deadline.
        assert!(matches!(r.m.poll_output(r.now), Output::Timeout(t) if t == at));
        // The 200 is not ACKed: at the deadline (T1) it goes again, and only then.
        let at = at.expect("the 200's retransmission timer");
        assert!(at <= r.now + Duration::from_millis(500), "{:?}", at - r.now);
        r.now = at;
        r.m.handle(r.now, Input::Timeout);
        let (out, next) = drain(&mut r);
        let again = texts(&out);
        assert_eq!(again.len(), 1, "one retransmission: {again:#?}");
        assert!(again[0].starts_with("SIP/2.0 200"));
        assert!(next.is_some_and(|n| n > at), "the next one later");
    }
}
