//! The call orchestration driven with a fake clock and hand-written SIP, no sockets: ring
//! timeouts, CANCEL races, missing ACKs and silent agents, each checked message by message.

use super::*;
use crate::events::Event;
use crate::routing::Dialplan;
use crate::sip::auth::{ha1, Algorithm, Credentials};
use crate::sip::endpoint::{Endpoint, EndpointConfig};
use crate::sip::transaction::{Peer, Transport};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub(super) const PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
ring_timeout_s = 10
retry_s = 0

[[number]]
dial = "100"
queue = "sales"
"#;

pub(super) const CALLER: u16 = 5000;
pub(super) const SDP: &str = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

/// The agent's re-INVITE (answered as "a1" on port 7001) in the dialog of our INVITE `inv`,
/// offering `sdp` with direction `dir` (hold: `sendonly`, resume: `sendrecv`).
pub(super) fn agent_reinvite(inv: &str, cseq: u32, sdp: &str, dir: &str) -> String {
    let agent_to = header(&reply(inv, 200, "a1", false), "To");
    let body = format!("{sdp}a={dir}\r\n");
    format!(
        "INVITE sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKh{cseq}\r\nFrom: {agent_to}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:agent@127.0.0.1:7001>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        header(inv, "From"),
        header(inv, "Call-ID"),
        body.len()
    )
}

pub(super) struct Rig {
    pub(super) m: CallManager,
    pub(super) now: Instant,
    /// Messages already taken off the manager (to answer a 200 with its ACK) but not yet seen
    /// by the test.
    pending: Vec<(u16, String)>,
}

pub(super) fn peer(port: u16) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
    }
}

/// Value of header `name` in a raw message.
pub(super) fn header(msg: &str, name: &str) -> String {
    msg.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_default()
        .to_string()
}

/// The o= session id and version of a message's SDP.
pub(super) fn origin(msg: &str) -> (u64, u64) {
    let o = msg
        .lines()
        .find_map(|l| l.strip_prefix("o="))
        .unwrap_or_else(|| panic!("no o= line in {msg}"));
    let mut it = o
        .split_ascii_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// A response to a raw request, copying the §8.2.6.2 headers.
pub(super) fn reply(req: &str, code: u16, to_tag: &str, sdp: bool) -> String {
    let mut s = format!("SIP/2.0 {code} X\r\n");
    for l in req.lines() {
        if l.starts_with("Via: ")
            || l.starts_with("From: ")
            || l.starts_with("Call-ID: ")
            || l.starts_with("CSeq: ")
        {
            s.push_str(l);
            s.push_str("\r\n");
        }
        if let Some(to) = l.strip_prefix("To: ") {
            let to = if to.contains("tag=") {
                to.to_string()
            } else {
                format!("{to};tag={to_tag}")
            };
            s.push_str(&format!("To: {to}\r\n"));
        }
    }
    s.push_str("Contact: <sip:agent@127.0.0.1:7000>\r\n");
    if sdp {
        let body = SDP.replace("6000", "7002");
        s.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        s.push_str("Content-Length: 0\r\n\r\n");
    }
    s
}

impl Rig {
    pub(super) fn new() -> Rig {
        Rig::with_plan(PLAN)
    }

    pub(super) fn with_plan(plan: &str) -> Rig {
        let now = Instant::now();
        let cfg = EndpointConfig {
            algorithms: vec![Algorithm::Md5],
            ..EndpointConfig::default()
        };
        let ep = Endpoint::new(cfg, now, 1_000_000);
        let mut m = CallManager::new(
            ManagerConfig {
                advertise: "127.0.0.1".parse().unwrap(),
                sip_port: 5060,
                tls_port: Some(5061),
                rtp_low: 20000,
                rtp_high: 20100,
                qualify_every: Some(Duration::from_secs(30)),
                lookup_budget: None,
                country: crate::context::e164::Country::by_iso("US").unwrap(),
                max_calls: 100,
                max_calls_per_source: 3,
                retry_after_s: 5,
                trunks: Vec::new(),
            },
            ep,
            Dialplan::parse(plan, "t").unwrap(),
        );
        let agents = ["1001", "1003"]
            .iter()
            .map(|id| AgentRecord {
                id: id.to_string(),
                name: id.to_string(),
                credentials: Credentials::from_password(id, "acd", "pw"),
                skills: HashMap::from([("sales".to_string(), 5)]),
                wrapup: None,
            })
            .collect();
        m.set_agents(now, agents);
        Rig {
            m,
            now,
            pending: Vec::new(),
        }
    }

    pub(super) fn send(&mut self, port: u16, msg: &str) {
        self.m.handle_sip(self.now, peer(port), msg.as_bytes());
    }

    /// Everything sent since last time, as (destination port, text).
    pub(super) fn out(&mut self) -> Vec<(u16, String)> {
        let mut all = std::mem::take(&mut self.pending);
        all.extend(self.out_now());
        all
    }

    fn out_now(&mut self) -> Vec<(u16, String)> {
        std::iter::from_fn(|| self.m.poll_transmit())
            .map(|t| {
                (
                    t.to.addr.port(),
                    String::from_utf8_lossy(&t.data).to_string(),
                )
            })
            .collect()
    }

    /// The one message sent to `port` starting with `start`.
    pub(super) fn sent(&mut self, port: u16, start: &str) -> String {
        let all = self.out();
        let hits: Vec<&String> = all
            .iter()
            .filter(|(p, m)| *p == port && m.starts_with(start))
            .map(|(_, m)| m)
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "expected one '{start}' to {port}, got {all:#?}"
        );
        hits[0].clone()
    }

    pub(super) fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(at) = self.m.poll_timeout().filter(|t| *t <= end) {
            self.now = at.max(self.now);
            self.m.handle_timeout(self.now);
        }
        self.now = end;
        self.m.handle_timeout(end);
    }

    pub(super) fn register(&mut self, user: &str, port: u16) {
        self.register_phone(user, port, "");
    }

    /// Registers one phone of agent `user` at `port`, with `params` after its Contact
    /// (`;+sip.instance=...`); returns the 200.
    pub(super) fn register_phone(&mut self, user: &str, port: u16, params: &str) -> String {
        let reg = |auth: &str| {
            format!(
                "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKr{user}{port}{}\r\nFrom: <sip:{user}@acd>;tag=r\r\nTo: <sip:{user}@acd>\r\nCall-ID: reg{user}{port}\r\nCSeq: {} REGISTER\r\nContact: <sip:{user}@127.0.0.1:{port}>{params}\r\n{auth}Content-Length: 0\r\n\r\n",
                auth.len(),
                if auth.is_empty() { 1 } else { 2 }
            )
        };
        self.send(port, &reg(""));
        let ch = self.sent(port, "SIP/2.0 401");
        let nonce = ch
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        let h1 = ha1(Algorithm::Md5, user, "acd", "pw");
        let h2 = Algorithm::Md5.hash("REGISTER:sip:127.0.0.1");
        let r = Algorithm::Md5.hash(&format!("{h1}:{nonce}:00000001:x:auth:{h2}"));
        let auth = format!("Authorization: Digest username=\"{user}\", realm=\"acd\", nonce=\"{nonce}\", uri=\"sip:127.0.0.1\", response=\"{r}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"x\"\r\n");
        self.send(port, &reg(&auth));
        let ok = self.sent(port, "SIP/2.0 200");
        self.now += Duration::from_millis(10); // 1001 registers first: idle longest
        ok
    }

    /// A caller's INVITE, and their ACK if acd answers it with a 200 (a caller that proves
    /// its address, as every real one does).
    pub(super) fn invite(&mut self, call_id: &str) {
        self.invite_no_ack(call_id);
        self.ack_200(call_id);
    }

    /// ACKs the 200 sent to the caller for `call_id`, if there is one among the messages not
    /// yet seen; the messages stay for the test to see.
    pub(super) fn ack_200(&mut self, call_id: &str) {
        let all = self.out_now();
        let ok = all
            .iter()
            .find(|(p, m)| {
                *p == CALLER
                    && m.starts_with("SIP/2.0 200")
                    && m.contains("CSeq: 1 INVITE")
                    && header(m, "Call-ID") == call_id
            })
            .map(|(_, m)| (header(m, "From"), header(m, "To")));
        self.pending.extend(all);
        if let Some((from, to)) = ok {
            let ack = format!("ACK sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKack{call_id}\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
            self.send(CALLER, &ack);
        }
    }

    /// A caller's INVITE alone.
    pub(super) fn invite_no_ack(&mut self, call_id: &str) {
        self.invite_offering(call_id, SDP);
    }

    /// A caller's INVITE offering `sdp`, alone.
    pub(super) fn invite_offering(&mut self, call_id: &str, sdp: &str) {
        self.invite_with(call_id, sdp, "");
    }

    /// A caller's INVITE offering `sdp` with `extra` header lines (each ending in CRLF).
    pub(super) fn invite_with(&mut self, call_id: &str, sdp: &str, extra: &str) {
        let msg = format!(
            "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bK{call_id}\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:{CALLER}>\r\n{extra}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        self.send(CALLER, &msg);
    }

    pub(super) fn status(&self) -> Status {
        self.m.status(self.now)
    }
}

pub(super) fn connected_rig() -> (Rig, String, String) {
    let mut r = Rig::new();
    r.register("1001", 7001);
    r.invite("call1");
    let all = r.out();
    assert!(all
        .iter()
        .any(|(p, m)| *p == CALLER && m.starts_with("SIP/2.0 100")));
    let ok = all
        .iter()
        .find(|(p, m)| *p == CALLER && m.starts_with("SIP/2.0 200"))
        .unwrap()
        .1
        .clone();
    let inv = all
        .iter()
        .find(|(p, m)| *p == 7001 && m.starts_with("INVITE"))
        .unwrap()
        .1
        .clone();
    (r, ok, inv)
}

#[test]
fn ring_timeout_cancels_after_ringing_and_offers_the_next_agent() {
    let mut r = Rig::new();
    r.register("1001", 7001);
    r.register("1003", 7003);
    r.invite("c-ring");
    let inv = r.sent(7001, "INVITE");
    assert!(inv.contains("X-ACD-Queue: sales"));
    assert_eq!(header(&inv, "Allow"), crate::sip::endpoint::ALLOW, "{inv}");
    assert_eq!(header(&inv, "Accept"), "application/sdp");
    r.send(7001, &reply(&inv, 180, "a1", false));
    r.advance(Duration::from_millis(9_999));
    assert!(r
        .out()
        .iter()
        .all(|(p, m)| !(*p == 7001 && m.starts_with("CANCEL"))));
    r.advance(Duration::from_millis(1));
    let all = r.out();
    let cancel = all
        .iter()
        .find(|(p, m)| *p == 7001 && m.starts_with("CANCEL"))
        .expect("CANCEL to 1001");
    assert_eq!(
        header(&cancel.1, "Via"),
        header(&inv, "Via"),
        "CANCEL reuses the INVITE's branch"
    );
    assert!(
        all.iter()
            .any(|(p, m)| *p == 7003 && m.starts_with("INVITE")),
        "1003 rings next"
    );
    r.send(7001, &reply(&cancel.1, 200, "a1", false));
    r.send(7001, &reply(&inv, 487, "a1", false));
    assert!(
        r.sent(7001, "ACK").contains("CSeq: 1 ACK"),
        "487 acknowledged"
    );
    assert_eq!(r.status().stale_agent_legs, 0);
}

#[test]
fn agent_answering_after_cancel_gets_ack_then_bye() {
    let mut r = Rig::new();
    r.register("1001", 7001);
    r.invite("c-race");
    let inv = r.sent(7001, "INVITE");
    r.send(7001, &reply(&inv, 180, "a1", false));
    r.advance(Duration::from_secs(10));
    r.sent(7001, "CANCEL");
    // The 200 crossed our CANCEL on the wire.
    r.send(7001, &reply(&inv, 200, "a1", true));
    let all = r.out();
    assert!(all.iter().any(|(p, m)| *p == 7001 && m.starts_with("ACK")));
    assert!(
        all.iter().any(|(p, m)| *p == 7001 && m.starts_with("BYE")),
        "{all:#?}"
    );
    assert_eq!(r.status().stale_agent_legs, 0);
}

#[test]
fn no_cancel_before_a_provisional_response() {
    let mut r = Rig::new();
    r.register("1001", 7001);
    r.invite("c-quiet");
    let inv = r.sent(7001, "INVITE");
    r.advance(Duration::from_secs(10));
    assert!(
        r.out().iter().all(|(_, m)| !m.starts_with("CANCEL")),
        "§9.1: wait for a 1xx"
    );
    r.send(7001, &reply(&inv, 180, "a1", false));
    r.sent(7001, "CANCEL");
}

#[test]
fn silent_agent_legs_are_forgotten_after_timer_b() {
    let (mut r, ok, _inv) = connected_rig();
    r.advance(Duration::from_secs(10));
    // Ring timeout with no 1xx: the leg waits for one (or Timer B); the only agent rings again.
    assert_eq!(r.status().stale_agent_legs, 1);
    r.send(CALLER, &format!("BYE sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKsbye\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: call1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", header(&ok, "To")));
    assert_eq!(r.status().calls, 0);
    assert_eq!(r.status().stale_agent_legs, 2);
    r.advance(Duration::from_secs(32));
    assert_eq!(
        r.status().stale_agent_legs,
        0,
        "Timer B (64*T1) ends every unanswered INVITE"
    );
}

#[test]
fn bridged_call_then_agent_bye_releases_the_caller() {
    let (mut r, ok, inv) = connected_rig();
    r.send(CALLER, &format!("ACK sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKack1\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: call1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", header(&ok, "To")));
    r.send(7001, &reply(&inv, 200, "a1", true));
    r.sent(7001, "ACK");
    let media: Vec<MediaCommand> = std::iter::from_fn(|| r.m.poll_media()).collect();
    assert!(
        matches!(media.last(), Some(MediaCommand::Bridge { agent_remote, .. }) if agent_remote.port() == 7002)
    );
    let agent_to = header(&reply(&inv, 200, "a1", false), "To");
    r.send(7001, &format!("BYE sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKbye1\r\nFrom: {agent_to}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", header(&inv, "From"), header(&inv, "Call-ID")));
    let all = r.out();
    assert!(all
        .iter()
        .any(|(p, m)| *p == 7001 && m.starts_with("SIP/2.0 200")));
    let bye = all
        .iter()
        .find(|(p, m)| *p == CALLER && m.starts_with("BYE"))
        .expect("BYE to caller");
    assert!(
        bye.1.starts_with("BYE sip:c@127.0.0.1:5000 SIP/2.0"),
        "to the caller's Contact"
    );
    assert_eq!(header(&bye.1, "CSeq"), "2 BYE");
    assert_eq!(r.status().calls, 0);
    assert!(matches!(r.m.poll_media(), Some(MediaCommand::Stop { .. })));
}

#[test]
fn a_caller_that_never_acks_is_never_queued_sent_media_or_hung_up_on() {
    let mut r = Rig::new();
    r.register("1001", 7001);
    let _ = std::iter::from_fn(|| r.m.poll_event()).count();
    r.invite_no_ack("ghost");
    let all = r.out();
    assert!(
        all.iter().all(|(p, _)| *p == CALLER),
        "no agent rung: {all:#?}"
    );
    assert!(
        std::iter::from_fn(|| r.m.poll_media()).next().is_none(),
        "no media started"
    );
    let events: Vec<Event> = std::iter::from_fn(|| r.m.poll_event()).collect();
    assert!(
        events.is_empty(),
        "not announced before the ACK: {events:?}"
    );
    assert_eq!(r.status().acd_calls, 0);
    // A spoofed ACK without our To tag proves nothing.
    r.send(CALLER, &format!("ACK sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKspoof\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: ghost\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"));
    assert_eq!(r.status().acd_calls, 0);
    assert!(r.out().iter().all(|(p, _)| *p == CALLER));
    r.advance(Duration::from_millis(500));
    assert!(
        r.out()
            .iter()
            .any(|(p, m)| *p == CALLER && m.starts_with("SIP/2.0 200")),
        "2xx retransmitted (RFC 3261's allowance)"
    );
    let free = r.status().free_rtp_ports;
    r.advance(Duration::from_millis(31_500));
    let all = r.out();
    assert!(
        all.iter()
            .filter(|(p, _)| *p == CALLER)
            .all(|(_, m)| m.starts_with("SIP/2.0 200")),
        "no BYE towards an address that never proved itself: {all:#?}"
    );
    assert_eq!(r.status().calls, 0);
    assert_eq!(r.status().free_rtp_ports, free + 2, "ports returned");
    let events: Vec<Event> = std::iter::from_fn(|| r.m.poll_event()).collect();
    assert!(
        matches!(&events[..], [Event::CallRefused { code: 408, .. }]),
        "{events:?}"
    );
}

#[test]
fn the_ack_with_our_tag_starts_the_call() {
    let mut r = Rig::new();
    r.register("1001", 7001);
    r.invite_no_ack("real");
    assert_eq!(r.status().acd_calls, 0);
    r.ack_200("real");
    let media: Vec<MediaCommand> = std::iter::from_fn(|| r.m.poll_media()).collect();
    assert!(
        matches!(&media[..], [MediaCommand::Start(m)] if m.validated && m.caller_remote.port() == 6000),
        "{media:?}"
    );
    let events: Vec<Event> = std::iter::from_fn(|| r.m.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::CallArrived { .. })),
        "{events:?}"
    );
    r.sent(7001, "INVITE");
}

#[test]
fn early_media_sends_nothing_and_queues_nothing_until_the_callers_rtp() {
    let mut r =
        Rig::with_plan(&PLAN.replace("retry_s = 0", "retry_s = 0\nanswer = \"early-media\""));
    r.register("1001", 7001);
    r.invite("em");
    assert!(r
        .out()
        .iter()
        .any(|(p, m)| *p == CALLER && m.starts_with("SIP/2.0 183")));
    let media: Vec<MediaCommand> = std::iter::from_fn(|| r.m.poll_media()).collect();
    let call = match &media[..] {
        [MediaCommand::Start(m)] if !m.validated => m.call,
        other => panic!("media bound but silent: {other:?}"),
    };
    assert_eq!(r.status().acd_calls, 0, "not queued on a 183 alone");
    r.m.handle_media(r.now, MediaEvent::Validated { call });
    assert_eq!(r.status().acd_calls, 1);
    r.sent(7001, "INVITE");
}

#[test]
fn rtp_timeout_hangs_up_both_legs() {
    let (mut r, _ok, inv) = connected_rig();
    r.send(7001, &reply(&inv, 200, "a1", true));
    r.out();
    r.m.handle_media(r.now, MediaEvent::Timeout { call: 1 });
    let all = r.out();
    assert!(all
        .iter()
        .any(|(p, m)| *p == CALLER && m.starts_with("BYE")));
    assert!(all.iter().any(|(p, m)| *p == 7001 && m.starts_with("BYE")));
    assert_eq!(r.status().calls, 0);
    assert_eq!(r.status().free_rtp_ports, 50, "both ports back in the pool");
}

#[test]
fn caller_bye_while_agent_rings_cancels_the_agent() {
    let (mut r, ok, inv) = connected_rig();
    r.send(7001, &reply(&inv, 180, "a1", false));
    r.send(CALLER, &format!("BYE sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKcbye\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: call1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", header(&ok, "To")));
    let all = r.out();
    assert!(all
        .iter()
        .any(|(p, m)| *p == CALLER && m.starts_with("SIP/2.0 200")));
    assert!(all
        .iter()
        .any(|(p, m)| *p == 7001 && m.starts_with("CANCEL")));
    let events: Vec<crate::events::Event> = std::iter::from_fn(|| r.m.poll_event()).collect();
    assert!(events
        .iter()
        .any(|e| matches!(e, crate::events::Event::Abandoned { .. })));
    assert_eq!(r.status().totals.abandoned, 1);
}

pub(super) fn in_dialog(method: &str, ok: &str, cseq: u32, ctype: &str, body: &str) -> String {
    format!(
        "{method} sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bK{method}{cseq}\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: call1\r\nCSeq: {cseq} {method}\r\nContact: <sip:c@127.0.0.1:{CALLER}>\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
        header(ok, "To"),
        body.len()
    )
}

#[test]
fn hold_reinvite_is_answered_recvonly_with_a_new_version() {
    let (mut r, ok, _inv) = connected_rig();
    let hold = format!("{SDP}a=sendonly\r\n");
    r.send(
        CALLER,
        &in_dialog("INVITE", &ok, 2, "application/sdp", &hold),
    );
    let answer = r.sent(CALLER, "SIP/2.0 200");
    assert!(answer.contains("a=recvonly\r\n"), "{answer}");
    let (session, version) = origin(&ok);
    assert_eq!(
        origin(&answer),
        (session, version + 1),
        "same o= session, version bumped: {answer}"
    );
    assert_eq!(header(&answer, "CSeq"), "2 INVITE");
    // An offer we cannot take is refused and the call goes on.
    let g729 = SDP.replace("RTP/AVP 0 101", "RTP/AVP 18");
    r.send(
        CALLER,
        &in_dialog("INVITE", &ok, 3, "application/sdp", &g729),
    );
    r.sent(CALLER, "SIP/2.0 488");
    assert_eq!(r.status().calls, 1);
}

#[test]
fn info_dtmf_from_the_caller_becomes_a_digit() {
    let (mut r, ok, _inv) = connected_rig();
    while r.m.poll_event().is_some() {}
    r.send(
        CALLER,
        &in_dialog(
            "INFO",
            &ok,
            2,
            "application/dtmf-relay",
            "Signal=7\r\nDuration=160\r\n",
        ),
    );
    r.sent(CALLER, "SIP/2.0 200");
    let digits: Vec<char> = std::iter::from_fn(|| r.m.poll_event())
        .filter_map(|e| match e {
            crate::events::Event::Dtmf { digit, .. } => Some(digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, vec!['7']);
}

#[test]
fn silent_phone_is_taken_out_until_it_answers_options_again() {
    let mut r = Rig::new();
    r.register("1001", 7001);
    r.register("1003", 7003);
    r.advance(Duration::from_secs(30));
    let all = r.out();
    let ping = all
        .iter()
        .find(|(p, m)| *p == 7001 && m.starts_with("OPTIONS"))
        .expect("1001 pinged")
        .1
        .clone();
    let ping3 = all
        .iter()
        .find(|(p, m)| *p == 7003 && m.starts_with("OPTIONS"))
        .expect("1003 pinged")
        .1
        .clone();
    r.send(7003, &reply(&ping3, 200, "q3", false));
    r.advance(Duration::from_secs(5));
    assert_eq!(
        r.m.acd.agent_state("1001"),
        Some(crate::acd::AgentState::Offline),
        "no answer in 5 s"
    );
    assert_eq!(
        r.m.acd.agent_state("1003"),
        Some(crate::acd::AgentState::Idle)
    );
    // A caller now goes to 1003 although 1001 has been idle longer.
    r.invite("c-q");
    assert!(r
        .out()
        .iter()
        .any(|(p, m)| *p == 7003 && m.starts_with("INVITE")));
    // 1001's phone answers the next ping: back in the queue.
    r.advance(Duration::from_secs(25));
    let ping = r
        .out()
        .into_iter()
        .find(|(p, m)| *p == 7001 && m.starts_with("OPTIONS"))
        .map(|x| x.1)
        .unwrap_or(ping);
    r.send(7001, &reply(&ping, 200, "q1", false));
    assert_eq!(
        r.m.acd.agent_state("1001"),
        Some(crate::acd::AgentState::Idle)
    );
}

#[test]
fn agent_hold_plays_hold_music_to_the_caller_and_unhold_resumes_the_bridge() {
    let (mut r, _ok, inv) = connected_rig();
    r.send(7001, &reply(&inv, 200, "a1", true));
    r.out();
    while r.m.poll_media().is_some() {}
    let sdp = SDP.replace("6000", "7002");
    let reinvite = |cseq: u32, dir: &str| agent_reinvite(&inv, cseq, &sdp, dir);
    r.send(7001, &reinvite(2, "sendonly"));
    assert!(r.sent(7001, "SIP/2.0 200").contains("a=recvonly"));
    assert!(matches!(r.m.poll_media(), Some(MediaCommand::Hold { .. })));
    r.send(7001, &reinvite(3, "sendrecv"));
    assert!(r.sent(7001, "SIP/2.0 200").contains("a=sendrecv"));
    assert!(
        matches!(r.m.poll_media(), Some(MediaCommand::Bridge { agent_remote, .. }) if agent_remote.port() == 7002)
    );
    let holds: Vec<bool> = std::iter::from_fn(|| r.m.poll_event())
        .filter_map(|e| match e {
            crate::events::Event::Hold { on, .. } => Some(on),
            _ => None,
        })
        .collect();
    assert_eq!(holds, vec![true, false]);
}

fn late_offer_invite(r: &mut Rig) -> String {
    r.send(CALLER, &format!("INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKlate\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: late1\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:{CALLER}>\r\nContent-Length: 0\r\n\r\n"));
    let all = r.out();
    assert!(
        all.iter().all(|(p, _)| *p != 7001),
        "no agent rings before the caller's answer"
    );
    all.into_iter()
        .find(|(p, m)| *p == CALLER && m.starts_with("SIP/2.0 200"))
        .expect("200 with our offer")
        .1
}

fn ack_with(ok: &str, body: &str) -> String {
    let ctype = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".into()
    };
    format!("ACK sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKlack\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: late1\r\nCSeq: 1 ACK\r\n{ctype}Content-Length: {}\r\n\r\n{body}", header(ok, "To"), body.len())
}

#[test]
fn late_offer_is_answered_in_the_ack_then_queued() {
    let mut r = Rig::new();
    r.register("1001", 7001);
    let ok = late_offer_invite(&mut r);
    assert!(
        ok.contains(" RTP/AVP 0 8 101\r\n"),
        "we offer both laws: {ok}"
    );
    let answer = SDP
        .replace("RTP/AVP 0 101", "RTP/AVP 8 101")
        .replace("6000", "6100")
        + "a=rtpmap:8 PCMA/8000\r\n";
    r.send(CALLER, &ack_with(&ok, &answer));
    let inv = r.sent(7001, "INVITE");
    assert!(
        inv.contains(" RTP/AVP 8 0 101"),
        "the agent is offered the caller's choice first: {inv}"
    );
    let start = std::iter::from_fn(|| r.m.poll_media()).next();
    let Some(MediaCommand::Start(m)) = start else {
        panic!("media starts")
    };
    assert!(m.codec == crate::sdp::Codec::Pcma && m.caller_remote.port() == 6100);
    assert!(
        ok.contains(&format!("m=audio {} RTP/AVP", m.caller_port)),
        "{ok}"
    );
    assert!(
        inv.contains(&format!("m=audio {} RTP/AVP", m.agent_port)),
        "{inv}"
    );
}

#[test]
fn late_offer_without_an_answer_is_hung_up() {
    let mut r = Rig::new();
    let ok = late_offer_invite(&mut r);
    r.send(CALLER, &ack_with(&ok, ""));
    r.sent(CALLER, "BYE");
    assert_eq!(r.status().calls, 0);
    assert_eq!(r.status().free_rtp_ports, 50);
}

fn with_lookups() -> Rig {
    let mut r = Rig::new();
    r.m.cfg.lookup_budget = Some(Duration::from_millis(150));
    r
}

fn lookup_events(r: &mut Rig) -> Vec<crate::events::Event> {
    std::iter::from_fn(|| r.m.poll_event())
        .filter(|e| matches!(e, crate::events::Event::ContextLookup { .. }))
        .collect()
}

#[test]
fn caller_context_arrives_in_time_and_rides_on_the_call() {
    let mut r = with_lookups();
    r.register("1001", 7001);
    r.invite("c-ctx");
    let all = r.out();
    assert!(
        all.iter()
            .any(|(p, m)| *p == CALLER && m.starts_with("SIP/2.0 200")),
        "answered: the welcome plays during the lookup"
    );
    assert!(
        all.iter().all(|(p, _)| *p != 7001),
        "no agent rings before the context is known"
    );
    let req = r.m.poll_lookup().expect("a lookup is requested");
    assert_eq!(req.number, "+15551234567");
    r.now += Duration::from_millis(40);
    let ctx = crate::context::CallerContext {
        number: req.number.clone(),
        campaigns: vec![crate::context::CampaignSend {
            campaign: "spring-ac-offer".into(),
            sent_at: 0,
            offer: String::new(),
            queue: None,
            skills: String::new(),
            window_minutes: 60,
        }],
        ..Default::default()
    };
    r.m.handle_context(r.now, req.call, Ok(ctx));
    r.sent(7001, "INVITE");
    let ev = lookup_events(&mut r);
    assert!(
        matches!(&ev[..], [crate::events::Event::ContextLookup { ms: 40, campaigns, error: None, .. }] if campaigns == &vec!["spring-ac-offer".to_string()]),
        "{ev:?}"
    );
    assert!(r.m.calls.values().next().unwrap().context.is_some());
}

#[test]
fn a_lookup_past_its_budget_is_abandoned_and_the_call_goes_on() {
    let mut r = with_lookups();
    r.register("1001", 7001);
    r.invite("c-slow");
    r.out();
    let req = r.m.poll_lookup().unwrap();
    r.advance(Duration::from_millis(149));
    assert!(r.out().iter().all(|(p, _)| *p != 7001));
    r.advance(Duration::from_millis(1));
    r.sent(7001, "INVITE");
    let ev = lookup_events(&mut r);
    assert!(
        matches!(&ev[..], [crate::events::Event::ContextLookup { error: Some(e), .. }] if e.contains("timed out after 150 ms")),
        "{ev:?}"
    );
    // The database answers late: ignored, nothing happens twice.
    r.m.handle_context(r.now, req.call, Ok(Default::default()));
    assert!(r.out().is_empty());
    assert!(lookup_events(&mut r).is_empty());
}

#[test]
fn anonymous_callers_are_not_looked_up() {
    let mut r = with_lookups();
    r.register("1001", 7001);
    let msg = format!(
        "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKanon\r\nFrom: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=c\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: anon\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:{CALLER}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    r.send(CALLER, &msg);
    r.ack_200("anon");
    assert!(r.m.poll_lookup().is_none());
    assert!(
        r.out()
            .iter()
            .any(|(p, m)| *p == 7001 && m.starts_with("INVITE")),
        "straight to the queue"
    );
}

const MENU_PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
ring_timeout_s = 10
retry_s = 0
[[queue]]
name = "billing"
skill = "billing"

[[number]]
dial = "100"
queue = "sales"
menu = "main"

[[menu]]
name = "main"
timeout_s = 4
retries = 1
default = "sales"
options = { "1" = "sales", "2" = "billing", "9" = "menu:more" }

[[menu]]
name = "more"
default = "billing"
options = { "1" = "sales" }
"#;

pub(super) fn menu_rig() -> Rig {
    let mut r = Rig::with_plan(MENU_PLAN);
    r.m.cfg.qualify_every = None; // the rig's phones do not answer OPTIONS
    r.register("1001", 7001);
    r.invite("c-menu");
    let ok = r.sent(CALLER, "SIP/2.0 200");
    r.send(CALLER, &format!("ACK sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKmack\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: c-menu\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", header(&ok, "To")));
    r
}

fn plays(r: &mut Rig) -> Vec<String> {
    std::iter::from_fn(|| r.m.poll_media())
        .filter_map(|m| match m {
            MediaCommand::Play { .. } => Some("play".to_string()),
            MediaCommand::Hold { .. } => Some("hold".to_string()),
            _ => None,
        })
        .collect()
}

fn choices(r: &mut Rig) -> Vec<(Option<char>, Option<String>)> {
    std::iter::from_fn(|| r.m.poll_event())
        .filter_map(|e| match e {
            crate::events::Event::MenuChoice { digit, queue, .. } => Some((digit, queue)),
            _ => None,
        })
        .collect()
}

#[test]
fn unplaced_caller_hears_the_menu_and_a_digit_picks_the_queue() {
    let mut r = menu_rig();
    assert_eq!(plays(&mut r), vec!["play"], "the menu prompt");
    assert!(
        r.out().iter().all(|(p, _)| *p != 7001),
        "nobody rings during the menu"
    );
    // Barge-in: the digit may come while the prompt still plays.
    r.m.handle_media(
        r.now,
        MediaEvent::Dtmf {
            call: 1,
            digit: '1',
        },
    );
    assert_eq!(plays(&mut r), vec!["hold"]);
    r.sent(7001, "INVITE");
    assert_eq!(choices(&mut r), vec![(Some('1'), Some("sales".into()))]);
}

#[test]
fn sub_menu_then_choice() {
    let mut r = menu_rig();
    plays(&mut r);
    r.m.handle_media(
        r.now,
        MediaEvent::Dtmf {
            call: 1,
            digit: '9',
        },
    );
    assert_eq!(plays(&mut r), vec!["play"], "the sub-menu's prompt");
    r.m.handle_media(
        r.now,
        MediaEvent::Dtmf {
            call: 1,
            digit: '1',
        },
    );
    r.sent(7001, "INVITE");
    assert_eq!(
        choices(&mut r),
        vec![(Some('9'), None), (Some('1'), Some("sales".into()))]
    );
}

#[test]
fn invalid_digits_use_up_the_retries_then_the_default_queue() {
    let mut r = menu_rig();
    plays(&mut r);
    r.m.handle_media(
        r.now,
        MediaEvent::Dtmf {
            call: 1,
            digit: '7',
        },
    );
    assert_eq!(
        plays(&mut r),
        vec!["play"],
        "invalid-input prompt, then the menu again"
    );
    r.m.handle_media(
        r.now,
        MediaEvent::Dtmf {
            call: 1,
            digit: '8',
        },
    );
    assert_eq!(plays(&mut r), vec!["hold"], "no retries left");
    r.sent(7001, "INVITE");
    assert_eq!(choices(&mut r), vec![(None, Some("sales".into()))]);
}

#[test]
fn silence_times_out_after_the_prompt_ends() {
    let mut r = menu_rig();
    plays(&mut r);
    // The prompt takes as long as it takes; the timeout starts when it ends.
    r.advance(Duration::from_secs(30));
    assert!(plays(&mut r).is_empty(), "no timeout before PromptDone");
    r.m.handle_media(r.now, MediaEvent::PromptDone { call: 1 });
    r.advance(Duration::from_millis(3_999));
    assert!(plays(&mut r).is_empty());
    r.advance(Duration::from_millis(1));
    assert_eq!(plays(&mut r), vec!["play"], "replayed once (retries = 1)");
    r.m.handle_media(r.now, MediaEvent::PromptDone { call: 1 });
    r.advance(Duration::from_secs(4));
    assert_eq!(plays(&mut r), vec!["hold"]);
    r.sent(7001, "INVITE");
}

#[test]
fn menu_errors_name_the_line() {
    let bad = MENU_PLAN.replace(r#""2" = "billing""#, r#""2" = "nowhere""#);
    let e = Dialplan::parse(&bad, "m.toml").unwrap_err().to_string();
    assert!(
        e.contains("menu 'main': option '2' leads to unknown queue 'nowhere'"),
        "{e}"
    );
    let bad = MENU_PLAN.replace(r#""9" = "menu:more""#, r#""12" = "sales""#);
    assert!(Dialplan::parse(&bad, "m.toml")
        .unwrap_err()
        .to_string()
        .contains("must be one key"));
    let bad = MENU_PLAN.replace(r#"menu = "main""#, r#"menu = "mian""#);
    let e = Dialplan::parse(&bad, "m.toml").unwrap_err().to_string();
    assert!(
        e.starts_with("m.toml:14:") && e.contains("unknown menu 'mian'"),
        "{e}"
    );
}

#[test]
fn a_rule_prompt_plays_then_hold_music() {
    let dir = std::env::temp_dir().join(format!("acd-prompt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("ticket.wav");
    std::fs::write(&wav, crate::media::prompt::write_wav(&[0i16; 800])).unwrap();
    let plan = format!(
        "{PLAN}\n[[rule]]\nname = \"everyone\"\nwhen = {{ dialed = [\"100\"] }}\nthen = {{ queue = \"sales\", prompt = \"{}\" }}\n",
        wav.display()
    );
    let mut r = Rig::with_plan(&plan);
    r.invite("c-prompt");
    let first: Vec<MediaCommand> = std::iter::from_fn(|| r.m.poll_media()).collect();
    assert!(
        matches!(
            first.as_slice(),
            [MediaCommand::Start(_), MediaCommand::Play { .. }]
        ),
        "{first:?}"
    );
    r.m.handle_media(r.now, MediaEvent::PromptDone { call: 1 });
    assert!(matches!(r.m.poll_media(), Some(MediaCommand::Hold { .. })));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn press_three_for_chloe_rings_chloe_first() {
    let plan = MENU_PLAN.replace("\"9\" = \"menu:more\"", "\"3\" = \"agent:1003\"");
    let mut r = Rig::with_plan(&plan);
    r.m.cfg.qualify_every = None;
    r.register("1001", 7001); // idle longest: would get the call otherwise
    r.register("1003", 7003);
    r.invite("c-agent");
    r.out();
    r.m.handle_media(
        r.now,
        MediaEvent::Dtmf {
            call: 1,
            digit: '3',
        },
    );
    let all = r.out();
    assert!(all
        .iter()
        .any(|(p, m)| *p == 7003 && m.starts_with("INVITE")));
    assert!(all
        .iter()
        .all(|(p, m)| !(*p == 7001 && m.starts_with("INVITE"))));
    assert_eq!(choices(&mut r), vec![(Some('3'), Some("sales".into()))]);
}

#[test]
fn waiting_callers_hear_the_queue_message_every_period_then_hold_music() {
    let dir = std::env::temp_dir().join(format!("acd-msg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("holding.wav");
    std::fs::write(
        &wav,
        crate::media::prompt::write_wav(&crate::media::prompt::default_menu()),
    )
    .unwrap();
    let plan = format!(
        "[[queue]]\nname = \"sales\"\nskill = \"sales\"\nmessage = \"{}\"\nmessage_every_s = 10\n[[number]]\ndial = \"100\"\nqueue = \"sales\"\n",
        wav.display()
    );
    let mut r = Rig::with_plan(&plan);
    r.invite("c-msg"); // nobody registered: the caller waits
    r.out();
    plays(&mut r);
    r.advance(Duration::from_millis(9_999));
    assert!(plays(&mut r).is_empty());
    r.advance(Duration::from_millis(1));
    assert_eq!(plays(&mut r), vec!["play"], "the message");
    r.m.handle_media(r.now, MediaEvent::PromptDone { call: 1 });
    assert_eq!(plays(&mut r), vec!["hold"], "then hold music again");
    r.advance(Duration::from_secs(10));
    assert_eq!(plays(&mut r), vec!["play"], "and again ten seconds later");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_caller_waiting_the_maximum_with_no_overflow_hears_the_timeout_message_and_is_let_go() {
    let dir = std::env::temp_dir().join(format!("acd-timeout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("later.wav");
    std::fs::write(
        &wav,
        crate::media::prompt::write_wav(&crate::media::prompt::default_menu()),
    )
    .unwrap();
    let plan = format!(
        "[[queue]]\nname = \"sales\"\nskill = \"sales\"\nmax_wait_s = 30\ntimeout_prompt = \"{}\"\n[[number]]\ndial = \"100\"\nqueue = \"sales\"\n",
        wav.display()
    );
    let mut r = Rig::with_plan(&plan);
    r.invite("c-late"); // nobody registered: the caller waits
    r.out();
    plays(&mut r);
    r.advance(Duration::from_secs(30));
    assert_eq!(plays(&mut r), vec!["play"], "the timeout message");
    assert_eq!(r.status().acd_calls, 0, "out of the queue already");
    assert!(r.out().iter().all(|(_, m)| !m.starts_with("BYE")));
    // The message ends: BYE, and the history hears "timed out".
    r.m.handle_media(r.now, MediaEvent::PromptDone { call: 1 });
    r.sent(CALLER, "BYE");
    let evs: Vec<_> = std::iter::from_fn(|| r.m.poll_event()).collect();
    assert!(evs.iter().any(
        |e| matches!(e, crate::events::Event::TimedOut { queue, wait_ms: 30_000, .. } if queue == "sales")
    ), "{evs:?}");
    assert!(!evs
        .iter()
        .any(|e| matches!(e, crate::events::Event::Abandoned { .. })));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cancel_after_the_final_answer_gets_200_and_changes_nothing() {
    let mut r = Rig::new();
    r.register("1001", 7001);
    r.invite("late-cancel");
    r.out();
    // RFC 3261 §9.2: the INVITE transaction exists (its 200 was sent), so 200, not 481.
    r.send(CALLER, &format!("CANCEL sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKlate-cancel\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: late-cancel\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"));
    let ok = r.sent(CALLER, "SIP/2.0 200");
    assert!(ok.contains("CSeq: 1 CANCEL"), "{ok}");
    assert_eq!(r.status().calls, 1, "the answered call goes on");
    // A CANCEL for no transaction at all: 481.
    r.send(CALLER, &format!("CANCEL sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKnone\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: none\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"));
    r.sent(CALLER, "SIP/2.0 481");
}

#[test]
fn calls_past_the_per_source_cap_get_503_with_retry_after_until_one_ends() {
    let mut r = Rig::new(); // max_calls_per_source = 3
    for i in 0..3 {
        r.invite(&format!("cap{i}"));
    }
    r.out();
    assert_eq!(r.status().calls, 3);
    r.invite("cap3");
    let busy = r.sent(CALLER, "SIP/2.0 503");
    assert!(header(&busy, "Retry-After") == "5", "{busy}");
    assert_eq!((r.status().calls, r.status().source_full), (3, 1));
    // The first caller hangs up: their source has room again.
    r.m.handle_media(r.now, MediaEvent::Timeout { call: 1 });
    r.out();
    assert_eq!(r.status().calls, 2);
    r.invite("cap4");
    r.sent(CALLER, "SIP/2.0 200");
    assert_eq!(r.status().calls, 3);
}

#[test]
fn past_the_transaction_cap_new_requests_get_503_and_retransmissions_still_match() {
    let now = Instant::now();
    let cfg = EndpointConfig {
        max_transactions: 2,
        ..EndpointConfig::default()
    };
    let mut ep = Endpoint::new(cfg, now, 1_000_000);
    let options = |n: u32| {
        format!("OPTIONS sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bKo{n}\r\nFrom: <sip:x@x>;tag=a\r\nTo: <sip:acd@x>\r\nCall-ID: o{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    };
    let mut answers = Vec::new();
    for n in [1, 2, 3, 1] {
        ep.handle_input(now, peer(5000), options(n).as_bytes());
        while let Some(t) = ep.poll_transmit() {
            answers.push(
                String::from_utf8_lossy(&t.data)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            );
        }
    }
    assert_eq!(
        answers,
        vec![
            "SIP/2.0 200 OK",
            "SIP/2.0 200 OK",
            "SIP/2.0 503 Service Unavailable",
            "SIP/2.0 200 OK" // a retransmission of the first: its transaction answers it again
        ]
    );
    assert_eq!(ep.stats.transactions_full, 1);
}

#[test]
fn tls_dialogs_name_the_tls_port_and_transport() {
    use crate::sip::transaction::Transport;
    let r = Rig::new();
    assert_eq!(
        r.m.contact_on(Transport::Tls).to_string(),
        "<sip:acd@127.0.0.1:5061;transport=tls>"
    );
    assert_eq!(r.m.via_host_on(Transport::Tls), "127.0.0.1:5061");
    assert_eq!(
        r.m.contact_on(Transport::Udp).to_string(),
        "<sip:acd@127.0.0.1:5060>"
    );
    assert_eq!(r.m.via_host_on(Transport::Tcp), "127.0.0.1:5060");
}

/// A caller's INVITE offering SRTP with `key`, on `transport`.
fn srtp_invite(
    r: &mut Rig,
    call_id: &str,
    transport: crate::sip::transaction::Transport,
    key: &crate::media::srtp::MasterKey,
) {
    let sdp = SDP.replace("RTP/AVP", "RTP/SAVP")
        + &format!("a=crypto:3 AES_CM_128_HMAC_SHA1_80 {}\r\n", key.to_inline());
    let msg = format!(
        "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{} 127.0.0.1:{CALLER};branch=z9hG4bK{call_id}\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:{CALLER}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        transport.as_str(),
        sdp.len()
    );
    let from = Peer {
        transport,
        addr: format!("127.0.0.1:{CALLER}").parse().unwrap(),
    };
    r.m.handle_sip(r.now, from, msg.as_bytes());
}

#[test]
fn srtp_keys_are_taken_only_over_tls() {
    use crate::sip::transaction::Transport;
    let theirs = crate::media::srtp::MasterKey::random();
    let mut r = Rig::new();
    srtp_invite(&mut r, "srtp-udp", Transport::Udp, &theirs);
    let refused = r.sent(CALLER, "SIP/2.0 488");
    assert!(refused.contains("only over SIP/TLS"), "{refused}");
    assert_eq!(r.status().calls, 0);

    srtp_invite(&mut r, "srtp-tls", Transport::Tls, &theirs);
    let ok = r.sent(CALLER, "SIP/2.0 200");
    assert!(
        ok.contains("m=audio ") && ok.contains(" RTP/SAVP 0 101\r\n"),
        "{ok}"
    );
    assert!(
        ok.contains("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{ok}"
    );
    assert!(ok.contains(";transport=tls"), "TLS Contact: {ok}");
    let ours = crate::sdp::Sdp::parse(ok.split("\r\n\r\n").nth(1).unwrap().as_bytes())
        .unwrap()
        .negotiate()
        .unwrap()
        .srtp
        .unwrap()
        .key;
    assert_ne!(ours, theirs, "our own key, not an echo of theirs");
    let ack = format!(
        "ACK sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:{CALLER};branch=z9hG4bKsack\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: srtp-tls\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        header(&ok, "To")
    );
    let from = Peer {
        transport: Transport::Tls,
        addr: format!("127.0.0.1:{CALLER}").parse().unwrap(),
    };
    r.m.handle_sip(r.now, from, ack.as_bytes());
    let start = std::iter::from_fn(|| r.m.poll_media()).find_map(|c| match c {
        MediaCommand::Start(s) => Some(s),
        _ => None,
    });
    let keys = start
        .expect("media starts")
        .caller_srtp
        .expect("an SRTP leg");
    assert_eq!((keys.theirs, keys.ours), (theirs, ours));
}
