//! Resuming calls saved by a process that did not stop cleanly (issue 12, item 3): each call
//! keeps its RTP ports, its dialogs (CSeq moved above the last one saved, same tags) and its
//! place. Every confirmed leg gets a re-INVITE with a higher SDP version so a phone that lost
//! media re-latches; callers in line go back in their original order; a call whose agent was
//! only ringing has that leg CANCELled and is offered again; connected calls stay connected with
//! their agents busy; a caller in a menu hears it again. A call that cannot be taken over is
//! ended cleanly — BYE, a final answer or CANCEL — never left half-open.

use super::agent_leg::AgentLeg;
use super::manager::{Call, CallManager, CallerLeg};
use super::phase::{Input, Phase, Talk};
use super::session_timer::{Asked, SessionTimer};
use super::snapshot::{parse_request, CallSnapshot, SavedPhase, SavedRinging, SNAPSHOT_VERSION};
use super::uac::UacLeg;
use super::{Leg, MediaCommand};
use crate::acd::CallId;
use crate::events::{Event, Side};
use crate::sdp::{self, LocalMedia, Sdp};
use crate::sip::header::HeaderName;
use crate::sip::msg::{Headers, Response};
use crate::sip::transaction::{Peer, TxKey};
use crate::sip::via::Method;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, info_span, warn};

/// CSeq numbers skipped past the last one saved: requests sent after the last snapshot (a
/// BYE that crossed the crash, say) must not be reused.
const CSEQ_MARGIN: u32 = 100;

/// A re-INVITE sent to one leg of a resumed call.
pub(super) struct Reinvite {
    pub call: CallId,
    pub leg: Leg,
    pub seq: u32,
    /// A 2xx came (kept after it, to ACK its retransmissions).
    pub answered: bool,
    /// A session-timer refresh, not a resume.
    pub refresh: bool,
}

/// What a resume did, for the log and the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResumeReport {
    pub resumed: usize,
    /// Ended cleanly because they could not be taken over.
    pub ended: usize,
    /// Snapshots that could not even be read back (nothing could be sent to their phones).
    pub unreadable: usize,
}

/// The order calls are taken back in: talking agents are busy before anyone is offered a
/// call, and callers in line go back in the order they joined.
fn order(s: &CallSnapshot) -> (u8, u64) {
    match &s.phase {
        SavedPhase::Connected { .. } => (0, 0),
        SavedPhase::Waiting { enqueued_ms } | SavedPhase::Ringing { enqueued_ms, .. } => {
            (1, *enqueued_ms)
        }
        SavedPhase::Menu { .. } | SavedPhase::Routing => (2, s.arrived_ms),
        SavedPhase::Unresumable { .. } => (3, 0),
    }
}

impl CallManager {
    /// Takes over the calls in `saved` (snapshots left by an earlier process).
    pub fn resume(&mut self, now: Instant, saved: Vec<CallSnapshot>) -> ResumeReport {
        self.resume_from(now, saved, false)
    }

    /// Takes over calls another cluster node held (it died): as [`CallManager::resume`], but
    /// on this node's own RTP ports (the re-INVITEs announce them with this node's address).
    pub fn take_over(&mut self, now: Instant, saved: Vec<CallSnapshot>) -> ResumeReport {
        self.resume_from(now, saved, true)
    }

    fn resume_from(
        &mut self,
        now: Instant,
        mut saved: Vec<CallSnapshot>,
        elsewhere: bool,
    ) -> ResumeReport {
        saved.sort_by_key(order);
        let mut report = ResumeReport::default();
        for mut s in saved {
            if elsewhere {
                // Placeholders the pool does not hold: new ports are taken below.
                s.caller_port = 0;
                s.agent_port = 0;
            }
            match self.resume_one(now, s) {
                Some(true) => report.resumed += 1,
                Some(false) => report.ended += 1,
                None => report.unreadable += 1,
            }
        }
        info!(?report, "calls resumed");
        self.process(now);
        report
    }

    /// `Some(true)`: resumed; `Some(false)`: ended cleanly; `None`: unreadable.
    fn resume_one(&mut self, now: Instant, mut s: CallSnapshot) -> Option<bool> {
        let invite = parse_request(&s.caller.invite);
        let dialog = s.caller.dialog.restore(CSEQ_MARGIN);
        let (Some(invite), Some(dialog)) = (invite, dialog) else {
            warn!(interaction = %s.interaction, "snapshot unreadable; call dropped");
            self.snapshots.deletes.push(s.interaction);
            return None;
        };
        let id = self.next_call();
        // The stored snapshot is this call's now: rewritten as it changes, deleted at its end.
        self.snapshots.written.insert(id, s.interaction.clone());
        let span = info_span!("call", call = id, sip_call_id = %invite.core.call_id, interaction = %s.interaction);
        let why = match &s.phase {
            _ if s.v != SNAPSHOT_VERSION => Some("a snapshot of another version".to_string()),
            SavedPhase::Unresumable { why, .. } => Some(why.clone()),
            // Taken over from another node: any two free ports of ours.
            _ if s.caller_port == 0 => match self.ports.take_pair() {
                Some((a, b)) => {
                    s.caller_port = a;
                    s.agent_port = b;
                    None
                }
                None => Some("no RTP port is free".into()),
            },
            _ if !self.ports.take_exact(s.caller_port) => Some("its RTP port is taken".into()),
            _ if !self.ports.take_exact(s.agent_port) => {
                self.ports.give(s.caller_port);
                Some("its RTP port is taken".into())
            }
            _ => None,
        };
        if let Some(why) = why {
            let _g = span.enter();
            info!(%why, "call cannot be resumed; ending it");
            drop(_g);
            self.end_saved(now, id, &s, &invite, dialog);
            return Some(false);
        }
        let agent = match &s.phase {
            SavedPhase::Connected { agent, .. } => {
                let (Some(inv), Some(d)) = (
                    parse_request(&agent.invite),
                    agent.dialog.restore(CSEQ_MARGIN),
                ) else {
                    self.ports.give(s.caller_port);
                    self.ports.give(s.agent_port);
                    self.end_saved(now, id, &s, &invite, dialog);
                    return Some(false);
                };
                Some(AgentLeg {
                    agent: agent.agent.clone(),
                    uac: UacLeg::confirmed(inv.clone(), TxKey::server(&inv), d),
                    srtp: None,
                    media: Some(agent.media.negotiated()),
                    // Our o= on this leg goes on from the offer we saved (RFC 3264 §8).
                    origin: sdp::Origin::of(&inv.body)
                        .map(|o| sdp::Origin {
                            version: o.version.max(agent.sdp_version),
                            ..o
                        })
                        .unwrap_or_default(),
                })
            }
            _ => None,
        };
        {
            let _g = span.enter();
            info!(phase = ?std::mem::discriminant(&s.phase), queue = %s.queue, "call resumed");
        }
        let at = |ms: u64| self.ep.instant_of_unix_ms(now, ms);
        let held = matches!(s.phase, SavedPhase::Connected { held: true, .. });
        if let Some(a) = &agent {
            if let Some(d) = a.dialog() {
                self.by_sip_id.insert(d.call_id.clone(), (id, Leg::Agent));
            }
        }
        // Connected calls stay connected; every other call is routed again from where it was
        // (the phase is set by the steps below: back in line, the menu, the lookup).
        let phase = match (agent, &s.phase) {
            (Some(agent), SavedPhase::Connected { connected_ms, .. }) => {
                Phase::Connected(Box::new(Talk {
                    agent,
                    since: at(*connected_ms),
                    held,
                    srtp: None,
                    learned: match &s.phase {
                        SavedPhase::Connected { agent, .. } => agent.learned,
                        _ => None,
                    },
                }))
            }
            _ => Phase::Routing,
        };
        let key = TxKey::server(&invite);
        self.by_sip_id
            .insert(invite.core.call_id.clone(), (id, Leg::Caller));
        self.by_caller_invite.insert(key.clone(), id);
        let call = Call {
            span,
            caller_number: s.caller_number.clone(),
            queue: s.queue.clone(),
            priority: s.priority,
            caller: CallerLeg {
                invite_text: Default::default(),
                invite_key: key,
                invite,
                dialog,
                sdp: Bytes::from(s.caller.sdp.clone()),
                answered: true,
                // The resume's re-INVITE refreshes it: it runs from now.
                session: s.caller.session.and_then(|t| {
                    SessionTimer::of(
                        Asked::Timer {
                            interval: t.interval,
                            we_refresh: t.we_refresh,
                            peer_supports: t.peer_supports,
                        },
                        now,
                    )
                }),
                prack: None,
            },
            phase,
            media: s.media.negotiated(),
            caller_key: None,
            caller_port: s.caller_port,
            agent_port: s.agent_port,
            arrived: at(s.arrived_ms),
            sdp_session: s.sdp_session,
            sdp_version: s.sdp_version,
            context: s.context.clone(),
            dialed: s.dialed.clone(),
            route: s.route.as_ref().map(|r| r.decision(&s.queue, s.priority)),
            prompt_playing: false,
            caller_learned: s.caller_learned,
            interaction: s.interaction.clone(),
            transfers: s.transfers,
            notes: s.notes.clone(),
            called_back: s.called_back_ms.map(at),
            identity: super::Identity {
                number: s.caller_number.clone(),
                trusted: s.trusted,
                basis: s.basis.clone(),
            },
            source: None,
        };
        self.calls.insert(id, call);
        let phase = s.phase.clone();
        let s_caller_learned = s.caller_learned;
        self.events.push_back(Event::CallResumed {
            call: id,
            snapshot: Arc::new(s),
        });
        self.start_media(id, true);
        if let Some(addr) = s_caller_learned {
            self.media.push_back(MediaCommand::Relock {
                call: id,
                leg: Leg::Caller,
                addr,
            });
        }
        // A phone that hung up while the call had no node is not re-INVITEd: its hang-up
        // ends the call below, as if it came now (see `strays`).
        let gone = self.hung_up_meanwhile(now, id);
        if gone != Some(Leg::Caller) {
            self.reinvite(now, id, Leg::Caller);
        }
        match phase {
            SavedPhase::Connected { agent, .. } => {
                let queue = self
                    .calls
                    .get(&id)
                    .map(|c| c.queue.clone())
                    .unwrap_or_default();
                self.acd.resume_busy(now, &agent.agent, id, &queue);
                let m = agent.media;
                self.media.push_back(MediaCommand::Bridge {
                    call: id,
                    agent_remote: m.remote,
                    agent_codec: m.codec,
                    agent_codec_pt: m.codec_pt,
                    agent_dtmf_pt: m.dtmf_pt,
                    agent_signalling: Some(agent.dialog.peer.ip()),
                    agent_srtp: None,
                    record: None,
                });
                if let Some(addr) = agent.learned {
                    self.media.push_back(MediaCommand::Relock {
                        call: id,
                        leg: Leg::Agent,
                        addr,
                    });
                }
                if held {
                    self.media.push_back(MediaCommand::Hold { call: id });
                }
                if gone.is_none() {
                    self.reinvite(now, id, Leg::Agent);
                }
            }
            SavedPhase::Waiting { enqueued_ms } | SavedPhase::Ringing { enqueued_ms, .. } => {
                if let SavedPhase::Ringing { legs, .. } = &phase {
                    self.cancel_saved(now, legs);
                }
                self.media.push_back(MediaCommand::Hold { call: id });
                let joined = self.ep.instant_of_unix_ms(now, enqueued_ms);
                self.requeue_resumed(now, id, joined);
            }
            SavedPhase::Menu { menu } => self.start_menu(id, &menu),
            SavedPhase::Routing => self.request_context(now, id),
            SavedPhase::Unresumable { .. } => {}
        }
        if let Some(leg) = gone {
            self.step(now, id, Input::bye_of(leg));
        }
        Some(true)
    }

    /// Which of a just-resumed call's phones sent its BYE here before the call was (the
    /// takeover of a dead node's call, see `strays`).
    fn hung_up_meanwhile(&mut self, now: Instant, id: CallId) -> Option<Leg> {
        if self.strays.is_empty() {
            return None;
        }
        let c = self.calls.get(&id)?;
        if self.strays.take(now, &c.caller.dialog) {
            return Some(Leg::Caller);
        }
        let agent = c.talk().and_then(|t| t.agent.dialog())?;
        self.strays.take(now, agent).then_some(Leg::Agent)
    }

    /// Back in line as of `joined`, with the skills its route requires.
    fn requeue_resumed(&mut self, now: Instant, id: CallId, joined: Instant) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        c.phase = Phase::Waiting;
        let (queue, priority) = (c.queue.clone(), c.priority);
        self.require_route_skills(id);
        if let Err(e) = self.acd.enqueue_resumed(now, id, &queue, priority, joined) {
            warn!(call = id, error = %e, "resumed caller cannot rejoin their queue");
            return self.end_call(now, id, Side::System, 503);
        }
        self.announce_start(now, id);
    }

    /// Stops agents' phones that were ringing for a saved call (their INVITEs were sent by the
    /// earlier process; the CANCEL is built from each, §9.1).
    fn cancel_saved(&mut self, now: Instant, legs: &[SavedRinging]) {
        for l in legs {
            let (Some(inv), Some(transport)) = (
                parse_request(&l.invite),
                super::snapshot::transport(&l.transport),
            ) else {
                continue;
            };
            let peer = Peer {
                transport,
                addr: l.peer,
            };
            info!(agent = %l.agent, "cancelling a ring from before the restart");
            self.cancel_adopted(now, inv, peer);
        }
    }

    /// Ends a saved call that cannot be taken over: BYE to each answered leg, a final answer
    /// to an unanswered caller, CANCEL to ringing phones; the history row is finished.
    fn end_saved(
        &mut self,
        now: Instant,
        id: CallId,
        s: &CallSnapshot,
        invite: &crate::sip::msg::Request,
        mut dialog: crate::sip::dialog::Dialog,
    ) {
        let via = self.via_host();
        if s.caller.answered {
            let bye = dialog.request(Method::Bye, &via);
            self.ep.send_request(now, &bye, dialog.peer);
        } else {
            let mut r = Response::to(invite, 503, dialog.local.tag());
            r.headers
                .push(HeaderName::RetryAfter, self.cfg.retry_after_s.to_string());
            self.ep.respond_stateless(&r, dialog.peer);
        }
        let mut agent = None;
        match &s.phase {
            SavedPhase::Unresumable {
                agent: a, ringing, ..
            } => {
                if let Some((name, d)) = a {
                    if let Some(mut d) = d.restore(CSEQ_MARGIN) {
                        let bye = d.request(Method::Bye, &via);
                        self.ep.send_request(now, &bye, d.peer);
                    }
                    agent = Some(name.clone());
                }
                self.cancel_saved(now, ringing);
            }
            SavedPhase::Connected { agent: a, .. } => {
                if let Some(mut d) = a.dialog.restore(CSEQ_MARGIN) {
                    let bye = d.request(Method::Bye, &via);
                    self.ep.send_request(now, &bye, d.peer);
                }
                agent = Some(a.agent.clone());
            }
            SavedPhase::Ringing { legs, .. } => self.cancel_saved(now, legs),
            _ => {}
        }
        let unix_now = self.ep.unix_ms(now);
        let (queue, arrived_ms, connected_ms) = (s.queue.clone(), s.arrived_ms, connected_ms(s));
        self.events.push_back(Event::CallResumed {
            call: id,
            snapshot: Arc::new(s.clone()),
        });
        self.events.push_back(match agent {
            Some(agent) => Event::Ended {
                call: id,
                agent,
                by: Side::System,
                talk_ms: unix_now.saturating_sub(connected_ms.unwrap_or(unix_now)),
            },
            None => Event::Abandoned {
                call: id,
                queue,
                wait_ms: unix_now.saturating_sub(arrived_ms),
            },
        });
    }

    /// Sends one leg of a resumed call a re-INVITE: same tags, CSeq above the last saved, our
    /// SDP with the same session id and a higher version (RFC 3264 §8), so the phone re-latches.
    fn reinvite(&mut self, now: Instant, id: CallId, leg: Leg) {
        let advertise = self.cfg.advertise;
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let (port, codec, dtmf, origin) = match leg {
            Leg::Caller => {
                c.sdp_version += 1;
                let origin = sdp::Origin {
                    session: c.sdp_session,
                    version: c.sdp_version,
                };
                (c.caller_port, c.media.codec, c.media.dtmf_pt, origin)
            }
            Leg::Agent => {
                let port = c.agent_port;
                let Some(agent) = c.talk_mut().map(|t| &mut t.agent) else {
                    return;
                };
                let Some(m) = agent.media else {
                    return;
                };
                agent.origin.bump();
                (port, m.codec, m.dtmf_pt, agent.origin)
            }
        };
        let local = LocalMedia {
            ip: advertise,
            port,
            session_id: origin.session,
            version: origin.version,
            srtp: None,
        };
        let body = Bytes::from(sdp::offer(&local, &[codec], dtmf.unwrap_or(101)));
        match leg {
            Leg::Caller => c.caller.sdp = body.clone(),
            Leg::Agent => {
                let Some(t) = c.talk_mut() else { return };
                t.agent.uac.invite.body = body.clone();
            }
        }
        // A caller leg with a session timer: this re-INVITE is also its refresh.
        let mut headers = Headers::default();
        let session = c.caller.session.filter(|_| leg == Leg::Caller);
        if let Some(t) = session {
            headers.push(HeaderName::SessionExpires, t.header(true));
            headers.push(
                HeaderName::Supported,
                crate::sip::endpoint::SUPPORTED.join(", "),
            );
            self.timers.arm(t.due(), super::phase::Wake::Session(id));
        }
        self.send_reinvite(now, id, leg, body, headers, session.is_some());
    }

    /// Sends a re-INVITE on one leg's dialog offering `body`, with `headers` besides;
    /// `refresh`: a session-timer refresh (its answer goes to the session timer).
    pub(super) fn send_reinvite(
        &mut self,
        now: Instant,
        id: CallId,
        leg: Leg,
        body: Bytes,
        headers: Headers,
        refresh: bool,
    ) {
        let via = self.via_host();
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let dialog = match leg {
            Leg::Caller => &mut c.caller.dialog,
            Leg::Agent => {
                let Some(d) = c.talk_mut().and_then(|t| t.agent.uac.dialog_mut()) else {
                    return;
                };
                d
            }
        };
        let peer = dialog.peer;
        let mut req = dialog.request(Method::Invite, &via);
        let seq = req.core.cseq.seq;
        let contact = self.contact_on(peer.transport);
        req.core.contacts.push(contact);
        req.headers.push(HeaderName::ContentType, "application/sdp");
        for (name, value) in headers.0 {
            req.headers.push(name, value);
        }
        req.body = body;
        let key = self.ep.send_request(now, &req, peer);
        self.reinvites.insert(
            key,
            Reinvite {
                call: id,
                leg,
                seq,
                answered: false,
                refresh,
            },
        );
    }

    /// A response to a resumed leg's re-INVITE; false when `key` is not one.
    pub(super) fn reinvite_response(&mut self, now: Instant, key: &TxKey, resp: &Response) -> bool {
        let Some(r) = self.reinvites.get(key) else {
            return false;
        };
        let (id, leg, seq, refresh, first) = (r.call, r.leg, r.seq, r.refresh, !r.answered);
        match resp.code {
            100..=199 => {}
            200..=299 => {
                if let Some(r) = self.reinvites.get_mut(key) {
                    r.answered = true;
                }
                if refresh && first {
                    self.session_refreshed(now, id, resp);
                }
                let via = self.via_host();
                let Some(c) = self.calls.get_mut(&id) else {
                    return true;
                };
                let dialog = match leg {
                    Leg::Caller => Some(&c.caller.dialog),
                    Leg::Agent => c.talk().and_then(|t| t.agent.dialog()),
                };
                if let Some(d) = dialog {
                    let (ack, peer) = (d.ack(seq, &via), d.peer);
                    self.ep.send_ack(&ack, peer);
                }
                // The answer says where the phone's media is now: it may have moved.
                if let Ok(n) = Sdp::parse(&resp.body).and_then(|s| s.negotiate()) {
                    let current = match leg {
                        Leg::Caller => Some(&mut c.media),
                        Leg::Agent => c.talk_mut().and_then(|t| t.agent.media.as_mut()),
                    };
                    if let Some(m) = current {
                        if m.remote != n.remote && !n.remote.ip().is_unspecified() {
                            m.remote = n.remote;
                            self.media.push_back(MediaCommand::Retarget {
                                call: id,
                                leg,
                                remote: n.remote,
                            });
                            self.snapshot_mark(id);
                        }
                    }
                }
            }
            // The phone no longer knows the call (RFC 3261 §14.1): it is over.
            481 | 408 => {
                self.reinvites.remove(key);
                let by = if leg == Leg::Caller {
                    Side::Caller
                } else {
                    Side::Agent
                };
                warn!(
                    call = id,
                    ?leg,
                    code = resp.code,
                    "a resumed leg is gone; ending the call"
                );
                self.end_call(now, id, by, 487);
            }
            _ if refresh => {
                self.reinvites.remove(key);
                self.session_refused(now, id, resp);
            }
            code => {
                self.reinvites.remove(key);
                warn!(
                    call = id,
                    ?leg,
                    code,
                    "re-INVITE refused; media goes on as before"
                );
            }
        }
        true
    }

    /// A resumed leg's re-INVITE got no answer at all: the phone is gone.
    pub(super) fn reinvite_timeout(&mut self, now: Instant, key: &TxKey) -> bool {
        let Some(r) = self.reinvites.remove(key) else {
            return false;
        };
        warn!(call = r.call, leg = ?r.leg, "no answer to a resumed leg's re-INVITE; ending the call");
        let by = if r.leg == Leg::Caller {
            Side::Caller
        } else {
            Side::Agent
        };
        self.end_call(now, r.call, by, 408);
        true
    }
}

fn connected_ms(s: &CallSnapshot) -> Option<u64> {
    match &s.phase {
        SavedPhase::Connected { connected_ms, .. } => Some(*connected_ms),
        _ => None,
    }
}
