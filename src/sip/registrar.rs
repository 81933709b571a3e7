//! The registrar (RFC 3261 §10.3): which agent is reachable at which contact, until when.
//!
//! Requests reach it already authenticated. It answers with the full binding list, honours
//! `Contact: *` with `Expires: 0`, per-contact `expires`, and Min-Expires (423).

use super::msg::{Request, Response};
use super::transaction::Peer;
use super::uri::{NameAddr, Uri};
use crate::sip::header::HeaderName;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// One registered contact of an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub contact: Uri,
    /// Where the REGISTER came from; INVITEs go here so agents behind NAT are reachable.
    pub peer: Peer,
    pub call_id: String,
    pub cseq: u32,
    pub expires_at: Instant,
}

/// A binding as stored in the database: wall-clock expiry, addresses as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedBinding {
    pub contact: String,
    pub transport: String,
    pub peer: SocketAddr,
    pub call_id: String,
    pub cseq: u32,
    /// Unix seconds.
    pub expires_at: u64,
}

impl SavedBinding {
    /// `unix_now` is the wall clock matching `now`.
    pub fn from_binding(b: &Binding, now: Instant, unix_now: u64) -> SavedBinding {
        SavedBinding {
            contact: b.contact.to_string(),
            transport: b.peer.transport.as_str().to_string(),
            peer: b.peer.addr,
            call_id: b.call_id.clone(),
            cseq: b.cseq,
            expires_at: unix_now + b.expires_at.saturating_duration_since(now).as_secs(),
        }
    }

    /// Back to a live binding; `None` when expired or unreadable.
    pub fn to_binding(&self, now: Instant, unix_now: u64) -> Option<Binding> {
        let left = self.expires_at.checked_sub(unix_now).filter(|l| *l > 0)?;
        let transport = match self.transport.as_str() {
            "TCP" => super::transaction::Transport::Tcp,
            "TLS" => super::transaction::Transport::Tls,
            _ => super::transaction::Transport::Udp,
        };
        Some(Binding {
            contact: Uri::parse(&self.contact).ok()?,
            peer: Peer {
                transport,
                addr: self.peer,
            },
            call_id: self.call_id.clone(),
            cseq: self.cseq,
            expires_at: now + Duration::from_secs(left),
        })
    }
}

/// Where to send requests for a contact. Over TCP: back on the connection the REGISTER came on.
/// Over UDP: the Contact's literal address, unless it is a private address while the REGISTER
/// came from a public one (the phone is behind NAT), in which case the source address.
fn target(contact: &Uri, from: Peer) -> Peer {
    if from.transport.reliable() {
        return from;
    }
    let host = contact.host.trim_start_matches('[').trim_end_matches(']');
    let Ok(ip) = host.parse::<IpAddr>() else {
        return from;
    };
    let private = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    if private(&ip) && !private(&from.addr.ip()) && !from.addr.ip().is_loopback() {
        return from;
    }
    Peer {
        transport: from.transport,
        addr: SocketAddr::new(ip, contact.port.unwrap_or(5060)),
    }
}

/// Expiry policy.
#[derive(Clone, Copy, Debug)]
pub struct RegistrarConfig {
    pub default_expires: u32,
    pub min_expires: u32,
    pub max_expires: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            default_expires: 3600,
            min_expires: 60,
            max_expires: 7200,
        }
    }
}

/// A change in who is reachable, for the ACD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reachability {
    Up(String),
    Down(String),
}

#[derive(Default)]
pub struct Registrar {
    cfg: RegistrarConfig,
    bindings: HashMap<String, Vec<Binding>>,
}

impl Registrar {
    pub fn new(cfg: RegistrarConfig) -> Registrar {
        Registrar {
            cfg,
            bindings: HashMap::new(),
        }
    }

    /// The most recently refreshed live binding of `user` (a refresh moves a binding to the
    /// end of the list). Not the one that expires last: a phone that died without
    /// un-registering keeps its long expiry while the phone the agent uses now refreshes.
    pub fn lookup(&self, user: &str, now: Instant) -> Option<&Binding> {
        self.bindings
            .get(user)?
            .iter()
            .rev()
            .find(|b| b.expires_at > now)
    }

    pub fn users(&self) -> impl Iterator<Item = &String> {
        self.bindings.keys()
    }

    /// Applies an authenticated REGISTER for `user`; returns the answer and any reachability change.
    pub fn register(
        &mut self,
        now: Instant,
        req: &Request,
        user: &str,
        from: Peer,
        to_tag: &str,
    ) -> (Response, Option<Reachability>) {
        let was_up = self.lookup(user, now).is_some();
        let header_expires = req
            .headers
            .get(&HeaderName::Expires)
            .map(|v| v.trim().parse::<u64>().unwrap_or(u64::MAX));
        let expires_of = |c: &NameAddr| -> u64 {
            c.params
                .get("expires")
                .map(|v| v.parse::<u64>().unwrap_or(u64::MAX))
                .or(header_expires)
                .unwrap_or(self.cfg.default_expires as u64)
        };
        if req.core.contact_star {
            if header_expires != Some(0) || !req.core.contacts.is_empty() {
                return (Response::to(req, 400, Some(to_tag)), None);
            }
            self.bindings.remove(user);
        }
        for c in &req.core.contacts {
            let e = expires_of(c);
            if e != 0 && e < self.cfg.min_expires as u64 {
                let mut r = Response::to(req, 423, Some(to_tag));
                r.headers.push(
                    HeaderName::Other("Min-Expires".into()),
                    self.cfg.min_expires.to_string(),
                );
                return (r, None);
            }
        }
        let list = self.bindings.entry(user.to_string()).or_default();
        for c in &req.core.contacts {
            let e = expires_of(c).min(self.cfg.max_expires as u64);
            let same = |b: &Binding| b.contact == c.uri;
            if let Some(b) = list.iter().find(|b| same(b)) {
                // §10.3 step 7: an older CSeq in the same Call-ID is out of order.
                if b.call_id == req.core.call_id && b.cseq >= req.core.cseq.seq {
                    return (Response::to(req, 500, Some(to_tag)), None);
                }
            }
            list.retain(|b| !same(b));
            if e > 0 {
                list.push(Binding {
                    contact: c.uri.clone(),
                    peer: target(&c.uri, from),
                    call_id: req.core.call_id.clone(),
                    cseq: req.core.cseq.seq,
                    expires_at: now + Duration::from_secs(e),
                });
            }
        }
        if list.is_empty() {
            self.bindings.remove(user);
        }
        let mut resp = Response::to(req, 200, Some(to_tag));
        for b in self.bindings.get(user).into_iter().flatten() {
            let mut na = NameAddr::new(b.contact.clone());
            let left = b.expires_at.saturating_duration_since(now).as_secs();
            na.params.set("expires", Some(left.to_string()));
            resp.core.contacts.push(na);
        }
        let is_up = self.lookup(user, now).is_some();
        let change = match (was_up, is_up) {
            (false, true) => Some(Reachability::Up(user.to_string())),
            (true, false) => Some(Reachability::Down(user.to_string())),
            _ => None,
        };
        (resp, change)
    }

    /// The live bindings of `user` (for persisting after a change).
    pub fn bindings(&self, user: &str) -> &[Binding] {
        self.bindings.get(user).map_or(&[], Vec::as_slice)
    }

    /// Puts back a binding saved before a restart; reports the agent reachable if it was not.
    pub fn restore(&mut self, now: Instant, user: &str, b: Binding) -> Option<Reachability> {
        if b.expires_at <= now {
            return None;
        }
        let was_up = self.lookup(user, now).is_some();
        let list = self.bindings.entry(user.to_string()).or_default();
        list.retain(|x| x.contact != b.contact);
        list.push(b);
        (!was_up).then(|| Reachability::Up(user.to_string()))
    }

    /// Drops expired bindings; returns the agents that are no longer reachable.
    pub fn expire(&mut self, now: Instant) -> Vec<Reachability> {
        let mut gone = Vec::new();
        self.bindings.retain(|user, list| {
            list.retain(|b| b.expires_at > now);
            if list.is_empty() {
                gone.push(Reachability::Down(user.clone()));
                false
            } else {
                true
            }
        });
        gone
    }

    /// The earliest binding expiry, so the driver can wake up for it.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.bindings.values().flatten().map(|b| b.expires_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::Transport;

    fn register(r: &mut Registrar, now: Instant, port: u16, expires: u32, cseq: u32) {
        let text = format!(
            "REGISTER sip:acd SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKr{port}{cseq}\r\nFrom: <sip:1001@acd>;tag=f{port}\r\nTo: <sip:1001@acd>\r\nCall-ID: reg{port}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:1001@127.0.0.1:{port}>\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
        );
        let req = match crate::sip::msg::parse(text.as_bytes(), true, &Default::default()) {
            Ok(crate::sip::msg::Message::Request(r)) => r,
            other => panic!("{other:?}"),
        };
        let from = Peer {
            transport: Transport::Udp,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
        };
        let (resp, _) = r.register(now, &req, "1001", from, "t");
        assert_eq!(resp.code, 200);
    }

    #[test]
    fn the_phone_registered_last_is_reached_not_the_one_expiring_last() {
        let t0 = Instant::now();
        let mut r = Registrar::new(RegistrarConfig::default());
        // The old phone (linphone) with 600 s dies without un-registering; the new one
        // (pjsua2) registers with 300 s a minute later and keeps refreshing.
        register(&mut r, t0, 5071, 600, 1);
        let t1 = t0 + Duration::from_secs(60);
        register(&mut r, t1, 5072, 300, 1);
        let port = |r: &Registrar, now| r.lookup("1001", now).map(|b| b.peer.addr.port());
        assert_eq!(port(&r, t1), Some(5072));
        let t2 = t1 + Duration::from_secs(250);
        register(&mut r, t2, 5072, 300, 2);
        assert_eq!(port(&r, t2), Some(5072), "a refresh keeps it first");
        // Past the new phone's expiry without a refresh, the old binding is all that is left.
        let t3 = t2 + Duration::from_secs(301);
        assert_eq!(port(&r, t3), None, "the old one expired too (t0 + 600 s)");
        let mut r2 = Registrar::new(RegistrarConfig::default());
        register(&mut r2, t0, 5071, 600, 1);
        register(&mut r2, t0 + Duration::from_secs(10), 5072, 60, 1);
        assert_eq!(
            port(&r2, t0 + Duration::from_secs(71)),
            Some(5071),
            "only the live one"
        );
    }
}
