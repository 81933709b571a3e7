//! What the caller's phone receives once the agent is bridged: the agent's audio in the
//! caller's law (transcoded when the agent's phone took the other one, untouched when they
//! agree) and in the one RTP stream that carried acd's prompts before.

use super::*;
use crate::media::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};
use crate::sdp::Codec;
use rtp_rs::RtpReader;
use std::net::SocketAddr;

const CALLER_SDP: &str = "192.0.2.5:4000";
const AGENT_SDP: &str = "198.51.100.20:7000";

fn expect(sdp: &str, codec: Codec) -> Expect {
    Expect {
        sdp: sdp.parse().unwrap(),
        signalling: None,
        codec,
        codec_pt: codec.pt(),
        dtmf_pt: Some(101),
    }
}

fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A caller in `caller` law bridged to an agent in `agent` law, both locked.
fn bridged(caller: Codec, agent: Codec) -> (Bridge, Instant) {
    let t0 = Instant::now();
    let mut b = Bridge::new(t0, LearnConfig::default(), expect(CALLER_SDP, caller), true);
    b.bridge(t0, expect(AGENT_SDP, agent));
    (b, t0)
}

fn relay(b: &mut Bridge, t: Instant, side: Side, mut p: Vec<u8>) -> Vec<u8> {
    let src: SocketAddr = match side {
        Side::Caller => CALLER_SDP.parse().unwrap(),
        Side::Agent => AGENT_SDP.parse().unwrap(),
    };
    let v = b.handle_packet(t, side, src, &mut p);
    assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    p
}

/// A tone's samples, 160 of them (20 ms).
fn tone() -> Vec<i16> {
    (0..160)
        .map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16)
        .collect()
}

#[test]
fn a_pcmu_agent_and_a_pcma_caller_hear_each_other_through_transcoding() {
    let (mut b, t0) = bridged(Codec::Pcma, Codec::Pcmu);
    let speech = tone();
    // The caller speaks A-law; the agent's phone gets µ-law with its payload type.
    let alaw: Vec<u8> = speech.iter().map(|&s| alaw_encode(s)).collect();
    let to_agent = relay(&mut b, t0, Side::Caller, packet(8, 1, 160, 0xc, &alaw));
    let r = RtpReader::new(&to_agent).unwrap();
    assert_eq!(r.payload_type(), 0);
    for (got, want) in r.payload().iter().zip(&speech) {
        let got = ulaw_decode(*got) as i32;
        assert!((got - *want as i32).abs() <= (*want as i32).abs() / 8 + 32);
    }
    // The agent answers in µ-law; the caller gets A-law with PCMA's payload type.
    let ulaw: Vec<u8> = speech.iter().map(|&s| ulaw_encode(s)).collect();
    let to_caller = relay(&mut b, t0, Side::Agent, packet(0, 9, 900, 0xa, &ulaw));
    let r = RtpReader::new(&to_caller).unwrap();
    assert_eq!(r.payload_type(), 8);
    for (got, want) in r.payload().iter().zip(&speech) {
        let got = alaw_decode(*got) as i32;
        assert!(
            (got - *want as i32).abs() <= (*want as i32).abs() / 8 + 32,
            "µ-law → A-law of the same tone"
        );
    }
    // Digits are events, not audio: relayed as they are (payload type mapped only).
    let event = [5u8, 0x0a, 0x03, 0x20];
    let d = relay(&mut b, t0, Side::Caller, packet(101, 2, 320, 0xc, &event));
    assert_eq!(RtpReader::new(&d).unwrap().payload(), event);
}

#[test]
fn legs_in_the_same_law_are_relayed_byte_for_byte() {
    let (mut b, t0) = bridged(Codec::Pcmu, Codec::Pcmu);
    let payload: Vec<u8> = (0..160).map(|i| i as u8).collect();
    let p = packet(0, 1, 160, 0xc, &payload);
    assert_eq!(relay(&mut b, t0, Side::Caller, p.clone()), p);
}

#[test]
fn the_caller_hears_one_stream_from_the_prompt_to_the_agent_and_back_to_hold_music() {
    let t0 = Instant::now();
    let mut b = Bridge::new(
        t0,
        LearnConfig::default(),
        expect(CALLER_SDP, Codec::Pcmu),
        true,
    );
    let mut out = [0u8; 256];
    let mut prompt = |b: &mut Bridge| {
        let n = b.prompt_packet(&[0xff; 160], &mut out);
        let r = RtpReader::new(&out[..n]).unwrap();
        (
            r.mark(),
            u16::from(r.sequence_number()),
            r.timestamp(),
            r.ssrc(),
        )
    };
    let (m0, seq0, ts0, ssrc) = prompt(&mut b);
    assert!(m0, "the first packet of our stream is marked");
    assert_eq!(ssrc, b.caller_ssrc());
    let (m1, seq1, _, _) = prompt(&mut b);
    assert!(!m1);
    assert_eq!(seq1, seq0.wrapping_add(1));
    b.bridge(t0, expect(AGENT_SDP, Codec::Pcmu));
    let read = |p: &[u8]| {
        let r = RtpReader::new(p).unwrap();
        (
            r.mark(),
            u16::from(r.sequence_number()),
            r.timestamp(),
            r.ssrc(),
        )
    };
    let first = relay(
        &mut b,
        t0,
        Side::Agent,
        packet(0, 5000, 77_000, 0xa9e, &[0xff; 160]),
    );
    assert_eq!(
        read(&first),
        (true, seq0.wrapping_add(2), ts0.wrapping_add(320), ssrc),
        "the agent's audio continues our stream, marked as a new talkspurt"
    );
    let next = relay(
        &mut b,
        t0,
        Side::Agent,
        packet(0, 5001, 77_160, 0xa9e, &[0xff; 160]),
    );
    assert_eq!(
        read(&next),
        (false, seq0.wrapping_add(3), ts0.wrapping_add(480), ssrc)
    );
    // The agent holds: hold music goes on in the same stream.
    b.unbridge();
    let (m, seq, ts, s) = prompt(&mut b);
    assert_eq!(
        (m, seq, ts, s),
        (true, seq0.wrapping_add(4), ts0.wrapping_add(640), ssrc)
    );
}

#[test]
fn a_menu_digit_is_not_relayed_to_an_agent_who_answers_before_the_key_is_released() {
    let t0 = Instant::now();
    let mut b = Bridge::new(
        t0,
        LearnConfig::default(),
        expect(CALLER_SDP, Codec::Pcmu),
        true,
    );
    let src: SocketAddr = CALLER_SDP.parse().unwrap();
    let press = |seq: u16, ts: u32, end: bool| {
        packet(
            101,
            seq,
            ts,
            0xc,
            &[3, if end { 0x8a } else { 0x0a }, 0, 160],
        )
    };
    // "3" picks the queue in the menu.
    let mut p = press(1, 8000, false);
    assert_eq!(
        b.handle_packet(t0, Side::Caller, src, &mut p),
        Verdict::Keep { digit: Some('3') }
    );
    // The agent answers 10 ms later; the rest of the key press is acd's, not the agent's.
    b.bridge(t0, expect(AGENT_SDP, Codec::Pcmu));
    for (seq, end) in [(2, false), (3, true), (4, true), (5, true)] {
        let mut p = press(seq, 8000, end);
        assert_eq!(
            b.handle_packet(t0, Side::Caller, src, &mut p),
            Verdict::Keep { digit: None }
        );
    }
    // A key pressed in the conversation reaches the agent.
    let mut p = press(6, 16000, false);
    assert!(matches!(
        b.handle_packet(t0, Side::Caller, src, &mut p),
        Verdict::Forward {
            digit: Some('3'),
            ..
        }
    ));
}
