//! Reliable provisional responses (RFC 3262) on the caller's leg. Carriers and SBCs often send
//! `Require: 100rel` (or `Supported: 100rel`). When we answer with early media, the 183 that
//! carries our SDP then goes reliably: `Require: 100rel` and an `RSeq`, retransmitted from T1,
//! doubling, until the caller's PRACK (answered 200); a caller that never PRACKs within 64*T1
//! is refused with 500 (§3). Our 200 waits for the PRACK of the 183 (§3: no 2xx while a reliable
//! provisional is unacknowledged). An immediate answer sends no provisional but 100 Trying,
//! which is never reliable, so it needs nothing.
//!
//! Towards agents we only PRACK what phones send reliably (see `uac.rs`).

use super::manager::CallManager;
use super::phase::Wake;
use crate::acd::CallId;
use crate::events::Side;
use crate::sip::header::HeaderName;
use crate::sip::msg::{Request, Response};
use crate::sip::transaction::TxKey;
use std::time::{Duration, Instant};
use tracing::warn;

/// A reliable provisional response of ours, waiting for its PRACK.
#[derive(Clone, Debug)]
pub(super) struct Reliable {
    pub rseq: u32,
    pub response: Response,
    /// The next retransmission, and the interval after it.
    pub next: Instant,
    pub interval: Duration,
    /// 64*T1 after the first send: the caller is refused.
    pub give_up: Instant,
    /// Our 200 was held back for the PRACK.
    pub answer_waiting: bool,
}

/// The request says the caller does 100rel (`Supported` or `Require`).
pub(super) fn wanted(req: &Request) -> bool {
    super::session_timer::lists(&req.headers, &HeaderName::Supported, "100rel")
        || super::session_timer::lists(&req.headers, &HeaderName::Require, "100rel")
}

/// `RAck: 1 1 INVITE` → (1, 1).
fn rack(req: &Request) -> Option<(u32, u32)> {
    let v = req.headers.get(&HeaderName::RAck)?;
    let mut it = v.split_ascii_whitespace();
    let rseq = it.next()?.parse().ok()?;
    let cseq = it.next()?.parse().ok()?;
    it.next()?
        .eq_ignore_ascii_case("INVITE")
        .then_some((rseq, cseq))
}

impl CallManager {
    /// Makes `r` (a 183 to the caller's INVITE) reliable and keeps it for retransmission.
    pub(super) fn reliable(&mut self, now: Instant, r: &mut Response) -> Reliable {
        use rand::Rng;
        // §3: the first RSeq is random, 1 to 2**31 - 1.
        let rseq = rand::thread_rng().gen_range(1..1u32 << 31);
        r.headers.push(HeaderName::Require, "100rel");
        r.headers.push(HeaderName::RSeq, rseq.to_string());
        let t1 = self.ep.t1();
        Reliable {
            rseq,
            response: r.clone(),
            next: now + t1,
            interval: t1 * 2,
            give_up: now + t1 * 64,
            answer_waiting: false,
        }
    }

    /// The caller's PRACK: 200 and the held 200 to the INVITE, when it acknowledges our
    /// reliable provisional; 481 when it acknowledges nothing we sent (§4).
    pub(super) fn on_prack(&mut self, now: Instant, key: &TxKey, req: &Request, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let ours = c.caller.prack.as_ref().map(|p| p.rseq);
        let matches = rack(req).is_some_and(|(rseq, cseq)| {
            Some(rseq) == ours && cseq == c.caller.invite.core.cseq.seq
        });
        let code = if matches { 200 } else { 481 };
        let answer_waiting = matches && c.caller.prack.take().is_some_and(|p| p.answer_waiting);
        self.ep.respond(now, key, &Response::to(req, code, None));
        if answer_waiting {
            self.answer_caller(now, call);
        }
    }

    /// Our 200 must wait for the PRACK of the reliable 183 still unacknowledged; true when it
    /// was held back (sent by [`CallManager::on_prack`]).
    pub(super) fn answer_held_for_prack(&mut self, call: CallId) -> bool {
        let Some(p) = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.caller.prack.as_mut())
        else {
            return false;
        };
        p.answer_waiting = true;
        true
    }

    /// Retransmits the reliable 183, or refuses a caller that never PRACKed it.
    pub(super) fn reliable_due(&mut self, now: Instant, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let key = c.caller.invite_key.clone();
        let Some(p) = c.caller.prack.as_mut() else {
            return; // PRACKed
        };
        if now >= p.give_up {
            {
                let _g = c.span.enter();
                warn!("no PRACK for our reliable 183 in 64*T1: refusing the call");
            }
            c.caller.prack = None;
            return self.end_call(now, call, Side::System, 500);
        }
        if now < p.next {
            return;
        }
        let r = p.response.clone();
        p.next = (now + p.interval).min(p.give_up);
        p.interval *= 2;
        let next = p.next;
        self.ep.respond(now, &key, &r);
        self.timers.arm(next, Wake::Reliable(call));
    }
}

#[cfg(test)]
#[path = "prack_tests.rs"]
mod tests;
