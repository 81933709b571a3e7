//! Reliable provisional responses (RFC 3262) to callers, on the fake clock: the reliable 183,
//! its retransmissions, the PRACK, the 200 held for it, and a caller that never PRACKs.

use super::super::tests::{header, Rig, CALLER, PLAN, SDP};
use super::super::MediaCommand;
use super::super::MediaEvent;
use std::time::Duration;

fn early_rig() -> Rig {
    let mut r =
        Rig::with_plan(&PLAN.replace("retry_s = 0", "retry_s = 0\nanswer = \"early-media\""));
    r.register("1001", 7001);
    r
}

fn prack(p183: &str, rseq: &str, cseq: u32) -> String {
    format!(
        "PRACK sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKp{cseq}\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: rel\r\nCSeq: {cseq} PRACK\r\nRAck: {rseq} 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        header(p183, "To")
    )
}

fn count(r: &mut Rig, start: &str) -> usize {
    r.out()
        .iter()
        .filter(|(p, m)| *p == CALLER && m.starts_with(start))
        .count()
}

#[test]
fn a_183_to_a_caller_that_requires_100rel_is_reliable_and_retransmitted_until_pracked() {
    let mut r = early_rig();
    r.invite_with("rel", SDP, "Require: 100rel\r\nSupported: timer\r\n");
    let p183 = r.sent(CALLER, "SIP/2.0 183");
    assert_eq!(header(&p183, "Require"), "100rel");
    let rseq = header(&p183, "RSeq");
    assert!(rseq.parse::<u32>().is_ok_and(|n| n >= 1), "{p183}");
    // Retransmitted at T1, then 2*T1 later...
    r.advance(Duration::from_millis(500));
    assert_eq!(count(&mut r, "SIP/2.0 183"), 1);
    r.advance(Duration::from_millis(999));
    assert_eq!(count(&mut r, "SIP/2.0 183"), 0);
    r.advance(Duration::from_millis(1));
    assert_eq!(count(&mut r, "SIP/2.0 183"), 1);
    // A PRACK for something else is 481; the right one 200, and retransmissions stop.
    r.send(
        CALLER,
        &prack(&p183, "1", 2).replace("RAck: 1 ", "RAck: 0 "),
    );
    r.sent(CALLER, "SIP/2.0 481");
    r.send(CALLER, &prack(&p183, &rseq, 3));
    let ok = r.sent(CALLER, "SIP/2.0 200");
    assert_eq!(header(&ok, "CSeq"), "3 PRACK");
    r.advance(Duration::from_secs(10));
    assert_eq!(count(&mut r, "SIP/2.0 183"), 0);
}

#[test]
fn the_200_waits_for_the_prack_of_the_reliable_183() {
    let mut r = early_rig();
    r.invite_with("rel", SDP, "Supported: 100rel\r\n");
    let p183 = r.sent(CALLER, "SIP/2.0 183");
    let rseq = header(&p183, "RSeq");
    // The caller's RTP proves them; the agent answers before the PRACK came.
    let call = std::iter::from_fn(|| r.m.poll_media())
        .find_map(|m| match m {
            MediaCommand::Start(s) => Some(s.call),
            _ => None,
        })
        .expect("early media starts");
    r.m.handle_media(r.now, MediaEvent::Validated { call });
    let inv = r.sent(7001, "INVITE");
    r.send(7001, &super::super::tests::reply(&inv, 200, "a1", true));
    let to_caller: Vec<String> = r
        .out()
        .into_iter()
        .filter(|(p, m)| *p == CALLER && m.starts_with("SIP/2.0 200"))
        .map(|(_, m)| m)
        .collect();
    assert!(
        to_caller.is_empty(),
        "no 200 before the PRACK: {to_caller:#?}"
    );
    r.send(CALLER, &prack(&p183, &rseq, 2));
    let all = r.out();
    let oks: Vec<&String> = all
        .iter()
        .filter(|(p, m)| *p == CALLER && m.starts_with("SIP/2.0 200"))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(oks.len(), 2, "the PRACK's 200 and the INVITE's: {all:#?}");
    assert!(oks.iter().any(|m| header(m, "CSeq") == "1 INVITE"));
}

#[test]
fn a_caller_that_never_pracks_is_refused_after_64_t1() {
    let mut r = early_rig();
    r.invite_with("rel", SDP, "Require: 100rel\r\n");
    r.sent(CALLER, "SIP/2.0 183");
    r.advance(Duration::from_millis(31_999));
    assert_eq!(count(&mut r, "SIP/2.0 500"), 0);
    r.advance(Duration::from_millis(1));
    assert_eq!(count(&mut r, "SIP/2.0 500"), 1);
    assert_eq!(r.status().calls, 0);
}

#[test]
fn an_immediate_answer_needs_no_prack_even_when_100rel_is_required() {
    let mut r = Rig::new();
    r.invite_with(
        "rel",
        SDP,
        "Require: 100rel, timer\r\nSession-Expires: 1800\r\n",
    );
    let ok = r.sent(CALLER, "SIP/2.0 200");
    assert_eq!(header(&ok, "RSeq"), "");
    assert_eq!(header(&ok, "Session-Expires"), "1800;refresher=uac");
}

#[test]
fn an_agent_phone_that_rings_reliably_gets_its_prack_and_the_bye_goes_above_it() {
    let mut r = Rig::new();
    r.register("1001", 7001);
    r.invite("c-agent-rel");
    let all = r.out();
    let find = |port: u16, start: &str| {
        all.iter()
            .find(|(p, m)| *p == port && m.starts_with(start))
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("{start} to {port}: {all:#?}"))
    };
    let (inv, ok) = (find(7001, "INVITE"), find(CALLER, "SIP/2.0 200"));
    assert_eq!(header(&inv, "Supported"), "100rel");
    let ringing = super::super::tests::reply(&inv, 180, "a1", false).replace(
        "Content-Length: 0",
        "Require: 100rel\r\nRSeq: 7\r\nContent-Length: 0",
    );
    r.send(7001, &ringing);
    let p = r.sent(7001, "PRACK");
    assert_eq!(header(&p, "RAck"), "7 1 INVITE");
    assert_eq!(header(&p, "CSeq"), "2 PRACK");
    assert!(header(&p, "To").contains("tag=a1"));
    // Its retransmission gets no second PRACK (the transaction retransmits the first).
    r.send(7001, &ringing);
    assert!(r.out().iter().all(|(_, m)| !m.starts_with("PRACK")));
    r.send(7001, &super::super::tests::reply(&p, 200, "a1", false));
    r.send(7001, &super::super::tests::reply(&inv, 200, "a1", true));
    r.sent(7001, "ACK");
    // The caller hangs up: the BYE to the agent is CSeq 3, above the PRACK's.
    let bye = format!(
        "BYE sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKbye\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: c-agent-rel\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        header(&ok, "To")
    );
    r.send(CALLER, &bye);
    assert_eq!(header(&r.sent(7001, "BYE"), "CSeq"), "3 BYE");
}
