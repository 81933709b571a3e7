//! A new call arriving: admission (draining, caps per node and per untrusted source, free RTP
//! ports), identity, our answer (200 or 183 with early media, or our offer for a late one) and
//! the call's first phase. Until the caller proves their address nothing else happens.

use super::manager::{Call, CallManager, CallerLeg};
use super::phase::Phase;
use super::Leg;
use crate::events::Event;
use crate::routing::AnswerMode;
use crate::sdp::{self, Direction, LocalMedia, Negotiated, Sdp};
use crate::sip::dialog::{random_token, Dialog};
use crate::sip::endpoint::{ALLOW, SUPPORTED};
use crate::sip::header::HeaderName;
use crate::sip::msg::{Request, Response};
use crate::sip::transaction::{Peer, Transport, TxKey};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;
use tracing::{info, info_span};

impl CallManager {
    /// 503 + Retry-After for load: the caller may try again later.
    fn refuse_busy(&mut self, now: Instant, key: &TxKey, req: &Request, why: &str) {
        let mut r = Response::to(req, 503, Some(&random_token()));
        r.headers
            .push(HeaderName::RetryAfter, self.cfg.retry_after_s.to_string());
        r.headers
            .push(HeaderName::Warning, format!("399 acd \"{why}\""));
        self.ep.respond(now, key, &r);
        self.events.push_back(Event::CallRefused {
            caller: caller_number(req),
            dialed: dialed_number(req),
            code: 503,
            reason: why.to_string(),
        });
    }

    /// The caller's leg is gone (hung up, let go, or away for a callback): it no longer counts
    /// against its source address.
    pub(super) fn release_source(per_source: &mut HashMap<IpAddr, usize>, source: Option<IpAddr>) {
        let Some(ip) = source else { return };
        if let Some(n) = per_source.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_source.remove(&ip);
            }
        }
    }

    fn refuse(&mut self, now: Instant, key: &TxKey, req: &Request, code: u16, why: &str) {
        let mut r = Response::to(req, code, Some(&random_token()));
        r.headers
            .push(HeaderName::Warning, format!("399 acd \"{why}\""));
        self.ep.respond(now, key, &r);
        self.events.push_back(Event::CallRefused {
            caller: caller_number(req),
            dialed: dialed_number(req),
            code,
            reason: why.to_string(),
        });
    }

    /// A new call: route it, answer it (or 183), start hold music, queue it.
    pub(super) fn on_invite(&mut self, now: Instant, key: TxKey, req: Request, from: Peer) {
        let dialed = dialed_number(&req);
        let Some(route) = self.dialplan.route(&dialed) else {
            return self.refuse(now, &key, &req, 404, "number not in dialplan");
        };
        // No SDP: a late offer (§13.2.1) — we offer in the 200 and the ACK brings the answer.
        let late_offer = req.body.is_empty();
        let offer = match Sdp::parse(&req.body).and_then(|s| s.negotiate().map(|n| (s, n))) {
            _ if late_offer => None,
            Ok(x) => Some(x),
            Err(e) => return self.refuse(now, &key, &req, 488, &e.to_string()),
        };
        // A trunk with credentials proves them on every INVITE (401 first, RFC 3261 §22.2).
        let trunk = self.cfg.trunks.iter().find(|t| t.contains(from.addr.ip()));
        if let Some((user, creds)) = trunk.and_then(|t| {
            let creds = t.credentials(self.ep.realm())?;
            Some((t.username.clone().unwrap_or_default(), creds))
        }) {
            if !self.ep.authorize(now, &key, &req, from, (&user, &creds)) {
                return;
            }
        }
        // SDES puts the media keys in the SDP: only a TLS hop keeps them secret (RFC 4568 §8.3).
        if offer.as_ref().is_some_and(|(_, n)| n.srtp.is_some()) && from.transport != Transport::Tls
        {
            let why = "SRTP keys (SDES) are accepted only over SIP/TLS";
            return self.refuse(now, &key, &req, 488, why);
        }
        let source = from.addr.ip();
        let trusted = self.ep.trusted(source);
        if self.draining {
            return self.refuse_busy(now, &key, &req, "draining: this node takes no new calls");
        }
        if self.calls.len() >= self.cfg.max_calls {
            self.calls_full += 1;
            return self.refuse_busy(now, &key, &req, "too many calls in progress");
        }
        if !trusted
            && self.per_source.get(&source).copied().unwrap_or(0) >= self.cfg.max_calls_per_source
        {
            self.source_full += 1;
            return self.refuse_busy(now, &key, &req, "too many calls from this address");
        }
        // RFC 4028: a Session-Expires below our Min-SE is answered 422 (the caller retries).
        let session = super::session_timer::asked(&req);
        if session == super::session_timer::Asked::TooBrief {
            let r = super::session_timer::too_brief(&req, Some(&random_token()));
            self.ep.respond(now, &key, &r);
            return;
        }
        let Some((caller_port, agent_port)) = self.ports.take_pair() else {
            return self.refuse(now, &key, &req, 503, "no free RTP ports");
        };
        let source = (!trusted).then_some(source);
        if let Some(ip) = source {
            *self.per_source.entry(ip).or_default() += 1;
        }
        let id = self.next_call();
        let span = info_span!("call", call = id, sip_call_id = %req.core.call_id);
        let identity = super::identify(&req, from.addr.ip(), &self.cfg.trunks);
        let caller_number = identity.number.clone();
        {
            let _g = span.enter();
            info!(caller = %caller_number, trusted = identity.trusted, basis = %identity.basis, %dialed, queue = %route.queue, "call arrived");
        }
        let caller_key = offer
            .as_ref()
            .and_then(|(_, n)| n.srtp)
            .map(|_| crate::media::srtp::MasterKey::random());
        // The caller leg's o= line: random per call, not the call number (RFC 3264 §5).
        let origin = sdp::Origin::new();
        let local = LocalMedia {
            ip: self.cfg.advertise,
            port: caller_port,
            session_id: origin.session,
            version: origin.version,
            srtp: caller_key,
        };
        let (sdp, neg) = match &offer {
            Some((offered, neg)) => (sdp::answer(&local, offered, neg), *neg),
            None => (sdp::offer_any(&local, 101), PENDING_MEDIA),
        };
        let sdp = Bytes::from(sdp);
        let tag = random_token();
        let dialog = Dialog::as_uas(&req, &tag, from);
        let interaction = format!("{}-{id}", self.boot);
        let code = match route.answer {
            // An offer in a 183 would need reliable provisionals (RFC 3262): late offers get 200.
            _ if late_offer => 200,
            AnswerMode::Immediate => 200,
            AnswerMode::EarlyMedia => 183,
        };
        let mut r = Response::to(&req, code, Some(&tag));
        r.core.contacts.push(self.contact_on(from.transport));
        r.headers.push(HeaderName::Allow, ALLOW);
        r.headers.push(HeaderName::Supported, SUPPORTED.join(", "));
        r.headers.push(HeaderName::ContentType, "application/sdp");
        let timer = super::session_timer::SessionTimer::of(session, now);
        if let (200, Some(t)) = (code, timer) {
            t.answer_headers(&mut r.headers);
        }
        r.body = sdp.clone();
        // Early media to a caller that does 100rel: the 183 goes reliably (RFC 3262).
        let prack = (code == 183 && super::prack::wanted(&req))
            .then(|| Box::new(self.reliable(now, &mut r)));
        self.ep.respond(now, &key, &r);
        if let Some(p) = &prack {
            self.timers.arm(p.next, super::phase::Wake::Reliable(id));
        }
        self.by_sip_id
            .insert(req.core.call_id.clone(), (id, Leg::Caller));
        self.by_caller_invite.insert(key.clone(), id);
        self.calls.insert(
            id,
            Call {
                span,
                caller_number,
                queue: route.queue.clone(),
                priority: route.priority,
                caller: CallerLeg {
                    invite_text: Default::default(),
                    invite_key: key,
                    invite: req,
                    dialog,
                    sdp,
                    answered: code == 200,
                    session: timer,
                    prack,
                },
                phase: Phase::Answering { late_offer },
                media: neg,
                caller_key,
                caller_port,
                agent_port,
                arrived: now,
                sdp_session: origin.session,
                sdp_version: origin.version,
                context: None,
                dialed: dialed.clone(),
                route: None,
                prompt_playing: false,
                caller_learned: None,
                interaction,
                transfers: 0,
                notes: Vec::new(),
                called_back: None,
                identity,
                source,
            },
        );
        // Nothing is sent to the caller's media address and nothing is queued until the
        // caller proves it is there (anti-amplification): the ACK of our 200 (with our To tag,
        // which a spoofer never saw) or, on early media, their first RTP from that address.
        if code == 183 {
            self.start_media(id, false);
        } else if let Some(t) = timer {
            self.timers.arm(t.due(), super::phase::Wake::Session(id));
        }
    }
}

/// Stands in for the caller's media until a late offer is answered; never sent anywhere, since
/// the call neither plays media nor joins a queue before the answer.
const PENDING_MEDIA: Negotiated = Negotiated {
    remote: std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0),
    codec: sdp::Codec::Pcmu,
    codec_pt: 0,
    dtmf_pt: Some(101),
    direction: Direction::SendRecv,
    srtp: None,
};

/// The dialled number: the Request-URI user part without parameters.
fn dialed_number(req: &Request) -> String {
    req.uri
        .user
        .as_deref()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .to_string()
}

/// The caller's claimed number, for refusals (E.164 normalisation comes with the context store).
fn caller_number(req: &Request) -> String {
    super::identity::from_number(req)
}
