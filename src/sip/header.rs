//! Header names: canonical spelling, compact forms, and which headers may carry comma lists.
//!
//! Known names are an enum so lookups on the hot path are a compare, not a case-folded string scan.

use std::fmt;

/// A header name. Known names are variants; anything else keeps its spelling as received.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    MaxForwards,
    ContentLength,
    ContentType,
    Route,
    RecordRoute,
    Require,
    ProxyRequire,
    Supported,
    Unsupported,
    Allow,
    Accept,
    Authorization,
    WwwAuthenticate,
    ProxyAuthorization,
    Expires,
    UserAgent,
    Server,
    Subject,
    Warning,
    Date,
    RetryAfter,
    /// RFC 4028 (compact `x`).
    SessionExpires,
    MinSe,
    /// RFC 3262.
    RSeq,
    RAck,
    /// RFC 3326.
    Reason,
    /// RFC 3327: the proxies a REGISTER came through.
    Path,
    Other(String),
}

impl HeaderName {
    /// Maps a received name (any case, compact or long) to its canonical form.
    pub fn parse(name: &str) -> HeaderName {
        use HeaderName::*;
        if name.len() == 1 {
            match name.as_bytes()[0].to_ascii_lowercase() {
                b'v' => return Via,
                b'f' => return From,
                b't' => return To,
                b'i' => return CallId,
                b'm' => return Contact,
                b'l' => return ContentLength,
                b'c' => return ContentType,
                b'k' => return Supported,
                b's' => return Subject,
                b'x' => return SessionExpires,
                b'e' => return Other("Content-Encoding".into()),
                _ => {}
            }
        }
        const KNOWN: &[(&str, HeaderName)] = &[
            ("via", Via),
            ("from", From),
            ("to", To),
            ("call-id", CallId),
            ("cseq", CSeq),
            ("contact", Contact),
            ("max-forwards", MaxForwards),
            ("content-length", ContentLength),
            ("content-type", ContentType),
            ("route", Route),
            ("record-route", RecordRoute),
            ("require", Require),
            ("proxy-require", ProxyRequire),
            ("supported", Supported),
            ("unsupported", Unsupported),
            ("allow", Allow),
            ("accept", Accept),
            ("authorization", Authorization),
            ("www-authenticate", WwwAuthenticate),
            ("proxy-authorization", ProxyAuthorization),
            ("expires", Expires),
            ("user-agent", UserAgent),
            ("server", Server),
            ("subject", Subject),
            ("warning", Warning),
            ("date", Date),
            ("retry-after", RetryAfter),
            ("session-expires", SessionExpires),
            ("min-se", MinSe),
            ("rseq", RSeq),
            ("rack", RAck),
            ("reason", Reason),
            ("path", Path),
        ];
        for (k, v) in KNOWN {
            if name.eq_ignore_ascii_case(k) {
                return v.clone();
            }
        }
        Other(name.to_string())
    }

    /// The spelling we send.
    pub fn as_str(&self) -> &str {
        use HeaderName::*;
        match self {
            Via => "Via",
            From => "From",
            To => "To",
            CallId => "Call-ID",
            CSeq => "CSeq",
            Contact => "Contact",
            MaxForwards => "Max-Forwards",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            Route => "Route",
            RecordRoute => "Record-Route",
            Require => "Require",
            ProxyRequire => "Proxy-Require",
            Supported => "Supported",
            Unsupported => "Unsupported",
            Allow => "Allow",
            Accept => "Accept",
            Authorization => "Authorization",
            WwwAuthenticate => "WWW-Authenticate",
            ProxyAuthorization => "Proxy-Authorization",
            Expires => "Expires",
            UserAgent => "User-Agent",
            Server => "Server",
            Subject => "Subject",
            Warning => "Warning",
            Date => "Date",
            RetryAfter => "Retry-After",
            SessionExpires => "Session-Expires",
            MinSe => "Min-SE",
            RSeq => "RSeq",
            RAck => "RAck",
            Reason => "Reason",
            Path => "Path",
            Other(s) => s,
        }
    }

    /// Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1), which we split into one
    /// entry per value so the rest of the code never sees a joined line.
    pub fn is_list(&self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Via | Contact
                | Path
                | Route
                | RecordRoute
                | Require
                | ProxyRequire
                | Supported
                | Unsupported
                | Allow
                | Accept
        )
    }

    /// Headers that must appear at most once (RFC 3261 §7.3.1 / §20).
    pub fn is_single(&self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            From | To | CallId | CSeq | MaxForwards | ContentLength | ContentType | Expires
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True for RFC 3261 `token` characters.
pub fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

/// True when `s` is a non-empty RFC 3261 token.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Splits a list header value at commas that are outside quotes and angle brackets.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut in_quote, mut in_angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in value.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            b'\\' if in_quote => escaped = true,
            b'"' => in_quote = !in_quote,
            b'<' if !in_quote => in_angle = true,
            b'>' if !in_quote => in_angle = false,
            b',' if !in_quote && !in_angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_names_expand() {
        assert_eq!(HeaderName::parse("v"), HeaderName::Via);
        assert_eq!(HeaderName::parse("I"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("MaX-fOrWaRdS"), HeaderName::MaxForwards);
        assert_eq!(HeaderName::parse("k").as_str(), "Supported");
    }

    #[test]
    fn list_split_respects_quotes_and_brackets() {
        let v = split_list(r#""a, b" <sip:x@y;p=1,2>, <sip:z@w>"#);
        assert_eq!(v, vec![r#""a, b" <sip:x@y;p=1,2>"#, "<sip:z@w>"]);
    }
}
