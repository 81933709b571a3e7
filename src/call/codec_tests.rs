//! Callers and agents whose phones take different G.711 laws still talk: the agent is offered
//! the caller's law first and the other one too, and the bridge is told which law each leg
//! speaks (it transcodes when they differ), also after a re-offer that changes the agent's.

use super::tests::{agent_reinvite, reply, Rig, CALLER, SDP};
use super::MediaCommand;
use crate::sdp::Codec;

fn pcma(sdp: &str) -> String {
    sdp.replace("RTP/AVP 0 101", "RTP/AVP 8 101") + "a=rtpmap:8 PCMA/8000\r\n"
}

fn bridges(r: &mut Rig) -> Vec<(Codec, u8)> {
    std::iter::from_fn(|| r.m.poll_media())
        .filter_map(|m| match m {
            MediaCommand::Bridge {
                agent_codec,
                agent_codec_pt,
                ..
            } => Some((agent_codec, agent_codec_pt)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_pcma_caller_reaches_a_pcmu_only_phone_through_transcoding() {
    let mut r = Rig::new();
    r.register("1001", 7001);
    r.invite_offering("c-law", &pcma(SDP));
    r.ack_200("c-law");
    let all = r.out();
    let ok = all
        .iter()
        .find(|(p, m)| *p == CALLER && m.starts_with("SIP/2.0 200"))
        .map(|(_, m)| m.clone())
        .expect("caller answered");
    assert!(ok.contains(" RTP/AVP 8 101\r\n"), "{ok}");
    let inv = all
        .iter()
        .find(|(p, m)| *p == 7001 && m.starts_with("INVITE"))
        .map(|(_, m)| m.clone())
        .expect("agent rung");
    assert!(
        inv.contains(" RTP/AVP 8 0 101\r\n"),
        "caller's law first: {inv}"
    );
    let _ = bridges(&mut r);
    // The phone takes only µ-law.
    r.send(7001, &reply(&inv, 200, "a1", true));
    assert_eq!(bridges(&mut r), vec![(Codec::Pcmu, 0)]);
    // A re-offer (no hold) moving the phone to A-law re-maps the bridge.
    r.send(7001, &agent_reinvite(&inv, 2, &pcma(SDP), "sendrecv"));
    let answer = r.sent(7001, "SIP/2.0 200");
    assert!(answer.contains(" RTP/AVP 8 101\r\n"), "{answer}");
    assert_eq!(bridges(&mut r), vec![(Codec::Pcma, 8)]);
    // The same offer again changes nothing.
    r.send(7001, &agent_reinvite(&inv, 3, &pcma(SDP), "sendrecv"));
    r.sent(7001, "SIP/2.0 200");
    assert_eq!(bridges(&mut r), vec![]);
}
