//! Snapshots of calls in progress (issue 12): what a new process needs to take a call over
//! after this one dies — both dialogs (Call-ID, tags, CSeq, route set, remote target, transport),
//! the SDP versions and negotiated codecs, the RTP ports, the queue with its enqueue time and
//! priority, the menu the caller is in, the routing decision and context for the pop, and the
//! interaction history row.
//!
//! A snapshot is taken [`GATHER`] after a call's state first changes (every event of the call
//! marks it; changes meanwhile join it), and goes to the store off the call path
//! (`context::snapshots`). When the call is over its snapshot is deleted. [`super::resume`]
//! reads them back. The layout itself is `context::saved_call`'s (re-exported here).
//!
//! What is not written: SRTP master keys (a database is not where media keys belong: such calls
//! are ended cleanly on resume instead), unproven callers (nothing to resume), callers away for
//! a callback (the callbacks table already keeps them).

use super::manager::{Call, CallManager};
use super::phase::Phase;
use crate::acd::CallId;
use crate::sdp::Negotiated;
use crate::sip::dialog::Dialog;
use crate::sip::msg::Request;
use crate::sip::transaction::{Peer, Transport};
use std::time::Instant;

pub use crate::context::saved_call::*;

impl SavedDialog {
    pub fn of(d: &Dialog) -> SavedDialog {
        SavedDialog {
            call_id: d.call_id.clone(),
            local: d.local.to_string(),
            remote: d.remote.to_string(),
            remote_target: d.remote_target.to_string(),
            route_set: d.route_set.clone(),
            local_cseq: d.local_cseq,
            peer: d.peer.addr,
            transport: d.peer.transport.as_str().to_string(),
        }
    }

    /// The dialog again, its CSeq moved `margin` past the last one saved (requests sent after
    /// the last snapshot must not be outnumbered: RFC 3261 §12.2.1.1 wants ours to go up).
    pub fn restore(&self, margin: u32) -> Option<Dialog> {
        use crate::sip::uri::{NameAddr, Uri};
        Some(Dialog {
            call_id: self.call_id.clone(),
            local: NameAddr::parse(&self.local).ok()?,
            remote: NameAddr::parse(&self.remote).ok()?,
            remote_target: Uri::parse(&self.remote_target).ok()?,
            route_set: self.route_set.clone(),
            local_cseq: self.local_cseq.saturating_add(margin),
            peer: Peer {
                transport: transport(&self.transport)?,
                addr: self.peer,
            },
        })
    }
}

impl SavedMedia {
    pub fn of(n: &Negotiated) -> SavedMedia {
        SavedMedia {
            remote: n.remote,
            codec: n.codec,
            codec_pt: n.codec_pt,
            dtmf_pt: n.dtmf_pt,
            direction: n.direction,
        }
    }

    pub fn negotiated(&self) -> Negotiated {
        Negotiated {
            remote: self.remote,
            codec: self.codec,
            codec_pt: self.codec_pt,
            dtmf_pt: self.dtmf_pt,
            direction: self.direction,
            srtp: None,
        }
    }
}

impl SavedRoute {
    fn of(d: &crate::routing::Decision) -> SavedRoute {
        SavedRoute {
            rule: d.rule.clone(),
            reason: d.reason.clone(),
            skills: d.skills.clone(),
            skip_ivr: d.skip_ivr,
            preferred_agent: d.preferred_agent.clone(),
            fallback_s: d.fallback_s,
            pop: d.pop.clone(),
            required: d.required.clone(),
        }
    }

    pub fn decision(&self, queue: &str, priority: i32) -> crate::routing::Decision {
        crate::routing::Decision {
            queue: queue.to_string(),
            priority,
            skills: self.skills.clone(),
            skip_ivr: self.skip_ivr,
            rule: self.rule.clone(),
            reason: self.reason.clone(),
            preferred_agent: self.preferred_agent.clone(),
            fallback_s: self.fallback_s,
            prompt: None,
            pop: self.pop.clone(),
            required: self.required.clone(),
            menu: None,
            trace: Vec::new(),
        }
    }
}

pub fn transport(name: &str) -> Option<Transport> {
    match name {
        "UDP" => Some(Transport::Udp),
        "TCP" => Some(Transport::Tcp),
        "TLS" => Some(Transport::Tls),
        _ => None,
    }
}

/// A request as saved (its wire form) and read back.
pub fn request_text(r: &Request) -> String {
    String::from_utf8_lossy(&r.to_bytes()).into_owned()
}

/// A request's text made at most once and shared by every snapshot of the call (a snapshot is
/// taken after each burst of changes; the INVITEs it keeps whole do not change).
#[derive(Clone, Debug, Default)]
pub struct TextOnce(std::cell::OnceCell<std::sync::Arc<str>>);

impl TextOnce {
    pub fn of(&self, r: &Request) -> std::sync::Arc<str> {
        self.0.get_or_init(|| request_text(r).into()).clone()
    }
}

pub fn parse_request(text: &str) -> Option<Request> {
    match crate::sip::msg::parse(text.as_bytes(), true, &Default::default()) {
        Ok(crate::sip::msg::Message::Request(r)) => Some(r),
        _ => None,
    }
}

impl CallManager {
    /// Turns snapshots on (the driver has a store to write them to).
    pub fn set_snapshots(&mut self, on: bool) {
        self.snapshots.on = on;
    }

    /// The next snapshot to write or delete: a changed call's newest state, [`GATHER`] after
    /// its first change since the last one taken, so a burst of changes (a call's first
    /// milliseconds: answered, routed, queued, offered, connected) is one snapshot, and a call
    /// that begins and ends inside the window none. [`CallManager::poll_timeout`] includes
    /// the next one due.
    pub fn poll_snapshot(&mut self, now: Instant) -> Option<SnapshotWrite> {
        if let Some(interaction) = self.snapshots.deletes.pop() {
            return Some(SnapshotWrite {
                interaction,
                body: None,
            });
        }
        for id in self.snapshots.dirty.drain(..) {
            self.snapshots.due.push_back((now + GATHER, id));
        }
        while let Some(&(at, id)) = self.snapshots.due.front() {
            if at > now && !self.snapshots.flush {
                break;
            }
            self.snapshots.due.pop_front();
            self.snapshots.queued.remove(&id);
            match self
                .calls
                .get(&id)
                .and_then(|c| self.snapshot_of(now, id, c))
            {
                Some(s) => {
                    self.snapshots.taken += 1;
                    self.snapshots.written.insert(id, s.interaction.clone());
                    return Some(SnapshotWrite {
                        interaction: s.interaction.clone(),
                        body: Some(Box::new(s)),
                    });
                }
                None => {
                    if let Some(interaction) = self.snapshots.written.remove(&id) {
                        return Some(SnapshotWrite {
                            interaction,
                            body: None,
                        });
                    }
                }
            }
        }
        None
    }

    /// Stops leaving every call to the next start (`shutdown = "resume"`): each gets a last
    /// snapshot and nothing is sent to its phones. A caller away for a callback is kept in
    /// the callbacks table as on any stop.
    pub fn hand_over(&mut self, now: Instant) {
        // Every last state goes out now, not a window later.
        self.snapshots.flush = true;
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            if self.caller_away(id) {
                self.callback_suspend(now, id);
            } else {
                self.snapshot_mark(id);
            }
        }
    }

    /// `call` changed: its snapshot is taken at the next poll.
    pub(super) fn snapshot_mark(&mut self, call: CallId) {
        if self.snapshots.on && self.snapshots.queued.insert(call) {
            self.snapshots.dirty.push(call);
        }
    }

    /// The snapshot of one call, or none when there is nothing a new process could do with it.
    pub(super) fn snapshot_of(&self, now: Instant, id: CallId, c: &Call) -> Option<CallSnapshot> {
        // An unanswered callback is the callbacks table's; an answered one is a call like any.
        if !c.validated() || c.away() {
            return None;
        }
        let unix_now = self.ep.unix_ms(now);
        let unix = |t: Instant| {
            unix_now.saturating_sub(now.saturating_duration_since(t).as_millis() as u64)
        };
        let ringing: Vec<SavedRinging> = c
            .ringing()
            .iter()
            .map(|l| SavedRinging {
                agent: l.agent.clone(),
                invite: l.uac.invite_text.of(&l.uac.invite),
                peer: l.uac.peer.addr,
                transport: l.uac.peer.transport.as_str().to_string(),
            })
            .collect();
        let answered_agent = c
            .talk()
            .and_then(|t| Some((t, t.agent.dialog()?, t.agent.media.as_ref()?)));
        let srtp = c.caller_key.is_some()
            || c.talk()
                .is_some_and(|t| t.srtp.is_some() || t.agent.srtp.is_some())
            || c.ringing().iter().any(|l| l.srtp.is_some());
        let why = if !c.caller.answered {
            Some("the caller was not answered yet (early media)")
        } else if srtp {
            Some("SRTP keys are not written to the database")
        } else if c.caller.dialog.peer.transport == Transport::Tls {
            Some("the caller's TLS connection ends with the process")
        } else if matches!(c.phase, Phase::Survey { .. }) {
            Some("the caller was rating the call")
        } else if matches!(c.phase, Phase::LettingGo) {
            Some("the caller was being let go after the maximum wait")
        } else if c.talk().is_some() && answered_agent.is_none() {
            Some("the agent leg has no usable media")
        } else {
            None
        };
        let enqueued = self.acd.enqueued_at(id).map(unix);
        let phase = match why {
            Some(why) => SavedPhase::Unresumable {
                why: why.to_string(),
                agent: c.talk().and_then(|t| {
                    Some((t.agent.agent.clone(), SavedDialog::of(t.agent.dialog()?)))
                }),
                ringing,
            },
            None => match (answered_agent, &c.phase, enqueued) {
                (Some((t, d, m)), _, _) => SavedPhase::Connected {
                    agent: SavedAgentLeg {
                        agent: t.agent.agent.clone(),
                        invite: t.agent.uac.invite_text.of(&t.agent.uac.invite),
                        dialog: SavedDialog::of(d),
                        media: SavedMedia::of(m),
                        learned: t.learned,
                        sdp_version: t.agent.origin.version,
                    },
                    connected_ms: unix(t.since),
                    held: t.held,
                },
                (None, Phase::Menu(ivr), _) => SavedPhase::Menu {
                    menu: ivr.menu().to_string(),
                },
                (None, _, Some(enqueued_ms)) if !ringing.is_empty() => SavedPhase::Ringing {
                    enqueued_ms,
                    legs: ringing,
                },
                (None, _, Some(enqueued_ms)) => SavedPhase::Waiting { enqueued_ms },
                (None, _, None) => SavedPhase::Routing,
            },
        };
        Some(CallSnapshot {
            v: SNAPSHOT_VERSION,
            interaction: c.interaction.clone(),
            caller_number: c.caller_number.clone(),
            trusted: c.identity.trusted,
            basis: c.identity.basis.clone(),
            dialed: c.dialed.clone(),
            queue: c.queue.clone(),
            priority: c.priority,
            arrived_ms: unix(c.arrived),
            caller: SavedCallerLeg {
                invite: c.caller.invite_text.of(&c.caller.invite),
                dialog: SavedDialog::of(&c.caller.dialog),
                sdp: String::from_utf8_lossy(&c.caller.sdp).into_owned(),
                answered: c.caller.answered,
                session: c
                    .caller
                    .session
                    .map(|t| crate::context::saved_call::SavedSessionTimer {
                        interval: t.interval,
                        we_refresh: t.we_refresh,
                        peer_supports: t.peer_supports,
                    }),
            },
            caller_port: c.caller_port,
            agent_port: c.agent_port,
            media: SavedMedia::of(&c.media),
            caller_learned: c.caller_learned,
            called_back_ms: c.called_back.map(unix),
            sdp_session: c.sdp_session,
            sdp_version: c.sdp_version,
            transfers: c.transfers,
            notes: c.notes.clone(),
            route: c.route.as_ref().map(SavedRoute::of),
            context: c.context.clone(),
            phase,
        })
    }
}

/// Which calls changed since the last poll, and which have a snapshot in the store.
#[derive(Default)]
pub(super) struct Snapshots {
    pub on: bool,
    pub dirty: Vec<CallId>,
    pub queued: std::collections::HashSet<CallId>,
    /// Calls whose snapshot was written (deleted when they are gone).
    pub written: std::collections::HashMap<CallId, String>,
    /// Stored snapshots of calls that are not coming back.
    pub deletes: Vec<String>,
    /// Snapshots taken since start (each is a call's new state handed to the writer).
    pub taken: u64,
    /// Changed calls with the time their snapshot is due, in that order.
    pub due: std::collections::VecDeque<(Instant, CallId)>,
    /// Stopping: everything changed is due now.
    pub flush: bool,
}

/// How long after a call's first change its snapshot is taken (changes meanwhile join it).
/// A crash loses at most this much of the newest state; the writer adds its own window.
pub const GATHER: std::time::Duration = std::time::Duration::from_millis(50);

impl CallManager {
    /// When the next snapshot is due, for [`CallManager::poll_timeout`].
    pub(super) fn snapshot_timeout(&self) -> Option<Instant> {
        if self.snapshots.flush {
            return None;
        }
        self.snapshots.due.front().map(|(at, _)| *at)
    }
}
