//! SIP/tel URIs, name-addr values (From, To, Contact, Route) and `;param` lists.
//!
//! Parsing is strict where RFC 4475 asks for a 400 (unbalanced quotes, spaces inside `<>`, headers
//! in an unbracketed addr-spec, empty parameters) and liberal about linear whitespace around `;`
//! and `=`, which §3.1.1.1 requires us to accept.

use super::header::{is_token, is_token_char};
use std::fmt::{self, Write};
use thiserror::Error;

/// Why a URI or name-addr could not be read; the message becomes the 400's warning text.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UriError {
    #[error("missing URI scheme")]
    NoScheme,
    #[error("invalid host '{0}'")]
    BadHost(String),
    #[error("invalid port")]
    BadPort,
    #[error("whitespace inside URI")]
    Whitespace,
    #[error("empty or malformed parameter")]
    BadParam,
    #[error("unterminated quoted string")]
    Unterminated,
    #[error("display name is not a token or quoted string")]
    BadDisplayName,
    #[error("missing '>'")]
    NoClosingAngle,
    #[error("addr-spec with ',', '?' or ';' must be enclosed in <>")]
    AddrSpecNeedsBrackets,
    #[error("'<', '>', '\"' or a control character inside a URI (they must be escaped, RFC 3261 §19.1.2)")]
    BadChar,
}

/// A generic `;name[=value]` parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: Option<String>,
}

/// Parameters in order of appearance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(pub Vec<Param>);

impl Params {
    /// Value of a parameter, case-insensitive on the name; `Some("")` for a flag parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_deref().unwrap_or(""))
    }

    pub fn set(&mut self, name: &str, value: Option<String>) {
        if let Some(p) = self
            .0
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            p.value = value;
        } else {
            self.0.push(Param {
                name: name.to_string(),
                value,
            });
        }
    }

    /// Parses `;a=b;c` (the text after the element, starting with `;` or empty).
    /// Linear whitespace around `;` and `=` is allowed; empty names are not.
    pub fn parse(s: &str) -> Result<Params, UriError> {
        let s = s.trim();
        let mut out = Vec::new();
        if s.is_empty() {
            return Ok(Params(out));
        }
        let Some(rest) = s.strip_prefix(';') else {
            return Err(UriError::BadParam);
        };
        for part in split_outside_quotes(rest, b';') {
            let (name, value) = match part.find('=') {
                Some(i) => (part[..i].trim(), Some(part[i + 1..].trim())),
                None => (part.trim(), None),
            };
            if !is_token(name) {
                return Err(UriError::BadParam);
            }
            let value = match value {
                None => None,
                Some(v) if v.starts_with('"') => {
                    let (q, tail) = take_quoted(v)?;
                    if !tail.trim().is_empty() {
                        return Err(UriError::BadParam);
                    }
                    Some(q.to_string())
                }
                Some(v) => {
                    // token, or a host (IPv6 with brackets / colons in `received`).
                    if v.is_empty() || !v.bytes().all(|c| is_token_char(c) || b"[]:".contains(&c)) {
                        return Err(UriError::BadParam);
                    }
                    Some(v.to_string())
                }
            };
            out.push(Param {
                name: name.to_string(),
                value,
            });
        }
        Ok(Params(out))
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            f.write_char(';')?;
            f.write_str(&p.name)?;
            if let Some(v) = &p.value {
                f.write_char('=')?;
                f.write_str(v)?;
            }
        }
        Ok(())
    }
}

/// Splits at `sep` outside double quotes (with backslash escapes).
fn split_outside_quotes(s: &str, sep: u8) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut q, mut esc, mut start) = (false, false, 0);
    for (i, c) in s.bytes().enumerate() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            b'\\' if q => esc = true,
            b'"' => q = !q,
            c if c == sep && !q => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Reads a quoted string at the start of `s`; returns it (with quotes) and the rest.
fn take_quoted(s: &str) -> Result<(&str, &str), UriError> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Ok((&s[..=i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    Err(UriError::Unterminated)
}

/// URI scheme; anything but sip/sips/tel is carried opaquely so the UAS can answer 416.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    Other(String),
}

/// A parsed URI. For `tel:` the number is in `user` and `host` is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Scheme,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
    /// The `?h=v&…` part, kept raw.
    pub headers: Option<String>,
    /// Body of an unknown scheme, kept raw.
    pub opaque: Option<String>,
}

impl Uri {
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Uri {
        Uri {
            scheme: Scheme::Sip,
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
            params: Params::default(),
            headers: None,
            opaque: None,
        }
    }

    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.bytes().any(|c| c == b' ' || c == b'\t') {
            return Err(UriError::Whitespace);
        }
        // Characters that would end or break a name-addr when we write the URI back out
        // (`<sip:a>b@host>`), in any scheme: a URI carries them escaped, never raw (found by
        // fuzzing the parser's round trip).
        if s.chars()
            .any(|c| matches!(c, '<' | '>' | '"') || c.is_control())
        {
            return Err(UriError::BadChar);
        }
        let colon = s.find(':').ok_or(UriError::NoScheme)?;
        let scheme_str = &s[..colon];
        if scheme_str.is_empty()
            || !scheme_str.as_bytes()[0].is_ascii_alphabetic()
            || !scheme_str
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
        {
            return Err(UriError::NoScheme);
        }
        let rest = &s[colon + 1..];
        let scheme = match scheme_str.to_ascii_lowercase().as_str() {
            "sip" => Scheme::Sip,
            "sips" => Scheme::Sips,
            "tel" => Scheme::Tel,
            other => {
                return Ok(Uri {
                    scheme: Scheme::Other(other.to_string()),
                    user: None,
                    host: String::new(),
                    port: None,
                    params: Params::default(),
                    headers: None,
                    opaque: Some(rest.to_string()),
                })
            }
        };
        if scheme == Scheme::Tel {
            let (num, params) = match rest.find(';') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            return Ok(Uri {
                scheme,
                user: Some(num.to_string()),
                host: String::new(),
                port: None,
                params: Params::parse(params)?,
                headers: None,
                opaque: None,
            });
        }
        // userinfo ends at the first '@'; it may itself contain ';' '?' ',' (RFC 4475 §3.1.1.2).
        let (user, hostpart) = match rest.find('@') {
            Some(i) => (Some(rest[..i].to_string()), &rest[i + 1..]),
            None => (None, rest),
        };
        let (hostpart, headers) = match hostpart.find('?') {
            Some(i) => (&hostpart[..i], Some(hostpart[i + 1..].to_string())),
            None => (hostpart, None),
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], &hostpart[i..]),
            None => (hostpart, ""),
        };
        let (host, port) = parse_hostport(hostport)?;
        Ok(Uri {
            scheme,
            user,
            host,
            port,
            params: Params::parse(params)?,
            headers,
            opaque: None,
        })
    }
}

/// Parses `host[:port]` where host is a hostname, IPv4, or bracketed IPv6.
pub fn parse_hostport(s: &str) -> Result<(String, Option<u16>), UriError> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| UriError::BadHost(s.to_string()))?;
        let inner = &rest[..end];
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        {
            return Err(UriError::BadHost(s.to_string()));
        }
        let after = rest[end + 1..].trim();
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.trim()),
            None if after.is_empty() => None,
            None => return Err(UriError::BadHost(s.to_string())),
        };
        (&s[..end + 2], port)
    } else {
        match s.find(':') {
            Some(i) => (s[..i].trim(), Some(s[i + 1..].trim())),
            None => (s, None),
        }
    };
    if host.is_empty()
        || (!host.starts_with('[')
            && !host
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.'))
    {
        return Err(UriError::BadHost(s.to_string()));
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| UriError::BadPort)?),
        None => None,
    };
    Ok((host.to_string(), port))
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scheme {
            Scheme::Sip => f.write_str("sip:")?,
            Scheme::Sips => f.write_str("sips:")?,
            Scheme::Tel => {
                return write!(
                    f,
                    "tel:{}{}",
                    self.user.as_deref().unwrap_or(""),
                    self.params
                )
            }
            Scheme::Other(s) => {
                return write!(f, "{}:{}", s, self.opaque.as_deref().unwrap_or(""));
            }
        }
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// A user part safe to put in a URI we send (RFC 3261 §25.1 `user`): unreserved and
/// user-unreserved characters as they are, `%XX` escapes kept, everything else percent-escaped.
/// A caller's From user is theirs to write; it must not break the URI in an agent's INVITE.
pub fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    let b = user.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let hex = |x: u8| x.is_ascii_hexdigit();
        let keep = c.is_ascii_alphanumeric()
            || b"-_.!~*'()&=+$,;?/".contains(&c)
            || (c == b'%' && i + 2 < b.len() && hex(b[i + 1]) && hex(b[i + 2]));
        if keep {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
        i += 1;
    }
    out
}

/// A quoted-string display name (RFC 3261 §25.1): `"` and `\` escaped, control characters
/// dropped, so any text (a caller's number, a customer's name) stays one well-formed token.
pub fn quote_display(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars().filter(|c| !c.is_control()) {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

/// `[display] <uri> ;params` or a bare addr-spec, as used by From, To, Contact and Route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: Uri,
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Params::default(),
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").filter(|t| !t.is_empty())
    }

    pub fn parse(s: &str) -> Result<NameAddr, UriError> {
        let s = s.trim();
        let (display, rest) = if s.starts_with('"') {
            let (q, rest) = take_quoted(s)?;
            (Some(q.to_string()), rest.trim_start())
        } else if let Some(lt) = s.find('<') {
            let d = s[..lt].trim();
            if !d.is_empty() && !d.split_whitespace().all(is_token) {
                return Err(UriError::BadDisplayName);
            }
            ((!d.is_empty()).then(|| d.to_string()), &s[lt..])
        } else {
            (None, s)
        };
        if let Some(inner) = rest.strip_prefix('<') {
            let gt = inner.find('>').ok_or(UriError::NoClosingAngle)?;
            let uri = Uri::parse(&inner[..gt])?;
            let params = Params::parse(&inner[gt + 1..])?;
            return Ok(NameAddr {
                display,
                uri,
                params,
            });
        }
        if display.is_some() {
            return Err(UriError::BadDisplayName);
        }
        // addr-spec: the URI ends at the first ';' and may not hold '?' or ','.
        let (uri_s, params) = match rest.find(';') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let uri_s = uri_s.trim();
        if uri_s.contains('?') || uri_s.contains(',') {
            return Err(UriError::AddrSpecNeedsBrackets);
        }
        Ok(NameAddr {
            display: None,
            uri: Uri::parse(uri_s)?,
            params: Params::parse(params)?,
        })
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_text_is_escaped_before_it_goes_into_our_messages() {
        assert_eq!(escape_user("+15551234567"), "+15551234567");
        assert_eq!(escape_user("a b\\c\"d<e>@f"), "a%20b%5Cc%22d%3Ce%3E%40f");
        assert_eq!(escape_user("x%41y%zz"), "x%41y%25zz");
        assert_eq!(
            quote_display("Ann \"The\" \\ O"),
            "\"Ann \\\"The\\\" \\\\ O\""
        );
        assert_eq!(quote_display("a\r\nb"), "\"ab\"");
        // What we build parses back to the same user.
        let na = NameAddr::parse(&format!(
            "{} <sip:{}@acd>",
            quote_display("x\\"),
            escape_user("a b\\")
        ))
        .unwrap();
        assert_eq!(na.uri.user.as_deref(), Some("a%20b%5C"));
    }

    #[test]
    fn a_uri_that_would_break_a_name_addr_is_refused() {
        for bad in [
            "sip:calle>@example.net",
            "sip:a<b@x",
            "sip:a\"b@x",
            "sip:a\u{1}b@x",
        ] {
            assert_eq!(Uri::parse(bad), Err(UriError::BadChar), "{bad}");
        }
        let ok = Uri::parse("sip:a%3Eb;x=1?y@example.net").unwrap();
        assert_eq!(ok.user.as_deref(), Some("a%3Eb;x=1?y"));
    }

    #[test]
    fn sip_uri_with_port_params_and_ipv6() {
        let u = Uri::parse("sip:alice@[2001:db8::10]:5070;transport=udp").unwrap();
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.host, "[2001:db8::10]");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.params.get("transport"), Some("udp"));
        assert_eq!(u.to_string(), "sip:alice@[2001:db8::10]:5070;transport=udp");
    }

    #[test]
    fn unbracketed_ipv6_is_rejected() {
        assert!(Uri::parse("sip:2001:db8::10").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(r#""J \"R\"" <sip:j@x.com> ; tag = 12"#).unwrap();
        assert_eq!(n.tag(), Some("12"));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        let n = NameAddr::parse("sip:+1972@gw1.example.net;unknownparam").unwrap();
        assert_eq!(n.params.get("unknownparam"), Some(""));
        assert!(n.uri.params.0.is_empty());
    }

    #[test]
    fn strict_failures() {
        assert_eq!(
            NameAddr::parse(r#""Mr. J. User <sip:j.user@example.com>"#),
            Err(UriError::Unterminated)
        );
        assert_eq!(
            NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43"),
            Err(UriError::BadDisplayName)
        );
        assert_eq!(
            NameAddr::parse(r#""W" < sip:t.watson@example.org >"#),
            Err(UriError::Whitespace)
        );
        assert_eq!(
            NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E"),
            Err(UriError::AddrSpecNeedsBrackets)
        );
        assert_eq!(
            NameAddr::parse(r#""Joe" <sip:joe@example.org>;;;;"#),
            Err(UriError::BadParam)
        );
    }
}
