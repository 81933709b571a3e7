//! From a known caller to a queue: start the caller's media, look up their context, apply the
//! dialplan's rules (or the menu), and join the queue, reserved for a preferred agent and with
//! any required skill levels. Late offers join here once their ACK brings the answer.

use super::manager::CallManager;
use super::phase::{Action, Input, Phase};
use super::{Leg, MediaCommand};
use crate::acd::CallId;
use crate::events::{Event, Side};
use crate::sdp::Sdp;
use crate::sip::msg::Request;
use std::time::Instant;
use tracing::{info, warn};

impl CallManager {
    /// Binds the call's RTP ports and starts its media task; `validated` when the caller has
    /// already proven their address (else the task sends nothing until their RTP arrives).
    pub(super) fn start_media(&mut self, id: CallId, validated: bool) {
        let Some(c) = self.calls.get(&id) else { return };
        let neg = c.media;
        self.media.push_back(MediaCommand::Start(super::MediaStart {
            call: id,
            caller_port: c.caller_port,
            agent_port: c.agent_port,
            caller_remote: neg.remote,
            codec: neg.codec,
            codec_pt: neg.codec_pt,
            dtmf_pt: neg.dtmf_pt,
            caller_signalling: c.caller.dialog.peer.addr.ip(),
            validated,
            caller_srtp: neg.srtp.zip(c.caller_key).map(|(theirs, ours)| {
                crate::media::srtp::SrtpKeys {
                    theirs: theirs.key,
                    ours,
                }
            }),
        }));
    }

    /// The caller proved their address (the ACK of our 200, or their first RTP on early media,
    /// where the media task is already running): the call is real now, so it is announced,
    /// looked up and queued.
    pub(super) fn caller_validated(&mut self, now: Instant, id: CallId, media_running: bool) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.validated() {
            return;
        }
        c.phase = Phase::Routing;
        {
            let _g = c.span.enter();
            info!("caller's address proven");
        }
        self.events.push_back(Event::CallArrived {
            call: id,
            interaction: c.interaction.clone(),
            caller: c.caller_number.clone(),
            dialed: c.dialed.clone(),
        });
        if !media_running {
            self.start_media(id, true);
        }
        self.request_context(now, id);
    }

    /// Joins the call's queue (after its context lookup, or without one).
    pub(super) fn enqueue_call(&mut self, now: Instant, id: CallId) {
        // A callback restored after a restart was routed before it: back to its queue.
        if self.caller_away(id) {
            return self.join_queue(now, id);
        }
        if let Some(menu) = self.route_call(now, id) {
            return self.start_menu(id, &menu);
        }
        self.join_queue(now, id);
    }

    /// Puts the call in its (already decided) queue.
    pub(super) fn join_queue(&mut self, now: Instant, id: CallId) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if !c.away() {
            c.phase = Phase::Waiting;
        }
        let (queue, priority) = (c.queue.clone(), c.priority);
        let preferred = c.route.as_ref().and_then(|r| {
            r.preferred_agent
                .clone()
                .map(|a| (a, std::time::Duration::from_secs(r.fallback_s)))
        });
        self.events.push_back(Event::Queued {
            call: id,
            queue: queue.clone(),
        });
        self.require_route_skills(id);
        let pref = preferred.as_ref().map(|(a, d)| (a.as_str(), *d));
        if self.caller_away(id) {
            self.acd
                .expect_callback(id, self.dialplan.callback.dial_timeout);
        }
        if let Err(e) = self.acd.enqueue_for(now, id, &queue, priority, pref) {
            warn!(call = id, error = %e, "enqueue failed");
            return self.end_call(now, id, Side::System, 503);
        }
        self.announce_start(now, id);
    }

    /// Tells the ACD the skills the call's route requires beyond its queue's (before it joins
    /// the line, for a new caller and for one resumed after a restart alike).
    pub(super) fn require_route_skills(&mut self, id: CallId) {
        let required = self
            .calls
            .get(&id)
            .and_then(|c| c.route.as_ref())
            .map(|r| r.required.clone())
            .unwrap_or_default();
        self.acd.require(id, required);
    }

    /// Applies the dialplan's rules to the call's context: queue, priority, reason and trace.
    /// (Until the IVR exists, callers the rules do not place go to the number's queue.)
    /// Returns the menu the caller must hear first, if any.
    fn route_call(&mut self, now: Instant, id: CallId) -> Option<String> {
        let unix = self.ep.unix_secs(now) as i64;
        let c = self.calls.get_mut(&id)?;
        let caller = c
            .context
            .as_ref()
            .map(|x| x.number.clone())
            .unwrap_or_else(|| c.caller_number.clone());
        let input = crate::routing::rules::Input {
            dialed: &c.dialed,
            caller: &caller,
            context: c.context.as_ref(),
            now: unix,
        };
        let d = self.dialplan.decide(&input)?;
        let _g = c.span.clone().entered();
        info!(queue = %d.queue, rule = ?d.rule, reason = %d.reason, "routed");
        tracing::debug!(trace = ?d.trace, "routing trace");
        c.queue = d.queue.clone();
        c.priority = d.priority;
        self.events.push_back(Event::Routed {
            call: id,
            queue: d.queue.clone(),
            priority: d.priority,
            rule: d.rule.clone(),
            reason: d.reason.clone(),
            skip_ivr: d.skip_ivr,
        });
        let menu = d.menu.clone();
        if let (Some(prompt), None) = (d.prompt.clone(), &menu) {
            c.prompt_playing = true;
            self.media
                .push_back(MediaCommand::Play { call: id, prompt });
        }
        c.route = Some(d);
        menu
    }

    /// The caller waited `queue`'s maximum and it has no overflow: they hear the queue's
    /// timeout message and are let go (outcome "timed out"), at once if there is no message or
    /// nobody on the line (a callback).
    pub(super) fn waited_out(&mut self, now: Instant, call: CallId, queue: &str) {
        let prompt = self.dialplan.timeout_prompt(queue).cloned();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        {
            let _g = c.span.enter();
            info!(%queue, "waited the maximum; no overflow");
        }
        match (prompt, &c.phase) {
            (Some(prompt), Phase::Waiting | Phase::Ringing(_)) => {
                if let Phase::Ringing(legs) = std::mem::replace(&mut c.phase, Phase::LettingGo) {
                    for leg in legs {
                        self.cancel_leg(now, leg);
                    }
                }
                if let Some(c) = self.calls.get_mut(&call) {
                    c.prompt_playing = false;
                }
                self.media.push_back(MediaCommand::Play { call, prompt });
            }
            _ => self.end_call_as(now, call, Side::System, 480, true),
        }
    }

    /// The ACK of our 200 proves the caller is where they said (it carries our To tag, which
    /// only someone who received the 200 knows). A late offer's ACK also carries the caller's
    /// answer; without a usable one we hang up.
    pub(super) fn on_ack(&mut self, now: Instant, ack: &Request) {
        let Some(&(id, Leg::Caller)) = self.by_sip_id.get(&ack.core.call_id) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if !c.caller.dialog.matches(&ack.core) {
            warn!(call = id, "ACK with the wrong tags ignored");
            return;
        }
        let action = c.handle(now, Input::Ack);
        if action != Action::LateAnswer {
            return self.apply(now, id, Input::Ack, action);
        }
        match Sdp::parse(&ack.body).and_then(|s| s.negotiate()) {
            Ok(n) => {
                c.media = n;
                c.phase = Phase::Answering { late_offer: false };
                self.caller_validated(now, id, false);
            }
            Err(e) => {
                warn!(call = id, error = %e, "late-offer ACK without a usable answer; hanging up");
                // The ACK proved the caller's address: they get a BYE like any answered call.
                c.phase = Phase::Routing;
                let arrived = Event::CallArrived {
                    call: id,
                    interaction: c.interaction.clone(),
                    caller: c.caller_number.clone(),
                    dialed: c.dialed.clone(),
                };
                self.events.push_back(arrived);
                self.end_call(now, id, Side::System, 488);
            }
        }
    }
}
