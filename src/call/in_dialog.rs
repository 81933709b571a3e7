//! Requests inside an established call: which dialog they belong to, and our SDP answer to a
//! re-INVITE or UPDATE (hold and resume, including hold music when the agent holds).

use super::manager::CallManager;
use super::session_timer;
use super::{Leg, MediaCommand};
use crate::acd::CallId;
use crate::events::Event;
use crate::sdp::{self, Direction, LocalMedia, Sdp};
use crate::sip::header::HeaderName;
use crate::sip::msg::{Request, Response};
use crate::sip::transaction::{Peer, TxKey};
use crate::sip::via::Method;
use bytes::Bytes;
use std::time::Instant;

impl CallManager {
    /// A re-INVITE or UPDATE in a call's dialog: a hold, a move, or a session refresh. An
    /// UPDATE without SDP (a refresh, RFC 4028 §7.4) gets a 200 without SDP; the caller's
    /// request also sets the session timer anew.
    pub(super) fn on_reoffer(
        &mut self,
        now: Instant,
        key: TxKey,
        req: Request,
        from: Peer,
        call: CallId,
        leg: Leg,
    ) {
        let asked = session_timer::asked(&req);
        if leg == Leg::Caller && asked == session_timer::Asked::TooBrief {
            let r = session_timer::too_brief(&req, None);
            return self.ep.respond(now, &key, &r);
        }
        let bare_update = req.method == Method::Update && req.body.is_empty();
        let sdp = if bare_update {
            Bytes::new()
        } else {
            // Session refresh or hold: same ports and codec, direction mirrored.
            let Some(sdp) = self.reoffer_answer(call, leg, &req.body) else {
                let r = Response::to(&req, 488, None);
                return self.ep.respond(now, &key, &r);
            };
            // A new SDP version and maybe a moved address: the snapshot follows.
            self.snapshot_mark(call);
            sdp
        };
        let mut r = Response::to(&req, 200, None);
        r.core.contacts.push(self.contact_on(from.transport));
        r.headers
            .push(HeaderName::Allow, crate::sip::endpoint::ALLOW);
        r.headers.push(
            HeaderName::Supported,
            crate::sip::endpoint::SUPPORTED.join(", "),
        );
        if leg == Leg::Caller {
            self.session_set(now, call, asked);
            if let Some(t) = self.calls.get(&call).and_then(|c| c.caller.session) {
                t.answer_headers(&mut r.headers);
            }
        }
        if !sdp.is_empty() {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = sdp;
        }
        self.ep.respond(now, &key, &r);
    }

    pub(super) fn dialog_matches(&self, call: CallId, leg: Leg, req: &Request) -> bool {
        let Some(c) = self.calls.get(&call) else {
            return false;
        };
        match leg {
            Leg::Caller => c.caller.dialog.matches(&req.core),
            Leg::Agent => c
                .talk()
                .and_then(|t| t.agent.dialog())
                .is_some_and(|d| d.matches(&req.core)),
        }
    }

    /// Our answer to an in-dialog offer (RFC 3264 §8): the leg's port and codec, the direction
    /// mirrored (hold → recvonly), the o= version bumped. An offer-less re-INVITE gets our
    /// current SDP as the offer. `None` when the new offer has nothing we can take (488).
    pub(super) fn reoffer_answer(&mut self, call: CallId, leg: Leg, body: &[u8]) -> Option<Bytes> {
        let advertise = self.cfg.advertise;
        let c = self.calls.get_mut(&call)?;
        let current = match leg {
            Leg::Caller => c.caller.sdp.clone(),
            Leg::Agent => c.talk()?.agent.uac.invite.body.clone(),
        };
        if body.is_empty() {
            return Some(current);
        }
        let offered = Sdp::parse(body).ok()?;
        let neg = offered.negotiate().ok()?;
        // Each leg has its own o= line: bump only this leg's version (RFC 3264 §8).
        let origin = match leg {
            Leg::Caller => {
                c.sdp_version += 1;
                sdp::Origin {
                    session: c.sdp_session,
                    version: c.sdp_version,
                }
            }
            Leg::Agent => {
                let o = &mut c.talk_mut()?.agent.origin;
                o.bump();
                *o
            }
        };
        // A signalled move of the caller's media: the bridge learns the new address (and only
        // this way may a locked address change).
        if leg == Leg::Caller && neg.remote != c.media.remote && !neg.remote.ip().is_unspecified() {
            c.media.remote = neg.remote;
            self.media.push_back(MediaCommand::Retarget {
                call,
                leg,
                remote: neg.remote,
            });
        }
        if let (Leg::Agent, Some(talk)) = (leg, c.talk_mut()) {
            // A re-offer may move the agent to the other law or a new telephone-event
            // number: the bridge then maps (and transcodes) afresh.
            let mut recodec = false;
            if let Some(m) = talk.agent.media.as_mut() {
                m.direction = neg.direction;
                if !neg.remote.ip().is_unspecified() {
                    m.remote = neg.remote;
                }
                recodec =
                    (m.codec, m.codec_pt, m.dtmf_pt) != (neg.codec, neg.codec_pt, neg.dtmf_pt);
                (m.codec, m.codec_pt, m.dtmf_pt) = (neg.codec, neg.codec_pt, neg.dtmf_pt);
            }
            // The agent put the caller on hold (or took them off it): the caller hears hold
            // music from acd instead of silence, and the bridge resumes on un-hold.
            let held = matches!(neg.direction, Direction::SendOnly | Direction::Inactive);
            if held != talk.held || (!held && recodec) {
                if held != talk.held {
                    self.events.push_back(Event::Hold { call, on: held });
                }
                talk.held = held;
                self.media.push_back(if held {
                    MediaCommand::Hold { call }
                } else {
                    MediaCommand::Bridge {
                        call,
                        agent_remote: neg.remote,
                        agent_codec: neg.codec,
                        agent_codec_pt: neg.codec_pt,
                        agent_dtmf_pt: neg.dtmf_pt,
                        agent_signalling: Some(talk.agent.uac.peer.addr.ip()),
                        agent_srtp: talk.srtp,
                        record: None,
                    }
                });
            } else if !held && !neg.remote.ip().is_unspecified() {
                self.media.push_back(MediaCommand::Retarget {
                    call,
                    leg,
                    remote: neg.remote,
                });
            }
        }
        let local = LocalMedia {
            ip: advertise,
            port: if leg == Leg::Caller {
                c.caller_port
            } else {
                c.agent_port
            },
            session_id: origin.session,
            version: origin.version,
            // The keys agreed first stay for the call's life (a re-offer with a new key of
            // its own is answered, but media keeps the first keys: documented limitation).
            srtp: if neg.srtp.is_none() {
                None
            } else if leg == Leg::Caller {
                c.caller_key
            } else {
                c.talk().and_then(|t| t.srtp).map(|k| k.ours)
            },
        };
        Some(Bytes::from(sdp::answer(&local, &offered, &neg)))
    }
}
