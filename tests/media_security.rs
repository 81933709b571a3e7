//! The relay against an attacker on the wire, with real SIPp peers on loopback: a stranger who
//! sprays acd's RTP port range during a bridged call receives nothing, injects nothing, and the
//! call's audio reaches the caller unchanged.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// An RTP packet with PCMA's payload type whose payload starts with `mark` and a counter.
fn frame(mark: u8, seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0xd5u8; 12 + 160];
    p[0] = 0x80;
    p[1] = 8;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p[12] = mark;
    p[13..15].copy_from_slice(&seq.to_be_bytes());
    p
}

/// An RFC 4733 event for `code` (payload type 101, as the caller negotiated).
fn digit(seq: u16, ts: u32, code: u8) -> Vec<u8> {
    let mut p = vec![0u8; 16];
    p[0] = 0x80;
    p[1] = 101;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p[8..12].copy_from_slice(&0x5bad_u32.to_be_bytes());
    p[12] = code;
    p[13] = 0x80 | 10;
    p[14..16].copy_from_slice(&800u16.to_be_bytes());
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_spraying_the_rtp_ports_hears_nothing_and_changes_nothing() {
    let srv = start(None, |_| {}).await;
    let (low, high) = srv.cfg.rtp_range().unwrap();
    let agent = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    // The caller's phone is a socket of ours: we send its audio and hear what acd relays back
    // (the SIPp agent echoes what it gets).
    let phone = Arc::new(UdpSocket::bind(("127.0.0.1", ports(2))).await.unwrap());
    let rtp_port = phone.local_addr().unwrap().port().to_string();
    let mut events = srv.running.core.events.subscribe();
    let caller = sipp(
        srv.sip(),
        srv.dir.path(),
        "caller_listens.xml",
        &[
            "-s",
            "100",
            "-key",
            "caller",
            "+15551234567",
            "-key",
            "rtp_port",
            &rtp_port,
            "-d",
            "5000",
            "-m",
            "1",
        ],
    );
    srv.wait_for("agent busy", Duration::from_secs(10), |s| {
        TestServer::agent_state(s, "1001") == "Busy(1)"
    })
    .await;
    // acd's caller-side port is the one its 200 named; it plays hold music to us from it.
    let mut buf = [0u8; 2048];
    let (_, acd_caller_side) =
        tokio::time::timeout(Duration::from_secs(5), phone.recv_from(&mut buf))
            .await
            .expect("acd sends to the caller once bridged or holding")
            .unwrap();
    // The caller talks: a frame every 20 ms, each marked 'C' with its number.
    let talking = Arc::new(AtomicBool::new(true));
    let talker = {
        let (phone, talking) = (phone.clone(), talking.clone());
        tokio::spawn(async move {
            let mut seq = 0u16;
            while talking.load(Ordering::Relaxed) {
                let _ = phone
                    .send_to(&frame(b'C', seq, 0xc0ffee), acd_caller_side)
                    .await;
                seq = seq.wrapping_add(1);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // Both legs lock onto their peers before the attack (the attack is on a call in progress).
    srv.wait_for("both legs learnt", Duration::from_secs(5), |s| {
        s.media.learned >= 2
    })
    .await;
    // The stranger sprays every port of the range with well-formed audio and digits.
    let stranger = Arc::new(UdpSocket::bind(("127.0.0.1", ports(1))).await.unwrap());
    let sprayer = {
        let (stranger, talking) = (stranger.clone(), talking.clone());
        tokio::spawn(async move {
            let mut seq = 0u16;
            while talking.load(Ordering::Relaxed) {
                for port in low..=high {
                    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                    let _ = stranger.send_to(&frame(b'S', seq, 0x5bad), to).await;
                    let _ = stranger
                        .send_to(&digit(seq, u32::from(seq) * 800, 5), to)
                        .await;
                }
                seq = seq.wrapping_add(1);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // Everything the caller hears until the call ends.
    let mut heard: Vec<Vec<u8>> = Vec::new();
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), phone.recv(&mut buf)).await {
        if n > 14 {
            heard.push(buf[12..n].to_vec());
        }
    }
    talking.store(false, Ordering::Relaxed);
    let _ = (talker.await, sprayer.await);
    caller.success(Duration::from_secs(20)).await;
    agent.success(Duration::from_secs(10)).await;
    let s = srv.wait_idle().await;

    // The stranger got nothing back from any port.
    let mut got = 0;
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(100), stranger.recv(&mut buf)).await
    {
        got += 1;
    }
    assert_eq!(got, 0, "a stranger received {got} packets of the call");
    // What the caller heard back through the agent is their own audio, in order, and none of
    // the stranger's.
    let echoed: Vec<u16> = heard
        .iter()
        .filter(|p| p[0] == b'C')
        .map(|p| u16::from_be_bytes([p[1], p[2]]))
        .collect();
    assert!(
        !heard.iter().any(|p| p[0] == b'S'),
        "the stranger's audio reached the caller"
    );
    assert!(
        echoed.len() > 20,
        "the caller heard their echo: {}",
        echoed.len()
    );
    assert!(
        echoed.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates: {echoed:?}"
    );
    // The stranger's digits were never taken.
    let mut digits = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let acd::events::Event::Dtmf { digit, .. } = ev {
            digits.push(digit);
        }
    }
    assert!(digits.is_empty(), "injected digits: {digits:?}");
    assert!(
        s.media.dropped(acd::media::bridge::DropReason::Stranger) > 100,
        "{:?}",
        s.media
    );
    assert!(s.media.relayed_to_agent > 20 && s.media.relayed_to_caller > 20);
}

/// A spoofed INVITE (never ACKed) whose SDP names a victim: acd sends the victim no media,
/// rings no agent, answers the source only with RFC 3261's 2xx retransmissions (no BYE), and
/// returns the ports when the ACK never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_that_is_never_acked_amplifies_nothing_and_rings_no_one() {
    // T1 = 50 ms: the ACK wait (64 × T1) ends in 3.2 s instead of 32 s.
    let srv = start(None, |c| c.sip.t1_ms = 50).await;
    let agent = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    let free = srv.status().await.status.free_rtp_ports;
    let victim = UdpSocket::bind(("127.0.0.1", ports(2))).await.unwrap();
    let vport = victim.local_addr().unwrap().port();
    let spoofer = UdpSocket::bind(("127.0.0.1", ports(1))).await.unwrap();
    let sport = spoofer.local_addr().unwrap().port();
    let sdp = format!("v=0\r\no=v 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {vport} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n");
    let invite = format!(
        "INVITE sip:100@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{sport};branch=z9hG4bKspoof1\r\nFrom: <sip:+15551234567@x>;tag=s1\r\nTo: <sip:100@{sip}>\r\nCall-ID: spoof-1\r\nCSeq: 1 INVITE\r\nContact: <sip:x@127.0.0.1:{sport}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len(),
        sip = srv.sip()
    );
    spoofer.send_to(invite.as_bytes(), srv.sip()).await.unwrap();
    // The 2xx retransmissions end at 64 × T1; then the call is gone.
    srv.wait_for("the call given up", Duration::from_secs(10), |s| {
        s.status.totals.refused == 1 && s.status.calls == 0
    })
    .await;
    let mut buf = [0u8; 4096];
    let mut to_source = Vec::new();
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(200), spoofer.recv(&mut buf)).await
    {
        to_source.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    let mut to_victim = 0;
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(200), victim.recv(&mut buf)).await
    {
        to_victim += 1;
    }
    assert_eq!(
        to_victim, 0,
        "media sent to an address that never proved itself"
    );
    assert!(
        to_source
            .iter()
            .all(|m| m.starts_with("SIP/2.0 100") || m.starts_with("SIP/2.0 200")),
        "only the 100 and the 2xx retransmissions: {to_source:#?}"
    );
    assert!(to_source.iter().any(|m| m.starts_with("SIP/2.0 200")));
    let s = srv.status().await;
    assert_eq!(TestServer::agent_state(&s, "1001"), "Idle", "no agent rung");
    assert_eq!(s.status.totals.arrived, 0, "never announced or queued");
    assert_eq!(s.status.free_rtp_ports, free, "ports returned");
    drop(agent);
}
