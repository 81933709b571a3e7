//! SIP message model, the normalising parser and the serialiser.
//!
//! One pass turns bytes into a [`Message`]: leading CRLFs skipped, folded lines unfolded, compact
//! names expanded, whitespace before `:` trimmed, comma lists split, Content-Length framing applied
//! (octets past it discarded on UDP), and the fields every layer needs (Via, From, To, Call-ID,
//! CSeq, Contact) parsed once into [`Core`]. A request we cannot accept becomes a [`Rejection`]
//! carrying the status to answer and the raw headers to answer with.

use super::header::{split_list, HeaderName};
pub use super::status::reason_phrase;
use super::uri::{NameAddr, Uri, UriError};
use super::via::{CSeq, Method, Via};
use bytes::Bytes;
use std::fmt::Write as _;
use thiserror::Error;

/// What we call ourselves in Server and User-Agent, so captures show which box answered.
pub const PRODUCT: &str = concat!("acd/", env!("CARGO_PKG_VERSION"));

/// Caps that keep one hostile peer from costing us memory or CPU.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_message: usize,
    pub max_headers: usize,
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 65_535,
            max_headers: 128,
            max_line: 8_192,
        }
    }
}

/// Headers other than the core ones, in received order, one entry per list value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(HeaderName, String)>);

impl Headers {
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push((name, value.into()));
    }

    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|(n, _)| n != name);
    }
}

/// The fields every layer needs, parsed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Core {
    pub vias: Vec<Via>,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: CSeq,
    pub max_forwards: Option<u32>,
    pub contacts: Vec<NameAddr>,
    /// `Contact: *` (un-REGISTER all bindings).
    pub contact_star: bool,
}

impl Core {
    pub fn top_via(&self) -> &Via {
        // Parsing guarantees at least one Via.
        &self.vias[0]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub core: Core,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub code: u16,
    pub reason: String,
    pub core: Core,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// A message we will not process. Requests with a usable Via get `status` back; everything else
/// (responses, garbage) is dropped.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{status} {warning}")]
pub struct Rejection {
    pub status: u16,
    pub warning: String,
    /// Raw Via/From/To/Call-ID/CSeq lines to echo in the answer; empty when none can be sent.
    pub echo: Vec<(HeaderName, String)>,
}

impl Rejection {
    fn new(status: u16, warning: impl Into<String>) -> Rejection {
        Rejection {
            status,
            warning: warning.into(),
            echo: Vec::new(),
        }
    }

    /// Whether an answer can be sent at all (a request with at least one Via).
    pub fn answerable(&self) -> bool {
        self.echo.iter().any(|(n, _)| *n == HeaderName::Via)
    }

    /// Serialises the stateless error answer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("SIP/2.0 {} {}\r\n", self.status, reason_phrase(self.status));
        for (n, v) in &self.echo {
            let _ = write!(s, "{n}: {v}\r\n");
        }
        let warn = self.warning.replace(['"', '\\'], "'");
        let _ = write!(
            s,
            "Warning: 399 acd \"{warn}\"\r\nServer: {PRODUCT}\r\nContent-Length: 0\r\n\r\n"
        );
        s.into_bytes()
    }
}

/// Parses one message. `stream` is true for TCP, where the framer already cut exactly one message.
pub fn parse(buf: &[u8], stream: bool, limits: &Limits) -> Result<Message, Rejection> {
    if buf.len() > limits.max_message {
        return Err(Rejection::new(513, "message too large"));
    }
    let start = buf
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .ok_or_else(|| Rejection::new(400, "empty message"))?;
    let buf = &buf[start..];
    let (head_end, body_start) = find_head_end(buf);
    // Bytes that are not UTF-8 get a 400 like any other defect, so the headers around them are
    // read (lossily) to find the Via, Call-ID and CSeq to answer with.
    let (head, utf8_err) = match std::str::from_utf8(&buf[..head_end]) {
        Ok(h) => (std::borrow::Cow::Borrowed(h), None),
        Err(_) => (
            String::from_utf8_lossy(&buf[..head_end]),
            Some(Rejection::new(400, "header section is not UTF-8")),
        ),
    };
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or("");
    let (raw, unfold_err) = unfold(lines, limits);
    let mut rej_echo = Vec::new();
    for (n, v) in &raw {
        // A line that held invalid bytes is not echoed: it would not be what was sent.
        if matches!(
            n,
            HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
        ) && !v.contains('\u{fffd}')
        {
            rej_echo.push((n.clone(), v.clone()));
        }
    }
    let is_response = start_line.starts_with("SIP/");
    let with_echo = |mut r: Rejection| {
        if !is_response {
            r.echo = rej_echo.clone();
        }
        r
    };
    if let Some(e) = utf8_err.or(unfold_err) {
        return Err(with_echo(e));
    }
    let body_avail = &buf[body_start.min(buf.len())..];
    let body = frame_body(&raw, body_avail, stream).map_err(with_echo)?;
    if is_response {
        parse_response(start_line, raw, body).map_err(|mut r| {
            r.echo.clear();
            r
        })
    } else {
        parse_request(start_line, raw, body).map_err(with_echo)
    }
}

/// Where the header section ends and the body starts: the first CRLF CRLF, else the first
/// bare LF LF (tolerated, RFC 4475 §3.1.1.x); the TCP framer uses the same rule.
pub(crate) fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some((i, i + 4));
    }
    buf.windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2))
}

fn find_head_end(buf: &[u8]) -> (usize, usize) {
    head_end(buf).unwrap_or((buf.len(), buf.len()))
}

/// Unfolds continuation lines and splits `name: value`, expanding list headers. On a defect it
/// returns the headers read so far with the error, so the 400 can still echo Via, Call-ID, CSeq.
fn unfold<'a>(
    lines: impl Iterator<Item = &'a str>,
    limits: &Limits,
) -> (Vec<(HeaderName, String)>, Option<Rejection>) {
    let mut out = Vec::new();
    let err = unfold_into(lines, limits, &mut out).err();
    (out, err)
}

fn unfold_into<'a>(
    lines: impl Iterator<Item = &'a str>,
    limits: &Limits,
    out: &mut Vec<(HeaderName, String)>,
) -> Result<(), Rejection> {
    // Limits are checked without stopping: the 400 they cause must still echo the Via, Call-ID
    // and CSeq from the lines around the offending one (the message is already bounded by
    // `max_message`, so reading on costs at most that).
    let mut joined: Vec<String> = Vec::new();
    let mut first_err = None;
    let mut skipping = false;
    for line in lines {
        if line.len() > limits.max_line {
            first_err.get_or_insert_with(|| Rejection::new(400, "header line too long"));
            skipping = true;
            continue;
        }
        if line.starts_with([' ', '\t']) && skipping {
            continue;
        }
        skipping = false;
        if line.starts_with([' ', '\t']) {
            match joined.last_mut() {
                Some(prev) => {
                    prev.push(' ');
                    prev.push_str(line.trim());
                }
                None => return Err(Rejection::new(400, "continuation line before any header")),
            }
        } else if !line.is_empty() {
            joined.push(line.to_string());
        }
    }
    if joined.len() > limits.max_headers {
        first_err.get_or_insert_with(|| Rejection::new(400, "too many header lines"));
    }
    if let Some(e) = first_err {
        // Only the headers an answer needs.
        joined.retain(|l| {
            let name = l.split(':').next().unwrap_or("").trim();
            matches!(
                HeaderName::parse(name),
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::CSeq
            )
        });
        let _ = split_headers(&joined, out);
        return Err(e);
    }
    split_headers(&joined, out)
}

/// Splits unfolded `name: value` lines into headers, expanding list headers.
fn split_headers(joined: &[String], out: &mut Vec<(HeaderName, String)>) -> Result<(), Rejection> {
    out.reserve(joined.len() + 4);
    let mut err = None;
    for line in joined {
        let colon = line
            .find(':')
            .ok_or_else(|| Rejection::new(400, "header line without ':'"))?;
        let name_s = line[..colon].trim_end();
        if !super::header::is_token(name_s) {
            return Err(Rejection::new(400, "malformed header name"));
        }
        let name = HeaderName::parse(name_s);
        let value = line[colon + 1..].trim();
        if name.is_list() {
            for v in split_list(value) {
                if !v.is_empty() {
                    out.push((name.clone(), v.to_string()));
                } else if matches!(
                    name,
                    HeaderName::Via | HeaderName::Contact | HeaderName::Route
                ) && !value.is_empty()
                    && err.is_none()
                {
                    err = Some(Rejection::new(400, format!("empty element in {name}")));
                }
            }
        } else {
            out.push((name, value.to_string()));
        }
    }
    err.map_or(Ok(()), Err)
}

/// Applies Content-Length framing: one value only, non-negative, not past the datagram.
fn frame_body(
    raw: &[(HeaderName, String)],
    avail: &[u8],
    stream: bool,
) -> Result<Bytes, Rejection> {
    let mut cls = raw.iter().filter(|(n, _)| *n == HeaderName::ContentLength);
    let Some((_, v)) = cls.next() else {
        // RFC 3261 §18.3: optional on UDP (body runs to the end), required on streams.
        return Ok(if stream {
            Bytes::new()
        } else {
            Bytes::copy_from_slice(avail)
        });
    };
    if cls.next().is_some() {
        return Err(Rejection::new(400, "multiple Content-Length values"));
    }
    let n: usize = v
        .parse()
        .map_err(|_| Rejection::new(400, "invalid Content-Length"))?;
    if n > avail.len() {
        return Err(Rejection::new(400, "Content-Length larger than message"));
    }
    Ok(Bytes::copy_from_slice(&avail[..n]))
}

fn bad(e: impl std::fmt::Display, what: &str) -> Rejection {
    Rejection::new(400, format!("invalid {what}: {e}"))
}

/// Parses the header fields that make up [`Core`]; the rest stay in [`Headers`].
fn parse_core(raw: Vec<(HeaderName, String)>) -> Result<(Core, Headers), Rejection> {
    let (mut vias, mut from, mut to, mut call_id, mut cseq, mut mf) =
        (Vec::new(), None, None, None, None, None);
    let (mut contacts, mut star) = (Vec::new(), false);
    let mut rest = Headers::default();
    for (name, v) in raw {
        if name.is_single() {
            let dup = match name {
                HeaderName::From => from.is_some(),
                HeaderName::To => to.is_some(),
                HeaderName::CallId => call_id.is_some(),
                HeaderName::CSeq => cseq.is_some(),
                HeaderName::MaxForwards => mf.is_some(),
                _ => rest.get(&name).is_some(),
            };
            if dup {
                return Err(Rejection::new(400, format!("duplicate {name} header")));
            }
        }
        match name {
            HeaderName::Via => vias.push(Via::parse(&v).map_err(|e| bad(e, "Via"))?),
            HeaderName::From => from = Some(NameAddr::parse(&v).map_err(|e| bad(e, "From"))?),
            HeaderName::To => to = Some(NameAddr::parse(&v).map_err(|e| bad(e, "To"))?),
            HeaderName::CallId => {
                if v.is_empty() || v.contains(char::is_whitespace) {
                    return Err(Rejection::new(400, "invalid Call-ID"));
                }
                call_id = Some(v)
            }
            HeaderName::CSeq => {
                cseq = Some(CSeq::parse(&v).ok_or_else(|| Rejection::new(400, "invalid CSeq"))?)
            }
            HeaderName::MaxForwards => {
                let n: u32 = v
                    .parse()
                    .ok()
                    .filter(|n| *n <= 255)
                    .ok_or_else(|| Rejection::new(400, "invalid Max-Forwards"))?;
                mf = Some(n)
            }
            HeaderName::Contact if v == "*" => star = true,
            HeaderName::Contact => {
                contacts.push(NameAddr::parse(&v).map_err(|e: UriError| bad(e, "Contact"))?)
            }
            HeaderName::ContentLength => {}
            _ => rest.push(name, v),
        }
    }
    if vias.is_empty() {
        return Err(Rejection::new(400, "missing Via"));
    }
    let missing = |n: &str| Rejection::new(400, format!("missing {n}"));
    Ok((
        Core {
            vias,
            from: from.ok_or_else(|| missing("From"))?,
            to: to.ok_or_else(|| missing("To"))?,
            call_id: call_id.ok_or_else(|| missing("Call-ID"))?,
            cseq: cseq.ok_or_else(|| missing("CSeq"))?,
            max_forwards: mf,
            contacts,
            contact_star: star,
        },
        rest,
    ))
}

fn parse_request(
    line: &str,
    raw: Vec<(HeaderName, String)>,
    body: Bytes,
) -> Result<Message, Rejection> {
    let parts: Vec<&str> = line.split_ascii_whitespace().collect();
    let [method_s, uri_s, version] = parts[..] else {
        return Err(Rejection::new(400, "malformed Request-Line"));
    };
    let method =
        Method::parse(method_s).ok_or_else(|| Rejection::new(400, "method is not a token"))?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(Rejection::new(505, "only SIP/2.0 is supported"));
    }
    if uri_s.starts_with('<') {
        return Err(Rejection::new(400, "Request-URI enclosed in <>"));
    }
    let uri = Uri::parse(uri_s).map_err(|e| bad(e, "Request-URI"))?;
    if uri.headers.is_some() {
        return Err(Rejection::new(
            400,
            "headers are not allowed in a Request-URI",
        ));
    }
    let (core, headers) = parse_core(raw)?;
    if core.cseq.method != method {
        return Err(match method {
            Method::Other(_) => Rejection::new(501, "method not implemented"),
            _ => Rejection::new(400, "CSeq method does not match Request-Line"),
        });
    }
    Ok(Message::Request(Request {
        method,
        uri,
        core,
        headers,
        body,
    }))
}

fn parse_response(
    line: &str,
    raw: Vec<(HeaderName, String)>,
    body: Bytes,
) -> Result<Message, Rejection> {
    let mut it = line.splitn(3, ' ');
    let (Some(version), Some(code_s)) = (it.next(), it.next()) else {
        return Err(Rejection::new(400, "malformed Status-Line"));
    };
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(Rejection::new(505, "bad version"));
    }
    let code: u16 = code_s
        .parse()
        .ok()
        .filter(|c| (100..700).contains(c) && code_s.len() == 3)
        .ok_or_else(|| Rejection::new(400, "bad status code"))?;
    let reason = it.next().unwrap_or("").trim().to_string();
    let (core, headers) = parse_core(raw)?;
    Ok(Message::Response(Response {
        code,
        reason,
        core,
        headers,
        body,
    }))
}

fn write_core(out: &mut String, core: &Core) {
    for v in &core.vias {
        let _ = write!(out, "Via: {v}\r\n");
    }
    let _ = write!(
        out,
        "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\n",
        core.from, core.to, core.call_id, core.cseq
    );
    if let Some(mf) = core.max_forwards {
        let _ = write!(out, "Max-Forwards: {mf}\r\n");
    }
    if core.contact_star {
        out.push_str("Contact: *\r\n");
    }
    for c in &core.contacts {
        let _ = write!(out, "Contact: {c}\r\n");
    }
}

fn finish(mut out: String, headers: &Headers, body: &Bytes) -> Bytes {
    for (n, v) in &headers.0 {
        let _ = write!(out, "{n}: {v}\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    let mut b = out.into_bytes();
    b.extend_from_slice(body);
    Bytes::from(b)
}

impl Request {
    pub fn to_bytes(&self) -> Bytes {
        let mut out = String::with_capacity(512 + self.body.len());
        let _ = write!(out, "{} {} SIP/2.0\r\n", self.method, self.uri);
        write_core(&mut out, &self.core);
        finish(out, &self.headers, &self.body)
    }
}

impl Response {
    /// A response to `req` with the headers §8.2.6.2 says to copy; adds `to_tag` if To has none.
    pub fn to(req: &Request, code: u16, to_tag: Option<&str>) -> Response {
        let mut core = req.core.clone();
        core.max_forwards = None;
        core.contacts.clear();
        core.contact_star = false;
        if let (None, Some(t)) = (core.to.tag(), to_tag) {
            core.to.params.set("tag", Some(t.to_string()));
        }
        let mut headers = Headers::default();
        // A response that may set up a dialog carries the request's Record-Route, in order
        // (RFC 3261 §12.1.1): it is how the caller learns that the proxies in front of us
        // (the cluster's edge) stay on the path, so its BYE goes through them too.
        if (101..300).contains(&code) {
            for rr in req.headers.get_all(&HeaderName::RecordRoute) {
                headers.push(HeaderName::RecordRoute, rr);
            }
        }
        headers.push(HeaderName::Server, PRODUCT);
        Response {
            code,
            reason: reason_phrase(code).to_string(),
            core,
            headers,
            body: Bytes::new(),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = String::with_capacity(512 + self.body.len());
        let _ = write!(out, "SIP/2.0 {} {}\r\n", self.code, self.reason);
        write_core(&mut out, &self.core);
        finish(out, &self.headers, &self.body)
    }
}

impl Message {
    pub fn core(&self) -> &Core {
        match self {
            Message::Request(r) => &r.core,
            Message::Response(r) => &r.core,
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:100@acd SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nf: <sip:+15551234567@x>;tag=a\r\nt: <sip:100@acd>\r\ni: abc\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nm: <sip:c@10.0.0.1>\r\nc: application/sdp\r\nl: 4\r\n\r\nv=0\r\nEXTRA";

    #[test]
    fn parses_compact_and_frames_body() {
        let Message::Request(r) = parse(INVITE.as_bytes(), false, &Limits::default()).unwrap()
        else {
            panic!("request expected")
        };
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.core.call_id, "abc");
        assert_eq!(&r.body[..], b"v=0\r");
        assert_eq!(
            r.headers.get(&HeaderName::ContentType),
            Some("application/sdp")
        );
        let again = parse(&r.to_bytes(), false, &Limits::default()).unwrap();
        assert_eq!(again, Message::Request(r));
    }

    #[test]
    fn answers_that_set_up_a_dialog_carry_the_record_route_in_order() {
        let text = "INVITE sip:100@acd SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK2\r\n\
                    Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
                    Record-Route: <sip:10.0.0.9;lr>\r\nRecord-Route: <sip:10.0.0.8;lr>\r\n\
                    f: <sip:c@x>;tag=a\r\nt: <sip:100@acd>\r\ni: rr\r\nCSeq: 1 INVITE\r\n\
                    l: 0\r\n\r\n";
        let Ok(Message::Request(inv)) = parse(text.as_bytes(), false, &Limits::default()) else {
            panic!("request expected")
        };
        let rr = |code| {
            let r = Response::to(&inv, code, Some("t"));
            r.headers
                .get_all(&HeaderName::RecordRoute)
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(rr(200), ["<sip:10.0.0.9;lr>", "<sip:10.0.0.8;lr>"]);
        assert_eq!(rr(180), ["<sip:10.0.0.9;lr>", "<sip:10.0.0.8;lr>"]);
        assert!(rr(100).is_empty(), "a 100 sets up nothing");
        assert!(rr(486).is_empty(), "nor does a failure");
    }

    #[test]
    fn limits_and_bad_bytes_still_get_an_answer_that_echoes_the_via() {
        let long = format!("X-Long: {}\r\n", "a".repeat(9000));
        let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
        let cases = [
            INVITE.replacen("CSeq", &format!("{long}CSeq"), 1),
            INVITE.replacen("CSeq", &format!("{many}CSeq"), 1),
        ];
        for m in cases {
            let e = parse(m.as_bytes(), false, &Limits::default()).unwrap_err();
            assert_eq!(e.status, 400, "{e}");
            assert!(e.answerable(), "{e}");
            let text = String::from_utf8_lossy(&e.to_bytes()).to_string();
            assert!(text.contains("Call-ID: abc\r\n"), "{text}");
        }
        let mut bad = INVITE
            .replacen("CSeq", "X-Junk: caf\u{e9}\r\nCSeq", 1)
            .into_bytes();
        let at = bad.windows(3).position(|w| w == b"caf").unwrap() + 3;
        bad[at] = 0xff; // the first byte of 'é' becomes invalid UTF-8
        let e = parse(&bad, false, &Limits::default()).unwrap_err();
        assert_eq!((e.status, e.answerable()), (400, true), "{e}");
        assert!(e.warning.contains("UTF-8"));
    }

    #[test]
    fn rejection_echoes_headers() {
        let m = INVITE.replace("l: 4", "l: 999");
        let e = parse(m.as_bytes(), false, &Limits::default()).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.answerable());
        let text = String::from_utf8(e.to_bytes()).unwrap();
        assert!(text.starts_with("SIP/2.0 400 Bad Request\r\n"));
        assert!(text.contains("Call-ID: abc\r\n"));
    }

    #[test]
    fn oversize_and_garbage_are_rejected_not_panicking() {
        let l = Limits::default();
        assert_eq!(
            parse(&vec![b'a'; 70_000], false, &l).unwrap_err().status,
            513
        );
        for cut in 0..INVITE.len() {
            let _ = parse(&INVITE.as_bytes()[..cut], false, &l);
        }
        assert!(parse(b"\r\n\r\n", false, &l).is_err());
    }
}
