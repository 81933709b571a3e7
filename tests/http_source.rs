//! A context source over HTTPS: acd trusts the company CA named by `ca_file` (besides the
//! public roots), maps the answer into the caller's context lookup after lookup, and refuses a
//! server whose certificate it cannot verify.

use acd::context::http_source::HttpSource;
use acd::context::CallerContext;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

fn openssl(dir: &Path, args: &[&str]) {
    let st = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed (apt-get install openssl)");
    assert!(st.success(), "openssl {args:?}");
}

/// A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, leaf.pem, leaf.key).
fn company_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-days",
        "2",
        "-subj",
        "/CN=company-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend(["-addext", "keyUsage=critical,keyCertSign"]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-subj", "/CN=crm", "-keyout", "leaf.key", "-out", "leaf.csr",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    )
}

/// A CRM on HTTPS answering every GET with the same JSON, keeping connections open.
async fn crm(cert: &Path, key: &Path) -> u16 {
    use rustls::pki_types::pem::PemObject;
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = tls.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let body = r#"{"id":"c-9","name":"Ada (CRM)","labels":["VIP"]}"#;
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if tls.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

fn source(port: u16, ca_file: Option<PathBuf>) -> HttpSource {
    HttpSource {
        name: "crm".into(),
        url: format!("https://127.0.0.1:{port}/callers/{{number}}"),
        customer_id: Some("/id".into()),
        customer_name: Some("/name".into()),
        customer_email: None,
        tags: Some("/labels".into()),
        tickets: None,
        last_agent: None,
        ca_file,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_crm_behind_the_company_ca_is_trusted_and_a_stranger_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = company_ca(dir.path());
    let port = crm(&cert, &key).await;
    let src = source(port, Some(ca));
    for _ in 0..3 {
        let mut ctx = CallerContext::default();
        src.enrich("+15551234567", &mut ctx, Duration::from_secs(5))
            .await
            .expect("the CRM answers over TLS");
        assert_eq!(ctx.customer.map(|c| c.id).as_deref(), Some("c-9"));
        assert_eq!(ctx.tags, vec!["vip"]);
    }
    // Without the company CA the certificate is not trusted: an error, no context.
    let mut ctx = CallerContext::default();
    let e = source(port, None)
        .enrich("+15551234567", &mut ctx, Duration::from_secs(5))
        .await
        .expect_err("an unknown issuer is refused");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    assert!(ctx.customer.is_none());
}
