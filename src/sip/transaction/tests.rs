//! Every timer A–M (and the UAS 2xx retransmission) driven by a fake clock.

use super::*;
use crate::sip::msg::{parse, Limits, Message};

fn req(method: &str, branch: &str) -> Request {
    let s = format!(
        "{method} sip:100@acd SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\nFrom: <sip:a@x>;tag=f\r\nTo: <sip:100@acd>\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    );
    match parse(s.as_bytes(), false, &Limits::default()) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn udp() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "127.0.0.1:5070".parse().unwrap(),
    }
}

fn tcp() -> Peer {
    Peer {
        transport: Transport::Tcp,
        ..udp()
    }
}

fn drain(l: &mut TransactionLayer) -> Vec<Bytes> {
    std::iter::from_fn(|| l.poll_transmit())
        .map(|t| t.data)
        .collect()
}

fn starts(b: &Bytes, p: &str) -> bool {
    b.starts_with(p.as_bytes())
}

/// Runs the clock to `until`, firing timers at their deadlines; returns send instants (ms).
fn run(l: &mut TransactionLayer, t0: Instant, until: Duration) -> Vec<u128> {
    let mut sent = Vec::new();
    while let Some(at) = l.poll_timeout() {
        if at > t0 + until {
            break;
        }
        l.handle_timeout(at);
        for _ in drain(l) {
            sent.push((at - t0).as_millis());
        }
    }
    sent
}

#[test]
fn timer_a_doubles_and_b_times_out() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let key = l.send_request(t0, &req("INVITE", "z9hG4bKa"), udp());
    assert_eq!(drain(&mut l).len(), 1);
    let sent = run(&mut l, t0, Duration::from_secs(40));
    assert_eq!(sent, vec![500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(l.poll_event(), Some(TxEvent::Timeout { key }));
    assert!(l.is_empty());
}

#[test]
fn timer_e_caps_at_t2_and_f_times_out() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let key = l.send_request(t0, &req("OPTIONS", "z9hG4bKe"), udp());
    drain(&mut l);
    let sent = run(&mut l, t0, Duration::from_secs(40));
    assert_eq!(&sent[..5], &[500, 1500, 3500, 7500, 11500]);
    assert_eq!(*sent.last().unwrap(), 31500);
    assert_eq!(l.poll_event(), Some(TxEvent::Timeout { key }));
    assert!(l.is_empty());
}

fn response_to(r: &Request, code: u16) -> Response {
    Response::to(r, code, Some("t"))
}

#[test]
fn timer_d_absorbs_retransmitted_errors_then_ends() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let inv = req("INVITE", "z9hG4bKd");
    l.send_request(t0, &inv, udp());
    drain(&mut l);
    assert!(l.on_response(t0, response_to(&inv, 486)));
    let out = drain(&mut l);
    assert!(starts(&out[0], "ACK sip:100@acd"), "ACK sent for 486");
    assert!(
        matches!(l.poll_event(), Some(TxEvent::Response { response, .. }) if response.code == 486)
    );
    // A retransmitted 486 is answered with the same ACK, not passed up.
    l.on_response(t0 + Duration::from_secs(1), response_to(&inv, 486));
    assert_eq!(drain(&mut l).len(), 1);
    assert_eq!(l.poll_event(), None);
    l.handle_timeout(t0 + Duration::from_millis(31_999));
    assert_eq!(l.len(), 1);
    l.handle_timeout(t0 + Duration::from_secs(32));
    assert!(l.is_empty(), "timer D = 32 s");
}

#[test]
fn timer_m_keeps_accepted_for_2xx_retransmits() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let inv = req("INVITE", "z9hG4bKm");
    l.send_request(t0, &inv, udp());
    l.on_response(t0, response_to(&inv, 180));
    l.on_response(t0, response_to(&inv, 200));
    l.on_response(t0 + Duration::from_secs(1), response_to(&inv, 200));
    let codes: Vec<u16> = std::iter::from_fn(|| l.poll_event())
        .map(|e| match e {
            TxEvent::Response { response, .. } => response.code,
            _ => 0,
        })
        .collect();
    assert_eq!(
        codes,
        vec![180, 200, 200],
        "RFC 6026: 2xx retransmits reach the TU"
    );
    l.handle_timeout(t0 + Duration::from_millis(31_999));
    assert_eq!(l.len(), 1);
    l.handle_timeout(t0 + Duration::from_secs(32));
    assert!(l.is_empty(), "timer M = 64*T1");
}

#[test]
fn timer_k_after_non_invite_final() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let bye = req("BYE", "z9hG4bKk");
    l.send_request(t0, &bye, udp());
    l.on_response(t0, response_to(&bye, 200));
    l.handle_timeout(t0 + Duration::from_millis(4_999));
    assert_eq!(l.len(), 1);
    l.handle_timeout(t0 + Duration::from_secs(5));
    assert!(l.is_empty(), "timer K = T4");
}

#[test]
fn server_invite_sends_trying_and_timer_g_h() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let inv = req("INVITE", "z9hG4bKg");
    let Incoming::New(key) = l.on_request(t0, &inv, udp()) else {
        panic!()
    };
    assert!(starts(&drain(&mut l)[0], "SIP/2.0 100 Trying"));
    // Retransmitted INVITE gets the last provisional again.
    assert_eq!(l.on_request(t0, &inv, udp()), Incoming::Absorbed);
    assert!(starts(&drain(&mut l)[0], "SIP/2.0 100"));
    l.respond(t0, &key, &response_to(&inv, 486));
    drain(&mut l);
    let sent = run(&mut l, t0, Duration::from_secs(40));
    assert_eq!(
        &sent[..5],
        &[500, 1500, 3500, 7500, 11500],
        "timer G capped at T2"
    );
    assert_eq!(l.poll_event(), Some(TxEvent::NoAckForError { key }));
    assert!(l.is_empty(), "timer H = 64*T1");
}

#[test]
fn timer_i_after_ack() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let inv = req("INVITE", "z9hG4bKi");
    let Incoming::New(key) = l.on_request(t0, &inv, udp()) else {
        panic!()
    };
    l.respond(t0, &key, &response_to(&inv, 404));
    let mut ack = req("ACK", "z9hG4bKi");
    ack.core.cseq.seq = 1;
    assert_eq!(l.on_request(t0, &ack, udp()), Incoming::Absorbed);
    assert_eq!(l.state(&key), Some(State::Confirmed));
    drain(&mut l);
    assert!(
        run(&mut l, t0, Duration::from_secs(40)).is_empty(),
        "no G after ACK"
    );
    assert!(l.is_empty(), "timer I = T4");
}

#[test]
fn timer_j_absorbs_retransmits() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let opt = req("OPTIONS", "z9hG4bKj");
    let Incoming::New(key) = l.on_request(t0, &opt, udp()) else {
        panic!()
    };
    l.respond(t0, &key, &response_to(&opt, 200));
    drain(&mut l);
    assert_eq!(
        l.on_request(t0 + Duration::from_secs(2), &opt, udp()),
        Incoming::Absorbed
    );
    assert!(starts(&drain(&mut l)[0], "SIP/2.0 200"));
    l.handle_timeout(t0 + Duration::from_millis(31_999));
    assert_eq!(l.len(), 1);
    l.handle_timeout(t0 + Duration::from_secs(32));
    assert!(l.is_empty(), "timer J = 64*T1");
}

#[test]
fn timer_l_and_2xx_retransmission_until_ack() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let inv = req("INVITE", "z9hG4bKl");
    let Incoming::New(key) = l.on_request(t0, &inv, udp()) else {
        panic!()
    };
    l.respond(t0, &key, &response_to(&inv, 200));
    drain(&mut l);
    assert_eq!(l.state(&key), Some(State::Accepted));
    let sent = run(&mut l, t0, Duration::from_millis(7_600));
    assert_eq!(
        sent,
        vec![500, 1500, 3500, 7500],
        "2xx retransmitted at T1 doubling"
    );
    let mut ack = req("ACK", "z9hG4bKother");
    ack.core.cseq.seq = 1;
    // Without our To tag (a blind spoofer knows only the Call-ID it chose): no effect.
    assert_eq!(l.on_request(t0, &ack, udp()), Incoming::Absorbed);
    assert_eq!(run(&mut l, t0, Duration::from_millis(12_000)), vec![11500]);
    ack.core.to = response_to(&inv, 200).core.to;
    assert_eq!(l.on_request(t0, &ack, udp()), Incoming::Ack);
    assert!(
        run(&mut l, t0, Duration::from_secs(40)).is_empty(),
        "ACK stops 2xx retransmits"
    );
    assert_eq!(l.poll_event(), None);
    assert!(l.is_empty(), "timer L = 64*T1");
}

#[test]
fn unacknowledged_2xx_reports_ack_timeout() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let inv = req("INVITE", "z9hG4bKn");
    let Incoming::New(key) = l.on_request(t0, &inv, udp()) else {
        panic!()
    };
    l.respond(t0, &key, &response_to(&inv, 200));
    run(&mut l, t0, Duration::from_secs(40));
    assert_eq!(
        l.poll_event(),
        Some(TxEvent::AckTimeout {
            call_id: "c1".into(),
            cseq: 1
        })
    );
    assert!(l.is_empty());
}

#[test]
fn reliable_transport_has_no_retransmits_and_zero_waits() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    l.send_request(t0, &req("OPTIONS", "z9hG4bKt"), tcp());
    drain(&mut l);
    assert!(run(&mut l, t0, Duration::from_secs(31)).is_empty());
    let inv = req("INVITE", "z9hG4bKt2");
    let Incoming::New(key) = l.on_request(t0, &inv, tcp()) else {
        panic!()
    };
    l.respond(t0, &key, &response_to(&inv, 486));
    drain(&mut l);
    let mut ack = req("ACK", "z9hG4bKt2");
    ack.core.cseq.seq = 1;
    l.on_request(t0, &ack, tcp());
    l.handle_timeout(t0 + Duration::from_secs(40));
    assert!(l.is_empty());
}
