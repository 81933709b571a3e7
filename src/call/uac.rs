//! One INVITE we send — to an agent's phone, or to a customer we call back — as the client
//! side of one leg (RFC 3261 §13.2 and §9.1): `Calling → Early → Confirmed`, or `Cancelling`
//! once we give up, and `Done`. The leg alone decides what a response means and what goes on
//! the wire for it (the ACK of a 2xx, the CANCEL that had to wait for a provisional, the BYE
//! to a phone that answered after we gave up); its owner sends what it returns. Agent legs,
//! legs that lost a race and callback dials are all this one machine.

use super::snapshot::TextOnce;
use crate::sip::dialog::Dialog;
use crate::sip::header::HeaderName;
use crate::sip::msg::{Request, Response};
use crate::sip::transaction::{Peer, TxKey};
use crate::sip::via::Method;
use bytes::Bytes;

/// Where one of our INVITEs is.
#[derive(Debug)]
pub(super) enum LegState {
    /// Sent; nothing but maybe a 100 back yet.
    Calling,
    /// A provisional response came: the phone rings, and a CANCEL may be sent.
    Early,
    /// We gave up; `sent`: the CANCEL went (before a provisional it must wait, §9.1).
    Cancelling { sent: bool },
    /// A 2xx came and was ACKed: the dialog.
    Confirmed(Box<Dialog>),
    /// Over: refused, cancelled, or hung up.
    Done,
}

/// What a response to the INVITE means for the leg's owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Nothing beyond sending what [`Wire`] holds (a provisional, a retransmitted 2xx, the
    /// end of a leg we gave up on).
    Nothing,
    /// The first 2xx: the leg is confirmed (its ACK is in [`Wire`]).
    Answered,
    /// A final answer other than 2xx: the leg is done.
    Refused(u16),
}

/// What to send to the leg's peer: an ACK (no transaction) and a request (CANCEL or BYE).
#[derive(Debug, Default)]
pub(super) struct Wire {
    pub ack: Option<Request>,
    pub request: Option<Request>,
}

/// One INVITE we sent and what became of it.
pub(super) struct UacLeg {
    pub invite: Request,
    /// `invite` as text, made once for the call's snapshots (it never changes).
    pub invite_text: TextOnce,
    pub key: TxKey,
    pub peer: Peer,
    state: LegState,
    /// The call was answered on another leg: the CANCEL says so (RFC 3326 `Reason`), so the
    /// phone shows "answered elsewhere" instead of a missed call.
    pub elsewhere: bool,
    /// RFC 3262 towards a phone that sends its provisionals reliably: the early dialog our
    /// PRACKs go in (its CSeq carries on into the confirmed dialog) and the last RSeq PRACKed.
    early: Option<(Dialog, u32)>,
}

/// CANCEL for a pending INVITE (§9.1): same Request-URI, Call-ID, From, To, CSeq number, top Via.
/// `elsewhere`: another leg answered (adds `Reason: SIP;cause=200`, RFC 3326).
pub(super) fn cancel_for(invite: &Request, elsewhere: bool) -> Request {
    let mut c = invite.clone();
    c.method = Method::Cancel;
    c.core.cseq.method = Method::Cancel;
    c.core.contacts.clear();
    c.headers.0.retain(|(n, _)| *n == HeaderName::Route);
    if elsewhere {
        c.headers.push(
            HeaderName::Reason,
            "SIP;cause=200;text=\"Call completed elsewhere\"",
        );
    }
    c.body = Bytes::new();
    c
}

impl UacLeg {
    /// An INVITE just sent as transaction `key`.
    pub fn calling(invite: Request, key: TxKey, peer: Peer) -> UacLeg {
        UacLeg {
            invite,
            invite_text: Default::default(),
            key,
            peer,
            state: LegState::Calling,
            elsewhere: false,
            early: None,
        }
    }

    /// A leg whose dialog is already confirmed (taken over from an earlier process).
    pub fn confirmed(invite: Request, key: TxKey, dialog: Dialog) -> UacLeg {
        UacLeg {
            invite,
            invite_text: Default::default(),
            key,
            peer: dialog.peer,
            state: LegState::Confirmed(Box::new(dialog)),
            elsewhere: false,
            early: None,
        }
    }

    /// A ring an earlier process started, being cancelled now (the CANCEL is sent with it).
    pub fn cancelling(invite: Request, key: TxKey, peer: Peer) -> (UacLeg, Request) {
        let cancel = cancel_for(&invite, false);
        let leg = UacLeg {
            invite,
            invite_text: Default::default(),
            key,
            peer,
            state: LegState::Cancelling { sent: true },
            elsewhere: false,
            early: None,
        };
        (leg, cancel)
    }

    #[cfg(test)]
    pub fn state(&self) -> &LegState {
        &self.state
    }

    pub fn dialog(&self) -> Option<&Dialog> {
        match &self.state {
            LegState::Confirmed(d) => Some(d),
            _ => None,
        }
    }

    pub fn dialog_mut(&mut self) -> Option<&mut Dialog> {
        match &mut self.state {
            LegState::Confirmed(d) => Some(d),
            _ => None,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, LegState::Done)
    }

    /// A response to our INVITE. `via` is our sent-by for the ACK and any BYE.
    pub fn on_response(&mut self, resp: &Response, via: &str) -> (Outcome, Wire) {
        let mut wire = Wire::default();
        let seq = self.invite.core.cseq.seq;
        let outcome = match (&mut self.state, resp.code) {
            (LegState::Calling | LegState::Early, 100..=199) => {
                self.state = LegState::Early;
                wire.request = self.prack(resp, via);
                Outcome::Nothing
            }
            (LegState::Calling | LegState::Early, 200..=299) => {
                let d = self.dialog_of(resp);
                wire.ack = Some(d.ack(seq, via));
                self.state = LegState::Confirmed(Box::new(d));
                Outcome::Answered
            }
            (LegState::Calling | LegState::Early, code) => {
                self.state = LegState::Done;
                Outcome::Refused(code)
            }
            // The provisional a CANCEL had to wait for (§9.1).
            (LegState::Cancelling { sent }, 100..=199) => {
                if !*sent {
                    *sent = true;
                    wire.request = Some(cancel_for(&self.invite, self.elsewhere));
                }
                Outcome::Nothing
            }
            // The phone answered as we gave up: acknowledge, then hang up at once, so it is
            // not left talking to no one.
            (LegState::Cancelling { .. }, 200..=299) => {
                let mut d = self.dialog_of(resp);
                wire.ack = Some(d.ack(seq, via));
                wire.request = Some(d.request(Method::Bye, via));
                self.state = LegState::Done;
                Outcome::Nothing
            }
            // The 487 (or any final answer) that ends a cancelled INVITE.
            (LegState::Cancelling { .. }, _) => {
                self.state = LegState::Done;
                Outcome::Nothing
            }
            // A retransmitted 2xx: our ACK was lost.
            (LegState::Confirmed(d), 200..=299) => {
                wire.ack = Some(d.ack(seq, via));
                Outcome::Nothing
            }
            (LegState::Confirmed(_) | LegState::Done, _) => Outcome::Nothing,
        };
        (outcome, wire)
    }

    /// The PRACK for a reliable provisional (`Require: 100rel` with an RSeq above the last
    /// one PRACKed, RFC 3262 §4); retransmissions of one already PRACKed get none.
    fn prack(&mut self, resp: &Response, via: &str) -> Option<Request> {
        if resp.code == 100
            || !super::session_timer::lists(&resp.headers, &HeaderName::Require, "100rel")
        {
            return None;
        }
        let rseq: u32 = resp.headers.get(&HeaderName::RSeq)?.trim().parse().ok()?;
        let tag = resp.core.to.tag()?;
        let (mut d, last) = match self.early.take() {
            // The same early dialog (a phone that forks gives each its own tag: the last wins).
            Some((d, last)) if d.remote.tag() == Some(tag) => (d, last),
            _ => (Dialog::as_uac(&self.invite, resp, self.peer), 0),
        };
        if rseq <= last {
            self.early = Some((d, last));
            return None;
        }
        let mut req = d.request(Method::Prack, via);
        req.headers.push(
            HeaderName::RAck,
            format!("{rseq} {} INVITE", self.invite.core.cseq.seq),
        );
        self.early = Some((d, rseq));
        Some(req)
    }

    /// The dialog a 2xx confirms, its CSeq above any PRACK we sent in the early dialog.
    fn dialog_of(&self, resp: &Response) -> Dialog {
        let mut d = Dialog::as_uac(&self.invite, resp, self.peer);
        if let Some((early, _)) = &self.early {
            d.local_cseq = d.local_cseq.max(early.local_cseq);
        }
        d
    }

    /// We give up on an unanswered INVITE: the CANCEL to send now, if a provisional came
    /// (otherwise it goes when one does, or the INVITE simply times out).
    pub fn cancel(&mut self) -> Option<Request> {
        match self.state {
            LegState::Calling => {
                self.state = LegState::Cancelling { sent: false };
                None
            }
            LegState::Early => {
                self.state = LegState::Cancelling { sent: true };
                Some(cancel_for(&self.invite, self.elsewhere))
            }
            _ => None,
        }
    }

    /// Hangs up a confirmed leg: the BYE to send (none when there is no dialog).
    pub fn hang_up(&mut self, via: &str) -> Option<Request> {
        let LegState::Confirmed(d) = &mut self.state else {
            return None;
        };
        let bye = d.request(Method::Bye, via);
        self.state = LegState::Done;
        Some(bye)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::Transport;

    const INVITE: &str = "INVITE sip:alice@127.0.0.1:7000 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKleg\r\n\
From: <sip:acd@127.0.0.1>;tag=ours\r\n\
To: <sip:alice@127.0.0.1>\r\n\
Call-ID: leg-test@acd\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:acd@127.0.0.1:5060>\r\n\
Content-Length: 0\r\n\r\n";

    fn leg() -> UacLeg {
        let invite = super::super::snapshot::parse_request(INVITE).expect("INVITE");
        let peer = Peer {
            transport: Transport::Udp,
            addr: "127.0.0.1:7000".parse().expect("address"),
        };
        UacLeg::calling(invite.clone(), TxKey::server(&invite), peer)
    }

    fn response(code: u16) -> Response {
        let invite = super::super::snapshot::parse_request(INVITE).expect("INVITE");
        let mut r = Response::to(&invite, code, Some("theirs"));
        r.core
            .contacts
            .push(crate::sip::uri::NameAddr::new(crate::sip::uri::Uri::sip(
                Some("alice"),
                "127.0.0.1",
                Some(7000),
            )));
        r
    }

    fn method(r: &Option<Request>) -> Option<Method> {
        r.as_ref().map(|r| r.method.clone())
    }

    #[test]
    fn a_leg_rings_then_answers_and_is_acked_once_per_2xx() {
        let mut l = leg();
        let (o, w) = l.on_response(&response(180), "127.0.0.1:5060");
        assert_eq!(o, Outcome::Nothing);
        assert!(w.ack.is_none() && w.request.is_none());
        assert!(matches!(l.state(), LegState::Early));
        let (o, w) = l.on_response(&response(200), "127.0.0.1:5060");
        assert_eq!(o, Outcome::Answered);
        let ack = w.ack.expect("the 2xx is ACKed");
        assert_eq!(ack.core.cseq.seq, 1, "the ACK has the INVITE's CSeq");
        assert_eq!(ack.core.to.tag(), Some("theirs"));
        assert!(l.dialog().is_some());
        // The same 2xx again (our ACK was lost): ACKed again, no second answer.
        let (o, w) = l.on_response(&response(200), "127.0.0.1:5060");
        assert_eq!(o, Outcome::Nothing);
        assert!(w.ack.is_some());
        let bye = l.hang_up("127.0.0.1:5060").expect("a BYE");
        assert_eq!(bye.method, Method::Bye);
        assert_eq!(bye.core.cseq.seq, 2);
        assert!(l.is_done());
        assert!(l.hang_up("127.0.0.1:5060").is_none(), "one BYE only");
    }

    #[test]
    fn a_refusal_ends_the_leg_with_its_code() {
        let mut l = leg();
        let (o, _) = l.on_response(&response(486), "h");
        assert_eq!(o, Outcome::Refused(486));
        assert!(l.is_done());
        assert!(l.cancel().is_none(), "nothing to cancel any more");
    }

    #[test]
    fn a_cancel_waits_for_a_provisional() {
        let mut l = leg();
        assert!(l.cancel().is_none(), "no provisional yet: §9.1 says wait");
        let (o, w) = l.on_response(&response(100), "h");
        assert_eq!(o, Outcome::Nothing);
        assert_eq!(method(&w.request), Some(Method::Cancel));
        // A second provisional does not send a second CANCEL.
        let (_, w) = l.on_response(&response(180), "h");
        assert!(w.request.is_none());
        let (o, _) = l.on_response(&response(487), "h");
        assert_eq!(o, Outcome::Nothing, "the 487 is the cancelled INVITE's end");
        assert!(l.is_done());
    }

    #[test]
    fn a_ringing_leg_is_cancelled_at_once() {
        let mut l = leg();
        l.on_response(&response(183), "h");
        let cancel = l.cancel().expect("a CANCEL");
        assert_eq!(cancel.method, Method::Cancel);
        assert_eq!(cancel.core.cseq.seq, 1, "the INVITE's CSeq number");
        assert_eq!(cancel.core.cseq.method, Method::Cancel);
        assert!(cancel.body.is_empty());
    }

    #[test]
    fn a_phone_that_answers_as_we_give_up_is_acked_and_hung_up() {
        let mut l = leg();
        l.on_response(&response(180), "h");
        l.cancel();
        let (o, w) = l.on_response(&response(200), "h");
        assert_eq!(o, Outcome::Nothing, "not an answer for the call any more");
        assert!(w.ack.is_some());
        assert_eq!(method(&w.request), Some(Method::Bye));
        assert!(l.is_done());
    }
}
