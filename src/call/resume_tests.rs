//! Snapshots and resume with a fake clock: a call is written down by one manager and taken
//! over by a fresh one (as after `kill -9`), message by message.

use super::snapshot::{CallSnapshot, SavedPhase};
use super::tests::{connected_rig, header, menu_rig, reply, Rig, CALLER, PLAN};
use super::*;
use crate::events::Event;
use std::time::Duration;

/// What `r` has to write or delete once the changes so far are due (a gathering window on).
fn taken(r: &mut Rig) -> Vec<SnapshotWrite> {
    let mut w: Vec<SnapshotWrite> = std::iter::from_fn(|| r.m.poll_snapshot(r.now)).collect();
    let due = r.now + super::snapshot::GATHER;
    w.extend(std::iter::from_fn(|| r.m.poll_snapshot(due)));
    w
}

/// The snapshots `r` has to write, through JSON as the store keeps them.
fn snapshots(r: &mut Rig) -> Vec<CallSnapshot> {
    while r.m.poll_event().is_some() {}
    taken(r)
        .into_iter()
        .filter_map(|w| w.body)
        .map(|s| serde_json::from_str(&serde_json::to_string(&*s).unwrap()).unwrap())
        .collect()
}

fn cseq(msg: &str) -> u32 {
    header(msg, "CSeq")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The o= version in a message's SDP.
fn sdp_version(msg: &str) -> u64 {
    let o = msg.lines().find(|l| l.starts_with("o=")).unwrap();
    o.split(' ').nth(2).unwrap().parse().unwrap()
}

#[test]
fn a_connected_call_is_resumed_with_reinvites_both_ways_and_ends_with_a_bye() {
    let (mut r, ok, inv) = connected_rig();
    r.m.set_snapshots(true);
    r.send(CALLER, &format!("ACK sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKack1\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: call1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", header(&ok, "To")));
    r.send(7001, &reply(&inv, 200, "a1", true));
    let snaps = snapshots(&mut r);
    assert_eq!(snaps.len(), 1);
    assert!(
        matches!(snaps[0].phase, SavedPhase::Connected { .. }),
        "{:?}",
        snaps[0].phase
    );

    // A new process: the agent's registration is back, then the call.
    let mut b = Rig::new();
    b.m.set_snapshots(true);
    b.register("1001", 7001);
    let report = b.m.resume(b.now, snaps);
    assert_eq!(report.resumed, 1);
    let all = b.out();
    let to_caller = all
        .iter()
        .find(|(p, m)| *p == CALLER && m.starts_with("INVITE"))
        .expect("re-INVITE to the caller")
        .1
        .clone();
    assert_eq!(header(&to_caller, "Call-ID"), "call1");
    assert_eq!(
        header(&to_caller, "From"),
        header(&ok, "To"),
        "our tag kept"
    );
    assert!(header(&to_caller, "To").contains("tag=c"));
    assert!(cseq(&to_caller) > 100, "CSeq above the last used");
    assert!(
        sdp_version(&to_caller) > sdp_version(&ok),
        "a higher SDP version"
    );
    let to_agent = all
        .iter()
        .find(|(p, m)| *p == 7001 && m.starts_with("INVITE"))
        .expect("re-INVITE to the agent")
        .1
        .clone();
    assert_eq!(header(&to_agent, "Call-ID"), header(&inv, "Call-ID"));
    assert!(header(&to_agent, "To").contains("tag=a1"));
    let media: Vec<MediaCommand> = std::iter::from_fn(|| b.m.poll_media()).collect();
    assert!(
        matches!(&media[0], MediaCommand::Start(s) if s.validated && s.caller_port == snaps_port(&media))
    );
    assert!(media.iter().any(
        |m| matches!(m, MediaCommand::Bridge { agent_remote, .. } if agent_remote.port() == 7002)
    ));
    assert!(
        format!("{:?}", b.m.agent_status(b.now)).contains("Busy"),
        "the agent is still busy with the call"
    );
    assert_eq!(
        b.status().resuming,
        2,
        "both legs' re-INVITEs are unanswered"
    );
    // The caller's 200 to the re-INVITE is acknowledged with its CSeq.
    b.send(CALLER, &reply(&to_caller, 200, "c", true));
    let ack = b.sent(CALLER, "ACK");
    assert_eq!(cseq(&ack), cseq(&to_caller));
    assert_eq!(b.status().resuming, 1, "the agent's is still out");
    // A BYE from the caller ends the call with 200 (not 481) and hangs up the agent.
    let bye = format!("BYE sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKbyeR\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: call1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", header(&ok, "To"));
    b.send(CALLER, &bye);
    let all = b.out();
    assert!(
        all.iter()
            .any(|(p, m)| *p == CALLER && m.starts_with("SIP/2.0 200")),
        "{all:#?}"
    );
    let agent_bye = all
        .iter()
        .find(|(p, m)| *p == 7001 && m.starts_with("BYE"))
        .expect("BYE to the agent");
    assert!(cseq(&agent_bye.1) > cseq(&to_agent));
    let events: Vec<Event> = std::iter::from_fn(|| b.m.poll_event()).collect();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::CallResumed { .. })));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Ended { agent, .. } if agent == "1001")));
    // Its snapshot is deleted.
    let w = taken(&mut b);
    assert!(w.len() == 1 && w[0].body.is_none(), "one delete");
    assert_eq!(b.status().calls, 0);
}

fn snaps_port(media: &[MediaCommand]) -> u16 {
    match &media[0] {
        MediaCommand::Start(s) => s.caller_port,
        _ => 0,
    }
}

#[test]
fn waiting_callers_go_back_in_their_original_order() {
    let mut r = Rig::new();
    r.m.set_snapshots(true);
    for id in ["w1", "w2", "w3"] {
        r.invite(id);
        r.advance(Duration::from_secs(5));
    }
    let mut snaps = snapshots(&mut r);
    assert_eq!(snaps.len(), 3);
    assert!(snaps
        .iter()
        .all(|s| matches!(s.phase, SavedPhase::Waiting { .. })));
    let order: Vec<String> = {
        let mut v: Vec<(u64, String)> = snaps
            .iter()
            .map(|s| (s.arrived_ms, s.interaction.clone()))
            .collect();
        v.sort();
        v.into_iter().map(|(_, i)| i).collect()
    };
    snaps.reverse();
    let mut b = Rig::new();
    // The new process starts 20 s after the first caller joined.
    b.advance(Duration::from_secs(20));
    let report = b.m.resume(b.now, snaps);
    assert_eq!(report.resumed, 3);
    let resumed: std::collections::HashMap<u64, String> = std::iter::from_fn(|| b.m.poll_event())
        .filter_map(|e| match e {
            Event::CallResumed { call, snapshot } => Some((call, snapshot.interaction.clone())),
            _ => None,
        })
        .collect();
    let waits: Vec<u64> =
        b.m.queue_status(b.now)
            .iter()
            .map(|q| q.longest_wait_s)
            .collect();
    assert_eq!(waits, vec![20], "the wait counts from before the restart");
    // Their places are those they had, whatever order the snapshots were read in.
    let mut places: Vec<(usize, String)> = resumed
        .iter()
        .map(|(call, i)| {
            (
                b.m.acd.position(b.now, *call).expect("in line").0,
                i.clone(),
            )
        })
        .collect();
    places.sort();
    let by_place: Vec<String> = places.into_iter().map(|(_, i)| i).collect();
    assert_eq!(by_place, order);
    // The first free agent gets the longest waiting caller.
    b.register("1001", 7001);
    let call = std::iter::from_fn(|| b.m.poll_event())
        .find_map(|e| match e {
            Event::Offered { call, .. } => Some(call),
            _ => None,
        })
        .expect("an offer");
    assert_eq!(resumed[&call], order[0]);
}

#[test]
fn a_ringing_agent_is_cancelled_and_the_call_offered_again() {
    let mut r = Rig::new();
    r.m.set_snapshots(true);
    r.register("1001", 7001);
    r.invite("ring1");
    let inv = r.sent(7001, "INVITE");
    r.send(7001, &reply(&inv, 180, "a1", false));
    let snaps = snapshots(&mut r);
    assert!(matches!(&snaps[0].phase, SavedPhase::Ringing { legs, .. } if legs.len() == 1));
    let mut b = Rig::new();
    b.register("1001", 7001);
    b.m.resume(b.now, snaps);
    let all = b.out();
    let cancel = all
        .iter()
        .position(|(p, m)| *p == 7001 && m.starts_with("CANCEL"))
        .expect("the old ring is cancelled");
    assert_eq!(header(&all[cancel].1, "Via"), header(&inv, "Via"));
    let again = all
        .iter()
        .position(|(p, m)| {
            *p == 7001 && m.starts_with("INVITE") && !m.contains(&header(&inv, "Call-ID"))
        })
        .expect("offered again");
    assert!(cancel < again, "the CANCEL goes first");
    // The old phone finishes its INVITE with 487: the new process ACKs it (§17.1.1.3), so the
    // phone stops retransmitting and no leg of the old ring is left behind.
    b.send(7001, &reply(&inv, 487, "a1", false));
    let ack = b.sent(7001, "ACK");
    assert_eq!(header(&ack, "Via"), header(&inv, "Via"), "{ack}");
    assert!(ack.contains("CSeq: 1 ACK"), "{ack}");
    assert_eq!(b.status().stale_agent_legs, 0);
}

#[test]
fn a_caller_in_the_menu_hears_it_again_and_a_digit_still_routes() {
    let mut r = menu_rig();
    r.m.set_snapshots(true);
    // Marking starts with the next change: a digit the menu does not know.
    r.m.handle_media(
        r.now,
        MediaEvent::Dtmf {
            call: 1,
            digit: '#',
        },
    );
    let snaps = snapshots(&mut r);
    assert!(
        matches!(&snaps[0].phase, SavedPhase::Menu { .. }),
        "{:?}",
        snaps[0].phase
    );
    let mut b = menu_rig_empty();
    b.m.resume(b.now, snaps);
    let call = std::iter::from_fn(|| b.m.poll_event())
        .find_map(|e| match e {
            Event::CallResumed { call, .. } => Some(call),
            _ => None,
        })
        .unwrap();
    let media: Vec<MediaCommand> = std::iter::from_fn(|| b.m.poll_media()).collect();
    assert!(
        media.iter().any(|m| matches!(m, MediaCommand::Play { .. })),
        "{media:?}"
    );
    b.m.handle_media(b.now, MediaEvent::Dtmf { call, digit: '1' });
    b.sent(7001, "INVITE");
}

/// The menu plan with agent 1001 registered, and no call.
fn menu_rig_empty() -> Rig {
    let mut r = menu_rig();
    let ok = std::iter::from_fn(|| r.m.poll_event()).count();
    assert!(ok > 0);
    r.m.shutdown(r.now);
    r.out();
    while r.m.poll_media().is_some() {}
    while r.m.poll_event().is_some() {}
    r
}

#[test]
fn a_call_that_cannot_be_resumed_is_ended_cleanly() {
    let mut r =
        Rig::with_plan(&PLAN.replace("retry_s = 0", "retry_s = 0\nanswer = \"early-media\""));
    r.m.set_snapshots(true);
    r.invite("em");
    r.out();
    r.m.handle_media(r.now, MediaEvent::Validated { call: 1 });
    let snaps = snapshots(&mut r);
    assert!(matches!(&snaps[0].phase, SavedPhase::Unresumable { .. }));
    let mut b = Rig::new();
    let report = b.m.resume(b.now, snaps);
    assert_eq!((report.resumed, report.ended), (0, 1));
    let no = b.sent(CALLER, "SIP/2.0 503");
    assert_eq!(header(&no, "Retry-After"), "5");
    assert_eq!(header(&no, "Call-ID"), "em");
    let events: Vec<Event> = std::iter::from_fn(|| b.m.poll_event()).collect();
    assert!(
        events.iter().any(|e| matches!(e, Event::Abandoned { .. })),
        "{events:?}"
    );
    assert_eq!(b.status().calls, 0);
}

/// A call's first milliseconds (answered, routed, queued) are one snapshot, taken when the
/// window after its first change is over; a call that begins and ends inside the window is
/// never written at all.
#[test]
fn a_burst_of_changes_is_one_snapshot_and_a_brief_call_none() {
    let mut r = Rig::new();
    r.m.set_snapshots(true);
    r.invite("brief");
    r.sent(CALLER, "SIP/2.0 200");
    while r.m.poll_event().is_some() {}
    assert!(r.m.poll_snapshot(r.now).is_none(), "not due yet");
    let due = r.m.poll_timeout().expect("a deadline for the snapshot");
    assert!(due <= r.now + super::snapshot::GATHER);
    r.m.handle_media(r.now, crate::call::MediaEvent::Timeout { call: 1 });
    r.out();
    while r.m.poll_event().is_some() {}
    assert!(
        r.m.poll_snapshot(due).is_none(),
        "ended before it was due: nothing to write or delete"
    );
    assert_eq!(r.status().snapshots_taken, 0);

    r.invite("stays");
    r.out();
    while r.m.poll_event().is_some() {}
    let w = taken(&mut r);
    assert_eq!(w.len(), 1, "answered, routed and queued: one snapshot");
    assert!(matches!(
        w[0].body.as_deref().map(|s| &s.phase),
        Some(SavedPhase::Waiting { .. } | SavedPhase::Ringing { .. })
    ));
    assert_eq!(r.status().snapshots_taken, 1);
}

#[test]
fn addresses_learnt_behind_nat_are_kept_and_relocked_on_resume() {
    let (mut r, ok, inv) = connected_rig();
    r.m.set_snapshots(true);
    r.send(CALLER, &format!("ACK sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKackN\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: call1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", header(&ok, "To")));
    r.send(7001, &reply(&inv, 200, "a1", true));
    let first = snapshots(&mut r);
    assert_eq!(first[0].caller_learned, None, "nothing learnt yet");
    let call = 1;
    let caller_nat: std::net::SocketAddr = "127.0.0.1:46000".parse().unwrap();
    let agent_nat: std::net::SocketAddr = "127.0.0.1:47000".parse().unwrap();
    for (leg, addr) in [(Leg::Caller, caller_nat), (Leg::Agent, agent_nat)] {
        r.m.handle_media(r.now, MediaEvent::Learned { call, leg, addr });
    }
    let snaps = snapshots(&mut r);
    assert_eq!(
        snaps.len(),
        1,
        "the learnt addresses are a change worth a snapshot"
    );
    assert_eq!(snaps[0].caller_learned, Some(caller_nat));
    let SavedPhase::Connected { agent, .. } = &snaps[0].phase else {
        panic!("{:?}", snaps[0].phase)
    };
    assert_eq!(agent.learned, Some(agent_nat));
    // The same address again is no change.
    r.m.handle_media(
        r.now,
        MediaEvent::Learned {
            call,
            leg: Leg::Caller,
            addr: caller_nat,
        },
    );
    assert!(snapshots(&mut r).is_empty());

    let mut b = Rig::new();
    b.register("1001", 7001);
    assert_eq!(b.m.resume(b.now, snaps).resumed, 1);
    let media: Vec<MediaCommand> = std::iter::from_fn(|| b.m.poll_media()).collect();
    let relocks: Vec<(Leg, std::net::SocketAddr)> = media
        .iter()
        .filter_map(|m| match m {
            MediaCommand::Relock { leg, addr, .. } => Some((*leg, *addr)),
            _ => None,
        })
        .collect();
    assert_eq!(
        relocks,
        vec![(Leg::Caller, caller_nat), (Leg::Agent, agent_nat)],
        "{media:#?}"
    );
    // Start comes first, then the caller's relock; the bridge, then the agent's.
    let pos = |f: &dyn Fn(&MediaCommand) -> bool| media.iter().position(f).unwrap();
    assert!(
        pos(&|m| matches!(m, MediaCommand::Start(_)))
            < pos(&|m| matches!(
                m,
                MediaCommand::Relock {
                    leg: Leg::Caller,
                    ..
                }
            ))
    );
    assert!(
        pos(&|m| matches!(m, MediaCommand::Bridge { .. }))
            < pos(&|m| matches!(
                m,
                MediaCommand::Relock {
                    leg: Leg::Agent,
                    ..
                }
            ))
    );
}

/// A connected call's snapshot and the caller's BYE for it, as a dead node left them.
fn dead_nodes_call() -> (Vec<CallSnapshot>, String) {
    let (mut r, ok, inv) = connected_rig();
    r.m.set_snapshots(true);
    r.send(CALLER, &format!("ACK sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKack1\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: call1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", header(&ok, "To")));
    r.send(7001, &reply(&inv, 200, "a1", true));
    let bye = format!("BYE sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKbyeS\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: call1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", header(&ok, "To"));
    (snapshots(&mut r), bye)
}

#[test]
fn a_caller_who_hung_up_while_their_node_died_is_not_reinvited_and_the_agent_is_freed() {
    let (snaps, bye) = dead_nodes_call();
    let mut b = Rig::new();
    b.m.set_cluster(toml::from_str("node = \"b\"\n").unwrap());
    b.m.set_snapshots(true);
    b.register("1001", 7001);
    // The edge retried the dead node's BYE here before this node was handed the call.
    b.send(CALLER, &bye);
    let ok = b.sent(CALLER, "SIP/2.0");
    assert!(ok.starts_with("SIP/2.0 200"), "the hang-up is taken: {ok}");
    let report = b.m.take_over(b.now, snaps);
    assert_eq!(report.resumed, 1);
    let all = b.out();
    assert!(
        !all.iter()
            .any(|(p, m)| *p == CALLER && m.starts_with("INVITE")),
        "no re-INVITE to a caller who hung up: {all:#?}"
    );
    assert!(
        all.iter().any(|(p, m)| *p == 7001 && m.starts_with("BYE")),
        "the agent is hung up, not left talking to silence: {all:#?}"
    );
    let events: Vec<Event> = std::iter::from_fn(|| b.m.poll_event()).collect();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Ended { agent, by: crate::events::Side::Caller, .. } if agent == "1001"
        )),
        "ended as the caller's hang-up: {events:#?}"
    );
    assert_eq!(b.status().calls, 0);
}

#[test]
fn a_stray_bye_outside_a_cluster_is_481() {
    let (_, bye) = dead_nodes_call();
    let mut b = Rig::new();
    b.send(CALLER, &bye);
    let answer = b.sent(CALLER, "SIP/2.0");
    assert!(answer.starts_with("SIP/2.0 481"), "{answer}");
}

#[test]
fn a_hang_up_another_node_took_ends_the_call_where_it_is_held() {
    let (snaps, bye) = dead_nodes_call();
    let snaps2 = snaps.clone();
    // Node c took the caller's BYE (the edge retried it there) and tells the others.
    let mut c = Rig::new();
    c.m.set_cluster(toml::from_str("node = \"c\"\n").unwrap());
    c.send(CALLER, &bye);
    let told = loop {
        match c.m.poll_output(c.now) {
            super::driver::Output::Cluster(crate::cluster::protocol::Outgoing::Stray(s)) => {
                break s
            }
            super::driver::Output::Timeout(_) => panic!("the hang-up is not told to the nodes"),
            _ => {}
        }
    };
    // Node b had taken the call over already (its caller re-INVITE crossed the BYE).
    let mut b = Rig::new();
    b.m.set_cluster(toml::from_str("node = \"b\"\n").unwrap());
    b.m.set_snapshots(true);
    b.register("1001", 7001);
    assert_eq!(b.m.take_over(b.now, snaps).resumed, 1);
    b.out();
    while b.m.poll_event().is_some() {}
    // A second node where the same call is a stale copy (cut off, its call taken over).
    let mut stale = Rig::new();
    stale
        .m
        .set_cluster(toml::from_str("node = \"s\"\n").unwrap());
    stale.m.set_snapshots(true);
    stale.register("1001", 7001);
    stale.m.take_over(stale.now, snaps2);
    stale.out();
    while stale.m.poll_event().is_some() {}
    taken(&mut stale);
    for r in [&mut b, &mut stale] {
        r.m.handle_cluster(r.now, crate::cluster::ClusterInput::Stray(told.clone()));
        assert!(
            !r.out()
                .iter()
                .any(|(p, m)| *p == 7001 && m.starts_with("BYE")),
            "not before the call is known to be this node's"
        );
        assert!(
            taken(r).iter().any(|w| w.body.is_some()),
            "a snapshot write proves it"
        );
    }
    // The stale node's write fails: the call is another node's, and goes without a word.
    let interaction = snapshots_of(&mut stale);
    stale.m.handle_cluster(
        stale.now,
        crate::cluster::ClusterInput::CallLost { interaction },
    );
    for r in [&mut b, &mut stale] {
        r.now += super::cluster::RELAYED_HANG_UP_WAIT;
        let now = r.now;
        r.m.handle_timeout(now);
    }
    assert!(
        !stale.out().iter().any(|(_, m)| m.starts_with("BYE")),
        "the stale copy hangs nobody up"
    );
    assert!(
        !std::iter::from_fn(|| stale.m.poll_event()).any(|e| matches!(e, Event::Ended { .. })),
        "and writes no history"
    );
    assert!(
        b.out()
            .iter()
            .any(|(p, m)| *p == 7001 && m.starts_with("BYE")),
        "the owner hangs the agent up"
    );
    let events: Vec<Event> = std::iter::from_fn(|| b.m.poll_event()).collect();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Ended {
                by: crate::events::Side::Caller,
                ..
            }
        )),
        "{events:#?}"
    );
    assert_eq!(b.status().calls, 0);
    assert_eq!(stale.status().calls, 0);
}

/// The interaction of the one call `r` holds.
fn snapshots_of(r: &mut Rig) -> String {
    r.m.snapshots
        .written
        .values()
        .next()
        .cloned()
        .expect("a call")
}
