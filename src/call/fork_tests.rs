//! An agent with several phones (desk phone, softphone, browser): every live one rings, the
//! first to answer takes the call, the others are CANCELled "completed elsewhere"; one busy
//! phone does not stop the others, a decline stops them all; each phone is qualified on its
//! own and a dead one is dropped, not rung.

use super::tests::{header, origin, reply, Rig, CALLER};
use crate::acd::AgentState;
use std::time::Duration;

/// Agent 1001 with phones on 7001 and 7011, 1003 on 7003; a call arrives (answered, in
/// line) and rings 1001: the two INVITEs and the caller's 200.
fn two_phones() -> (Rig, String, String, String) {
    let mut r = Rig::new();
    r.register("1001", 7001);
    r.register_phone("1001", 7011, "");
    r.register("1003", 7003);
    r.invite("c-fork");
    let all = r.out();
    let inv = |port: u16| {
        all.iter()
            .find(|(p, m)| *p == port && m.starts_with("INVITE"))
            .unwrap_or_else(|| panic!("INVITE to {port}: {all:#?}"))
            .1
            .clone()
    };
    let (a, b) = (inv(7001), inv(7011));
    let ok = all
        .iter()
        .find(|(p, m)| *p == CALLER && m.starts_with("SIP/2.0 200"))
        .map(|(_, m)| m.clone())
        .expect("caller answered");
    assert!(
        all.iter()
            .all(|(p, m)| !(*p == 7003 && m.starts_with("INVITE"))),
        "only 1001 is offered"
    );
    (r, a, b, ok)
}

#[test]
fn every_phone_rings_and_the_first_answer_cancels_the_other_as_completed_elsewhere() {
    let (mut r, a, b, ok) = two_phones();
    assert_ne!(header(&a, "Call-ID"), header(&b, "Call-ID"), "two dialogs");
    // Each leg is its own SDP session, and none is the caller's.
    assert_ne!(origin(&a).0, origin(&b).0);
    assert_ne!(origin(&ok).0, origin(&a).0);
    assert_ne!(origin(&ok).0, origin(&b).0);
    r.send(7001, &reply(&a, 180, "a1", false));
    r.send(7011, &reply(&b, 180, "a2", false));
    r.send(7011, &reply(&b, 200, "a2", true));
    let all = r.out();
    let cancel = all
        .iter()
        .find(|(p, m)| *p == 7001 && m.starts_with("CANCEL"))
        .map(|(_, m)| m.clone())
        .unwrap_or_else(|| panic!("CANCEL to the desk phone: {all:#?}"));
    assert_eq!(
        header(&cancel, "Reason"),
        "SIP;cause=200;text=\"Call completed elsewhere\""
    );
    assert!(all.iter().any(|(p, m)| *p == 7011 && m.starts_with("ACK")));
    assert!(matches!(
        r.m.acd.agent_state("1001"),
        Some(AgentState::Busy(_))
    ));
    r.send(7001, &reply(&cancel, 200, "a1", false));
    r.send(7001, &reply(&a, 487, "a1", false));
    r.sent(7001, "ACK");
    assert_eq!(r.status().stale_agent_legs, 0);
}

#[test]
fn a_busy_phone_leaves_the_other_ringing() {
    let (mut r, a, b, _) = two_phones();
    r.send(7001, &reply(&a, 486, "a1", false));
    let all = r.out();
    assert!(all.iter().any(|(p, m)| *p == 7001 && m.starts_with("ACK")));
    assert!(
        all.iter()
            .all(|(p, m)| !(m.starts_with("CANCEL") || *p == 7003 && m.starts_with("INVITE"))),
        "the softphone still rings, nobody else is offered: {all:#?}"
    );
    assert!(matches!(
        r.m.acd.agent_state("1001"),
        Some(AgentState::Ringing(_))
    ));
    r.send(7011, &reply(&b, 200, "a2", true));
    r.sent(7011, "ACK");
    assert!(matches!(
        r.m.acd.agent_state("1001"),
        Some(AgentState::Busy(_))
    ));
}

#[test]
fn both_phones_busy_is_one_miss_and_the_next_agent_rings() {
    let (mut r, a, b, _) = two_phones();
    r.send(7001, &reply(&a, 486, "a1", false));
    r.send(7011, &reply(&b, 486, "a2", false));
    let all = r.out();
    assert!(
        all.iter()
            .any(|(p, m)| *p == 7003 && m.starts_with("INVITE")),
        "{all:#?}"
    );
    assert!(!matches!(
        r.m.acd.agent_state("1001"),
        Some(AgentState::Ringing(_))
    ));
}

#[test]
fn a_decline_on_one_phone_stops_them_all() {
    let (mut r, a, b, _) = two_phones();
    r.send(7001, &reply(&a, 180, "a1", false));
    r.send(7011, &reply(&b, 180, "a2", false));
    r.send(7011, &reply(&b, 603, "a2", false));
    let all = r.out();
    assert!(
        all.iter()
            .any(|(p, m)| *p == 7001 && m.starts_with("CANCEL")),
        "{all:#?}"
    );
    assert!(all
        .iter()
        .any(|(p, m)| *p == 7003 && m.starts_with("INVITE")));
    assert!(!matches!(
        r.m.acd.agent_state("1001"),
        Some(AgentState::Ringing(_))
    ));
}

#[test]
fn ring_timeout_cancels_every_phone() {
    let (mut r, a, b, _) = two_phones();
    r.send(7001, &reply(&a, 180, "a1", false));
    r.send(7011, &reply(&b, 180, "a2", false));
    r.advance(Duration::from_secs(10));
    let all = r.out();
    for port in [7001, 7011] {
        assert!(
            all.iter()
                .any(|(p, m)| *p == port && m.starts_with("CANCEL")),
            "CANCEL to {port}: {all:#?}"
        );
    }
    assert!(all
        .iter()
        .any(|(p, m)| *p == 7003 && m.starts_with("INVITE")));
}

/// Runs one qualify round (pings every 30 s, 5 s to answer): up to the next ping, answers the
/// OPTIONS of the phones in `answering`, and past the answer deadline. Returns who was pinged.
fn qualify_round(r: &mut Rig, answering: &[u16]) -> Vec<u16> {
    r.advance(Duration::from_secs(25));
    let pinged: Vec<(u16, String)> = r
        .out()
        .into_iter()
        .filter(|(_, m)| m.starts_with("OPTIONS"))
        .collect();
    for (port, ping) in &pinged {
        if answering.contains(port) {
            r.send(*port, &reply(ping, 200, "q", false));
        }
    }
    r.advance(Duration::from_secs(5));
    // What went out meanwhile (retransmissions of this round's unanswered pings) is not
    // the next round's.
    r.out();
    // UDP retransmissions of an unanswered ping count once.
    let mut ports: Vec<u16> = pinged.into_iter().map(|(p, _)| p).collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

#[test]
fn a_dead_phone_is_not_rung_and_is_dropped_after_three_unanswered_pings() {
    let mut r = Rig::new();
    r.register("1001", 7001); // the old phone: it died without un-registering
    r.register_phone("1001", 7011, "");
    r.advance(Duration::from_secs(5));
    assert_eq!(qualify_round(&mut r, &[7011]), vec![7001, 7011]);
    assert_eq!(r.m.acd.agent_state("1001"), Some(AgentState::Idle));
    r.invite("c-dead");
    let all = r.out();
    assert!(all
        .iter()
        .any(|(p, m)| *p == 7011 && m.starts_with("INVITE")));
    assert!(
        all.iter()
            .all(|(p, m)| !(*p == 7001 && m.starts_with("INVITE"))),
        "the silent phone is not rung: {all:#?}"
    );
    // Two more misses and it is gone: not even pinged.
    let rounds: Vec<Vec<u16>> = (0..3).map(|_| qualify_round(&mut r, &[7011])).collect();
    assert_eq!(
        rounds,
        vec![vec![7001, 7011], vec![7001, 7011], vec![7011]],
        "dropped after the third miss"
    );
    assert_eq!(r.m.ep.registrar.bindings("1001").len(), 1);
}

#[test]
fn a_restarted_phone_with_the_same_instance_replaces_its_old_binding() {
    let mut r = Rig::new();
    let inst = ";+sip.instance=\"<urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8>\";reg-id=1";
    r.register_phone("1001", 7001, inst);
    let ok = r.register_phone("1001", 7011, inst);
    assert_eq!(
        header(&ok, "Contact"),
        format!("<sip:1001@127.0.0.1:7011>{inst};expires=3600"),
        "{ok}"
    );
    r.invite("c-inst");
    let all = r.out();
    assert!(all
        .iter()
        .any(|(p, m)| *p == 7011 && m.starts_with("INVITE")));
    assert!(all.iter().all(|(p, _)| *p != 7001), "{all:#?}");
}
