//! The outbound half of a call: offering it to an agent's phone, cancelling on ring timeout,
//! bridging on answer, and cleaning up legs that lost the race.

use super::manager::CallManager;
use super::phase::{Phase, Talk};
use super::uac::{Outcome, UacLeg, Wire};
use super::{Leg, MediaCommand};
use crate::acd::CallId;
use crate::events::Event;
use crate::sdp::{self, LocalMedia, Sdp};
use crate::sip::dialog::{our_via, random_token, Dialog};
use crate::sip::header::HeaderName;
use crate::sip::msg::{Core, Headers, Request, Response};
use crate::sip::transaction::{Peer, TxKey};
use crate::sip::uri::{NameAddr, Uri};
use crate::sip::via::{CSeq, Method};
use bytes::Bytes;
use std::time::Instant;
use tracing::{info, warn};

/// An agent's leg of a call: our INVITE to their phone ([`UacLeg`]) and the media it
/// negotiates.
pub(super) struct AgentLeg {
    pub agent: String,
    pub uac: UacLeg,
    /// Our SRTP key in the offer (agents registered over TLS get SRTP).
    pub srtp: Option<crate::media::srtp::MasterKey>,
    /// The agent's media as their answer (or a later re-offer) set it, once answered.
    pub media: Option<crate::sdp::Negotiated>,
    /// Our o= session id and version on this leg.
    pub origin: sdp::Origin,
}

impl AgentLeg {
    /// The agent's dialog, once they answered.
    pub fn dialog(&self) -> Option<&Dialog> {
        self.uac.dialog()
    }
}

/// A new out-of-dialog INVITE from us (CSeq 1, a fresh Call-ID): the agent legs and the
/// callbacks to customers are built the same way.
pub(super) fn new_invite(
    uri: Uri,
    via: crate::sip::via::Via,
    from: NameAddr,
    to: NameAddr,
    contact: NameAddr,
    headers: Headers,
    body: Bytes,
) -> Request {
    Request {
        method: Method::Invite,
        uri,
        core: Core {
            vias: vec![via],
            from,
            to,
            call_id: format!("{}@acd", random_token()),
            cseq: CSeq {
                seq: 1,
                method: Method::Invite,
            },
            max_forwards: Some(70),
            contacts: vec![contact],
            contact_star: false,
        },
        headers,
        body,
    }
}

impl CallManager {
    /// Rings `agent` for `call`: every phone the agent has bound, at once (RFC 3261 §16.7
    /// forking, as Asterisk and FreeSWITCH dial all contacts of an endpoint). The first to
    /// answer gets the call; the others are CANCELled.
    pub(super) fn offer(&mut self, now: Instant, call: CallId, agent: &str, queue: &str) {
        let bindings: Vec<_> = self.ep.registrar.live(agent, now).cloned().collect();
        if bindings.is_empty() {
            // Registration lapsed between the decision and now.
            self.acd.agent_offline(now, agent);
            return;
        }
        let Some(c) = self.calls.get(&call) else {
            self.acd.call_gone(now, call);
            return;
        };
        if !matches!(c.phase, Phase::Waiting | Phase::Ringing(_)) {
            // The offer was overtaken (another phone of a ring-all answered while this one's
            // pop was on its way): the ACD's ring timeout frees the agent.
            let _g = c.span.enter();
            warn!(%agent, phase = c.phase.name(), "offer for a call no longer in line; not rung");
            return;
        }
        for binding in bindings {
            self.ring_binding(now, call, agent, queue, binding);
        }
    }

    /// One INVITE of an offer, to one of the agent's phones.
    fn ring_binding(
        &mut self,
        now: Instant,
        call: CallId,
        agent: &str,
        queue: &str,
        binding: crate::sip::registrar::Binding,
    ) {
        let via_host = self.via_host_on(binding.peer.transport);
        let contact = self.contact_on(binding.peer.transport);
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let _g = c.span.enter();
        let via = our_via(binding.peer.transport, &via_host);
        // The number is the caller's to write: escaped (RFC 3261 §25) so it cannot break the
        // agent's From, and quoted as the display name.
        let user = crate::sip::uri::escape_user(&c.caller_number);
        let mut from = NameAddr::new(Uri::sip(Some(&user), &contact.uri.host, None));
        from.display = Some(crate::sip::uri::quote_display(&c.caller_number));
        from.params.set("tag", Some(random_token()));
        let to = NameAddr::new(Uri::sip(Some(agent), &contact.uri.host, None));
        // SRTP towards phones that registered over TLS, where the SDES key stays secret.
        let srtp = (binding.peer.transport == crate::sip::transaction::Transport::Tls)
            .then(crate::media::srtp::MasterKey::random);
        // Each leg is its own SDP session (RFC 3264 §5: o= unique per session).
        let origin = sdp::Origin::new();
        let local = LocalMedia {
            ip: self.cfg.advertise,
            port: c.agent_port,
            session_id: origin.session,
            version: origin.version,
            srtp,
        };
        let mut headers = Headers::default();
        // Registered through an edge proxy: back the way the REGISTER came (RFC 3327 §6).
        for hop in &binding.path {
            headers.push(HeaderName::Route, hop.clone());
        }
        headers.push(HeaderName::ContentType, "application/sdp");
        headers.push(HeaderName::UserAgent, crate::sip::msg::PRODUCT);
        // What the phone may send us in this dialog (its hold re-INVITE, INFO digits, UPDATE).
        headers.push(HeaderName::Allow, crate::sip::endpoint::ALLOW);
        headers.push(HeaderName::Accept, "application/sdp");
        // We PRACK phones that ring reliably; no `timer`: this leg runs no session timer.
        headers.push(HeaderName::Supported, "100rel");
        headers.push(HeaderName::Other("X-ACD-Queue".into()), queue);
        headers.push(HeaderName::Other("X-ACD-Call".into()), call.to_string());
        let invite = new_invite(
            binding.contact.clone(),
            via,
            from,
            to,
            contact,
            headers,
            Bytes::from(sdp::offer(&local, &c.media.codec.preferred(), 101)),
        );
        info!(%agent, contact = %binding.contact, "offering call");
        drop(_g);
        let key = self.ep.send_request(now, &invite, binding.peer);
        self.by_agent_tx.insert(key.clone(), call);
        self.by_sip_id
            .insert(invite.core.call_id.clone(), (call, Leg::Agent));
        if let Some(c) = self.calls.get_mut(&call) {
            let leg = AgentLeg {
                agent: agent.to_string(),
                uac: UacLeg::calling(invite, key, binding.peer),
                srtp,
                media: None,
                origin,
            };
            match &mut c.phase {
                Phase::Ringing(legs) => legs.push(leg),
                p => *p = Phase::Ringing(vec![leg]),
            }
        }
    }

    /// Stops ringing every (unanswered) phone of `agent` for `call`.
    pub(super) fn drop_agent_leg(&mut self, now: Instant, call: CallId, agent: &str) {
        self.pop_forget_agent(call, agent);
        while let Some(leg) = self.take_ringing(call, |l| l.agent == agent) {
            self.cancel_leg(now, leg);
        }
    }

    /// Takes the first ringing leg of `call` that `which` picks; the call is back to plain
    /// waiting when it was the last.
    fn take_ringing(
        &mut self,
        call: CallId,
        which: impl Fn(&AgentLeg) -> bool,
    ) -> Option<AgentLeg> {
        let c = self.calls.get_mut(&call)?;
        let Phase::Ringing(legs) = &mut c.phase else {
            return None;
        };
        let leg = legs.remove(legs.iter().position(which)?);
        if legs.is_empty() {
            c.phase = Phase::Waiting;
        }
        Some(leg)
    }

    /// Cancels a ring an earlier process started (its INVITE from a snapshot): the transaction
    /// is adopted so the 487 is ACKed, and the leg is kept as stale so a phone that answers in
    /// the same instant is ACKed and hung up rather than left talking to no one.
    pub(super) fn cancel_adopted(&mut self, now: Instant, invite: Request, peer: Peer) {
        let key = self.ep.adopt_invite(now, &invite, peer);
        let (leg, cancel) = UacLeg::cancelling(invite, key.clone(), peer);
        self.ep.send_request(now, &cancel, peer);
        self.stale.insert(key, leg);
    }

    /// Cancels an unanswered agent leg and keeps it as stale until its INVITE is finished.
    pub(super) fn cancel_leg(&mut self, now: Instant, leg: AgentLeg) {
        self.cancel_uac(now, leg.uac);
    }

    /// Gives up on one of our INVITEs: CANCEL now or at its first provisional (§9.1), and
    /// kept as stale until the INVITE is finished.
    pub(super) fn cancel_uac(&mut self, now: Instant, mut uac: UacLeg) {
        self.by_agent_tx.remove(&uac.key);
        self.by_sip_id.remove(&uac.invite.core.call_id);
        if let Some(cancel) = uac.cancel() {
            self.ep.send_request(now, &cancel, uac.peer);
        }
        self.stale.insert(uac.key.clone(), uac);
    }

    /// Sends what a leg put on the wire.
    pub(super) fn send_wire(&mut self, now: Instant, peer: Peer, wire: Wire) {
        if let Some(ack) = wire.ack {
            self.ep.send_ack(&ack, peer);
        }
        if let Some(req) = wire.request {
            self.ep.send_request(now, &req, peer);
        }
    }

    /// A response to one of our requests.
    pub(super) fn on_response(&mut self, now: Instant, key: TxKey, resp: Response) {
        if resp.code >= 200 && self.qualify_answered(now, &key) {
            return;
        }
        if resp.core.cseq.method != Method::Invite
            || self.callback_response(now, &key, &resp)
            || self.reinvite_response(now, &key, &resp)
        {
            return;
        }
        if let Some(&call) = self.by_agent_tx.get(&key) {
            return self.on_agent_response(now, call, &key, resp);
        }
        let Some(s) = self.stale.get_mut(&key) else {
            return;
        };
        let via = self.cfg.via_host(s.peer.transport);
        let (_, wire) = s.on_response(&resp, &via);
        let (peer, done) = (s.peer, s.is_done());
        if done {
            self.stale.remove(&key);
        }
        self.send_wire(now, peer, wire);
    }

    fn on_agent_response(&mut self, now: Instant, call: CallId, key: &TxKey, resp: Response) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let leg = match &mut c.phase {
            Phase::Connected(t) if &t.agent.uac.key == key => &mut t.agent,
            Phase::Ringing(legs) => match legs.iter_mut().find(|l| &l.uac.key == key) {
                Some(l) => l,
                None => return,
            },
            // Legs of calls no longer ringing were made stale when the ringing stopped.
            _ => return,
        };
        let via = self.cfg.via_host(leg.uac.peer.transport);
        let peer = leg.uac.peer;
        let (outcome, wire) = leg.uac.on_response(&resp, &via);
        self.send_wire(now, peer, wire);
        match outcome {
            Outcome::Nothing => {}
            Outcome::Answered => self.agent_answered(now, call, key, &resp),
            Outcome::Refused(code) => {
                if let Some(leg) = self.take_ringing(call, |l| &l.uac.key == key) {
                    self.phone_ended(now, call, leg, code);
                }
            }
        }
    }

    /// The ringing leg `key` of `call` answered (and was ACKed): it becomes the call's agent
    /// leg, the other phones stop, the media is bridged and the caller answered.
    fn agent_answered(&mut self, now: Instant, call: CallId, key: &TxKey, resp: &Response) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Phase::Ringing(legs) = &mut c.phase else {
            return;
        };
        let Some(i) = legs.iter().position(|l| &l.uac.key == key) else {
            return;
        };
        let leg = &mut legs[i];
        let peer = leg.uac.peer;
        // We offered SRTP: a plain answer is as unusable as none.
        let answer = Sdp::parse(&resp.body)
            .and_then(|s| s.negotiate())
            .and_then(|n| match (leg.srtp, n.srtp) {
                (Some(_), None) => Err(crate::sdp::SdpError::NoCommonCrypto),
                _ => Ok(n),
            });
        let Ok(n) = answer else {
            warn!(
                call,
                "agent answered without usable SDP; hanging up that leg"
            );
            let via = self.cfg.via_host(peer.transport);
            if let Some(bye) = leg.uac.hang_up(&via) {
                self.ep.send_request(now, &bye, peer);
            }
            if let Some(leg) = self.take_ringing(call, |l| &l.uac.key == key) {
                self.phone_ended(now, call, leg, 488);
            }
            return;
        };
        let mut others = std::mem::take(legs);
        let mut leg = others.remove(i);
        leg.media = Some(n);
        let agent = leg.agent.clone();
        let srtp = leg
            .srtp
            .zip(n.srtp)
            .map(|(ours, theirs)| crate::media::srtp::SrtpKeys {
                theirs: theirs.key,
                ours,
            });
        c.phase = Phase::Connected(Box::new(Talk {
            agent: leg,
            since: now,
            held: false,
            srtp,
            learned: None,
        }));
        // The bridge replaces whatever was playing.
        c.prompt_playing = false;
        let wait_ms = now.saturating_duration_since(c.arrived).as_millis() as u64;
        {
            let _g = c.span.enter();
            info!(%agent, wait_ms, "connected");
        }
        self.acd.offer_taken(now, call, &agent);
        for mut leg in others {
            leg.uac.elsewhere = true;
            self.cancel_leg(now, leg);
        }
        // Other agents whose phones were still waiting for their pop are not rung now.
        self.pop_forget(call);
        let record = self.recording_path(call);
        if let Some(path) = &record {
            self.events.push_back(Event::Recording {
                call,
                path: path.display().to_string(),
            });
        }
        self.media.push_back(MediaCommand::Bridge {
            call,
            agent_remote: n.remote,
            agent_codec: n.codec,
            agent_codec_pt: n.codec_pt,
            agent_dtmf_pt: n.dtmf_pt,
            agent_signalling: Some(peer.addr.ip()),
            agent_srtp: srtp,
            record,
        });
        self.answer_caller(now, call);
        self.events.push_back(Event::Connected {
            call,
            agent,
            wait_ms,
        });
    }

    /// One phone of an offer ended without an answer. While the agent's other phones still
    /// ring the offer stands (a busy desk phone does not stop the softphone); a 6xx (the agent
    /// declined, RFC 3261 §16.7 step 5) stops them all.
    fn phone_ended(&mut self, now: Instant, call: CallId, leg: AgentLeg, code: u16) {
        let agent = leg.agent.clone();
        let mine = |l: &AgentLeg| l.agent == agent;
        let others = self
            .calls
            .get(&call)
            .is_some_and(|c| c.ringing().iter().any(mine));
        if !others {
            return self.leg_failed(now, call, leg, code);
        }
        self.by_agent_tx.remove(&leg.uac.key);
        self.by_sip_id.remove(&leg.uac.invite.core.call_id);
        if code >= 600 {
            while let Some(other) = self.take_ringing(call, mine) {
                self.cancel_leg(now, other);
            }
            self.leg_failed(now, call, leg, code);
        }
    }

    /// One agent's leg ended without an answer: that agent rests; the call waits for the
    /// others still ringing, or goes back to the head of its queue.
    fn leg_failed(&mut self, now: Instant, call: CallId, leg: AgentLeg, code: u16) {
        self.by_agent_tx.remove(&leg.uac.key);
        self.by_sip_id.remove(&leg.uac.invite.core.call_id);
        if let Some(c) = self.calls.get(&call) {
            let _g = c.span.enter();
            info!(agent = %leg.agent, code, "agent did not take the call");
        }
        self.acd.agent_failed(now, call, &leg.agent);
        self.events.push_back(Event::OfferRejected {
            call,
            agent: leg.agent,
            code,
        });
        self.run_decisions(now);
    }

    /// One of our requests got no answer at all.
    pub(super) fn on_agent_timeout(&mut self, now: Instant, key: &TxKey) {
        if self.callback_tx_timeout(now, key) || self.reinvite_timeout(now, key) {
            return;
        }
        if let Some(&call) = self.by_agent_tx.get(key) {
            if let Some(leg) = self.take_ringing(call, |l| &l.uac.key == key) {
                self.phone_ended(now, call, leg, 408);
            }
        } else {
            self.stale.remove(key);
        }
    }
}
