//! A minimal HTTP/1.1 client for the desk API tests (one request per connection).

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one request; `body` goes as-is with `ctype` when given.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let data: &[u8] = match body {
        Some((ctype, b)) => {
            head.push_str(&format!("Content-Type: {ctype}\r\n"));
            b
        }
        None => b"",
    };
    head.push_str(&format!("Content-Length: {}\r\n\r\n", data.len()));
    s.write_all(head.as_bytes()).await.expect("write");
    let _ = s.write_all(data).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers: headers.to_string(),
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Reply {
    request(addr, "GET", path, token, None).await
}

pub async fn post(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    json: &serde_json::Value,
) -> Reply {
    let b = json.to_string();
    request(
        addr,
        "POST",
        path,
        token,
        Some(("application/json", b.as_bytes())),
    )
    .await
}

/// Logs in and returns the token.
pub async fn login(addr: SocketAddr, id: &str, password: &str) -> String {
    let r = post(
        addr,
        "/api/login",
        None,
        &serde_json::json!({"id": id, "password": password}),
    )
    .await;
    assert_eq!(r.status, 200, "log-in of {id}: {}", r.body);
    r.json()["token"].as_str().expect("token").to_string()
}
