//! The screen pop goes out before the agent's phone rings; the INVITE waits for the desk.

use super::tests::{Rig, CALLER};
use crate::events::Event;
use std::time::Duration;

fn offered(r: &mut Rig) -> Vec<(String, std::sync::Arc<super::Pop>)> {
    std::iter::from_fn(|| r.m.poll_event())
        .filter_map(|e| match e {
            Event::Offered { agent, pop, .. } => Some((agent, pop)),
            _ => None,
        })
        .collect()
}

fn invites_to(r: &mut Rig, port: u16) -> usize {
    r.out()
        .iter()
        .filter(|(p, m)| *p == port && m.starts_with("INVITE"))
        .count()
}

#[test]
fn the_invite_waits_until_the_desk_has_the_pop() {
    let mut r = Rig::new();
    r.m.set_pop_wait(Some(Duration::from_millis(250)));
    r.m.set_desk_open(r.now, "1001", true);
    r.register("1001", 7001);
    r.invite("pop1");
    let pops = offered(&mut r);
    assert_eq!(pops.len(), 1);
    let (agent, pop) = &pops[0];
    assert_eq!(agent, "1001");
    assert_eq!(pop.caller, "+15551234567");
    assert_eq!(pop.route.queue, "sales");
    assert_eq!(pop.ring_timeout_s, 10);
    assert!(!pop.interaction.is_empty());
    assert_eq!(
        invites_to(&mut r, 7001),
        0,
        "phone must not ring before the pop"
    );
    r.m.pop_delivered(r.now, pop.call_id, "1003");
    assert_eq!(
        invites_to(&mut r, 7001),
        0,
        "a delivery for someone else is ignored"
    );
    r.m.pop_delivered(r.now, pop.call_id, "1001");
    assert_eq!(invites_to(&mut r, 7001), 1);
}

#[test]
fn an_unconfirmed_pop_delays_the_ring_only_up_to_the_wait() {
    let mut r = Rig::new();
    r.m.set_pop_wait(Some(Duration::from_millis(250)));
    r.m.set_desk_open(r.now, "1001", true);
    r.register("1001", 7001);
    r.invite("pop2");
    r.advance(Duration::from_millis(249));
    assert_eq!(invites_to(&mut r, 7001), 0);
    r.advance(Duration::from_millis(1));
    assert_eq!(
        invites_to(&mut r, 7001),
        1,
        "rings anyway once the wait is over"
    );
}

#[test]
fn a_caller_who_leaves_while_the_pop_is_in_flight_never_rings_the_agent() {
    let mut r = Rig::new();
    r.m.set_pop_wait(Some(Duration::from_millis(250)));
    r.m.set_desk_open(r.now, "1001", true);
    r.register("1001", 7001);
    r.invite("pop3");
    let call = offered(&mut r)[0].1.call_id;
    let ok = r.sent(CALLER, "SIP/2.0 200");
    let to_tag = ok
        .split("tag=")
        .nth(2)
        .and_then(|t| t.split(['\r', ';', '>']).next())
        .unwrap_or_default()
        .to_string();
    let bye = format!(
        "BYE sip:acd@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKbye3\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: <sip:100@127.0.0.1>;tag={to_tag}\r\nCall-ID: pop3\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    r.send(CALLER, &bye);
    r.m.pop_delivered(r.now, call, "1001");
    r.advance(Duration::from_secs(1));
    assert_eq!(invites_to(&mut r, 7001), 0);
    assert_eq!(r.status().acd_calls, 0);
    assert_eq!(
        r.m.agent_status(r.now)[0].state,
        crate::acd::AgentState::Idle,
        "agent free again"
    );
}

#[test]
fn an_agent_without_a_desk_open_rings_at_once() {
    let mut r = Rig::new();
    r.m.set_pop_wait(Some(Duration::from_millis(250)));
    r.m.set_desk_open(r.now, "1001", true);
    r.m.set_desk_open(r.now, "1001", false);
    r.register("1001", 7001);
    r.invite("pop4");
    assert_eq!(offered(&mut r).len(), 1, "the pop is still an event");
    assert_eq!(invites_to(&mut r, 7001), 1);
}

#[test]
fn a_desk_closing_while_its_pop_waits_rings_the_phone_at_once() {
    let mut r = Rig::new();
    r.m.set_pop_wait(Some(Duration::from_millis(250)));
    r.m.set_desk_open(r.now, "1001", true);
    r.register("1001", 7001);
    r.invite("pop5");
    assert_eq!(invites_to(&mut r, 7001), 0);
    r.m.set_desk_open(r.now, "1001", false);
    assert_eq!(invites_to(&mut r, 7001), 1);
}
