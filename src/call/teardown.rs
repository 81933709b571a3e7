//! Ending a call from whichever phase it is in: the final answer or BYE to the caller, BYE or
//! CANCEL to the agent side, the ACD and the ports freed, and the outcome event; and ending
//! every call at a stop.

use super::manager::{Call, CallManager};
use super::phase::Phase;
use super::MediaCommand;
use crate::acd::CallId;
use crate::events::{Event, Side};
use crate::sip::msg::Response;
use crate::sip::via::Method;
use std::time::Instant;
use tracing::info;

impl CallManager {
    /// Tears a call down from whichever phase it is in. `code` answers an unanswered caller.
    pub(super) fn end_call(&mut self, now: Instant, call: CallId, by: Side, code: u16) {
        self.end_call_as(now, call, by, code, false)
    }

    /// [`CallManager::end_call`]; `timed_out`: the caller waited the queue's maximum (as is
    /// any call ended while being let go).
    pub(super) fn end_call_as(
        &mut self,
        now: Instant,
        call: CallId,
        by: Side,
        code: u16,
        timed_out: bool,
    ) {
        self.pop_forget(call);
        let Some(mut c) = self.calls.remove(&call) else {
            return;
        };
        let _g = c.span.clone().entered();
        Self::release_source(&mut self.per_source, c.source.take());
        if !self.reinvites.is_empty() {
            self.reinvites.retain(|_, r| r.call != call);
        }
        if !c.validated() {
            return self.end_unproven(now, call, c, by, code);
        }
        let via = self.via_host();
        // The call is over: its phase is taken apart here (the placeholder is never seen).
        let phase = std::mem::replace(&mut c.phase, Phase::Routing);
        match &phase {
            // The caller left for a callback: nobody to answer or hang up on.
            Phase::Away(_) => {}
            _ if !c.caller.answered => {
                let r = Response::to(&c.caller.invite, code, c.caller.dialog.local.tag());
                let key = c.caller.invite_key.clone();
                self.ep.respond(now, &key, &r);
            }
            _ if by != Side::Caller => {
                let bye = c.caller.dialog.request(Method::Bye, &via);
                self.ep.send_request(now, &bye, c.caller.dialog.peer);
            }
            _ => {}
        }
        self.by_sip_id.remove(&c.caller.invite.core.call_id);
        self.by_caller_invite.remove(&c.caller.invite_key);
        if c.called_back.is_some() || matches!(phase, Phase::Away(_)) {
            self.callback_ended(call);
        }
        let wait_ms = now.saturating_duration_since(c.arrived).as_millis() as u64;
        match phase {
            Phase::Connected(t) => {
                let mut a = t.agent;
                if by != Side::Agent {
                    let via = self.cfg.via_host(a.uac.peer.transport);
                    if let Some(bye) = a.uac.hang_up(&via) {
                        self.ep.send_request(now, &bye, a.uac.peer);
                    }
                }
                self.by_sip_id.remove(&a.uac.invite.core.call_id);
                self.by_agent_tx.remove(&a.uac.key);
                self.acd.agent_free(now, &a.agent);
                info!(agent = %a.agent, ?by, "call ended");
                self.events.push_back(Event::Ended {
                    call,
                    agent: a.agent,
                    by,
                    talk_ms: now.saturating_duration_since(t.since).as_millis() as u64,
                });
            }
            // The caller was rating the call: the agent's part was reported when they hung up.
            Phase::Survey { .. } => info!(?by, "survey over"),
            other => {
                let timed_out = timed_out || matches!(other, Phase::LettingGo);
                match other {
                    Phase::Ringing(legs) => {
                        for leg in legs {
                            self.pop_forget_agent(call, &leg.agent);
                            self.cancel_leg(now, leg);
                        }
                    }
                    // Maybe a phone ringing for the callback to stop.
                    Phase::Away(cb) => self.callback_forget(now, Some(*cb)),
                    _ => {}
                }
                self.acd.call_gone(now, call);
                let queue = c.queue.clone();
                if timed_out {
                    info!(?by, "caller let go after the maximum wait");
                    self.events.push_back(Event::TimedOut {
                        call,
                        queue,
                        wait_ms,
                    });
                } else {
                    info!(?by, "caller abandoned");
                    self.events.push_back(Event::Abandoned {
                        call,
                        queue,
                        wait_ms,
                    });
                }
            }
        }
        self.ports.give(c.caller_port);
        self.ports.give(c.agent_port);
        self.media.push_back(MediaCommand::Stop { call });
        self.acd.forget(call);
    }

    /// A call whose caller never proved their address ends without a trace in the queues or
    /// the history: a final answer if none was sent, but no BYE (its retransmissions would go
    /// to an address that may be a spoofing victim), and a `CallRefused` event.
    fn end_unproven(&mut self, now: Instant, call: CallId, c: Call, by: Side, code: u16) {
        if !c.caller.answered {
            let r = Response::to(&c.caller.invite, code, c.caller.dialog.local.tag());
            self.ep.respond(now, &c.caller.invite_key, &r);
        }
        self.by_sip_id.remove(&c.caller.invite.core.call_id);
        self.by_caller_invite.remove(&c.caller.invite_key);
        self.ports.give(c.caller_port);
        self.ports.give(c.agent_port);
        self.media.push_back(MediaCommand::Stop { call });
        let reason = match by {
            Side::Caller => "the caller left before proving their address",
            _ => "the caller never proved their address (no ACK, no RTP)",
        };
        info!(code, reason, "unproven call ended");
        self.events.push_back(Event::CallRefused {
            caller: c.caller_number.clone(),
            dialed: c.dialed.clone(),
            code,
            reason: reason.to_string(),
        });
    }

    /// Ends every call (BYE to answered legs, 503 to callers not yet answered, CANCEL to ringing
    /// agents) so a restart leaves no phone in a half-open call.
    pub fn shutdown(&mut self, now: Instant) {
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            if self.caller_away(id) {
                self.callback_suspend(now, id); // kept in the database for the next start
            } else {
                self.end_call(now, id, Side::System, 503);
            }
        }
    }
}
