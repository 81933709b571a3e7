//! External context sources: a CRM or ticket system asked over HTTP(S) for the caller's
//! number, with the JSON answer mapped into the [`CallerContext`]. hyper's pooled client over
//! rustls (the Mozilla roots, plus a source's own `ca_file`), bounded in time and size.

use super::caller::{CallerContext, Customer, Ticket};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use rustls::pki_types::{pem::PemObject, CertificateDer};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum HttpSourceError {
    #[error("url '{0}' must be http(s)://host[:port]/path with {{number}}")]
    Url(String),
    #[error("connect: {0}")]
    Connect(String),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("malformed HTTP response")]
    Malformed,
    #[error("TLS: {0}")]
    Tls(String),
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
    /// PEM certificates to trust for an `https://` source besides the public roots (a CRM
    /// behind the company's own CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

const MAX_BODY: usize = 1 << 20;

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
>;

/// The pooled client for sources trusting `ca_file` (besides the Mozilla roots), made on first
/// use and shared: a CRM asked on every call keeps its connections (and TLS sessions) open
/// instead of a TCP and TLS handshake per call.
fn client(ca_file: Option<&Path>) -> Result<Client, HttpSourceError> {
    static CLIENTS: OnceLock<Mutex<HashMap<Option<PathBuf>, Client>>> = OnceLock::new();
    let clients = CLIENTS.get_or_init(Default::default);
    let key = ca_file.map(Path::to_path_buf);
    if let Some(c) = clients.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(c);
    }
    let tls_err = |e: String| HttpSourceError::Tls(e);
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(f) = ca_file {
        let certs = CertificateDer::pem_file_iter(f)
            .map_err(|e| tls_err(format!("ca_file {}: {e}", f.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| tls_err(format!("ca_file {}: {e}", f.display())))?;
            roots
                .add(cert)
                .map_err(|e| tls_err(format!("ca_file {}: {e}", f.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let c = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(8)
        .build(https);
    if let Ok(mut m) = clients.lock() {
        m.insert(key, c.clone());
    }
    Ok(c)
}

/// The source's URL for `number` (percent-encoded `+`): `http://` or `https://`, with a host
/// and `{number}` somewhere in it.
fn parse_url(template: &str, number: &str) -> Result<hyper::Uri, HttpSourceError> {
    let bad = || HttpSourceError::Url(template.to_string());
    if !(template.starts_with("http://") || template.starts_with("https://"))
        || !template.contains("{number}")
    {
        return Err(bad());
    }
    let uri: hyper::Uri = template
        .replace("{number}", &number.replace('+', "%2B"))
        .parse()
        .map_err(|_| bad())?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(uri)
}

/// An error with its causes ("client error (Connect): tcp connect error: Connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// GETs `uri` and returns the body of a 2xx answer, at most [`MAX_BODY`] bytes.
async fn get(client: &Client, uri: hyper::Uri) -> Result<Bytes, HttpSourceError> {
    let req = hyper::Request::get(uri)
        .header(hyper::header::ACCEPT, "application/json")
        .header(hyper::header::USER_AGENT, crate::sip::msg::PRODUCT)
        .body(Empty::new())
        .map_err(|e| HttpSourceError::Url(e.to_string()))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| HttpSourceError::Connect(chain(&e)))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(HttpSourceError::Status(status));
    }
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                HttpSourceError::TooLarge(MAX_BODY)
            } else {
                HttpSourceError::Malformed
            }
        })?;
    Ok(body.to_bytes())
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
        let uri = parse_url(&self.url, number)?;
        let client = client(self.ca_file.as_deref())?;
        let body = match tokio::time::timeout(timeout, get(&client, uri)).await {
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
            ca_file: None,
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
    fn urls() {
        let u = parse_url("http://crm.local:8080/api/{number}?x=1", "+15551230001").unwrap();
        assert_eq!(
            (
                u.host(),
                u.port_u16(),
                u.path_and_query().map(|p| p.as_str())
            ),
            (
                Some("crm.local"),
                Some(8080),
                Some("/api/%2B15551230001?x=1")
            )
        );
        assert_eq!(
            parse_url("https://crm/{number}", "+1")
                .unwrap()
                .scheme_str(),
            Some("https")
        );
        assert!(parse_url("ftp://crm/{number}", "+1").is_err());
        assert!(parse_url("http://crm/static", "+1").is_err());
        assert!(parse_url("http:///{number}", "+1").is_err());
    }
}
