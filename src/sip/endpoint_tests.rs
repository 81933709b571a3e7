//! Overload shedding at the endpoint: what a request that waited too long for the core gets.

use super::*;
use crate::sip::transaction::Transport;

fn peer() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "127.0.0.1:5000".parse().unwrap(),
    }
}

fn invite(branch: &str) -> String {
    format!(
        "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bK{branch}\r\n\
         From: <sip:caller@x>;tag=a\r\nTo: <sip:100@x>\r\nCall-ID: {branch}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:caller@127.0.0.1:5000>\r\nContent-Length: 0\r\n\r\n"
    )
}

fn answers(ep: &mut Endpoint) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(t) = ep.poll_transmit() {
        out.push(String::from_utf8_lossy(&t.data).into_owned());
    }
    out
}

#[test]
fn a_shed_invite_gets_503_with_retry_after_and_starts_nothing() {
    let now = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig::default(), now, 1_000_000);
    ep.shed(now, peer(), invite("shed1").as_bytes(), 7);
    let out = answers(&mut ep);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].starts_with("SIP/2.0 503 "), "{}", out[0]);
    assert!(out[0].contains("\r\nRetry-After: 7\r\n"), "{}", out[0]);
    assert!(out[0].contains("branch=z9hG4bKshed1"), "{}", out[0]);
    assert_eq!(ep.stats.shed, 1);
    assert_eq!(ep.tx.len(), 0, "no transaction is kept for a shed request");
    assert!(
        ep.poll_event().is_none(),
        "the call layer never hears of it"
    );
}

#[test]
fn a_retransmission_of_a_running_transaction_is_not_shed() {
    let now = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig::default(), now, 1_000_000);
    ep.handle_input(now, peer(), invite("run1").as_bytes());
    let first = answers(&mut ep);
    assert!(first.iter().all(|m| !m.starts_with("SIP/2.0 503")));
    while ep.poll_event().is_some() {}
    // Its retransmission waited too long in the queue, but it belongs to a live transaction.
    ep.shed(now, peer(), invite("run1").as_bytes(), 7);
    let again = answers(&mut ep);
    assert!(
        again.iter().all(|m| !m.starts_with("SIP/2.0 503")),
        "{again:?}"
    );
    assert_eq!(ep.stats.shed, 0);
}

#[test]
fn shedding_never_answers_an_ack_or_garbage_with_503() {
    let now = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig::default(), now, 1_000_000);
    let ack = invite("ack1")
        .replace("INVITE sip", "ACK sip")
        .replace("1 INVITE", "1 ACK");
    ep.shed(now, peer(), ack.as_bytes(), 7);
    ep.shed(now, peer(), b"\xff\xfe garbage", 7);
    assert!(answers(&mut ep)
        .iter()
        .all(|m| !m.starts_with("SIP/2.0 503")));
    assert_eq!(ep.stats.shed, 0);
}

#[test]
fn a_full_transaction_table_refuses_new_calls_but_not_hang_ups() {
    let now = Instant::now();
    let cfg = EndpointConfig {
        max_transactions: 1,
        ..EndpointConfig::default()
    };
    let mut ep = Endpoint::new(cfg, now, 1_000_000);
    ep.handle_input(now, peer(), invite("full1").as_bytes());
    answers(&mut ep);
    while ep.poll_event().is_some() {}
    ep.handle_input(now, peer(), invite("full2").as_bytes());
    let refused = answers(&mut ep);
    assert!(ep.poll_event().is_none(), "a refused INVITE starts nothing");
    assert!(refused[0].starts_with("SIP/2.0 503"), "{refused:?}");
    let bye = invite("full3")
        .replace("INVITE sip", "BYE sip")
        .replace("1 INVITE", "2 BYE")
        .replace("To: <sip:100@x>", "To: <sip:100@x>;tag=ours");
    ep.handle_input(now, peer(), bye.as_bytes());
    assert!(ep.poll_event().is_some(), "the BYE reaches the call layer");
    assert!(answers(&mut ep)
        .iter()
        .all(|m| !m.starts_with("SIP/2.0 503")));
    assert_eq!(ep.stats.transactions_full, 1);
}

#[test]
fn responses_tell_the_client_its_source_address_rport_and_received() {
    let now = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig::default(), now, 1_000_000);
    let options = |via: &str, branch: &str| {
        format!(
            "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{branch}\r\n\
             From: <sip:a@x>;tag=a\r\nTo: <sip:b@x>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    // A phone behind NAT names its private address and asks for rport (RFC 3581).
    ep.handle_input(
        now,
        peer(),
        options("192.168.1.9:5060;rport", "o1").as_bytes(),
    );
    let ok = answers(&mut ep).remove(0);
    assert!(
        ok.contains(
            "Via: SIP/2.0/UDP 192.168.1.9:5060;rport=5000;branch=z9hG4bKo1;received=127.0.0.1\r\n"
        ),
        "{ok}"
    );
    // No rport: received only where the sent-by is not where it came from (RFC 3261 §18.2.1).
    ep.handle_input(now, peer(), options("10.0.0.1:5060", "o2").as_bytes());
    let ok = answers(&mut ep).remove(0);
    assert!(
        ok.contains("branch=z9hG4bKo2;received=127.0.0.1\r\n"),
        "{ok}"
    );
    ep.handle_input(now, peer(), options("127.0.0.1:5000", "o3").as_bytes());
    let ok = answers(&mut ep).remove(0);
    assert!(ok.contains(";branch=z9hG4bKo3\r\n"), "{ok}");
}
