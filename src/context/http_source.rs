//! External context sources: a CRM or ticket system asked over HTTP for the caller's number,
//! with the JSON answer mapped into the [`CallerContext`]. A minimal HTTP/1.1 GET client (plain
//! `http://`; put a TLS-terminating sidecar in front of an `https://` API), bounded in time and size.

use super::caller::{CallerContext, Customer, Ticket};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum HttpSourceError {
    #[error("url '{0}' must be http://host[:port]/path with {{number}}")]
    Url(String),
    #[error("connect: {0}")]
    Connect(String),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("malformed HTTP response")]
    Malformed,
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    #[error("not JSON: {0}")]
    Json(String),
}

/// One configured source (`[[context.http]]` in acd.toml). Paths are JSON pointers (RFC 6901).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpSource {
    pub name: String,
    /// e.g. `http://crm.local:8080/api/callers/{number}`; the E.164 number is percent-encoded.
    pub url: String,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub customer_name: Option<String>,
    #[serde(default)]
    pub customer_email: Option<String>,
    /// An array of strings.
    #[serde(default)]
    pub tags: Option<String>,
    /// An array of objects with `id`, `subject`, `status`, `skill`.
    #[serde(default)]
    pub tickets: Option<String>,
    /// A string: the agent id the caller last talked to.
    #[serde(default)]
    pub last_agent: Option<String>,
}

const MAX_BODY: usize = 1 << 20;

struct Url {
    host: String,
    port: u16,
    path: String,
}

fn parse_url(template: &str, number: &str) -> Result<Url, HttpSourceError> {
    let bad = || HttpSourceError::Url(template.to_string());
    let rest = template.strip_prefix("http://").ok_or_else(bad)?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse().map_err(|_| bad())?)
        }
        _ => (hostport, 80),
    };
    if host.is_empty() || !template.contains("{number}") {
        return Err(bad());
    }
    let encoded = number.replace('+', "%2B");
    Ok(Url {
        host: host.to_string(),
        port,
        path: path.replace("{number}", &encoded),
    })
}

/// GETs `url` and returns the body of a 2xx answer.
async fn get(url: &Url) -> Result<Vec<u8>, HttpSourceError> {
    let host = url.host.trim_start_matches('[').trim_end_matches(']');
    let mut s = tokio::net::TcpStream::connect((host, url.port))
        .await
        .map_err(|e| HttpSourceError::Connect(e.to_string()))?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\nUser-Agent: {}\r\n\r\n",
        url.path,
        url.host,
        crate::sip::msg::PRODUCT
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| HttpSourceError::Connect(e.to_string()))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| HttpSourceError::Connect(e.to_string()))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_BODY + 16 * 1024 {
            return Err(HttpSourceError::TooLarge(MAX_BODY));
        }
    }
    parse_response(&buf)
}

/// The body of a whole HTTP/1.1 response (read to EOF), de-chunked; anything malformed is an
/// error, never a panic (the bytes come from someone else's server).
pub fn parse_response(buf: &[u8]) -> Result<Vec<u8>, HttpSourceError> {
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(HttpSourceError::Malformed)?;
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| HttpSourceError::Malformed)?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or(HttpSourceError::Malformed)?;
    if !(200..300).contains(&status) {
        return Err(HttpSourceError::Status(status));
    }
    let body = &buf[head_end + 4..];
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    if !chunked {
        return Ok(body.to_vec());
    }
    // Chunked transfer coding: size line, data, CRLF, … until a zero size.
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let line_end = body
            .get(i..)
            .ok_or(HttpSourceError::Malformed)?
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(HttpSourceError::Malformed)?
            + i;
        let size_s =
            std::str::from_utf8(&body[i..line_end]).map_err(|_| HttpSourceError::Malformed)?;
        let size = usize::from_str_radix(size_s.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| HttpSourceError::Malformed)?;
        if size == 0 {
            return Ok(out);
        }
        let start = line_end + 2;
        // A size near usize::MAX from a hostile server must not overflow the arithmetic.
        let end = start.checked_add(size).ok_or(HttpSourceError::Malformed)?;
        let data = body.get(start..end).ok_or(HttpSourceError::Malformed)?;
        out.extend_from_slice(data);
        i = end.checked_add(2).ok_or(HttpSourceError::Malformed)?;
    }
}

fn str_at(v: &Value, ptr: &Option<String>) -> Option<String> {
    ptr.as_ref()
        .and_then(|p| v.pointer(p))
        .and_then(|x| match x {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

impl HttpSource {
    /// Asks the source about `number` and merges what it knows into `ctx`.
    pub async fn enrich(
        &self,
        number: &str,
        ctx: &mut CallerContext,
        timeout: Duration,
    ) -> Result<(), HttpSourceError> {
        let url = parse_url(&self.url, number)?;
        let body = match tokio::time::timeout(timeout, get(&url)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(HttpSourceError::Connect(format!(
                    "no answer within {} ms",
                    timeout.as_millis()
                )))
            }
        };
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| HttpSourceError::Json(e.to_string()))?;
        self.merge(&v, ctx);
        Ok(())
    }

    /// Maps a JSON answer into the context: the store's customer wins, tags and tickets add up.
    pub fn merge(&self, v: &Value, ctx: &mut CallerContext) {
        if ctx.customer.is_none() {
            if let Some(id) = str_at(v, &self.customer_id) {
                ctx.customer = Some(Customer {
                    name: str_at(v, &self.customer_name).unwrap_or_else(|| id.clone()),
                    email: str_at(v, &self.customer_email),
                    id,
                });
            }
        }
        if let Some(Value::Array(tags)) = self.tags.as_ref().and_then(|p| v.pointer(p)) {
            for t in tags.iter().filter_map(Value::as_str) {
                let t = t.to_ascii_lowercase();
                if !ctx.tags.contains(&t) {
                    ctx.tags.push(t);
                }
            }
            ctx.tags.sort();
        }
        if let Some(Value::Array(ts)) = self.tickets.as_ref().and_then(|p| v.pointer(p)) {
            for t in ts {
                let field = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_string);
                let Some(id) = field("id") else { continue };
                let status = field("status")
                    .unwrap_or_else(|| "open".into())
                    .to_ascii_lowercase();
                if status == "closed" || ctx.tickets.iter().any(|x| x.id == id) {
                    continue;
                }
                ctx.tickets.push(Ticket {
                    id,
                    status,
                    subject: field("subject").unwrap_or_default(),
                    skill: field("skill"),
                    opened_at: t.get("opened_at").and_then(Value::as_i64).unwrap_or(0),
                });
            }
        }
        if ctx.last_agent.is_none() {
            if let Some(a) = str_at(v, &self.last_agent) {
                ctx.last_agent = Some((a, 0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> HttpSource {
        HttpSource {
            name: "crm".into(),
            url: "http://127.0.0.1:9/c/{number}".into(),
            customer_id: Some("/customer/id".into()),
            customer_name: Some("/customer/name".into()),
            customer_email: None,
            tags: Some("/tags".into()),
            tickets: Some("/tickets".into()),
            last_agent: Some("/owner".into()),
        }
    }

    #[test]
    fn maps_json_into_the_context() {
        let v: Value = serde_json::from_str(r#"{"customer":{"id":77,"name":"Ada"},"tags":["VIP","x"],"tickets":[{"id":"Z-1","subject":"s","skill":"support"},{"id":"Z-2","status":"closed"}],"owner":"1003"}"#).unwrap();
        let mut ctx = CallerContext {
            tags: vec!["x".into()],
            ..Default::default()
        };
        src().merge(&v, &mut ctx);
        assert_eq!(
            ctx.customer
                .as_ref()
                .map(|c| (c.id.as_str(), c.name.as_str())),
            Some(("77", "Ada"))
        );
        assert_eq!(ctx.tags, vec!["vip", "x"]);
        assert_eq!(ctx.tickets.len(), 1, "closed tickets are not open ones");
        assert_eq!(ctx.last_agent.map(|a| a.0), Some("1003".to_string()));
    }

    #[test]
    fn hostile_responses_are_errors_not_panics() {
        let ok = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        );
        assert_eq!(ok.unwrap(), b"abc");
        for bad in [
            // The data ends right after the chunk: the next size line is past the end.
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\n",
            b"garbage\r\n\r\n",
        ] {
            assert!(
                parse_response(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn urls() {
        let u = parse_url("http://crm.local:8080/api/{number}?x=1", "+15551230001").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("crm.local", 8080, "/api/%2B15551230001?x=1")
        );
        assert!(parse_url("https://crm/{number}", "+1").is_err());
        assert!(parse_url("http://crm/static", "+1").is_err());
        assert_eq!(parse_url("http://crm/{number}", "+1").unwrap().port, 80);
    }
}
