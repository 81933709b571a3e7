//! Floods from one source against a running server over real sockets: the per-source budget
//! answers 503 + Retry-After, then goes silent; trusted peers are never limited; one source
//! cannot hold more than its share of TCP connections. Each cap shows on /api/status.

mod common;

use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn options(n: usize, port: u16, transport: &str) -> String {
    format!(
        "OPTIONS sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bKflood{n}\r\nFrom: <sip:scanner@x>;tag=f{n}\r\nTo: <sip:acd@127.0.0.1>\r\nCall-ID: flood-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Sends `n` OPTIONS at once from one socket; returns the answers' status lines and whether
/// every 503 carried Retry-After.
async fn burst(srv: &TestServer, n: usize) -> (Vec<String>, bool) {
    let sock = UdpSocket::bind(("127.0.0.1", ports(1))).await.unwrap();
    let port = sock.local_addr().unwrap().port();
    for i in 0..n {
        sock.send_to(options(i, port, "UDP").as_bytes(), srv.sip())
            .await
            .unwrap();
    }
    let mut buf = [0u8; 4096];
    let (mut lines, mut retry_after) = (Vec::new(), true);
    while let Ok(Ok(len)) =
        tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await
    {
        let text = String::from_utf8_lossy(&buf[..len]).to_string();
        let first = text.lines().next().unwrap_or("").to_string();
        if first.starts_with("SIP/2.0 503") && !text.contains("\r\nRetry-After: 5\r\n") {
            retry_after = false;
        }
        lines.push(first);
    }
    (lines, retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_over_its_budget_gets_503_then_silence() {
    let srv = start(None, |c| {
        c.sip.trusted.clear();
        c.sip.options_per_s = 10;
        c.sip.flood_drop_factor = 3;
    })
    .await;
    let (lines, retry_after) = burst(&srv, 60).await;
    let ok = lines
        .iter()
        .filter(|l| l.starts_with("SIP/2.0 200"))
        .count();
    let busy = lines
        .iter()
        .filter(|l| l.starts_with("SIP/2.0 503"))
        .count();
    assert_eq!(
        (ok, busy, lines.len()),
        (10, 20, 30),
        "10 answered, 20 told to come back, 30 not answered: {lines:?}"
    );
    assert!(retry_after, "every 503 says when to come back");
    let s = srv.status().await;
    let b = &s.status.sip.budget;
    let options = acd::sip::budget::Class::Options as usize;
    assert_eq!((b.refused[options], b.dropped[options]), (20, 30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_peer_is_never_budgeted() {
    let srv = start(None, |c| c.sip.options_per_s = 10).await; // loopback is trusted here
    let (lines, _) = burst(&srv, 60).await;
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("SIP/2.0 200"))
            .count(),
        60,
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_cannot_hold_more_than_its_tcp_connections() {
    let srv = start(None, |c| {
        c.sip.trusted.clear();
        c.sip.tcp_max_per_source = 2;
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(TcpStream::connect(srv.sip()).await.unwrap());
    }
    // The third is closed at once by acd.
    let mut third = TcpStream::connect(srv.sip()).await.unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("closed, not left hanging")
        .unwrap_or(0);
    assert_eq!(n, 0, "the third connection is closed");
    // The first two still work.
    for (i, s) in open.iter_mut().enumerate() {
        let port = s.local_addr().unwrap().port();
        s.write_all(options(i, port, "TCP").as_bytes())
            .await
            .unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("answered")
            .unwrap();
        assert!(
            buf[..n].starts_with(b"SIP/2.0 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    let s = srv.status().await;
    assert_eq!(s.tcp_refused_per_source, 1);
    // A connection that closes gives its slot back.
    drop(open.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut c = TcpStream::connect(srv.sip()).await.unwrap();
        let port = c.local_addr().unwrap().port();
        c.write_all(options(9, port, "TCP").as_bytes())
            .await
            .unwrap();
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf)).await {
            if n > 0 {
                again = Some(n);
                break;
            }
        }
    }
    assert!(
        again.is_some(),
        "a slot freed by a closed connection is usable again"
    );
}
