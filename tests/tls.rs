//! Encrypted transports against real peers: baresip registers and takes a call over SIP/TLS
//! with SRTP (SDES) media;
//! a rustls client checks the certificate acd presents and that a reload swaps it; headless
//! Chromium logs in to the desk over HTTPS (WebSocket included), and every answer carries HSTS.

mod common;

use common::cdp::Browser;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// A self-signed certificate for 127.0.0.1 (openssl), as (cert, key) paths under `dir`.
fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let st = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={name}"), "-addext"])
        .args(["subjectAltName=IP:127.0.0.1", "-addext"])
        // An end-entity certificate (rustls refuses a CA one as a server's own).
        .args(["basicConstraints=critical,CA:FALSE", "-addext"])
        .args(["extendedKeyUsage=serverAuth", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed (apt-get install openssl)");
    assert!(st.success(), "openssl made a certificate");
    (cert, key)
}

/// acd with SIP over TLS and the desk over HTTPS, both with one fresh certificate, and where
/// that certificate's files are (kept alive with the returned directory).
struct Tls {
    srv: TestServer,
    cert: PathBuf,
    key: PathBuf,
    _files: tempfile::TempDir,
}

async fn tls_server() -> Tls {
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(files.path(), "acd-test");
    let srv = start(None, |c| {
        c.sip.tls_listen = Some("127.0.0.1:0".parse().unwrap());
        c.http.https = true;
        c.tls.cert = Some(cert.clone());
        c.tls.key = Some(key.clone());
    })
    .await;
    Tls {
        srv,
        cert,
        key,
        _files: files,
    }
}

/// A TLS client that trusts exactly `ca`.
fn connector(ca: &Path) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

async fn tls_connect(
    addr: std::net::SocketAddr,
    ca: &Path,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    connector(ca)
        .connect(name, tcp)
        .await
        .expect("TLS handshake with a certificate the client trusts")
}

async fn options_over_tls(addr: std::net::SocketAddr, ca: &Path) -> String {
    let mut s = tls_connect(addr, ca).await;
    let port = s.get_ref().0.local_addr().unwrap().port();
    let options = format!(
        "OPTIONS sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bKtls{port}\r\n\
         From: <sip:probe@127.0.0.1>;tag=t\r\nTo: <sip:acd@127.0.0.1>\r\nCall-ID: tls-{port}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(options.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("an answer over TLS")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

async fn refused(addr: std::net::SocketAddr, ca: &Path) -> bool {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    connector(ca).connect(name, tcp).await.is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_over_tls_answers_with_the_certificate_and_a_reload_swaps_it() {
    let t = tls_server().await;
    let addr = t.srv.running.sip_tls_addr.expect("SIP TLS listens");
    let answer = options_over_tls(addr, &t.cert).await;
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    assert!(answer.contains("SIP/2.0/TLS"), "Via kept: {answer}");

    // A client that trusts only another certificate refuses acd's.
    let dir = t.srv.dir.path();
    let old = dir.join("old.pem");
    std::fs::copy(&t.cert, &old).unwrap();
    let (other, other_key) = make_cert(dir, "renewed");
    assert!(refused(addr, &other).await);

    // Renewed files and a reload (what SIGHUP does): new connections get the new certificate.
    std::fs::copy(&other, &t.cert).unwrap();
    std::fs::copy(&other_key, &t.key).unwrap();
    assert_eq!(t.srv.running.certs.len(), 2, "SIP's and the desk's");
    for c in &t.srv.running.certs {
        c.reload().expect("the renewed files load");
    }
    assert!(options_over_tls(addr, &other)
        .await
        .starts_with("SIP/2.0 200"));
    assert!(refused(addr, &old).await, "the old certificate is gone");

    // A broken file is refused and the running certificate stays.
    std::fs::write(&t.cert, "not a certificate").unwrap();
    for c in &t.srv.running.certs {
        assert!(c.reload().is_err());
    }
    assert!(options_over_tls(addr, &other)
        .await
        .starts_with("SIP/2.0 200"));
}

/// baresip registers over TLS only; a SIPp caller (UDP) reaches it: the agent's INVITE goes
/// back on the phone's TLS connection, it answers, and audio is relayed both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_and_takes_a_call_over_tls() {
    let t = tls_server().await;
    let tls_port = t.srv.running.sip_tls_addr.unwrap().port();
    let phone = baresip::Phone {
        tls: Some((tls_port, t.cert.clone())),
        ..baresip::Phone::default()
    };
    let mut p = baresip::spawn(&t.srv, "1002", &phone);
    let log =
        || std::fs::read_to_string(t.srv.dir.path().join("baresip-1002.log")).unwrap_or_default();
    let registered = tokio::time::timeout(
        Duration::from_secs(15),
        t.srv.wait_for(
            "baresip registered over TLS",
            Duration::from_secs(15),
            |s| TestServer::agent_state(s, "1002") == "Idle",
        ),
    )
    .await;
    assert!(registered.is_ok(), "baresip log:\n{}", log());
    // The binding acd keeps (and saves) says how to reach the phone: its TLS connection.
    let saved = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let b = t.srv.running.store.load_bindings(0).await.unwrap();
            if let Some((_, b)) = b.into_iter().find(|(a, _)| a == "1002") {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the registration is saved");
    assert_eq!(saved.transport, "TLS", "{saved:?}");
    let call = caller(&t.srv, "caller.xml", "200", 3000, 1);
    t.srv
        .wait_for("baresip answered", Duration::from_secs(10), |s| {
            TestServer::agent_state(s, "1002").starts_with("Busy")
        })
        .await;
    call.success(Duration::from_secs(20)).await;
    let s = t.srv.wait_idle().await;
    let _ = p.kill().await;
    let log = log();
    if std::env::var_os("ACD_SHOW_BARESIP").is_some() {
        eprintln!("{log}");
    }
    assert!(
        s.media.relayed_to_agent > 20 && s.media.relayed_to_caller > 20,
        "audio both ways: {:?}\n{log}",
        s.media
    );
    // The agent leg was SRTP (baresip insists: srtp-mand) and every packet from the phone
    // authenticated.
    assert!(log.contains("SRTP is Enabled"), "baresip did SRTP:\n{log}");
    assert_eq!(
        s.media.dropped(acd::media::bridge::DropReason::Srtp),
        0,
        "{:?}",
        s.media
    );
}

/// One HTTPS request with a client trusting `ca`; returns the head and body.
async fn https(addr: std::net::SocketAddr, ca: &Path, req: &str) -> (String, String) {
    let mut s = tls_connect(addr, ca).await;
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_over_https_sends_hsts_and_refuses_plain_http() {
    let t = tls_server().await;
    let http = t.srv.running.http_addr;
    let (head, body) = https(
        http,
        &t.cert,
        &format!("GET /desk HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    assert!(lower.contains("content-security-policy:"), "{head}");
    assert!(
        body.contains("<html") || body.contains("<!doctype"),
        "the desk page"
    );
    let login = r#"{"id":"1001","password":"secret1"}"#;
    let (head, body) = https(
        http,
        &t.cert,
        &format!(
            "POST /api/login HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{login}",
            login.len()
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    assert!(body.contains("token"), "{body}");
    // Plain HTTP on the HTTPS port gets no page.
    let plain = common::http::get(http, "/desk", None).await;
    assert_ne!(plain.status, 200, "{}", plain.headers);
}

/// Real Chromium over HTTPS: log in, and the desk's WebSocket (wss) goes live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_uses_the_desk_over_https_with_its_websocket() {
    let t = tls_server().await;
    let http = t.srv.running.http_addr;
    // A self-signed test certificate: the browser is told to accept it.
    let mut b = Browser::start_with(&["--ignore-certificate-errors"]).await;
    let desk = format!("https://{http}/desk");
    b.log_in_to_desk(&desk, "1001", PASSWORD, Duration::from_secs(10))
        .await;
    b.wait(
        "document.getElementById('conn').textContent.includes('live')",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(b.eval("location.protocol").await, "https:");
}
