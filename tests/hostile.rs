//! Hostile input: 10,000 garbage, truncated and bit-flipped datagrams fired at acd while real
//! SIPp calls run through it. No panic, no hang, every valid call completes, nothing leaks.

mod common;

use acd::sip::msg::{parse, Limits};
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// Valid-looking messages to cut and mutate. The INVITE dials 999 (not in the dialplan), so a
/// mutation that still parses is refused with 404 instead of taking an agent from a real caller.
const SEEDS: &[&str] = &[
    "INVITE sip:999@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:999@127.0.0.1>\r\nCall-ID: g1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:9>\r\nContent-Type: application/sdp\r\nContent-Length: 74\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\nc=IN IP4 127.0.0.1\r\nm=audio 9 RTP/AVP 0\r\n",
    "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx2\r\nFrom: <sip:1001@127.0.0.1>;tag=2\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: g2\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@127.0.0.1:9>\r\nAuthorization: Digest username=\"1001\", realm=\"acd\", nonce=\"1.2.3\", uri=\"sip:127.0.0.1\", response=\"00\", qop=auth, nc=00000001, cnonce=\"x\"\r\nContent-Length: 0\r\n\r\n",
    "OPTIONS sip:127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx3\r\nf: <sip:a@b>;tag=3\r\nt: <sip:c@d>\r\ni: g3\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n",
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKnone\r\nFrom: <sip:a@b>;tag=4\r\nTo: <sip:c@d>;tag=5\r\nCall-ID: g4\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    "BYE sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx5\r\nFrom: <sip:a@b>;tag=6\r\nTo: <sip:c@d>;tag=7\r\nCall-ID: g5\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
];

fn hostile_datagram(rng: &mut StdRng, i: u32) -> Vec<u8> {
    let seed = SEEDS[rng.gen_range(0..SEEDS.len())].as_bytes();
    let unique = |m: Vec<u8>| {
        // Distinct Call-IDs so every message is a new transaction, not a retransmission.
        String::from_utf8_lossy(&m)
            .replace(": g", &format!(": g{i}-"))
            .into_bytes()
    };
    match i % 4 {
        0 => (0..rng.gen_range(0..1500)).map(|_| rng.gen()).collect(),
        1 => unique(seed[..rng.gen_range(0..seed.len())].to_vec()),
        2 => {
            let mut m = unique(seed.to_vec());
            for _ in 0..rng.gen_range(1..8) {
                let at = rng.gen_range(0..m.len());
                m[at] = rng.gen();
            }
            m
        }
        _ => {
            let mut m = unique(seed.to_vec());
            let at = rng.gen_range(0..m.len());
            let junk: Vec<u8> = (0..rng.gen_range(1..300)).map(|_| rng.gen()).collect();
            m.splice(at..at, junk);
            m
        }
    }
}

#[test]
fn parser_survives_200k_mutations() {
    let mut rng = StdRng::seed_from_u64(7);
    let l = Limits::default();
    for i in 0..200_000 {
        let m = hostile_datagram(&mut rng, i);
        let _ = parse(&m, i % 2 == 0, &l);
    }
}

fn blast(server: SocketAddr, n: u32) -> u32 {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    let mut rng = StdRng::seed_from_u64(2026);
    let mut buf = [0u8; 65535];
    let mut answers = 0;
    for i in 0..n {
        let m = hostile_datagram(&mut rng, i);
        let _ = s.send_to(&m, server);
        while s.recv(&mut buf).is_ok() {
            answers += 1;
        }
        if i % 50 == 0 {
            // Pace a little so the kernel's socket buffer is not the thing under test.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_interleaved_with_real_calls() {
    let srv = start(None, |_| {}).await;
    let a1 = agent(&srv, "1001", "agent_answer.xml", 5, true).await;
    let a3 = agent(&srv, "1003", "agent_answer.xml", 5, true).await;
    let calls = caller(&srv, "caller.xml", "100", 800, 10);
    let server = srv.sip();
    let answers = tokio::task::spawn_blocking(move || blast(server, 10_000))
        .await
        .unwrap();
    calls.success(Duration::from_secs(60)).await;
    a1.success(Duration::from_secs(20)).await;
    a3.success(Duration::from_secs(20)).await;
    let s = srv.wait_idle().await;
    assert!(s.status.sip.received >= 10_000, "{:?}", s.status.sip);
    assert!(
        s.status.sip.rejected > 1000,
        "malformed requests answered with 4xx: {:?}",
        s.status.sip
    );
    assert!(
        answers > 1000,
        "acd kept answering during the blast: {answers}"
    );
    assert_eq!(TestServer::agent_state(&s, "1001"), "Idle");
    assert_eq!(TestServer::agent_state(&s, "1003"), "Idle");
}
