//! RFC 4475 and RFC 5118 torture messages sent over UDP (and TCP where framing matters) to a
//! running acd; each gets the answer tests/data/sip-torture/EXPECTED.tsv gives (copied from shared/sip-torture), and the server
//! answers a valid OPTIONS after every one.

mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What must come back.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Parsed and processed: the final answer is this application-level code.
    Accept(u16),
    /// Rejected with exactly this code.
    Code(u16),
    /// A response we cannot match or parse: nothing comes back.
    Discard,
}
use Expect::*;

/// Our expected outcome per file, each consistent with the EXPECTED.tsv column quoted beside it.
fn table() -> HashMap<&'static str, Expect> {
    HashMap::from([
        // accept (parse): in-dialog INVITE for no dialog of ours → 481
        ("wsinv.dat", Accept(481)),
        ("intmeth.dat", Code(501)),   // unknown method → 501
        ("esc01.dat", Accept(404)),   // accepted; not a number in the dialplan
        ("escnull.dat", Accept(401)), // REGISTER accepted → digest challenge
        ("esc02.dat", Accept(501)),   // RE%47IST%45R is a new method, not REGISTER
        ("lwsdisp.dat", Accept(200)),
        ("longreq.dat", Accept(404)),
        ("dblreq.dat", Accept(401)), // REGISTER; trailing INVITE octets discarded
        ("semiuri.dat", Accept(200)),
        ("transports.dat", Accept(200)),
        ("mpart01.dat", Accept(405)), // MESSAGE parsed (binary body); we don't take MESSAGE
        ("unreason.dat", Discard),    // a well-formed response matching nothing
        ("noreason.dat", Discard),
        ("badinv01.dat", Code(400)),
        ("clerr.dat", Code(400)),
        ("ncl.dat", Code(400)),
        ("scalar02.dat", Code(400)),
        ("scalarlg.dat", Discard),
        ("quotbal.dat", Code(400)),
        ("ltgtruri.dat", Code(400)),
        ("lwsruri.dat", Code(400)),
        ("lwsstart.dat", Accept(404)), // liberal: extra SP accepted
        ("trws.dat", Accept(200)),     // liberal: trailing SP accepted
        ("escruri.dat", Code(400)),
        ("baddate.dat", Accept(404)), // Date ignored
        ("regbadct.dat", Code(400)),
        ("badaspec.dat", Code(400)),
        ("baddn.dat", Code(400)),
        ("badvers.dat", Code(505)),
        ("mismatch01.dat", Code(400)),
        ("mismatch02.dat", Code(501)),
        ("bigcode.dat", Discard),
        ("badbranch.dat", Accept(200)), // processed with RFC 2543 matching
        ("insuf.dat", Code(400)),
        ("unkscm.dat", Code(416)),
        ("novelsc.dat", Code(416)),
        ("unksm2.dat", Code(400)), // registrar: To must be a SIP AOR
        ("bext01.dat", Code(420)),
        ("invut.dat", Code(415)),
        ("regaut01.dat", Code(401)), // our own Digest challenge
        ("multi01.dat", Code(400)),
        ("mcl01.dat", Code(400)),
        ("bcast.dat", Discard),
        ("zeromf.dat", Accept(200)), // endpoint: Max-Forwards 0 processed normally
        ("cparam01.dat", Accept(401)),
        ("cparam02.dat", Accept(401)),
        ("regescrt.dat", Accept(401)),
        ("sdp01.dat", Code(406)),
        ("inv2543.dat", Accept(404)),
        // RFC 5118
        ("ipv6-good", Accept(401)),
        ("ipv6-bad", Code(400)),
        ("port-ambiguous", Accept(401)),
        ("port-unambiguous", Accept(401)),
        ("via-received-param-with-delim", Accept(481)),
        ("via-received-param-no-delim", Accept(200)),
        ("ipv6-in-sdp", Accept(404)),
        ("mult-ip-in-header", Accept(481)),
        ("mult-ip-in-sdp", Accept(404)),
        ("ipv4-mapped-ipv6", Accept(404)),
        ("ipv6-bug-abnf-3-colons", Accept(200)),
        ("ipv6-correct-abnf-2-colons", Accept(200)),
    ])
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sip-torture")
}

/// RFC 5118 files use bare LF, some lack the blank line, some declare a wrong Content-Length:
/// we repair exactly those defects (as the corpus README allows) and nothing else.
fn repair_5118(raw: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = match text.find("\n\n") {
        Some(i) => (text[..i].to_string(), text[i + 2..].to_string()),
        None => (text.trim_end_matches('\n').to_string(), String::new()),
    };
    let body = body.replace('\n', "\r\n");
    let head: Vec<String> = head
        .lines()
        .map(|l| {
            if l.to_ascii_lowercase().starts_with("content-length") {
                format!("Content-Length: {}", body.len())
            } else {
                l.to_string()
            }
        })
        .collect();
    format!("{}\r\n\r\n{}", head.join("\r\n"), body).into_bytes()
}

/// The Call-ID of a raw message (long or compact form), to tell its answers from stale ones.
fn call_id_of(msg: &[u8]) -> Option<String> {
    String::from_utf8_lossy(msg).lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        let n = n.trim().to_ascii_lowercase();
        (n == "call-id" || n == "i").then(|| v.trim().to_string())
    })
}

/// Sends `msg` from `s`; returns every status code answering it (same Call-ID) within `wait`,
/// stopping shortly after the first final one. One socket serves the whole run, because some
/// RFC 5118 files are byte-for-byte the same transaction and are answered as retransmissions.
fn exchange(s: &UdpSocket, server: SocketAddr, msg: &[u8], wait: Duration) -> Vec<u16> {
    let want = call_id_of(msg);
    s.send_to(msg, server).unwrap();
    let mut codes = Vec::new();
    let mut end = Instant::now() + wait;
    let mut buf = [0u8; 65535];
    while Instant::now() < end {
        let left = end
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        s.set_read_timeout(Some(left)).unwrap();
        let Ok(n) = s.recv(&mut buf) else { break };
        if call_id_of(&buf[..n]) != want {
            continue; // a retransmission answering an earlier file
        }
        let line = String::from_utf8_lossy(&buf[..n.min(64)]).to_string();
        let code: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if code >= 200 && !codes.iter().any(|c| *c >= 200) {
            end = Instant::now() + Duration::from_millis(200);
        }
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

fn options() -> Vec<u8> {
    let branch: u64 = rand::random();
    format!("OPTIONS sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{branch:x}\r\nFrom: <sip:probe@test>;tag=1\r\nTo: <sip:acd@127.0.0.1>\r\nCall-ID: probe-{branch:x}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_torture_message_gets_the_expected_answer_over_udp() {
    let srv = common::start(None, |_| {}).await;
    let server = srv.sip();
    let table = table();
    let tsv = std::fs::read_to_string(corpus().join("EXPECTED.tsv"))
        .expect("tests/data/sip-torture present");
    let mut failures = Vec::new();
    let mut checked = 0;
    let socket = std::sync::Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (rfc, file, expected_text) = (cols[0], cols[2], cols[4]);
        if file == "test.dat" {
            continue;
        }
        let exp = *table
            .get(file)
            .unwrap_or_else(|| panic!("{file} is in EXPECTED.tsv but not in our table"));
        let path = corpus().join(format!("rfc{rfc}")).join(file);
        let raw = std::fs::read(&path).unwrap();
        let msg = if rfc == "5118" {
            repair_5118(&raw)
        } else {
            raw
        };
        let before = srv.status().await.status.sip;
        let sock = socket.clone();
        let codes = tokio::task::spawn_blocking(move || {
            exchange(&sock, server, &msg, Duration::from_millis(600))
        })
        .await
        .unwrap();
        let finals: Vec<u16> = codes.iter().copied().filter(|c| *c >= 200).collect();
        let ok = match exp {
            Accept(c) | Code(c) => finals == vec![c],
            Discard => {
                let after = srv.status().await.status.sip;
                codes.is_empty()
                    && (after.dropped + after.stray_responses)
                        > (before.dropped + before.stray_responses)
            }
        };
        if !ok {
            failures.push(format!(
                "{file}: expected {exp:?} ({expected_text}), got {codes:?}"
            ));
        }
        let sock = socket.clone();
        let probe = tokio::task::spawn_blocking(move || {
            exchange(&sock, server, &options(), Duration::from_secs(2))
        })
        .await
        .unwrap();
        assert_eq!(
            probe,
            vec![200],
            "server must still answer OPTIONS after {file}"
        );
        checked += 1;
    }
    assert_eq!(
        checked, 61,
        "49 RFC 4475 files (test.dat aside) + 12 RFC 5118 files"
    );
    assert!(
        failures.is_empty(),
        "torture failures:\n{}",
        failures.join("\n")
    );
}

async fn tcp_send(server: SocketAddr, msg: &[u8], wait: Duration) -> (String, bool) {
    let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
    s.write_all(msg).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let mut got = String::new();
    let end = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => return (got, false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_framing_rules() {
    let srv = common::start(None, |_| {}).await;
    let dir = corpus().join("rfc4475");
    // A valid OPTIONS over TCP is answered on the same connection.
    let opt = String::from_utf8(options())
        .unwrap()
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let (got, closed) = tcp_send(srv.sip(), opt.as_bytes(), Duration::from_millis(800)).await;
    assert!(got.starts_with("SIP/2.0 200 OK\r\n"), "{got}");
    assert!(!closed);
    // Negative or duplicated Content-Length: the stream cannot be framed, the connection closes.
    for f in ["ncl.dat", "mcl01.dat"] {
        let (got, closed) = tcp_send(
            srv.sip(),
            &std::fs::read(dir.join(f)).unwrap(),
            Duration::from_secs(2),
        )
        .await;
        assert!(
            closed && got.is_empty(),
            "{f}: connection must close without an answer, got {got:?}"
        );
    }
    // Content-Length larger than what was sent: wait for the rest, answer nothing yet.
    let (got, closed) = tcp_send(
        srv.sip(),
        &std::fs::read(dir.join("clerr.dat")).unwrap(),
        Duration::from_millis(800),
    )
    .await;
    assert!(
        !closed && got.is_empty(),
        "clerr over TCP waits for more bytes, got {got:?}"
    );
    // A CRLFCRLF keep-alive is answered with CRLF (RFC 5626 §3.5.1).
    let (got, _) = tcp_send(srv.sip(), b"\r\n\r\n", Duration::from_millis(500)).await;
    assert_eq!(got, "\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connection_limit_and_idle_timeout() {
    let srv = common::start(None, |c| {
        c.sip.tcp_max_connections = 2;
        c.sip.tcp_idle_timeout_s = 1;
    })
    .await;
    let a = tokio::net::TcpStream::connect(srv.sip()).await.unwrap();
    let b = tokio::net::TcpStream::connect(srv.sip()).await.unwrap();
    let mut c = tokio::net::TcpStream::connect(srv.sip()).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf)).await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "third connection over the limit is closed"
    );
    // Idle connections are closed after tcp_idle_timeout_s, which frees their slots.
    for mut s in [a, b] {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        assert!(
            matches!(n, Ok(Ok(0)) | Ok(Err(_))),
            "idle connection closed"
        );
    }
    let opt = String::from_utf8(options())
        .unwrap()
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let (got, _) = tcp_send(srv.sip(), opt.as_bytes(), Duration::from_millis(800)).await;
    assert!(
        got.starts_with("SIP/2.0 200 OK"),
        "a slot is free again: {got}"
    );
}
