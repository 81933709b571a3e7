//! Session timers (RFC 4028) on the caller's leg, on the fake clock: what our 200 says, who
//! refreshes, and when a session nobody refreshed is ended.

use super::super::tests::{header, reply, Rig, CALLER, SDP};
use std::time::Duration;

/// A call whose caller asked for `extra` (Session-Expires, Supported), ringing agent 1001:
/// the 200 to the caller and the INVITE to the agent.
fn call_ringing(extra: &str) -> (Rig, String, String) {
    let mut r = Rig::new();
    r.register("1001", 7001);
    r.invite_with("call1", SDP, extra);
    r.ack_200("call1");
    let all = r.out();
    let ok = all
        .iter()
        .find(|(p, m)| *p == CALLER && m.starts_with("SIP/2.0 200"))
        .map(|(_, m)| m.clone())
        .unwrap_or_else(|| panic!("answered: {all:#?}"));
    let inv = all
        .iter()
        .find(|(p, m)| *p == 7001 && m.starts_with("INVITE"))
        .map(|(_, m)| m.clone())
        .unwrap_or_default();
    (r, ok, inv)
}

/// [`call_ringing`] without the agent's INVITE.
fn call_with(extra: &str) -> (Rig, String) {
    let (r, ok, _) = call_ringing(extra);
    (r, ok)
}

/// The caller's refresh: an UPDATE without SDP in the dialog of `ok`.
fn update(ok: &str, cseq: u32, extra: &str) -> String {
    format!(
        "UPDATE sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{CALLER};branch=z9hG4bKu{cseq}\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {}\r\nCall-ID: call1\r\nCSeq: {cseq} UPDATE\r\nContact: <sip:c@127.0.0.1:{CALLER}>\r\n{extra}Content-Length: 0\r\n\r\n",
        header(ok, "To")
    )
}

fn byes(r: &mut Rig) -> usize {
    r.out()
        .iter()
        .filter(|(p, m)| *p == CALLER && m.starts_with("BYE"))
        .count()
}

const UAC_REFRESHES: &str = "Supported: timer\r\nSession-Expires: 120;refresher=uac\r\n";

#[test]
fn a_session_the_caller_stops_refreshing_is_ended_before_it_expires() {
    let (mut r, ok) = call_with(UAC_REFRESHES);
    assert_eq!(header(&ok, "Session-Expires"), "120;refresher=uac");
    assert_eq!(header(&ok, "Require"), "timer");
    // The caller refreshes at 60 s with a bare UPDATE: a 200 without SDP, the timer again.
    r.advance(Duration::from_secs(60));
    r.send(CALLER, &update(&ok, 2, UAC_REFRESHES));
    let ok2 = r.sent(CALLER, "SIP/2.0 200");
    assert_eq!(header(&ok2, "Session-Expires"), "120;refresher=uac");
    assert_eq!(header(&ok2, "Content-Length"), "0", "{ok2}");
    // 88 s (120 less 32) after that refresh, not before, the call is ended.
    r.advance(Duration::from_secs(87));
    assert_eq!(byes(&mut r), 0);
    assert_eq!(r.status().calls, 1);
    r.advance(Duration::from_secs(1));
    assert_eq!(byes(&mut r), 1, "BYE to the caller");
    assert_eq!(r.status().calls, 0);
}

#[test]
fn when_we_are_the_refresher_we_reinvite_at_half_the_interval_with_the_same_sdp() {
    let (mut r, ok) = call_with("Supported: timer\r\nSession-Expires: 120;refresher=uas\r\n");
    assert_eq!(header(&ok, "Session-Expires"), "120;refresher=uas");
    r.advance(Duration::from_secs(59));
    assert!(r
        .out()
        .iter()
        .all(|(p, m)| !(*p == CALLER && m.starts_with("INVITE"))));
    r.advance(Duration::from_secs(1));
    let refresh = r.sent(CALLER, "INVITE");
    // In our request `uac` is us.
    assert_eq!(header(&refresh, "Session-Expires"), "120;refresher=uac");
    assert_eq!(header(&refresh, "Supported"), "100rel, timer");
    let o = |m: &str| m.lines().find(|l| l.starts_with("o=")).map(str::to_string);
    assert_eq!(o(&refresh), o(&ok), "the same SDP, version unchanged");
    // The caller wants at least 180 s: we go again with that.
    let mut too_small = reply(&refresh, 422, "c", false);
    too_small = too_small.replace("Content-Length: 0", "Min-SE: 180\r\nContent-Length: 0");
    r.send(CALLER, &too_small);
    let all = r.out();
    let again = all
        .iter()
        .find(|(p, m)| *p == CALLER && m.starts_with("INVITE"))
        .map(|(_, m)| m.clone())
        .unwrap_or_else(|| panic!("refresh again: {all:#?}"));
    assert_eq!(header(&again, "Session-Expires"), "180;refresher=uac");
    let answer = reply(&again, 200, "c", true).replace(
        "Content-Type",
        "Session-Expires: 180;refresher=uac\r\nContent-Type",
    );
    r.send(CALLER, &answer);
    r.sent(CALLER, "ACK");
    // Next refresh at 90 s from that answer; the call goes on.
    r.advance(Duration::from_secs(89));
    assert!(r
        .out()
        .iter()
        .all(|(p, m)| !(*p == CALLER && m.starts_with("INVITE"))));
    r.advance(Duration::from_secs(1));
    r.sent(CALLER, "INVITE");
    assert_eq!(r.status().calls, 1);
}

#[test]
fn a_refresh_the_caller_no_longer_knows_ends_the_call() {
    let (mut r, _ok) = call_with("Session-Expires: 300\r\n");
    // A proxy asked for the timer for a caller that does not do it: we refresh, and our 200
    // does not make the caller require it.
    r.advance(Duration::from_secs(150));
    let refresh = r.sent(CALLER, "INVITE");
    assert_eq!(header(&refresh, "Session-Expires"), "300;refresher=uac");
    r.send(CALLER, &reply(&refresh, 481, "c", false));
    assert_eq!(r.status().calls, 0, "481: the dialog is gone");
}

#[test]
fn no_require_timer_for_a_caller_that_does_not_support_it_and_422_below_min_se() {
    let (_r, ok) = call_with("Session-Expires: 300\r\n");
    assert_eq!(header(&ok, "Session-Expires"), "300;refresher=uas");
    assert_eq!(header(&ok, "Require"), "");
    let mut r = Rig::new();
    r.invite_with("short", SDP, "Supported: timer\r\nSession-Expires: 30\r\n");
    let refused = r.sent(CALLER, "SIP/2.0 422");
    assert_eq!(header(&refused, "Min-SE"), "90");
    assert_eq!(r.status().calls, 0);
    // Without any timer asked, none runs: the call outlives any interval.
    let (mut r, ok) = call_with("");
    assert_eq!(header(&ok, "Session-Expires"), "");
    r.advance(Duration::from_secs(4000));
    assert!(r.out().iter().all(|(_, m)| !m.starts_with("BYE")));
}

#[test]
fn require_timer_is_understood() {
    let (_r, ok) = call_with("Require: timer\r\nSession-Expires: 1800\r\n");
    assert_eq!(header(&ok, "Session-Expires"), "1800;refresher=uac");
    assert_eq!(header(&ok, "Require"), "timer");
}

#[test]
fn a_resumed_call_keeps_its_session_timer_and_its_reinvite_is_the_refresh() {
    let (mut r, ok, inv) =
        call_ringing("Supported: timer\r\nSession-Expires: 120;refresher=uas\r\n");
    r.m.set_snapshots(true);
    r.send(7001, &reply(&inv, 200, "a1", true));
    while r.m.poll_event().is_some() {}
    let (now, due) = (r.now, r.now + super::super::snapshot::GATHER);
    let mut writes: Vec<_> = std::iter::from_fn(|| r.m.poll_snapshot(now)).collect();
    writes.extend(std::iter::from_fn(|| r.m.poll_snapshot(due)));
    let snaps: Vec<_> = writes
        .into_iter()
        .filter_map(|w| w.body)
        .map(|s| serde_json::from_str(&serde_json::to_string(&*s).unwrap()).unwrap())
        .collect();
    assert_eq!(snaps.len(), 1);
    let mut b = Rig::new();
    b.register("1001", 7001);
    assert_eq!(b.m.resume(b.now, snaps).resumed, 1);
    let all = b.out();
    let to = |port: u16| {
        all.iter()
            .find(|(p, m)| *p == port && m.starts_with("INVITE"))
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("re-INVITE to {port}: {all:#?}"))
    };
    let (to_caller, to_agent) = (to(CALLER), to(7001));
    assert_eq!(header(&to_caller, "Session-Expires"), "120;refresher=uac");
    assert_eq!(
        header(&to_agent, "Session-Expires"),
        "",
        "no timer on agent legs"
    );
    b.send(CALLER, &reply(&to_caller, 200, "c", true));
    b.send(7001, &reply(&to_agent, 200, "a1", true));
    // Then refreshed every 60 s as before the restart.
    b.advance(Duration::from_secs(60));
    let refresh = b
        .out()
        .into_iter()
        .filter(|(p, m)| *p == CALLER && m.starts_with("INVITE"))
        .count();
    assert_eq!(refresh, 1, "{ok}");
}
