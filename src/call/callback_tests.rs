//! Callbacks in the call layer with a fake clock: the caller is let go with their place kept,
//! the customer is rung through the trunk when an agent is free, a customer who does not
//! answer is tried again after the retry delay, and the callback is given up after the last try.

use super::tests::{header, reply, Rig, CALLER};
use super::*;
use crate::events::Event;
use std::time::Duration;

const PLAN: &str = r#"
[callback]
trunk = "127.0.0.1:5099"
dial_timeout_s = 20
attempts = 2
retry_s = 60

[[queue]]
name = "sales"
skill = "sales"
callback_key = "*"

[[number]]
dial = "100"
queue = "sales"
"#;

const TRUNK: u16 = 5099;

/// A rig whose callers come from a trunk (127.0.0.1): their numbers are vouched for.
fn rig(plan: &str) -> Rig {
    let mut r = Rig::with_plan(plan);
    r.m.cfg.trunks = vec![Trunk {
        name: "carrier".into(),
        addresses: vec![crate::sip::budget::Cidr::parse("127.0.0.1").unwrap()],
        username: None,
        password: None,
    }];
    r
}

fn events(r: &mut Rig) -> Vec<Event> {
    std::iter::from_fn(|| r.m.poll_event()).collect()
}

/// A caller who pressed * and was let go; agent 1001 is registered but on a break.
fn waiting_callback() -> Rig {
    waiting_callback_with(&[])
}

/// Like [`waiting_callback`], with more agents (id, port) registered and on a break.
fn waiting_callback_with(more: &[(&str, u16)]) -> Rig {
    let mut r = rig(PLAN);
    for (id, port) in [("1001", 7001)].iter().chain(more) {
        r.register(id, *port);
        let pause = crate::acd::DeskCommand::Pause {
            reason: "lunch".into(),
        };
        r.m.acd.desk(r.now, id, pause).unwrap();
    }
    r.invite("cb1");
    let ok = r.sent(CALLER, "SIP/2.0 200");
    r.send(CALLER, &format!("ACK sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKcback\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: cb1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", header(&ok, "To")));
    let call = events(&mut r)
        .iter()
        .find_map(|e| match e {
            Event::CallArrived { call, .. } => Some(*call),
            _ => None,
        })
        .expect("arrived");
    // A digit that is not the callback key changes nothing.
    r.m.handle_media(r.now, MediaEvent::Dtmf { call, digit: '5' });
    assert!(r.out().is_empty());
    r.m.handle_media(r.now, MediaEvent::Dtmf { call, digit: '*' });
    let bye = r.sent(CALLER, "BYE");
    assert_eq!(header(&bye, "Call-ID"), "cb1");
    assert!(events(&mut r).iter().any(|e| matches!(
        e,
        Event::CallbackRequested { saved, .. } if saved.target == "sip:+15551234567@127.0.0.1:5099"
    )));
    let s = r.status();
    assert_eq!((s.calls, s.acd_calls), (1, 1), "the place in line is kept");
    r
}

/// Lets `secs` pass, the agent's phone answering our OPTIONS pings; returns what else was sent.
fn wait(r: &mut Rig, secs: u64) -> Vec<(u16, String)> {
    let mut rest = Vec::new();
    for _ in 0..secs {
        r.advance(Duration::from_secs(1));
        for (p, m) in r.out() {
            if m.starts_with("OPTIONS") {
                r.send(p, &reply(&m, 200, "q", false));
            } else {
                rest.push((p, m));
            }
        }
    }
    rest
}

/// Agent 1001 is back from the break.
fn ready(r: &mut Rig) {
    r.m.acd
        .desk(r.now, "1001", crate::acd::DeskCommand::Ready)
        .unwrap();
    r.m.run_decisions(r.now);
}

#[test]
fn an_agent_coming_free_first_rings_the_customer_through_the_trunk() {
    let mut r = waiting_callback();
    ready(&mut r);
    // The customer is rung, not the agent (who is kept for them).
    let out = r.out();
    assert!(!out
        .iter()
        .any(|(p, m)| *p == 7001 && m.starts_with("INVITE")));
    let inv = out
        .iter()
        .find(|(p, m)| *p == TRUNK && m.starts_with("INVITE"))
        .expect("INVITE to the trunk")
        .1
        .clone();
    assert!(inv.starts_with("INVITE sip:+15551234567@127.0.0.1:5099 SIP/2.0"));
    assert!(
        header(&inv, "From").contains("sip:100@"),
        "from the number they called"
    );
    // The customer answers: ACK, then the agent rings.
    r.send(TRUNK, &reply(&inv, 200, "cust", true));
    let out = r.out();
    assert!(out.iter().any(|(p, m)| *p == TRUNK && m.starts_with("ACK")));
    assert!(out
        .iter()
        .any(|(p, m)| *p == 7001 && m.starts_with("INVITE")));
    // The pop tells the agent it is a callback, with the queue's own ring time.
    let pop = events(&mut r)
        .into_iter()
        .find_map(|e| match e {
            Event::Offered { pop, .. } => Some(pop),
            _ => None,
        })
        .expect("offered");
    assert_eq!(pop.callback_waited_s, Some(0));
    assert_eq!(pop.ring_timeout_s, 15);
}

#[test]
fn an_unanswered_callback_is_tried_again_after_the_retry_then_given_up() {
    let mut r = waiting_callback();
    ready(&mut r);
    let inv = r.sent(TRUNK, "INVITE");
    r.send(TRUNK, &reply(&inv, 486, "busy", false));
    let _ = r.out(); // ACK for the 486
    assert_eq!(
        r.m.agent_status(r.now)[0].state,
        crate::acd::AgentState::Idle,
        "the agent is free again, no miss counted"
    );
    // Not before the retry delay.
    let out = wait(&mut r, 59);
    assert!(!out
        .iter()
        .any(|(p, m)| *p == TRUNK && m.starts_with("INVITE")));
    let out = wait(&mut r, 1);
    let inv = &out
        .iter()
        .find(|(p, m)| *p == TRUNK && m.starts_with("INVITE"))
        .expect("second try")
        .1;
    r.send(TRUNK, &reply(inv, 180, "ring", false));
    // The second (last) try rings out: CANCEL, then the callback is given up.
    let out = wait(&mut r, 20);
    assert!(out
        .iter()
        .any(|(p, m)| *p == TRUNK && m.starts_with("CANCEL")));
    let evs = events(&mut r);
    assert!(
        evs.iter()
            .any(|e| matches!(e, Event::CallbackFailed { attempts: 2, .. })),
        "{evs:?}"
    );
    let s = r.status();
    assert_eq!((s.calls, s.acd_calls), (0, 0));
    let all = rig(PLAN).status().free_rtp_ports;
    assert_eq!(s.free_rtp_ports, all, "its ports are back in the pool");
}

#[test]
fn a_callback_saved_before_a_restart_is_called_when_an_agent_is_free() {
    let mut r = rig(PLAN);
    r.register("1001", 7001);
    // The rig's clock reads 1,000,000 s since the epoch; the callback was asked for a minute ago.
    let saved = SavedCallback {
        interaction: "before-1".into(),
        number: "+15551234567".into(),
        target: "sip:+15551234567@127.0.0.1:5099".into(),
        peer: "127.0.0.1:5099".parse().unwrap(),
        queue: "sales".into(),
        priority: 0,
        dialed: "100".into(),
        pcma: true,
        arrived_at_ms: 1_000_000_000 - 90_000,
        requested_at_ms: 1_000_000_000 - 60_000,
        attempts: 1,
        granted: None,
    };
    r.m.restore_callbacks(r.now, vec![saved]);
    let inv = r.sent(TRUNK, "INVITE");
    assert!(inv.starts_with("INVITE sip:+15551234567@127.0.0.1:5099 SIP/2.0"));
    assert!(
        inv.contains("RTP/AVP 8"),
        "the caller's codec (A-law) is offered"
    );
    let evs = events(&mut r);
    assert!(evs.iter().any(
        |e| matches!(e, Event::CallbackRestored { saved, .. } if saved.interaction == "before-1")
    ));
    assert!(
        evs.iter()
            .any(|e| matches!(e, Event::CallbackDialing { attempt: 2, .. })),
        "the try before the restart counts: {evs:?}"
    );
    r.send(TRUNK, &reply(&inv, 200, "cust", true));
    r.sent(7001, "INVITE");
    let pop = events(&mut r)
        .into_iter()
        .find_map(|e| match e {
            Event::Offered { pop, .. } => Some(pop),
            _ => None,
        })
        .expect("offered");
    assert_eq!(pop.interaction, "before-1", "the same history row");
    assert_eq!(pop.callback_waited_s, Some(60));
}

#[test]
fn shutting_down_keeps_a_waiting_callback_for_the_next_start() {
    let mut r = waiting_callback();
    r.m.shutdown(r.now);
    let evs = events(&mut r);
    assert!(
        !evs.iter().any(|e| matches!(
            e,
            Event::Abandoned { .. } | Event::CallbackFailed { .. } | Event::TimedOut { .. }
        )),
        "nothing that would delete the saved callback: {evs:?}"
    );
    assert!(
        r.out().iter().all(|(p, _)| *p != CALLER),
        "nobody to hang up on"
    );
    let s = r.status();
    assert_eq!((s.calls, s.acd_calls), (0, 0));
}

fn ready_1003(r: &mut Rig) {
    r.m.acd
        .desk(r.now, "1003", crate::acd::DeskCommand::Ready)
        .unwrap();
    r.m.run_decisions(r.now);
}

#[test]
fn if_the_kept_agent_goes_away_another_is_kept_without_calling_the_customer_twice() {
    let mut r = waiting_callback_with(&[("1003", 7003)]);
    ready(&mut r);
    let inv = r.sent(TRUNK, "INVITE");
    // 1001's phone goes away while the customer's rings; 1003 comes back and is kept instead.
    r.m.acd.agent_offline(r.now, "1001");
    r.m.run_decisions(r.now);
    ready_1003(&mut r);
    assert!(
        !r.out().iter().any(|(_, m)| m.starts_with("INVITE")),
        "no second call to the customer, no agent rung yet"
    );
    r.send(TRUNK, &reply(&inv, 200, "cust", true));
    let out = r.out();
    assert!(out
        .iter()
        .any(|(p, m)| *p == 7003 && m.starts_with("INVITE")));
    assert!(!out
        .iter()
        .any(|(p, m)| *p == 7001 && m.starts_with("INVITE")));
}

#[test]
fn if_no_agent_is_kept_when_the_customer_answers_they_wait_in_line_for_the_next() {
    let mut r = waiting_callback_with(&[("1003", 7003)]);
    ready(&mut r);
    let inv = r.sent(TRUNK, "INVITE");
    r.m.acd.agent_offline(r.now, "1001");
    r.m.run_decisions(r.now);
    r.send(TRUNK, &reply(&inv, 200, "cust", true));
    let out = r.out();
    assert!(out.iter().any(|(p, m)| *p == TRUNK && m.starts_with("ACK")));
    assert!(!out.iter().any(|(_, m)| m.starts_with("INVITE")));
    assert_eq!(r.status().acd_calls, 1, "waiting, on hold music");
    assert!(
        !events(&mut r)
            .iter()
            .any(|e| matches!(e, Event::Offered { .. })),
        "no pop for an agent who is gone"
    );
    ready_1003(&mut r);
    r.sent(7003, "INVITE");
}

#[test]
fn a_withheld_number_cannot_be_called_back_through_the_trunk() {
    let mut r = rig(PLAN);
    let sdp = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    let msg = format!(
        "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKanon\r\nFrom: <sip:anonymous@anonymous.invalid>;tag=a\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: anon1\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:{CALLER}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    r.send(CALLER, &msg);
    r.ack_200("anon1");
    r.sent(CALLER, "SIP/2.0 200");
    r.m.handle_media(
        r.now,
        MediaEvent::Dtmf {
            call: 1,
            digit: '*',
        },
    );
    assert!(
        r.out().is_empty(),
        "not let go: nobody could call them back"
    );
    assert!(!events(&mut r)
        .iter()
        .any(|e| matches!(e, Event::CallbackRequested { .. })));
    assert_eq!(r.status().acd_calls, 1, "still waiting in line");
}

#[test]
fn a_caller_on_early_media_is_let_go_with_480_and_kept_for_the_callback() {
    let plan = PLAN.replace(
        "callback_key = \"*\"",
        "callback_key = \"*\"\nanswer = \"early-media\"",
    );
    let mut r = rig(&plan);
    r.invite("em1");
    r.sent(CALLER, "SIP/2.0 183");
    r.m.handle_media(r.now, MediaEvent::Validated { call: 1 });
    r.m.handle_media(
        r.now,
        MediaEvent::Dtmf {
            call: 1,
            digit: '*',
        },
    );
    let resp = r.sent(CALLER, "SIP/2.0 480");
    assert!(resp.contains("callback requested"), "{resp}");
    assert_eq!(r.status().acd_calls, 1, "their place is kept");
}

/// A caller waiting in `plan`'s sales queue (no trunk vouching for them unless `trunk`), with
/// 1001 on a break; returns the rig and the call.
fn waiting(plan: &str, trunk: bool) -> (Rig, CallId) {
    let mut r = if trunk {
        rig(plan)
    } else {
        Rig::with_plan(plan)
    };
    r.register("1001", 7001);
    let pause = crate::acd::DeskCommand::Pause {
        reason: "lunch".into(),
    };
    r.m.acd.desk(r.now, "1001", pause).unwrap();
    r.invite("cbq");
    r.out();
    let call = events(&mut r)
        .iter()
        .find_map(|e| match e {
            Event::CallArrived { call, .. } => Some(*call),
            _ => None,
        })
        .expect("arrived");
    (r, call)
}

fn asked_for_callback(r: &mut Rig) -> bool {
    events(r)
        .iter()
        .any(|e| matches!(e, Event::CallbackRequested { .. }))
}

#[test]
fn a_caller_no_trunk_vouches_for_is_never_called_back_through_the_trunk() {
    let (mut r, call) = waiting(PLAN, false);
    r.m.handle_media(r.now, MediaEvent::Dtmf { call, digit: '*' });
    assert!(r.out().is_empty(), "not let go, nothing dialled");
    assert!(!asked_for_callback(&mut r));
    assert_eq!(r.status().callbacks_refused, 1);
    assert_eq!(r.status().acd_calls, 1, "still waiting in line");
}

#[test]
fn with_untrusted_contact_an_unverified_caller_is_called_back_at_their_contact_only() {
    let plan = PLAN.replace("retry_s = 60", "retry_s = 60\nuntrusted = \"contact\"");
    let (mut r, call) = waiting(&plan, false);
    r.m.handle_media(r.now, MediaEvent::Dtmf { call, digit: '*' });
    assert!(asked_for_callback(&mut r));
    r.out();
    r.m.acd
        .desk(r.now, "1001", crate::acd::DeskCommand::Ready)
        .unwrap();
    r.m.handle_timeout(r.now);
    let all = r.out();
    assert!(
        all.iter().all(|(p, _)| *p != TRUNK),
        "nothing through the trunk: {all:#?}"
    );
    assert!(
        all.iter()
            .any(|(p, m)| *p == CALLER && m.starts_with("INVITE sip:c@127.0.0.1")),
        "the caller's own Contact is rung: {all:#?}"
    );
}

#[test]
fn a_vouched_number_outside_the_allowed_prefixes_or_over_its_cap_is_refused() {
    let plan = PLAN.replace("retry_s = 60", "retry_s = 60\nallowed_prefixes = [\"+44\"]");
    let (mut r, call) = waiting(&plan, true);
    r.m.handle_media(r.now, MediaEvent::Dtmf { call, digit: '*' });
    assert!(!asked_for_callback(&mut r), "+1 is outside +44");
    assert_eq!(r.status().callbacks_refused, 1);

    let plan = PLAN.replace("retry_s = 60", "retry_s = 60\nmax_per_number_per_day = 0");
    let (mut r, call) = waiting(&plan, true);
    r.m.handle_media(r.now, MediaEvent::Dtmf { call, digit: '*' });
    assert!(!asked_for_callback(&mut r), "over the per-number cap");
}

#[test]
fn the_days_caps_count_callbacks_granted_before_a_restart() {
    // Three callbacks to this number were granted today before the restart (the default cap).
    let (mut r, call) = waiting(PLAN, true);
    r.m.restore_callback_grants(r.now, vec![("+15551234567".into(), 3)]);
    r.m.handle_media(r.now, MediaEvent::Dtmf { call, digit: '*' });
    assert!(!asked_for_callback(&mut r), "a fourth is refused");
    assert_eq!(r.status().callbacks_refused, 1);
    // Another number's grants do not count against this one.
    let (mut r, call) = waiting(PLAN, true);
    r.m.restore_callback_grants(r.now, vec![("+15559999999".into(), 3)]);
    r.m.handle_media(r.now, MediaEvent::Dtmf { call, digit: '*' });
    let granted = events(&mut r).into_iter().find_map(|e| match e {
        Event::CallbackRequested { saved, .. } => saved.granted.clone(),
        _ => None,
    });
    assert_eq!(
        granted.as_deref(),
        Some("+15551234567"),
        "counted for the next restart"
    );
}

#[test]
fn an_answered_callback_resumed_after_a_crash_is_still_a_callback_in_the_pop() {
    let mut r = waiting_callback();
    r.m.set_snapshots(true);
    wait(&mut r, 90); // ninety seconds after the key, an agent is free
    ready(&mut r);
    let inv = r.sent(TRUNK, "INVITE");
    r.send(TRUNK, &reply(&inv, 200, "cust", true));
    let agent_inv = r.sent(7001, "INVITE");
    // The agent does not answer yet: the snapshot is of a callback call in line, ringing.
    let _ = events(&mut r);
    let due = r.now + super::snapshot::GATHER;
    let now = r.now;
    let mut writes: Vec<SnapshotWrite> = std::iter::from_fn(|| r.m.poll_snapshot(now)).collect();
    writes.extend(std::iter::from_fn(|| r.m.poll_snapshot(due)));
    let snaps: Vec<super::CallSnapshot> = writes
        .into_iter()
        .filter_map(|w| w.body)
        .map(|s| *s)
        .collect();
    assert_eq!(snaps.len(), 1);
    assert!(snaps[0].called_back_ms.is_some(), "{:?}", snaps[0]);
    drop(agent_inv);

    // A new process takes the call over and offers it again: still a callback in the pop.
    // (Both rigs' wall clocks start at the same second: the new one is a little later.)
    let mut b = rig(PLAN);
    b.advance(Duration::from_secs(100));
    b.register("1001", 7001);
    assert_eq!(b.m.resume(b.now, snaps).resumed, 1);
    let pop = events(&mut b)
        .into_iter()
        .find_map(|e| match e {
            Event::Offered { pop, .. } => Some(pop),
            _ => None,
        })
        .expect("offered again");
    assert!(
        pop.callback_waited_s.is_some_and(|s| s >= 90),
        "waited since the key: {:?}",
        pop.callback_waited_s
    );
}
