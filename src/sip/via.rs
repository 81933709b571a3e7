//! Via, CSeq and Method: the fields transactions and dialogs key on.

use super::header::is_token;
use super::uri::{parse_hostport, Params, UriError};
use std::fmt;

/// A SIP method. Unknown methods are kept (they must be answered 501, not dropped).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Other(String),
}

impl Method {
    /// Returns `None` when `s` is not a token (an invalid request line).
    pub fn parse(s: &str) -> Option<Method> {
        use Method::*;
        Some(match s {
            "INVITE" => Invite,
            "ACK" => Ack,
            "BYE" => Bye,
            "CANCEL" => Cancel,
            "REGISTER" => Register,
            "OPTIONS" => Options,
            "INFO" => Info,
            "UPDATE" => Update,
            "PRACK" => Prack,
            "SUBSCRIBE" => Subscribe,
            "NOTIFY" => Notify,
            "REFER" => Refer,
            "MESSAGE" => Message,
            "PUBLISH" => Publish,
            other if is_token(other) => Other(other.to_string()),
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &str {
        use Method::*;
        match self {
            Invite => "INVITE",
            Ack => "ACK",
            Bye => "BYE",
            Cancel => "CANCEL",
            Register => "REGISTER",
            Options => "OPTIONS",
            Info => "INFO",
            Update => "UPDATE",
            Prack => "PRACK",
            Subscribe => "SUBSCRIBE",
            Notify => "NOTIFY",
            Refer => "REFER",
            Message => "MESSAGE",
            Publish => "PUBLISH",
            Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Via entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

/// The RFC 3261 magic cookie that marks a globally unique branch.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

impl Via {
    /// Parses one (already comma-split) Via value; whitespace around `/`, `;`, `=` is allowed.
    pub fn parse(s: &str) -> Result<Via, UriError> {
        let (proto, params) = match s.find(';') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        };
        let mut it = proto.splitn(3, '/');
        let (Some(name), Some(ver), Some(rest)) = (it.next(), it.next(), it.next()) else {
            return Err(UriError::BadParam);
        };
        if !name.trim().eq_ignore_ascii_case("SIP") || ver.trim() != "2.0" {
            return Err(UriError::BadParam);
        }
        let rest = rest.trim_start();
        let split = rest
            .find(|c: char| c.is_ascii_whitespace())
            .ok_or(UriError::BadParam)?;
        let transport = &rest[..split];
        if !is_token(transport) {
            return Err(UriError::BadParam);
        }
        let (host, port) = parse_hostport(rest[split..].trim())?;
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params: Params::parse(params)?,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch")
    }

    /// `host[:port]` as written, for transaction matching.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// `CSeq: <seq> <method>`; seq is limited to 2^31-1 (RFC 3261 §8.1.1.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(s: &str) -> Option<CSeq> {
        let mut it = s.split_ascii_whitespace();
        let seq: u32 = it.next()?.parse().ok()?;
        if seq > 0x7fff_ffff {
            return None;
        }
        let method = Method::parse(it.next()?)?;
        if it.next().is_some() {
            return None;
        }
        Some(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_spaces_everywhere() {
        let v =
            Via::parse("SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "192.168.255.111");
        assert_eq!(v.branch(), Some("z9hG4bK30239"));
    }

    #[test]
    fn via_ipv6_received_forms() {
        let v =
            Via::parse("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3")
                .unwrap();
        assert_eq!(v.params.get("received"), Some("2001:db8::9:255"));
        let v = Via::parse("SIP/2.0/UDP [2001:db8::9:1]:6050;received=[2001:db8::9:255]").unwrap();
        assert_eq!(v.port, Some(6050));
    }

    #[test]
    fn empty_via_params_rejected() {
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse(";").is_err());
    }

    #[test]
    fn cseq_limits() {
        assert_eq!(CSeq::parse("0009 INVITE").unwrap().seq, 9);
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_none());
        assert!(CSeq::parse("2147483648 INVITE").is_none());
    }
}
