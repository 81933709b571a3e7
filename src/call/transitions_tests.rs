//! One call walks its phases through the manager on a fake clock: answering until the ACK,
//! looking up its caller until the budget runs out, the menu, in line, an agent's phone
//! ringing, connected, the survey, and gone. Each step checks the phase the call is in.

use super::tests::{header, reply, Rig, CALLER};
use super::MediaEvent;
use std::time::Duration;

const PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
ring_timeout_s = 10
retry_s = 0

[[number]]
dial = "100"
queue = "sales"
menu = "main"

[[menu]]
name = "main"
timeout_s = 4
retries = 0
default = "sales"
options = { "1" = "sales" }

[survey]
enabled = true
timeout_s = 5
"#;

fn phase(r: &Rig) -> &'static str {
    match r.m.calls.len() {
        0 => "gone",
        1 => r.m.calls.values().next().map_or("gone", |c| c.phase.name()),
        n => panic!("{n} calls"),
    }
}

#[test]
fn a_call_walks_every_phase_of_a_full_visit() {
    let mut r = Rig::with_plan(PLAN);
    r.m.cfg.qualify_every = None;
    r.m.cfg.lookup_budget = Some(Duration::from_millis(300));
    r.register("1001", 7001);
    r.invite_no_ack("walk");
    assert_eq!(phase(&r), "answering", "not proven before the ACK");
    r.ack_200("walk");
    assert_eq!(phase(&r), "looking up");
    assert!(
        r.m.poll_lookup().is_some(),
        "the driver is asked to look up"
    );
    r.advance(Duration::from_millis(299));
    assert_eq!(phase(&r), "looking up", "the budget is not over");
    r.advance(Duration::from_millis(1));
    assert_eq!(phase(&r), "menu", "no context in time: the number's menu");
    let call = *r.m.calls.keys().next().expect("the call");
    r.m.handle_media(r.now, MediaEvent::PromptDone { call });
    r.m.handle_media(r.now, MediaEvent::Dtmf { call, digit: '1' });
    assert_eq!(
        phase(&r),
        "ringing",
        "in line and offered to the free agent at once"
    );
    let inv = r.sent(7001, "INVITE");
    r.send(7001, &reply(&inv, 180, "a1", false));
    assert_eq!(phase(&r), "ringing");
    r.send(7001, &reply(&inv, 200, "a1", true));
    assert_eq!(phase(&r), "connected");
    let agent_to = header(&reply(&inv, 200, "a1", false), "To");
    r.send(7001, &format!("BYE sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKwbye\r\nFrom: {agent_to}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", header(&inv, "From"), header(&inv, "Call-ID")));
    assert_eq!(phase(&r), "survey", "the agent hung up first");
    // The digit before the prompt ended is a rating too; here the caller says nothing.
    r.m.handle_media(r.now, MediaEvent::PromptDone { call });
    r.advance(Duration::from_millis(4_999));
    assert_eq!(phase(&r), "survey");
    r.advance(Duration::from_millis(1));
    assert_eq!(phase(&r), "gone", "no rating in time: the call ends");
    assert!(
        r.out()
            .iter()
            .any(|(p, m)| *p == CALLER && m.starts_with("BYE")),
        "the caller is hung up on"
    );
    let s = r.status();
    assert_eq!((s.calls, s.acd_calls, s.unexpected_inputs), (0, 0, 0));
}

#[test]
fn a_bye_from_a_gone_agent_leg_is_refused_and_nothing_is_unexpected() {
    let mut r = Rig::with_plan(PLAN);
    r.m.cfg.qualify_every = None;
    r.register("1001", 7001);
    r.invite("late");
    let call = *r.m.calls.keys().next().expect("the call");
    r.m.handle_media(r.now, MediaEvent::Dtmf { call, digit: '1' });
    let inv = r.sent(7001, "INVITE");
    r.send(7001, &reply(&inv, 486, "a1", false));
    assert_eq!(phase(&r), "ringing", "offered again at once (retry_s = 0)");
    let _ = r.out();
    // A BYE for the refused leg's dialog: no such dialog, 481, and the call goes on.
    let to = header(&reply(&inv, 486, "a1", false), "To");
    r.send(7001, &format!("BYE sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKlbye\r\nFrom: {to}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", header(&inv, "From"), header(&inv, "Call-ID")));
    r.sent(7001, "SIP/2.0 481");
    assert_eq!(phase(&r), "ringing");
    // A prompt end nobody asked for (the menu's, cut short by the digit) is late, not wrong.
    r.m.handle_media(r.now, MediaEvent::PromptDone { call });
    assert_eq!(r.status().unexpected_inputs, 0);
    // A DTMF digit before the caller proved their address is reported.
    r.invite_no_ack("early");
    let early = *r.m.calls.keys().max().expect("second call");
    r.m.handle_media(
        r.now,
        MediaEvent::Dtmf {
            call: early,
            digit: '1',
        },
    );
    assert_eq!(r.status().unexpected_inputs, 1);
}
