//! Every learning rule of the bridge on a fake clock: no sockets, no sleeps.

use super::*;
use crate::sdp::Codec;
use std::net::SocketAddr;

const PCMA: u8 = 8;
const DTMF: u8 = 101;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn caller_expect() -> Expect {
    Expect {
        sdp: addr("192.168.1.5:4000"),
        signalling: Some("203.0.113.7".parse().unwrap()),
        codec: Codec::Pcma,
        codec_pt: PCMA,
        dtmf_pt: Some(DTMF),
    }
}

fn agent_expect() -> Expect {
    Expect {
        sdp: addr("198.51.100.20:7000"),
        signalling: Some("198.51.100.20".parse().unwrap()),
        codec: Codec::Pcmu,
        codec_pt: 0,
        dtmf_pt: Some(96),
    }
}

fn rtp(pt: u8, seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0u8; 12 + 160];
    p[0] = 0x80;
    p[1] = pt;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p
}

/// An RFC 4733 event packet for `digit` (code), with the end bit as asked.
fn dtmf(seq: u16, ts: u32, code: u8, end: bool) -> Vec<u8> {
    let mut p = vec![0u8; 16];
    p[0] = 0x80;
    p[1] = DTMF;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p[8..12].copy_from_slice(&0xabcdu32.to_be_bytes());
    p[12] = code;
    p[13] = if end { 0x80 | 10 } else { 10 };
    p[14..16].copy_from_slice(&800u16.to_be_bytes());
    p
}

fn send(b: &mut Bridge, now: Instant, side: Side, src: &str, mut p: Vec<u8>) -> Verdict {
    b.handle_packet(now, side, addr(src), &mut p)
}

#[test]
fn the_sdp_address_locks_at_once_and_strangers_are_dropped() {
    let t0 = Instant::now();
    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), true);
    assert_eq!(
        send(
            &mut b,
            t0,
            Side::Caller,
            "192.168.1.5:4000",
            rtp(PCMA, 1, 9)
        ),
        Verdict::Keep { digit: None }
    );
    assert!(b.last.locked);
    assert_eq!(b.locked(Side::Caller), Some(addr("192.168.1.5:4000")));
    // Even from the signalling IP, with a perfect stream, nobody else gets in.
    for seq in 2..10 {
        assert_eq!(
            send(
                &mut b,
                t0,
                Side::Caller,
                "203.0.113.7:5000",
                rtp(PCMA, seq, 9)
            ),
            Verdict::Drop(DropReason::Stranger)
        );
    }
    assert_eq!(b.locked(Side::Caller), Some(addr("192.168.1.5:4000")));
}

#[test]
fn a_nat_source_on_the_signalling_ip_is_learnt_after_probation() {
    let t0 = Instant::now();
    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), true);
    let nat = "203.0.113.7:31000";
    assert_eq!(
        send(&mut b, t0, Side::Caller, nat, rtp(PCMA, 100, 5)),
        Verdict::Drop(DropReason::Learning)
    );
    assert_eq!(
        send(&mut b, t0, Side::Caller, nat, rtp(PCMA, 101, 5)),
        Verdict::Drop(DropReason::Learning)
    );
    // The target stays the SDP address until the lock.
    assert_eq!(b.send_target(Side::Caller), Some(addr("192.168.1.5:4000")));
    assert_eq!(
        send(&mut b, t0, Side::Caller, nat, rtp(PCMA, 102, 5)),
        Verdict::Keep { digit: None }
    );
    assert_eq!(b.send_target(Side::Caller), Some(addr(nat)));
}

#[test]
fn probation_restarts_when_the_stream_is_not_consecutive_or_another_source_cuts_in() {
    let t0 = Instant::now();
    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), true);
    let nat = "203.0.113.7:31000";
    send(&mut b, t0, Side::Caller, nat, rtp(PCMA, 1, 5));
    send(&mut b, t0, Side::Caller, nat, rtp(PCMA, 2, 5));
    // A spoofer on the same IP interleaves: the count starts over for whoever comes next.
    send(
        &mut b,
        t0,
        Side::Caller,
        "203.0.113.7:31001",
        rtp(PCMA, 3, 6),
    );
    assert_eq!(
        send(&mut b, t0, Side::Caller, nat, rtp(PCMA, 3, 5)),
        Verdict::Drop(DropReason::Learning)
    );
    // A gap in the sequence starts over too.
    assert_eq!(
        send(&mut b, t0, Side::Caller, nat, rtp(PCMA, 9, 5)),
        Verdict::Drop(DropReason::Learning)
    );
    assert_eq!(b.locked(Side::Caller), None);
}

#[test]
fn other_ips_are_never_learnt_and_the_window_closes() {
    let t0 = Instant::now();
    let cfg = LearnConfig::default();
    let mut b = Bridge::new(t0, cfg, caller_expect(), true);
    for seq in 0..10 {
        assert_eq!(
            send(&mut b, t0, Side::Caller, "10.9.9.9:4000", rtp(PCMA, seq, 1)),
            Verdict::Drop(DropReason::Stranger)
        );
    }
    // After the window, even the signalling IP cannot be learnt: only the SDP address can.
    let late = t0 + cfg.window;
    for seq in 0..10 {
        assert_eq!(
            send(
                &mut b,
                late,
                Side::Caller,
                "203.0.113.7:31000",
                rtp(PCMA, seq, 1)
            ),
            Verdict::Drop(DropReason::Stranger)
        );
    }
    assert_eq!(
        send(
            &mut b,
            late,
            Side::Caller,
            "192.168.1.5:4000",
            rtp(PCMA, 1, 1)
        ),
        Verdict::Keep { digit: None }
    );
}

#[test]
fn the_sdp_address_replaces_a_nat_guess_within_the_window_only() {
    let t0 = Instant::now();
    let cfg = LearnConfig::default();
    let mut b = Bridge::new(t0, cfg, caller_expect(), true);
    for seq in 0..3 {
        send(
            &mut b,
            t0,
            Side::Caller,
            "203.0.113.7:31000",
            rtp(PCMA, seq, 1),
        );
    }
    assert_eq!(b.locked(Side::Caller), Some(addr("203.0.113.7:31000")));
    send(
        &mut b,
        t0,
        Side::Caller,
        "192.168.1.5:4000",
        rtp(PCMA, 1, 2),
    );
    assert_eq!(b.locked(Side::Caller), Some(addr("192.168.1.5:4000")));

    let mut b = Bridge::new(t0, cfg, caller_expect(), true);
    for seq in 0..3 {
        send(
            &mut b,
            t0,
            Side::Caller,
            "203.0.113.7:31000",
            rtp(PCMA, seq, 1),
        );
    }
    assert_eq!(
        send(
            &mut b,
            t0 + cfg.window,
            Side::Caller,
            "192.168.1.5:4000",
            rtp(PCMA, 1, 2)
        ),
        Verdict::Drop(DropReason::Stranger)
    );
}

#[test]
fn nat_learning_off_and_any() {
    let t0 = Instant::now();
    let off = LearnConfig {
        nat: NatLearning::Off,
        ..LearnConfig::default()
    };
    let mut b = Bridge::new(t0, off, caller_expect(), true);
    for seq in 0..5 {
        assert_eq!(
            send(
                &mut b,
                t0,
                Side::Caller,
                "203.0.113.7:31000",
                rtp(PCMA, seq, 1)
            ),
            Verdict::Drop(DropReason::Stranger)
        );
    }
    let any = LearnConfig {
        nat: NatLearning::Any,
        ..LearnConfig::default()
    };
    let mut b = Bridge::new(t0, any, caller_expect(), true);
    for seq in 0..3 {
        send(&mut b, t0, Side::Caller, "10.1.1.1:9", rtp(PCMA, seq, 1));
    }
    assert_eq!(b.locked(Side::Caller), Some(addr("10.1.1.1:9")));
    assert_eq!(
        send(&mut b, t0, Side::Caller, "10.1.1.2:9", rtp(PCMA, 3, 1)),
        Verdict::Drop(DropReason::Stranger),
        "locked even in the weakest mode"
    );
}

#[test]
fn payload_types_and_garbage_are_dropped_before_learning() {
    let t0 = Instant::now();
    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), true);
    let sdp = "192.168.1.5:4000";
    assert_eq!(
        send(&mut b, t0, Side::Caller, sdp, rtp(0, 1, 1)),
        Verdict::Drop(DropReason::Payload)
    );
    assert_eq!(
        send(&mut b, t0, Side::Caller, sdp, vec![0x80, 8, 0]),
        Verdict::Drop(DropReason::NotRtp)
    );
    let mut v1 = rtp(PCMA, 1, 1);
    v1[0] = 0x40;
    assert_eq!(
        send(&mut b, t0, Side::Caller, sdp, v1),
        Verdict::Drop(DropReason::NotRtp)
    );
    // RTCP sender report (PT 200) on the RTP port.
    let mut rtcp = rtp(0, 1, 1);
    rtcp[1] = 200;
    assert_eq!(
        send(&mut b, t0, Side::Caller, sdp, rtcp),
        Verdict::Drop(DropReason::Payload)
    );
    assert_eq!(
        b.locked(Side::Caller),
        None,
        "nothing learnt from any of it"
    );
}

#[test]
fn nothing_is_sent_to_an_unproven_caller_until_their_rtp_arrives() {
    let t0 = Instant::now();
    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), false);
    assert_eq!(b.send_target(Side::Caller), None);
    // A stranger's packet does not prove anything.
    send(&mut b, t0, Side::Caller, "10.9.9.9:1", rtp(PCMA, 1, 1));
    assert_eq!(b.send_target(Side::Caller), None);
    assert!(!b.last.validated);
    send(
        &mut b,
        t0,
        Side::Caller,
        "192.168.1.5:4000",
        rtp(PCMA, 1, 1),
    );
    assert!(b.last.validated);
    assert_eq!(b.send_target(Side::Caller), Some(addr("192.168.1.5:4000")));
    send(
        &mut b,
        t0,
        Side::Caller,
        "192.168.1.5:4000",
        rtp(PCMA, 2, 1),
    );
    assert!(!b.last.validated, "reported once");

    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), false);
    b.validate();
    assert_eq!(b.send_target(Side::Caller), Some(addr("192.168.1.5:4000")));
}

#[test]
fn digits_come_only_from_the_callers_peer() {
    let t0 = Instant::now();
    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), true);
    send(
        &mut b,
        t0,
        Side::Caller,
        "192.168.1.5:4000",
        rtp(PCMA, 1, 1),
    );
    // A stranger presses 5.
    for (i, end) in [false, true, true, true].into_iter().enumerate() {
        let v = send(
            &mut b,
            t0,
            Side::Caller,
            "203.0.113.7:9",
            dtmf(10 + i as u16, 800, 5, end),
        );
        assert_eq!(v, Verdict::Drop(DropReason::Stranger));
    }
    // The caller presses 1.
    let mut got = Vec::new();
    for (i, end) in [false, true, true, true].into_iter().enumerate() {
        let v = send(
            &mut b,
            t0,
            Side::Caller,
            "192.168.1.5:4000",
            dtmf(2 + i as u16, 1600, 1, end),
        );
        if let Verdict::Keep { digit: Some(d) } = v {
            got.push(d);
        }
    }
    assert_eq!(got, vec!['1']);
}

#[test]
fn bridged_packets_are_mapped_and_sent_to_the_other_legs_peer() {
    let t0 = Instant::now();
    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), true);
    b.bridge(t0, agent_expect());
    let mut p = rtp(PCMA, 1, 1);
    assert_eq!(
        b.handle_packet(t0, Side::Caller, addr("192.168.1.5:4000"), &mut p),
        Verdict::Forward {
            to: addr("198.51.100.20:7000"),
            digit: None
        }
    );
    assert_eq!(p[1] & 0x7f, 0, "PCMA's 8 became the agent's 0");
    let mut p = rtp(0, 1, 2);
    p[1] |= 0x80; // marker kept
    assert_eq!(
        b.handle_packet(t0, Side::Agent, addr("198.51.100.20:7000"), &mut p),
        Verdict::Forward {
            to: addr("192.168.1.5:4000"),
            digit: None
        }
    );
    assert_eq!(p[1], 0x80 | PCMA);
    // A stranger spraying the agent port gets nothing relayed.
    assert_eq!(
        send(&mut b, t0, Side::Agent, "198.51.100.99:7000", rtp(0, 2, 2)),
        Verdict::Drop(DropReason::Stranger)
    );
    b.unbridge();
    assert_eq!(
        send(&mut b, t0, Side::Agent, "198.51.100.20:7000", rtp(0, 3, 2)),
        Verdict::Keep { digit: None }
    );
}

#[test]
fn agent_packets_before_any_agent_are_strangers() {
    let t0 = Instant::now();
    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), true);
    assert_eq!(
        send(&mut b, t0, Side::Agent, "198.51.100.20:7000", rtp(0, 1, 1)),
        Verdict::Drop(DropReason::Stranger)
    );
}

#[test]
fn a_signalled_change_relearns_and_the_same_signal_keeps_the_lock() {
    let t0 = Instant::now();
    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), true);
    send(
        &mut b,
        t0,
        Side::Caller,
        "192.168.1.5:4000",
        rtp(PCMA, 1, 1),
    );
    b.retarget(t0, Side::Caller, addr("192.168.1.5:4000"));
    assert_eq!(b.locked(Side::Caller), Some(addr("192.168.1.5:4000")));
    let later = t0 + Duration::from_secs(60);
    b.retarget(later, Side::Caller, addr("192.168.1.6:4002"));
    assert_eq!(b.locked(Side::Caller), None);
    assert_eq!(b.send_target(Side::Caller), Some(addr("192.168.1.6:4002")));
    assert_eq!(
        send(
            &mut b,
            later,
            Side::Caller,
            "192.168.1.5:4000",
            rtp(PCMA, 2, 1)
        ),
        Verdict::Drop(DropReason::Stranger),
        "the old address is a stranger now"
    );
    send(
        &mut b,
        later,
        Side::Caller,
        "192.168.1.6:4002",
        rtp(PCMA, 3, 1),
    );
    assert_eq!(b.locked(Side::Caller), Some(addr("192.168.1.6:4002")));

    // The agent comes off hold at the same address: still locked.
    b.bridge(t0, agent_expect());
    send(&mut b, t0, Side::Agent, "198.51.100.20:7000", rtp(0, 1, 1));
    b.unbridge();
    b.bridge(later, agent_expect());
    assert_eq!(b.locked(Side::Agent), Some(addr("198.51.100.20:7000")));
}

#[test]
fn follow_ssrc_moves_the_lock_only_for_the_same_stream_continuing() {
    let t0 = Instant::now();
    let cfg = LearnConfig {
        follow_ssrc: true,
        ..LearnConfig::default()
    };
    let mut b = Bridge::new(t0, cfg, caller_expect(), true);
    for seq in 0..3 {
        send(
            &mut b,
            t0,
            Side::Caller,
            "203.0.113.7:31000",
            rtp(PCMA, seq, 77),
        );
    }
    let later = t0 + Duration::from_secs(30);
    // Another stream on the same IP, or the same SSRC with a jump: refused.
    assert_eq!(
        send(
            &mut b,
            later,
            Side::Caller,
            "203.0.113.7:31002",
            rtp(PCMA, 3, 78)
        ),
        Verdict::Drop(DropReason::Stranger)
    );
    assert_eq!(
        send(
            &mut b,
            later,
            Side::Caller,
            "203.0.113.7:31002",
            rtp(PCMA, 500, 77)
        ),
        Verdict::Drop(DropReason::Stranger)
    );
    // A different IP, even continuing the stream: refused by the NAT rule.
    assert_eq!(
        send(
            &mut b,
            later,
            Side::Caller,
            "10.0.0.1:31002",
            rtp(PCMA, 3, 77)
        ),
        Verdict::Drop(DropReason::Stranger)
    );
    // The NAT rebinding: the next packet of the same stream from a new port.
    assert_eq!(
        send(
            &mut b,
            later,
            Side::Caller,
            "203.0.113.7:31002",
            rtp(PCMA, 3, 77)
        ),
        Verdict::Keep { digit: None }
    );
    assert_eq!(b.locked(Side::Caller), Some(addr("203.0.113.7:31002")));

    // Off by default.
    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), true);
    for seq in 0..3 {
        send(
            &mut b,
            t0,
            Side::Caller,
            "203.0.113.7:31000",
            rtp(PCMA, seq, 77),
        );
    }
    assert_eq!(
        send(
            &mut b,
            later,
            Side::Caller,
            "203.0.113.7:31002",
            rtp(PCMA, 3, 77)
        ),
        Verdict::Drop(DropReason::Stranger)
    );
}

#[test]
fn recording_taps_both_legs_but_not_digits() {
    let t0 = Instant::now();
    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), true);
    b.bridge(t0, agent_expect());
    b.record(t0, crate::sdp::Codec::Pcma);
    send(
        &mut b,
        t0 + Duration::from_millis(20),
        Side::Caller,
        "192.168.1.5:4000",
        rtp(PCMA, 1, 1),
    );
    send(
        &mut b,
        t0 + Duration::from_millis(40),
        Side::Caller,
        "192.168.1.5:4000",
        dtmf(2, 5, 1, false),
    );
    let mixed = b.recorder().map(|r| r.finish()).unwrap_or_default();
    assert_eq!(mixed.len(), 160, "one 20 ms frame, the digit not mixed in");
}

#[test]
fn a_nat_address_is_reported_as_learnt_and_a_relock_sends_there_at_once() {
    let t0 = Instant::now();
    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), true);
    // Locked on the SDP address itself: nothing the SDP would not find again.
    send(
        &mut b,
        t0,
        Side::Caller,
        "192.168.1.5:4000",
        rtp(PCMA, 1, 9),
    );
    assert!(b.last.locked);
    assert_eq!(b.learned(Side::Caller), None);
    // A NAT'd caller's source after probation is what a snapshot keeps.
    let mut b = Bridge::new(t0, LearnConfig::default(), caller_expect(), true);
    let nat = "203.0.113.7:31000";
    for seq in 100..103 {
        send(&mut b, t0, Side::Caller, nat, rtp(PCMA, seq, 5));
    }
    assert_eq!(b.learned(Side::Caller), Some(addr(nat)));

    // A new process relocks onto it: media goes there before any packet, and a stranger on
    // the same IP cannot take it over.
    let t1 = t0 + Duration::from_secs(60);
    let mut b = Bridge::new(t1, LearnConfig::default(), caller_expect(), true);
    b.relock(Side::Caller, addr(nat));
    assert_eq!(b.send_target(Side::Caller), Some(addr(nat)));
    assert_eq!(
        send(&mut b, t1, Side::Caller, nat, rtp(PCMA, 500, 5)),
        Verdict::Keep { digit: None }
    );
    for seq in 1..10 {
        assert_eq!(
            send(
                &mut b,
                t1,
                Side::Caller,
                "203.0.113.7:31999",
                rtp(PCMA, seq, 77)
            ),
            Verdict::Drop(DropReason::Stranger)
        );
    }
    assert_eq!(b.send_target(Side::Caller), Some(addr(nat)));
}
