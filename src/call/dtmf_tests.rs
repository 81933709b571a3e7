//! DTMF payload types across an agent's hold and resume (issue 13): a phone that re-offers
//! with its own numbering and one telephone-event per clock rate (pjsua2: 16000 first, then
//! 8000) is answered with the 8000 Hz one, and the caller's digits are relayed to it as that.

use super::tests::{agent_reinvite, connected_rig, reply};
use super::MediaCommand;

/// pjsua2's re-offer: its own payload numbers, wideband events listed first.
const PJSUA_SDP: &str = "v=0\r\no=- 3912 3913 IN IP4 127.0.0.1\r\ns=pjmedia\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7002 RTP/AVP 0 120 121\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:120 telephone-event/16000\r\na=fmtp:120 0-16\r\na=rtpmap:121 telephone-event/8000\r\na=fmtp:121 0-16\r\n";

#[test]
fn after_a_hold_and_resume_digits_go_to_the_agent_as_their_8000_hz_event_type() {
    let (mut r, _ok, inv) = connected_rig();
    r.send(7001, &reply(&inv, 200, "a1", true));
    r.out();
    while r.m.poll_media().is_some() {}
    let reinvite = |cseq: u32, dir: &str| agent_reinvite(&inv, cseq, PJSUA_SDP, dir);
    r.send(7001, &reinvite(2, "sendonly"));
    let held = r.sent(7001, "SIP/2.0 200");
    assert!(held.contains("a=rtpmap:121 telephone-event/8000"), "{held}");
    assert!(!held.contains("telephone-event/16000"), "{held}");
    r.send(7001, &reinvite(3, "sendrecv"));
    let resumed = r.sent(7001, "SIP/2.0 200");
    assert!(
        resumed.contains("a=rtpmap:121 telephone-event/8000"),
        "{resumed}"
    );
    let bridge = std::iter::from_fn(|| r.m.poll_media())
        .find_map(|m| match m {
            MediaCommand::Bridge { agent_dtmf_pt, .. } => Some(agent_dtmf_pt),
            _ => None,
        })
        .expect("the bridge resumes");
    assert_eq!(bridge, Some(121), "the caller's digits are relayed as 121");
}
