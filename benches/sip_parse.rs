//! Parse + normalise of a typical INVITE, and one full server INVITE transaction
//! (INVITE → 100 → 200 → 2xx retransmit armed → ACK) through the sans-IO layer.

use acd::sip::msg::{parse, Limits, Message, Response};
use acd::sip::transaction::{Peer, TimerConfig, TransactionLayer, Transport};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::time::Instant;

const INVITE: &str = "INVITE sip:100@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:100@192.0.2.10>\r\n\
From: \"Alice\" <sip:+15551234567@192.0.2.20>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:+15551234567@192.0.2.20:5060>\r\n\
User-Agent: bench\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 142\r\n\r\n\
v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn ack(branch: &str) -> Vec<u8> {
    format!("ACK sip:100@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch={branch}\r\nMax-Forwards: 70\r\nTo: <sip:100@192.0.2.10>;tag=x\r\nFrom: \"Alice\" <sip:+15551234567@192.0.2.20>;tag=1928301774\r\nCall-ID: a84b4c76e66710@pc33.example.com\r\nCSeq: 314159 ACK\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

fn benches(c: &mut Criterion) {
    let limits = Limits::default();
    c.bench_function("parse_invite", |b| {
        b.iter(|| parse(black_box(INVITE.as_bytes()), false, &limits).unwrap())
    });
    let peer = Peer {
        transport: Transport::Udp,
        addr: "192.0.2.20:5060".parse().unwrap(),
    };
    let ack_bytes = ack("z9hG4bKack");
    c.bench_function("server_invite_transaction", |b| {
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let t0 = Instant::now();
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            // A distinct Call-ID per iteration so each is a new transaction.
            let Ok(Message::Request(mut req)) = parse(INVITE.as_bytes(), false, &limits) else {
                unreachable!()
            };
            req.core.call_id = format!("c{n}");
            let key = match layer.on_request(t0, &req, peer) {
                acd::sip::transaction::Incoming::New(k) => k,
                _ => unreachable!(),
            };
            let ok = Response::to(&req, 200, Some("x"));
            layer.respond(t0, &key, &ok);
            let Ok(Message::Request(mut a)) = parse(&ack_bytes, false, &limits) else {
                unreachable!()
            };
            a.core.call_id = req.core.call_id.clone();
            layer.on_request(t0, &a, peer);
            while let Some(t) = layer.poll_transmit() {
                black_box(t);
            }
        });
    });
}

criterion_group!(sip, benches);
criterion_main!(sip);
