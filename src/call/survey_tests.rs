//! The post-call survey on a fake clock: the caller is kept when the agent hangs up, a key
//! rates the call, no key ends it after the timeout, and nothing is left behind either way.

use super::tests::{header, reply, Rig, CALLER};
use super::{MediaCommand, MediaEvent};
use crate::events::Event;
use std::time::Duration;

const PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
[[number]]
dial = "100"
queue = "sales"
[survey]
enabled = true
timeout_s = 5
"#;

/// A bridged call whose agent has just hung up; returns the rig and the caller's call id.
fn agent_hung_up() -> (Rig, u64) {
    let mut r = Rig::with_plan(PLAN);
    r.register("1001", 7001);
    r.invite("sv1");
    let all = r.out();
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
    r.send(CALLER, &format!("ACK sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKsvack\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: sv1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", header(&ok, "To")));
    r.send(7001, &reply(&inv, 200, "a1", true));
    let agent_to = header(&reply(&inv, 200, "a1", false), "To");
    r.send(7001, &format!("BYE sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKsvbye\r\nFrom: {agent_to}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", header(&inv, "From"), header(&inv, "Call-ID")));
    let out = r.out();
    assert!(
        out.iter()
            .all(|(p, m)| !(*p == CALLER && m.starts_with("BYE"))),
        "caller kept for the survey"
    );
    let events: Vec<Event> = std::iter::from_fn(|| r.m.poll_event()).collect();
    let call = events
        .iter()
        .find_map(|e| match e {
            Event::Ended { call, .. } => Some(*call),
            _ => None,
        })
        .expect("the agent's part ended");
    assert!(!events.iter().any(|e| matches!(e, Event::Abandoned { .. })));
    let media: Vec<MediaCommand> = std::iter::from_fn(|| r.m.poll_media()).collect();
    assert!(
        matches!(media.last(), Some(MediaCommand::Play { .. })),
        "survey prompt plays"
    );
    (r, call)
}

#[test]
fn a_key_rates_the_call_and_ends_it() {
    let (mut r, call) = agent_hung_up();
    r.m.handle_media(r.now, MediaEvent::Dtmf { call, digit: '9' });
    assert!(r.out().is_empty(), "not a rating: still waiting");
    r.m.handle_media(r.now, MediaEvent::Dtmf { call, digit: '2' });
    let ratings: Vec<(u8, bool)> = std::iter::from_fn(|| r.m.poll_event())
        .filter_map(|e| match e {
            Event::SurveyRating {
                rating, complaint, ..
            } => Some((rating, complaint)),
            _ => None,
        })
        .collect();
    assert_eq!(
        ratings,
        vec![(2, true)],
        "2 is at the default complaint threshold"
    );
    r.sent(CALLER, "BYE");
    assert_eq!(r.status().calls, 0);
}

#[test]
fn no_key_ends_the_call_after_the_timeout() {
    let (mut r, call) = agent_hung_up();
    r.m.handle_media(r.now, MediaEvent::PromptDone { call });
    r.advance(Duration::from_millis(4_999));
    assert!(r.out().iter().all(|(_, m)| !m.starts_with("BYE")));
    r.advance(Duration::from_millis(1));
    r.sent(CALLER, "BYE");
    assert!(
        !std::iter::from_fn(|| r.m.poll_event()).any(|e| matches!(e, Event::SurveyRating { .. }))
    );
    assert_eq!(r.status().calls, 0);
    assert_eq!(r.status().acd_calls, 0);
}
