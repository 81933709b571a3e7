//! Who is calling, and how much we may believe it. A caller's From is theirs to write; only a
//! configured trunk (a carrier, an SBC) is believed, and only what it asserts in
//! P-Asserted-Identity (RFC 3325 §9.1) or, failing that, its From. Anything that costs money
//! (callbacks through the trunk) needs a trusted identity; lookups and the pop say when the
//! number is only claimed.

use crate::sip::budget::Cidr;
use crate::sip::msg::Request;
use crate::sip::uri::NameAddr;
use std::net::IpAddr;

/// A `[[trunk]]` of acd.toml: where PSTN calls come from.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    pub name: String,
    /// Source addresses or networks of the trunk's signalling.
    pub addresses: Vec<Cidr>,
    /// Digest credentials the trunk must also prove on every INVITE (a 401 challenge first):
    /// for carriers that can authenticate, and for trunk addresses shared with others.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

impl Trunk {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|c| c.contains(ip))
    }

    /// The credentials to check, when the trunk has them.
    pub fn credentials(&self, realm: &str) -> Option<crate::sip::auth::Credentials> {
        match (&self.username, &self.password) {
            (Some(u), Some(p)) => Some(crate::sip::auth::Credentials::from_password(u, realm, p)),
            _ => None,
        }
    }
}

/// The caller's number and why we hold it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    pub number: String,
    /// Asserted by a configured trunk (not just claimed by the caller).
    pub trusted: bool,
    /// In words: where the number came from, for the pop, the trace and `acd route`.
    pub basis: String,
}

/// The asserted number in a P-Asserted-Identity value: the first `sip:`/`sips:` user or `tel:`
/// number of its (at most two, RFC 3325) comma-separated entries.
fn asserted(value: &str) -> Option<String> {
    let mut depth = 0;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, ch) in value.char_indices() {
        match ch {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts.into_iter().find_map(|p| {
        let p = p.trim();
        let inner = p
            .find('<')
            .and_then(|a| p[a + 1..].find('>').map(|b| &p[a + 1..a + 1 + b]))
            .unwrap_or(p);
        if let Some(tel) = inner.strip_prefix("tel:") {
            let n = tel.split(';').next().unwrap_or("").trim();
            return (!n.is_empty()).then(|| n.to_string());
        }
        NameAddr::parse(p)
            .ok()
            .and_then(|na| na.uri.user)
            .map(|u| u.split(';').next().unwrap_or("").to_string())
            .filter(|u| !u.is_empty())
    })
}

/// The P-Asserted-Identity header values of `req` (any case of the name).
fn pai(req: &Request) -> Option<String> {
    req.headers
        .0
        .iter()
        .filter(|(n, _)| n.as_str().eq_ignore_ascii_case("P-Asserted-Identity"))
        .find_map(|(_, v)| asserted(v))
}

/// The From user part (or host, for a From without one).
pub fn from_number(req: &Request) -> String {
    req.core
        .from
        .uri
        .user
        .clone()
        .unwrap_or_else(|| req.core.from.uri.host.clone())
}

/// The identity of a new call from `source`.
pub fn identify(req: &Request, source: IpAddr, trunks: &[Trunk]) -> Identity {
    identify_parts(&from_number(req), pai(req).as_deref(), Some(source), trunks)
}

/// The identity from its parts: the From number, an asserted number, and the source address
/// (`None`: unknown, as in a dry run without `--source`, so not a trunk).
pub fn identify_parts(
    from: &str,
    asserted: Option<&str>,
    source: Option<IpAddr>,
    trunks: &[Trunk],
) -> Identity {
    let trunk = source.and_then(|ip| trunks.iter().find(|t| t.contains(ip)));
    let from = from.to_string();
    let whence = source.map_or("an unknown source".to_string(), |ip| ip.to_string());
    match (trunk, asserted) {
        (Some(t), Some(n)) => Identity {
            number: n.to_string(),
            trusted: true,
            basis: format!("P-Asserted-Identity from trunk '{}'", t.name),
        },
        (Some(t), None) => Identity {
            number: from,
            trusted: true,
            basis: format!("From header, from trunk '{}'", t.name),
        },
        (None, Some(_)) => Identity {
            number: from,
            trusted: false,
            basis: format!("From header, unverified: {whence} is not a trunk (its P-Asserted-Identity was ignored)"),
        },
        (None, None) => Identity {
            number: from,
            trusted: false,
            basis: format!("From header, unverified: {whence} is not a trunk"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::msg::{parse, Limits, Message};

    fn invite(extra: &str) -> Request {
        let s = format!("INVITE sip:100@acd SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:+15550000001@x>;tag=a\r\nTo: <sip:100@acd>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n");
        match parse(s.as_bytes(), false, &Limits::default()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn trunks() -> Vec<Trunk> {
        vec![Trunk {
            name: "carrier".into(),
            addresses: vec![Cidr::parse("198.51.100.0/24").unwrap()],
            username: None,
            password: None,
        }]
    }

    #[test]
    fn a_trunk_is_believed_and_its_assertion_wins() {
        let r = invite("P-Asserted-Identity: \"Ada\" <sip:+15551230001@carrier;user=phone>, <tel:+15551230001>\r\n");
        let id = identify(&r, "198.51.100.9".parse().unwrap(), &trunks());
        assert_eq!(id.number, "+15551230001");
        assert!(id.trusted);
        assert!(id
            .basis
            .contains("P-Asserted-Identity from trunk 'carrier'"));
        let r = invite("p-asserted-identity: <tel:+15551239999;cpc=ordinary>\r\n");
        let id = identify(&r, "198.51.100.9".parse().unwrap(), &trunks());
        assert_eq!(id.number, "+15551239999");
        let id = identify(&invite(""), "198.51.100.9".parse().unwrap(), &trunks());
        assert_eq!((id.number.as_str(), id.trusted), ("+15550000001", true));
    }

    #[test]
    fn anyone_else_is_only_their_from_and_their_assertion_is_ignored() {
        let r = invite("P-Asserted-Identity: <sip:+19005550100@evil>\r\n");
        let id = identify(&r, "203.0.113.5".parse().unwrap(), &trunks());
        assert_eq!(id.number, "+15550000001");
        assert!(!id.trusted);
        assert!(id.basis.contains("ignored"), "{}", id.basis);
    }
}
