//! Callbacks in the call layer. A waiting caller presses the queue's callback key: we let them
//! go (BYE, or 480 if still on early media) and the ACD keeps their place. When their turn
//! comes the ACD reserves an agent as for any offer; we then ring the customer (through the
//! trunk, or back to the Contact of their own call) and, once they answer, their new leg
//! becomes the call's caller leg and the agent is rung with the usual screen pop. A customer
//! who does not answer is tried again after the retry delay, up to the plan's attempts.
//!
//! A callback is a promise to a customer who is no longer on the line, so it is kept in the
//! database ([`SavedCallback`], written by the history writer from the events) and survives a
//! restart: [`CallManager::restore_callbacks`] puts it back in its queue.

use super::agent_leg::new_invite;
use super::manager::{CallManager, CallerLeg};
use super::phase::{CallTimer, Phase};
use super::uac::{Outcome, UacLeg};
use super::{Leg, MediaCommand, MediaStart};
use crate::acd::CallId;
use crate::context::SavedCallback;
use crate::events::Event;
use crate::routing::callback_policy::Untrusted;
use crate::sdp::{self, LocalMedia, Sdp};
use crate::sip::dialog::{our_via, random_token, Dialog};
use crate::sip::header::HeaderName;
use crate::sip::msg::{Headers, Response};
use crate::sip::transaction::{Peer, Transport, TxKey};
use crate::sip::uri::{NameAddr, Uri};
use crate::sip::via::Method;
use bytes::Bytes;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// A call whose caller asked to be called back.
pub(super) struct Callback {
    /// Where the customer is called (Request-URI) and where the INVITE is sent.
    target: Uri,
    peer: Peer,
    /// Tries made so far.
    attempts: u32,
    /// The INVITE to the customer while it rings, with the agent kept for them.
    dialing: Option<Dialing>,
    /// When the caller pressed the key.
    requested: Instant,
    /// A callback restored after a restart has its caller's context looked up again: when
    /// that started, and its deadline.
    pub(super) lookup: Option<(Instant, Instant)>,
}

impl Callback {
    /// A callback ringing the customer (`leg`) until `deadline`, for the phase tests.
    #[cfg(test)]
    pub(super) fn dialing(uac: UacLeg, deadline: Instant) -> Callback {
        Callback {
            target: uac.invite.uri.clone(),
            peer: uac.peer,
            attempts: 1,
            dialing: Some(Dialing {
                agent: "kept".into(),
                uac,
                deadline,
            }),
            requested: deadline,
            lookup: None,
        }
    }

    /// Until when the customer's phone may ring for this try (the ring timer's deadline).
    pub(super) fn dialing_until(&self) -> Option<Instant> {
        self.dialing.as_ref().map(|d| d.deadline)
    }
}

/// One try: the INVITE to the customer (the agent kept for it is named in the leg, for logs;
/// the ACD keeps the offer itself).
struct Dialing {
    /// The agent kept for the customer (for logs; the ACD keeps the offer itself).
    agent: String,
    uac: UacLeg,
    deadline: Instant,
}

/// Outbound callback INVITEs by transaction (their ring deadlines are in the call's phase).
#[derive(Default)]
pub(super) struct Callbacks {
    by_tx: HashMap<TxKey, CallId>,
}

impl CallManager {
    /// True while `call` is a callback whose customer is not on the line (no caller leg).
    pub(super) fn caller_away(&self, call: CallId) -> bool {
        self.calls.get(&call).is_some_and(|c| c.away())
    }

    /// A digit from a caller in line: the queue's callback key lets them go with their place
    /// kept. False when the digit is not a callback request.
    pub(super) fn callback_digit(&mut self, now: Instant, call: CallId, digit: char) -> bool {
        let Some(c) = self.calls.get(&call) else {
            return false;
        };
        let waiting = matches!(c.phase, Phase::Waiting) && self.acd.position(now, call).is_some();
        if !waiting || self.dialplan.callback_key(&c.queue) != Some(digit) {
            return false;
        }
        let plan = self.dialplan.callback.clone();
        let untrusted_contact = plan.policy.untrusted == Untrusted::Contact;
        let mut granted = None;
        let (target, peer) = match plan.trunk {
            // Through the trunk: the caller's number in E.164, vouched for by a trunk, inside
            // the allowed prefixes and under the day's caps (toll fraud: the number is what
            // the caller says unless a trunk asserts it). Otherwise the key does nothing.
            Some(addr) if c.identity.trusted || !untrusted_contact => {
                let Ok(number) =
                    crate::context::e164::normalize(&c.caller_number, &self.cfg.country)
                else {
                    info!(call, caller = %c.caller_number, "no number to call back; key ignored");
                    return false;
                };
                let unix = self.ep.unix_secs(now) as i64;
                let (trusted, basis) = (c.identity.trusted, c.identity.basis.clone());
                if let Err(why) = self.callback_ledger.grant_trunk(
                    &plan.policy,
                    &self.cfg.country.code(),
                    &number,
                    trusted,
                    &basis,
                    unix,
                ) {
                    let _g = c.span.enter();
                    warn!(caller = %number, %why, "callback refused; key ignored");
                    return false;
                }
                granted = Some(number.clone());
                (
                    Uri::sip(Some(&number), &addr.ip().to_string(), Some(addr.port())),
                    Peer {
                        transport: Transport::Udp,
                        addr,
                    },
                )
            }
            // An unvouched caller with `untrusted = "contact"`, or no trunk at all: the remote
            // target (RFC 3261 §12.1.1), the Contact's address when it is an IP literal, else
            // where the call came from (a proxy or SBC in front of the caller). Only for callers
            // a trunk vouches for, or when the plan allows it for everyone.
            _ if !c.identity.trusted && !untrusted_contact => {
                self.callback_ledger.refused += 1;
                let _g = c.span.enter();
                info!(basis = %c.identity.basis, "callback to an unverified caller not allowed; key ignored");
                return false;
            }
            _ => match c.caller.invite.core.contacts.first() {
                Some(contact) => {
                    let mut peer = c.caller.dialog.peer;
                    let host = contact
                        .uri
                        .host
                        .trim_start_matches('[')
                        .trim_end_matches(']');
                    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
                        peer.addr = std::net::SocketAddr::new(ip, contact.uri.port.unwrap_or(5060));
                    }
                    (contact.uri.clone(), peer)
                }
                None => return false,
            },
        };
        if !self.acd.callback(call, plan.dial_timeout) {
            return false;
        }
        let via = self.via_host();
        let Some(c) = self.calls.get_mut(&call) else {
            return false;
        };
        {
            let _g = c.span.enter();
            info!(%target, "callback requested; the caller keeps their place");
        }
        if c.caller.answered {
            let bye = c.caller.dialog.request(Method::Bye, &via);
            let to = c.caller.dialog.peer;
            self.ep.send_request(now, &bye, to);
        } else {
            let mut r = Response::to(&c.caller.invite, 480, c.caller.dialog.local.tag());
            r.headers
                .push(HeaderName::Warning, "399 acd \"callback requested\"");
            let key = c.caller.invite_key.clone();
            self.ep.respond(now, &key, &r);
        }
        self.by_sip_id.remove(&c.caller.invite.core.call_id);
        self.by_caller_invite.remove(&c.caller.invite_key);
        Self::release_source(&mut self.per_source, c.source.take());
        c.phase = Phase::Away(Box::new(Callback {
            target: target.clone(),
            peer,
            attempts: 0,
            dialing: None,
            requested: now,
            lookup: None,
        }));
        c.prompt_playing = false;
        let unix_ms = self.ep.unix_secs(now) as i64 * 1000;
        let saved = SavedCallback {
            interaction: c.interaction.clone(),
            number: c.caller_number.clone(),
            target: target.to_string(),
            peer: peer.addr,
            queue: c.queue.clone(),
            priority: c.priority,
            dialed: c.dialed.clone(),
            pcma: c.media.codec == crate::sdp::Codec::Pcma,
            arrived_at_ms: unix_ms - now.saturating_duration_since(c.arrived).as_millis() as i64,
            requested_at_ms: unix_ms,
            attempts: 0,
            granted,
        };
        self.media.push_back(MediaCommand::Stop { call });
        self.events.push_back(Event::CallbackRequested {
            call,
            saved: std::sync::Arc::new(saved),
        });
        true
    }

    /// Callbacks kept from before a restart: each goes back into its queue (after its caller's
    /// context is looked up again, for the pop), in the order they were asked for.
    /// Today's trunk callbacks granted before a restart, so the day's caps hold across it.
    pub fn restore_callback_grants(&mut self, now: Instant, granted: Vec<(String, u32)>) {
        let day = (self.ep.unix_secs(now) as i64).div_euclid(86_400);
        self.callback_ledger.restore(day, granted);
    }

    pub fn restore_callbacks(&mut self, now: Instant, saved: Vec<SavedCallback>) {
        let unix_ms = self.ep.unix_secs(now) as i64 * 1000;
        let ago = |at_ms: i64| {
            let d = Duration::from_millis(unix_ms.saturating_sub(at_ms).max(0) as u64);
            now.checked_sub(d).unwrap_or(now)
        };
        for s in saved {
            let Ok(target) = Uri::parse(&s.target) else {
                warn!(interaction = %s.interaction, target = %s.target, "saved callback has a bad target; dropped");
                continue;
            };
            let Some((caller_port, agent_port)) = self.ports.take_pair() else {
                warn!(interaction = %s.interaction, "no free RTP ports to restore a callback");
                continue;
            };
            let id = self.next_call();
            let span = tracing::info_span!("call", call = id, interaction = %s.interaction);
            {
                let _g = span.enter();
                info!(queue = %s.queue, attempts = s.attempts, "callback restored");
            }
            let peer = Peer {
                transport: Transport::Udp,
                addr: s.peer,
            };
            // The caller's leg ended before the restart: a stand-in that is never signalled
            // (the customer's answer replaces it).
            let host = self.contact().uri.host;
            let mut from = NameAddr::new(Uri::sip(Some(&s.number), &host, None));
            from.params.set("tag", Some(random_token()));
            let invite = new_invite(
                target.clone(),
                our_via(Transport::Udp, &self.via_host()),
                from,
                NameAddr::new(Uri::sip(Some(&s.dialed), &host, None)),
                NameAddr::new(target.clone()),
                Headers::default(),
                Bytes::new(),
            );
            let codec = if s.pcma {
                crate::sdp::Codec::Pcma
            } else {
                crate::sdp::Codec::Pcmu
            };
            let call = super::manager::Call {
                span,
                caller_number: s.number.clone(),
                queue: s.queue.clone(),
                priority: s.priority,
                caller: CallerLeg {
                    invite_text: Default::default(),
                    invite_key: TxKey::server(&invite),
                    dialog: Dialog::as_uas(&invite, &random_token(), peer),
                    invite,
                    sdp: Bytes::new(),
                    answered: true,
                    session: None,
                    prack: None,
                },
                phase: Phase::Away(Box::new(Callback {
                    target,
                    peer,
                    attempts: s.attempts,
                    dialing: None,
                    requested: ago(s.requested_at_ms),
                    lookup: None,
                })),
                media: crate::sdp::Negotiated {
                    remote: s.peer,
                    codec,
                    codec_pt: codec.pt(),
                    dtmf_pt: Some(101),
                    direction: crate::sdp::Direction::SendRecv,
                    srtp: None,
                },
                caller_key: None,
                caller_port,
                agent_port,
                arrived: ago(s.arrived_at_ms),
                sdp_session: sdp::Origin::new().session,
                sdp_version: 1,
                context: None,
                dialed: s.dialed.clone(),
                route: None,
                prompt_playing: false,
                caller_learned: None,
                interaction: s.interaction.clone(),
                transfers: 0,
                notes: Vec::new(),
                called_back: None,
                // Checked when it was asked for, before the restart.
                identity: super::Identity {
                    number: s.number.clone(),
                    trusted: true,
                    basis: "a callback promised before a restart".into(),
                },
                source: None,
            };
            self.calls.insert(id, call);
            self.events.push_back(Event::CallbackRestored {
                call: id,
                saved: std::sync::Arc::new(s),
            });
            self.request_context(now, id);
        }
        self.process(now);
    }

    /// Shutting down: a callback whose customer is not on the line stays saved for the next
    /// start. Its ringing customer leg is cancelled and its agent freed, with no event.
    pub(super) fn callback_suspend(&mut self, now: Instant, call: CallId) {
        self.pop_forget(call);
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        if let Phase::Away(cb) = c.phase {
            self.callback_forget(now, Some(*cb));
        }
        self.callback_ended(call);
        self.acd.call_gone(now, call);
        self.ports.give(c.caller_port);
        self.ports.give(c.agent_port);
    }

    /// The ACD gave a callback its turn with `agent` kept for it: ring the customer.
    pub(super) fn dial_customer(&mut self, now: Instant, call: CallId, agent: &str) {
        let via_host = self.via_host();
        let contact = self.contact();
        let dial = self.dialplan.callback.dial_timeout;
        let Some(c) = self.calls.get_mut(&call) else {
            self.acd.call_gone(now, call);
            return;
        };
        let Phase::Away(cb) = &mut c.phase else {
            return;
        };
        if let Some(d) = cb.dialing.as_mut() {
            // The agent kept for this try went away and the ACD kept another: the customer's
            // phone is already ringing, so only who waits for them changes.
            d.agent = agent.to_string();
            return;
        }
        cb.attempts += 1;
        let attempt = cb.attempts;
        let mut from = NameAddr::new(Uri::sip(Some(&c.dialed), &contact.uri.host, None));
        from.params.set("tag", Some(random_token()));
        c.sdp_version += 1;
        let local = LocalMedia {
            ip: self.cfg.advertise,
            port: c.caller_port,
            session_id: c.sdp_session,
            version: c.sdp_version,
            // The customer is dialled through a trunk or at their Contact: plain RTP.
            srtp: None,
        };
        let mut headers = Headers::default();
        headers.push(HeaderName::ContentType, "application/sdp");
        headers.push(HeaderName::UserAgent, crate::sip::msg::PRODUCT);
        headers.push(HeaderName::Allow, crate::sip::endpoint::ALLOW);
        headers.push(HeaderName::Accept, "application/sdp");
        // We PRACK phones that ring reliably; no `timer`: this leg runs no session timer.
        headers.push(HeaderName::Supported, "100rel");
        let invite = new_invite(
            cb.target.clone(),
            our_via(cb.peer.transport, &via_host),
            from,
            NameAddr::new(cb.target.clone()),
            contact,
            headers,
            Bytes::from(sdp::offer(&local, &c.media.codec.preferred(), 101)),
        );
        {
            let _g = c.span.enter();
            info!(%agent, attempt, target = %cb.target, "calling the customer back");
        }
        let peer = cb.peer;
        let key = self.ep.send_request(now, &invite, peer);
        self.callbacks.by_tx.insert(key.clone(), call);
        self.arm(call, CallTimer::CallbackRing, now + dial);
        if let Some(Phase::Away(cb)) = self.calls.get_mut(&call).map(|c| &mut c.phase) {
            cb.dialing = Some(Dialing {
                agent: agent.to_string(),
                uac: UacLeg::calling(invite, key, peer),
                deadline: now + dial,
            });
        }
        self.events.push_back(Event::CallbackDialing {
            call,
            agent: agent.to_string(),
            attempt,
        });
    }

    /// A response to a callback INVITE; false when `key` is not one.
    pub(super) fn callback_response(&mut self, now: Instant, key: &TxKey, resp: &Response) -> bool {
        let Some(&call) = self.callbacks.by_tx.get(key) else {
            return false;
        };
        let via = self.via_host();
        let Some(c) = self.calls.get_mut(&call) else {
            self.callbacks.by_tx.remove(key);
            return true;
        };
        if c.called_back.is_some() {
            // A retransmitted 2xx: our ACK was lost.
            if (200..300).contains(&resp.code) {
                let ack = c.caller.dialog.ack(c.caller.invite.core.cseq.seq, &via);
                let p = c.caller.dialog.peer;
                self.ep.send_ack(&ack, p);
            }
            return true;
        }
        let Phase::Away(cb) = &mut c.phase else {
            return true;
        };
        let Some(dialing) = cb.dialing.as_mut() else {
            return true;
        };
        let peer = dialing.uac.peer;
        let via = self.cfg.via_host(peer.transport);
        let (outcome, wire) = dialing.uac.on_response(resp, &via);
        self.send_wire(now, peer, wire);
        match outcome {
            Outcome::Nothing => {}
            Outcome::Answered => self.customer_answered(now, call, resp),
            Outcome::Refused(code) => self.callback_unanswered(now, call, key, code),
        }
        true
    }

    /// The customer picked up: their leg becomes the caller leg, hold music starts, and the
    /// kept agent is rung with the screen pop.
    fn customer_answered(&mut self, now: Instant, call: CallId, resp: &Response) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Phase::Away(cb) = &mut c.phase else {
            return;
        };
        let Some(dialing) = cb.dialing.take() else {
            return;
        };
        let Dialing { agent, mut uac, .. } = dialing;
        let answer = Sdp::parse(&resp.body).and_then(|s| s.negotiate());
        let (Ok(n), Some(d)) = (answer, uac.dialog().cloned()) else {
            warn!(call, "customer answered without usable SDP; hanging up");
            let via = self.cfg.via_host(uac.peer.transport);
            if let Some(bye) = uac.hang_up(&via) {
                self.ep.send_request(now, &bye, uac.peer);
            }
            return self.callback_unanswered(now, call, &uac.key, 488);
        };
        c.called_back = Some(cb.requested);
        // On the line again: in line (the kept agent is rung below) like any caller.
        c.phase = Phase::Waiting;
        c.media = n;
        c.caller = CallerLeg {
            invite_text: Default::default(),
            invite_key: uac.key.clone(),
            sdp: uac.invite.body.clone(),
            invite: uac.invite,
            dialog: d,
            answered: true,
            session: None,
            prack: None,
        };
        {
            let _g = c.span.enter();
            info!(%agent, "customer answered the callback");
        }
        self.by_sip_id
            .insert(c.caller.invite.core.call_id.clone(), (call, Leg::Caller));
        self.media.push_back(MediaCommand::Start(MediaStart {
            call,
            caller_port: c.caller_port,
            agent_port: c.agent_port,
            caller_remote: n.remote,
            codec: n.codec,
            codec_pt: n.codec_pt,
            dtmf_pt: n.dtmf_pt,
            caller_signalling: c.caller.dialog.peer.addr.ip(),
            // We called them and they answered from where we sent the INVITE.
            validated: true,
            caller_srtp: None,
        }));
        self.events.push_back(Event::CallbackAnswered { call });
        // Ring the agent kept for them; if that agent's phone went away meanwhile, the customer
        // waits in line (hold music) for the next one.
        if let Some((agent, queue, ring)) = self.acd.callback_answered(now, call) {
            self.offer_with_pop(now, call, &agent, &queue, ring);
        }
    }

    /// The customer did not answer this try (INVITE `key`): forget the try, free the agent and
    /// try again later, or give up.
    fn callback_unanswered(&mut self, now: Instant, call: CallId, key: &TxKey, code: u16) {
        self.callbacks.by_tx.remove(key);
        let (max, retry) = (
            self.dialplan.callback.attempts,
            self.dialplan.callback.retry,
        );
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let attempts = match &mut c.phase {
            Phase::Away(cb) => {
                cb.dialing = None;
                cb.attempts
            }
            _ => 0,
        };
        {
            let _g = c.span.enter();
            info!(code, attempts, "callback not answered");
        }
        if attempts < max {
            self.acd.callback_unanswered(now, call, retry);
            return self.run_decisions(now);
        }
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        self.acd.call_gone(now, call);
        self.ports.give(c.caller_port);
        self.ports.give(c.agent_port);
        self.events.push_back(Event::CallbackFailed {
            call,
            queue: c.queue.clone(),
            attempts,
            wait_ms: now.saturating_duration_since(c.arrived).as_millis() as u64,
        });
        self.run_decisions(now);
    }

    /// Our callback INVITE got no answer at all (transaction timeout); false when not one.
    pub(super) fn callback_tx_timeout(&mut self, now: Instant, key: &TxKey) -> bool {
        let Some(&call) = self.callbacks.by_tx.get(key) else {
            return false;
        };
        self.callback_unanswered(now, call, key, 408);
        true
    }

    /// The customer's phone rang for the whole dial timeout: CANCEL and count a try.
    pub(super) fn callback_ring_out(&mut self, now: Instant, call: CallId) {
        let due = match self.calls.get_mut(&call).map(|c| &mut c.phase) {
            Some(Phase::Away(cb)) => cb.dialing.take(),
            _ => None,
        };
        if let Some(d) = due {
            let key = d.uac.key.clone();
            self.cancel_uac(now, d.uac);
            self.callback_unanswered(now, call, &key, 487);
        }
    }

    /// A callback call ended: forget its INVITE (kept for 2xx retransmissions).
    pub(super) fn callback_ended(&mut self, call: CallId) {
        self.callbacks.by_tx.retain(|_, c| *c != call);
    }

    /// A callback call is ending before the customer is on the line: stop ringing them.
    pub(super) fn callback_forget(&mut self, now: Instant, cb: Option<Callback>) {
        if let Some(d) = cb.and_then(|cb| cb.dialing) {
            self.callbacks.by_tx.remove(&d.uac.key);
            self.cancel_uac(now, d.uac);
        }
    }
}
