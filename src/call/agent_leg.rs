//! The outbound half of a call: offering it to an agent's phone, cancelling on ring timeout,
//! bridging on answer, and cleaning up legs that lost the race.

use super::manager::CallManager;
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

/// The agent leg of a live call.
pub(super) struct AgentLeg {
    pub agent: String,
    pub invite: Request,
    /// `invite` as text, made once for the call's snapshots (it never changes).
    pub invite_text: super::snapshot::TextOnce,
    pub key: TxKey,
    pub peer: Peer,
    /// Set once the agent answered.
    pub dialog: Option<Dialog>,
    pub provisional: bool,
    /// Our SRTP key in the offer (agents registered over TLS get SRTP).
    pub srtp: Option<crate::media::srtp::MasterKey>,
    /// The agent's media as their answer (or a later re-offer) set it, once answered.
    pub media: Option<crate::sdp::Negotiated>,
}

/// An agent leg we gave up on (ring timeout, caller left) whose INVITE may still be answered.
pub(super) struct StaleLeg {
    invite: Request,
    peer: Peer,
    cancel_sent: bool,
}

/// CANCEL for a pending INVITE (§9.1): same Request-URI, Call-ID, From, To, CSeq number, top Via.
pub(super) fn cancel_for(invite: &Request) -> Request {
    let mut c = invite.clone();
    c.method = Method::Cancel;
    c.core.cseq.method = Method::Cancel;
    c.core.contacts.clear();
    c.headers.0.retain(|(n, _)| *n == HeaderName::Route);
    c.body = Bytes::new();
    c
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
    /// Rings `agent` for `call`.
    pub(super) fn offer(&mut self, now: Instant, call: CallId, agent: &str, queue: &str) {
        let Some(binding) = self.ep.registrar.lookup(agent, now).cloned() else {
            // Registration lapsed between the decision and now.
            self.acd.agent_offline(now, agent);
            return;
        };
        let via_host = self.via_host_on(binding.peer.transport);
        let contact = self.contact_on(binding.peer.transport);
        let Some(c) = self.calls.get(&call) else {
            self.acd.call_gone(now, call);
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
        let local = LocalMedia {
            ip: self.cfg.advertise,
            port: c.agent_port,
            session_id: c.sdp_session,
            version: 1,
            srtp,
        };
        let mut headers = Headers::default();
        headers.push(HeaderName::ContentType, "application/sdp");
        headers.push(HeaderName::UserAgent, crate::sip::msg::PRODUCT);
        headers.push(HeaderName::Other("X-ACD-Queue".into()), queue);
        headers.push(HeaderName::Other("X-ACD-Call".into()), call.to_string());
        let invite = new_invite(
            binding.contact.clone(),
            via,
            from,
            to,
            contact,
            headers,
            Bytes::from(sdp::offer(&local, c.media.codec, 101)),
        );
        info!(%agent, contact = %binding.contact, "offering call");
        drop(_g);
        let key = self.ep.send_request(now, &invite, binding.peer);
        self.by_agent_tx.insert(key.clone(), call);
        self.by_sip_id
            .insert(invite.core.call_id.clone(), (call, Leg::Agent));
        if let Some(c) = self.calls.get_mut(&call) {
            let leg = AgentLeg {
                invite_text: Default::default(),
                agent: agent.to_string(),
                invite,
                key,
                peer: binding.peer,
                dialog: None,
                provisional: false,
                srtp,
                media: None,
            };
            if c.agent.is_none() {
                c.agent = Some(leg);
            } else {
                c.ringing.push(leg);
            }
        }
    }

    /// Stops ringing `agent`'s (unanswered) leg of `call`.
    pub(super) fn drop_agent_leg(&mut self, now: Instant, call: CallId, agent: &str) {
        self.pop_forget_agent(call, agent);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let leg = if c
            .agent
            .as_ref()
            .is_some_and(|l| l.agent == agent && l.dialog.is_none())
        {
            let l = c.agent.take();
            if !c.ringing.is_empty() {
                c.agent = Some(c.ringing.remove(0));
            }
            l
        } else {
            c.ringing
                .iter()
                .position(|l| l.agent == agent)
                .map(|i| c.ringing.remove(i))
        };
        if let Some(leg) = leg {
            self.cancel_leg(now, leg);
        }
    }

    /// Cancels a ring an earlier process started (its INVITE from a snapshot): the transaction
    /// is adopted so the 487 is ACKed, and the leg is kept as stale so a phone that answers in
    /// the same instant is ACKed and hung up rather than left talking to no one.
    pub(super) fn cancel_adopted(&mut self, now: Instant, invite: Request, peer: Peer) {
        let key = self.ep.adopt_invite(now, &invite, peer);
        self.ep.send_request(now, &cancel_for(&invite), peer);
        self.stale.insert(
            key,
            StaleLeg {
                invite,
                peer,
                cancel_sent: true,
            },
        );
    }

    /// Cancels an unanswered agent leg and keeps it as stale until its INVITE is finished.
    pub(super) fn cancel_leg(&mut self, now: Instant, leg: AgentLeg) {
        self.by_agent_tx.remove(&leg.key);
        self.by_sip_id.remove(&leg.invite.core.call_id);
        let mut stale = StaleLeg {
            invite: leg.invite,
            peer: leg.peer,
            cancel_sent: false,
        };
        // §9.1: a CANCEL may only follow a provisional response; otherwise wait for one.
        if leg.provisional {
            self.ep
                .send_request(now, &cancel_for(&stale.invite), stale.peer);
            stale.cancel_sent = true;
        }
        self.stale.insert(leg.key, stale);
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
        match resp.code {
            100..=199 => {
                if !s.cancel_sent {
                    s.cancel_sent = true;
                    let (c, p) = (cancel_for(&s.invite), s.peer);
                    self.ep.send_request(now, &c, p);
                }
            }
            200..=299 => {
                // The agent answered after we gave up: acknowledge, then hang up at once.
                if let Some(s) = self.stale.remove(&key) {
                    let mut d = Dialog::as_uac(&s.invite, &resp, s.peer);
                    let via = self.via_host();
                    self.ep
                        .send_ack(&d.ack(s.invite.core.cseq.seq, &via), s.peer);
                    let bye = d.request(Method::Bye, &via);
                    self.ep.send_request(now, &bye, s.peer);
                }
            }
            _ => {
                self.stale.remove(&key);
            }
        }
    }

    fn on_agent_response(&mut self, now: Instant, call: CallId, key: &TxKey, resp: Response) {
        let via = self.via_host();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        // Ring-all: an answer on one of the other ringing legs.
        if c.agent.as_ref().is_some_and(|l| &l.key != key) {
            let Some(i) = c.ringing.iter().position(|l| &l.key == key) else {
                return;
            };
            match resp.code {
                100..=199 => return c.ringing[i].provisional = true,
                200..=299 => {
                    // This agent was first: their leg becomes the call's agent leg.
                    let first = c.ringing.remove(i);
                    if let Some(old) = c.agent.replace(first) {
                        c.ringing.insert(0, old);
                    }
                }
                code => {
                    let leg = c.ringing.remove(i);
                    return self.leg_failed(now, call, leg, code);
                }
            }
        }
        let Some(leg) = c.agent.as_mut() else { return };
        match resp.code {
            100..=199 => leg.provisional = true,
            200..=299 => {
                if let Some(d) = &leg.dialog {
                    // Retransmitted 2xx: our ACK was lost.
                    let ack = d.ack(leg.invite.core.cseq.seq, &via);
                    let p = leg.peer;
                    self.ep.send_ack(&ack, p);
                    return;
                }
                let mut d = Dialog::as_uac(&leg.invite, &resp, leg.peer);
                let ack = d.ack(leg.invite.core.cseq.seq, &via);
                let peer = leg.peer;
                self.ep.send_ack(&ack, peer);
                // We offered SRTP: a plain answer is as unusable as none.
                let answer =
                    Sdp::parse(&resp.body)
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
                    let bye = d.request(Method::Bye, &via);
                    self.ep.send_request(now, &bye, peer);
                    return self.fail_agent_leg(now, call, 488);
                };
                leg.dialog = Some(d);
                leg.media = Some(n);
                let agent = leg.agent.clone();
                let agent_srtp =
                    leg.srtp
                        .zip(n.srtp)
                        .map(|(ours, theirs)| crate::media::srtp::SrtpKeys {
                            theirs: theirs.key,
                            ours,
                        });
                c.agent_srtp = agent_srtp;
                c.connected = Some(now);
                let wait_ms = now.saturating_duration_since(c.arrived).as_millis() as u64;
                {
                    let _g = c.span.enter();
                    info!(%agent, wait_ms, "connected");
                }
                self.acd.offer_taken(now, call, &agent);
                let losers = std::mem::take(&mut c.ringing);
                for leg in losers {
                    self.cancel_leg(now, leg);
                }
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
                    agent_codec_pt: n.codec_pt,
                    agent_dtmf_pt: n.dtmf_pt,
                    agent_signalling: Some(peer.addr.ip()),
                    agent_srtp,
                    record,
                });
                self.answer_caller(now, call);
                self.events.push_back(Event::Connected {
                    call,
                    agent,
                    wait_ms,
                });
            }
            code => self.fail_agent_leg(now, call, code),
        }
    }

    /// The agent leg ended without an answer (busy, error, no response): try the next agent.
    fn fail_agent_leg(&mut self, now: Instant, call: CallId, code: u16) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(leg) = c.agent.take() else {
            return;
        };
        if !c.ringing.is_empty() {
            c.agent = Some(c.ringing.remove(0));
        }
        self.leg_failed(now, call, leg, code);
    }

    /// One agent's leg ended without an answer: that agent rests; the call waits for the
    /// others still ringing, or goes back to the head of its queue.
    fn leg_failed(&mut self, now: Instant, call: CallId, leg: AgentLeg, code: u16) {
        self.by_agent_tx.remove(&leg.key);
        self.by_sip_id.remove(&leg.invite.core.call_id);
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
            let other = self.calls.get_mut(&call).and_then(|c| {
                let i = c.ringing.iter().position(|l| &l.key == key)?;
                Some(c.ringing.remove(i))
            });
            match other {
                Some(leg) => self.leg_failed(now, call, leg, 408),
                None => self.fail_agent_leg(now, call, 408),
            }
        } else {
            self.stale.remove(key);
        }
    }
}
