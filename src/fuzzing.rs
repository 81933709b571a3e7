//! Entry points for fuzzing: each takes arbitrary bytes, drives one parser or state machine that
//! outside input reaches, and must return without panicking whatever the bytes are. The
//! coverage-guided targets in `fuzz/` (cargo fuzz) call these, and `tests/fuzz_seeds.rs` runs
//! them over every seed on stable Rust in the ordinary test suite, so a crash found once stays
//! a regression test.
//!
//! Where a parser accepts its input, the target also checks a property a user would notice if
//! it broke (a parsed SIP message re-serialises into one that parses again).

use crate::media::bridge::{Bridge, Expect, LearnConfig};
use crate::media::recorder::Side;
use crate::sip::transaction::{Peer, Transport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The whole SIP parser, both framings, plus the lane classifier and the 400 it would answer.
pub fn sip_message(data: &[u8]) {
    use crate::sip::msg::{parse, Limits, Message};
    let _ = crate::sip::lane::lane(data);
    let limits = Limits::default();
    for stream in [false, true] {
        match parse(data, stream, &limits) {
            Ok(Message::Request(req)) => {
                let again = req.to_bytes();
                assert!(
                    parse(&again, stream, &limits).is_ok(),
                    "a parsed request re-serialises into one that parses"
                );
                let _ = crate::sip::msg::Response::to(&req, 400, Some("t")).to_bytes();
            }
            Ok(Message::Response(resp)) => {
                let again = resp.to_bytes();
                assert!(
                    parse(&again, stream, &limits).is_ok(),
                    "a parsed response re-serialises into one that parses"
                );
            }
            Err(rej) => {
                if rej.answerable() {
                    let _ = rej.to_bytes();
                }
            }
        }
    }
}

/// A whole SIP endpoint (transactions, registrar, digest, budgets) fed each NUL-separated
/// piece of `data` as a datagram from one of a few sources, with time moving on.
pub fn sip_endpoint(data: &[u8]) {
    use crate::sip::endpoint::{Endpoint, EndpointConfig};
    let start = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig::default(), start, 1_000_000);
    for (i, piece) in data.split(|&b| b == 0).enumerate() {
        let now = start + Duration::from_millis(i as u64 * 300);
        let peer = Peer {
            transport: if i % 3 == 2 {
                Transport::Tcp
            } else {
                Transport::Udp
            },
            addr: SocketAddr::from(([127, 0, 0, 1 + (i % 4) as u8], 5060)),
        };
        if i % 5 == 4 {
            ep.shed(now, peer, piece, 5);
        } else {
            ep.handle_input(now, peer, piece);
        }
        ep.handle_timeout(now);
        while ep.poll_transmit().is_some() {}
        while ep.poll_event().is_some() {}
    }
}

/// The TCP stream framer over `data` cut into uneven chunks.
pub fn sip_stream(data: &[u8]) {
    use crate::sip::framing::StreamFramer;
    let mut f = StreamFramer::new(65_535);
    let mut rest = data;
    let mut n = 1;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        n = n % 97 + 13;
        f.push(chunk);
        loop {
            match f.next_frame() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// SDP offers: parse, negotiate, answer, and the answer must parse.
pub fn sdp(data: &[u8]) {
    use crate::sdp::{answer, LocalMedia, Sdp};
    let Ok(offer) = Sdp::parse(data) else { return };
    let Ok(n) = offer.negotiate() else { return };
    let local = LocalMedia {
        ip: [127, 0, 0, 1].into(),
        port: 20000,
        session_id: 1,
        version: 1,
        srtp: offer
            .media
            .iter()
            .any(|m| m.proto.starts_with("RTP/SAVP"))
            .then(crate::media::srtp::MasterKey::random),
    };
    let ours = answer(&local, &offer, &n);
    assert!(
        Sdp::parse(ours.as_bytes()).is_ok(),
        "our answer to an accepted offer parses: {ours}"
    );
}

/// Digest `Authorization` header values.
pub fn digest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::sip::auth::DigestResponse::parse(&text);
}

/// Dialplan TOML: everything `acd route` and a SIGHUP reload would load.
pub fn dialplan(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::routing::Dialplan::parse(&text, "fuzz.toml");
}

/// CSV imports: the reader the importer uses, then every field through the phone-number and
/// time parsers the importer applies to rows.
pub fn csv_rows(data: &[u8]) {
    let Ok(country) = crate::context::e164::Country::by_iso("US") else {
        return;
    };
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    let _ = rdr.headers();
    for rec in rdr.records().take(1000) {
        let Ok(rec) = rec else { return };
        for field in rec.iter() {
            let _ = crate::context::e164::normalize(field, &country);
            let _ = crate::context::time::parse_iso8601(field);
        }
    }
}

/// The RTP bridge: `data` is a list of packets, each `[who, len, bytes…]`: `who` picks the
/// side and one of four sources (the SDP address, a NAT port on the signalling IP, a stranger,
/// another stranger); time moves 20 ms per packet, and every 64th byte of `who` bridges,
/// retargets or records.
pub fn rtp_bridge(data: &[u8]) {
    let start = Instant::now();
    let sdp: SocketAddr = ([10, 0, 0, 1], 4000).into();
    let sources: [SocketAddr; 4] = [
        sdp,
        ([192, 0, 2, 1], 30000).into(),
        ([198, 51, 100, 7], 4000).into(),
        ([203, 0, 113, 9], 1234).into(),
    ];
    let expect = |sdp: SocketAddr| Expect {
        sdp,
        signalling: Some([192, 0, 2, 1].into()),
        codec: crate::sdp::Codec::Pcmu,
        codec_pt: 0,
        dtmf_pt: Some(101),
    };
    let mut bridge = Bridge::new(start, LearnConfig::default(), expect(sdp), false);
    let mut rest = data;
    let mut i = 0u64;
    while rest.len() >= 2 {
        let (who, len) = (rest[0], rest[1] as usize);
        let len = len.min(rest.len() - 2);
        let mut pkt = rest[2..2 + len].to_vec();
        rest = &rest[2 + len..];
        i += 1;
        let now = start + Duration::from_millis(i * 20);
        match who >> 6 {
            // The agent in the other law: every relayed payload is transcoded.
            1 if who & 0x3f == 0 => bridge.bridge(
                now,
                Expect {
                    codec: crate::sdp::Codec::Pcma,
                    codec_pt: 8,
                    ..expect(([10, 0, 0, 2], 5000).into())
                },
            ),
            2 if who & 0x3f == 0 => bridge.retarget(now, Side::Caller, sources[1]),
            3 if who & 0x3f == 0 => bridge.record(now, crate::sdp::Codec::Pcmu),
            _ => {}
        }
        let side = if who & 4 == 0 {
            Side::Caller
        } else {
            Side::Agent
        };
        let _ = bridge.handle_packet(now, side, sources[(who & 3) as usize], &mut pkt);
        if let Some(r) = bridge.recorder() {
            let _ = r.take_ready(now);
        }
    }
}

/// ISO-8601 timestamps (`/api/reports/campaigns?since=`, imports).
pub fn iso8601(data: &[u8]) {
    let _ = crate::context::time::parse_iso8601(&String::from_utf8_lossy(data));
}

/// One fuzz target: bytes in, nothing out, never a panic.
pub type Target = fn(&[u8]);

/// Prompt WAVs (operators drop in files from other systems).
pub fn wav(data: &[u8]) {
    let _ = crate::media::prompt::read_wav(data);
}

/// Every target by name, for the seed runner and the fuzz crate.
pub const TARGETS: &[(&str, Target)] = &[
    ("sip_message", sip_message),
    ("sip_endpoint", sip_endpoint),
    ("sip_stream", sip_stream),
    ("sdp", sdp),
    ("digest", digest),
    ("dialplan", dialplan),
    ("csv_rows", csv_rows),
    ("rtp_bridge", rtp_bridge),
    ("iso8601", iso8601),
    ("wav", wav),
];
