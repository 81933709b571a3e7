//! The registrar (RFC 3261 §10.3): which agent is reachable at which contact, until when.
//!
//! Requests reach it already authenticated. It answers with the full binding list (each contact
//! with its parameters and what is left of its expiry), honours `Contact: *` with `Expires: 0`,
//! per-contact `expires`, and Min-Expires (423). An agent may have several phones bound at once
//! (a desk phone, a softphone, the browser): calls ring all of them. A phone that registers again
//! with the same `+sip.instance` (RFC 5626 §4.1: the same device, perhaps on a new address after a
//! restart) replaces its old binding instead of adding one, and a binding that stops answering
//! OPTIONS is not rung and is dropped after [`DROP_AFTER_MISSES`] unanswered pings, so a phone that
//! died without un-registering does not keep its agent's calls ringing into nothing.

use super::msg::{Request, Response};
use super::transaction::Peer;
use super::uri::{NameAddr, Params, Uri};
use crate::sip::header::HeaderName;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// One registered contact of an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub contact: Uri,
    /// The Contact's header parameters but `expires` (`+sip.instance`, `reg-id`, feature
    /// tags), echoed in the 200 and used to recognise the same device.
    pub params: Params,
    /// Where the REGISTER came from; INVITEs go here so agents behind NAT are reachable.
    pub peer: Peer,
    pub call_id: String,
    pub cseq: u32,
    pub expires_at: Instant,
    /// OPTIONS pings in a row this contact did not answer; a binding with any is not rung.
    pub misses: u8,
    /// The Path the REGISTER came through (RFC 3327), outermost first: requests for this
    /// contact carry it as their Route, and go to its first hop (the edge proxy).
    pub path: Vec<String>,
}

/// Unanswered OPTIONS in a row after which a binding is removed.
pub const DROP_AFTER_MISSES: u8 = 3;

impl Binding {
    /// The device's RFC 5626 instance id (`+sip.instance`), as written.
    pub fn instance(&self) -> Option<&str> {
        self.params.get("+sip.instance").filter(|v| !v.is_empty())
    }

    /// Answers OPTIONS (or has not been asked yet).
    pub fn reachable(&self) -> bool {
        self.misses == 0
    }

    /// The Contact as a name-addr with its parameters.
    fn name_addr(&self) -> NameAddr {
        NameAddr {
            display: None,
            uri: self.contact.clone(),
            params: self.params.clone(),
        }
    }
}

/// A binding as stored in the database: wall-clock expiry, addresses as text.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedBinding {
    /// The Contact as a name-addr with its parameters (`<sip:…>;+sip.instance="…"`); rows
    /// written before parameters were kept hold a bare URI, which reads the same.
    pub contact: String,
    pub transport: String,
    pub peer: SocketAddr,
    pub call_id: String,
    pub cseq: u32,
    /// Unix seconds.
    pub expires_at: u64,
    /// The REGISTER's Path (RFC 3327), outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
}

impl SavedBinding {
    /// `unix_now` is the wall clock matching `now`.
    pub fn from_binding(b: &Binding, now: Instant, unix_now: u64) -> SavedBinding {
        SavedBinding {
            contact: b.name_addr().to_string(),
            transport: b.peer.transport.as_str().to_string(),
            peer: b.peer.addr,
            call_id: b.call_id.clone(),
            cseq: b.cseq,
            expires_at: unix_now + b.expires_at.saturating_duration_since(now).as_secs(),
            path: b.path.clone(),
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
        let contact = NameAddr::parse(&self.contact).ok()?;
        Some(Binding {
            contact: contact.uri,
            params: contact.params,
            misses: 0,
            peer: Peer {
                transport,
                addr: self.peer,
            },
            call_id: self.call_id.clone(),
            cseq: self.cseq,
            expires_at: now + Duration::from_secs(left),
            path: self.path.clone(),
        })
    }
}

/// The first hop of a Path: its address when it names one (`sip:10.0.0.10:5060;lr`), else
/// where the REGISTER came from (which is that proxy).
fn via_path(first: &str, from: Peer) -> Peer {
    let Ok(na) = NameAddr::parse(first) else {
        return from;
    };
    let host = na.uri.host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => Peer {
            transport: from.transport,
            addr: SocketAddr::new(ip, na.uri.port.unwrap_or(5060)),
        },
        Err(_) => from,
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
    /// Phones one agent may have bound at once; a new one beyond it replaces the binding
    /// refreshed longest ago (the table is keyed by what remote phones send, so it is capped).
    pub max_bindings: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            default_expires: 3600,
            min_expires: 60,
            max_expires: 7200,
            max_bindings: 10,
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

    /// The most recently refreshed binding of `user` that can be rung (a refresh moves a
    /// binding to the end of the list). Not the one that expires last: a phone that died
    /// without un-registering keeps its long expiry while the phone the agent uses now
    /// refreshes.
    pub fn lookup(&self, user: &str, now: Instant) -> Option<&Binding> {
        self.live(user, now).next()
    }

    /// Every binding of `user` that can be rung (unexpired, answering OPTIONS), most recently
    /// refreshed first: the phones a call to the agent forks to.
    pub fn live<'a>(&'a self, user: &str, now: Instant) -> impl Iterator<Item = &'a Binding> {
        self.unexpired(user, now).filter(|b| b.reachable())
    }

    /// Every unexpired binding of `user`, answering or not (qualify pings them all).
    pub fn unexpired<'a>(&'a self, user: &str, now: Instant) -> impl Iterator<Item = &'a Binding> {
        self.bindings
            .get(user)
            .into_iter()
            .flat_map(|l| l.iter().rev())
            .filter(move |b| b.expires_at > now)
    }

    /// Records whether `contact` of `user` answered an OPTIONS. A binding that misses
    /// [`DROP_AFTER_MISSES`] in a row is removed. Returns the agent's reachability change and
    /// whether the binding list changed (to persist it).
    pub fn qualified(
        &mut self,
        user: &str,
        contact: &Uri,
        answered: bool,
        now: Instant,
    ) -> (Option<Reachability>, bool) {
        let was_up = self.lookup(user, now).is_some();
        let Some(list) = self.bindings.get_mut(user) else {
            return (None, false);
        };
        let Some(i) = list.iter().position(|b| &b.contact == contact) else {
            return (None, false);
        };
        let mut removed = false;
        if answered {
            list[i].misses = 0;
        } else {
            list[i].misses = list[i].misses.saturating_add(1);
            if list[i].misses >= DROP_AFTER_MISSES {
                list.remove(i);
                removed = true;
            }
        }
        if list.is_empty() {
            self.bindings.remove(user);
        }
        (self.change(user, was_up, now), removed)
    }

    /// Makes `user`'s phones exactly `list` (another node's registrar registered them: a
    /// cluster keeps one set of phones per agent). Expired ones are left out.
    pub fn replace(
        &mut self,
        now: Instant,
        user: &str,
        list: Vec<Binding>,
    ) -> Option<Reachability> {
        let was_up = self.lookup(user, now).is_some();
        let mut live: Vec<Binding> = list.into_iter().filter(|b| b.expires_at > now).collect();
        live.truncate(self.cfg.max_bindings.max(1));
        if live.is_empty() {
            self.bindings.remove(user);
        } else {
            self.bindings.insert(user.to_string(), live);
        }
        self.change(user, was_up, now)
    }

    fn change(&self, user: &str, was_up: bool, now: Instant) -> Option<Reachability> {
        match (was_up, self.lookup(user, now).is_some()) {
            (false, true) => Some(Reachability::Up(user.to_string())),
            (true, false) => Some(Reachability::Down(user.to_string())),
            _ => None,
        }
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
        let path: Vec<String> = req
            .headers
            .get_all(&HeaderName::Path)
            .map(str::to_string)
            .collect();
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
        let max = self.cfg.max_bindings.max(1);
        let list = self.bindings.entry(user.to_string()).or_default();
        for c in &req.core.contacts {
            let e = expires_of(c).min(self.cfg.max_expires as u64);
            let instance = c.params.get("+sip.instance").filter(|v| !v.is_empty());
            // The same contact, or (RFC 5626 §6) the same device under a new contact.
            let same = |b: &Binding| {
                b.contact == c.uri || (instance.is_some() && b.instance() == instance)
            };
            if let Some(b) = list.iter().find(|b| b.contact == c.uri) {
                // §10.3 step 7: an older CSeq in the same Call-ID is out of order.
                if b.call_id == req.core.call_id && b.cseq >= req.core.cseq.seq {
                    return (Response::to(req, 500, Some(to_tag)), None);
                }
            }
            list.retain(|b| !same(b));
            if e > 0 {
                if list.len() >= max {
                    // Full: the phone refreshed longest ago makes room (most likely dead).
                    list.remove(0);
                }
                let mut params = c.params.clone();
                params.0.retain(|p| !p.name.eq_ignore_ascii_case("expires"));
                list.push(Binding {
                    contact: c.uri.clone(),
                    params,
                    peer: match path.first() {
                        Some(first) => via_path(first, from),
                        None => target(&c.uri, from),
                    },
                    call_id: req.core.call_id.clone(),
                    cseq: req.core.cseq.seq,
                    expires_at: now + Duration::from_secs(e),
                    misses: 0,
                    path: path.clone(),
                });
            }
        }
        if list.is_empty() {
            self.bindings.remove(user);
        }
        let mut resp = Response::to(req, 200, Some(to_tag));
        // RFC 3327 §5.3: the Path we stored, echoed (the phone learns its route).
        for p in &path {
            resp.headers.push(HeaderName::Path, p.clone());
        }
        for b in self.bindings.get(user).into_iter().flatten().rev() {
            let mut na = b.name_addr();
            let left = b.expires_at.saturating_duration_since(now).as_secs();
            na.params.set("expires", Some(left.to_string()));
            resp.core.contacts.push(na);
        }
        (resp, self.change(user, was_up, now))
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
        let max = self.cfg.max_bindings.max(1);
        let list = self.bindings.entry(user.to_string()).or_default();
        list.retain(|x| x.contact != b.contact);
        if list.len() >= max {
            list.remove(0);
        }
        list.push(b);
        self.change(user, was_up, now)
    }

    /// Drops expired bindings; returns the agents that are no longer reachable (their last
    /// phone that answered expired, though silent ones may linger until dropped).
    pub fn expire(&mut self, now: Instant) -> Vec<Reachability> {
        let mut gone = Vec::new();
        self.bindings.retain(|user, list| {
            // Before this sweep the expired ones still counted.
            let was_up = list.iter().any(Binding::reachable);
            list.retain(|b| b.expires_at > now);
            if was_up && !list.iter().any(Binding::reachable) {
                gone.push(Reachability::Down(user.clone()));
            }
            !list.is_empty()
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
        let resp = register_with(r, now, port, expires, cseq, ">");
        assert_eq!(resp.code, 200);
    }

    /// A REGISTER from port `port` (its own Call-ID) with `params` after the Contact URI.
    fn register_with(
        r: &mut Registrar,
        now: Instant,
        port: u16,
        expires: u32,
        cseq: u32,
        params: &str,
    ) -> Response {
        let text = format!(
            "REGISTER sip:acd SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKr{port}{cseq}\r\nFrom: <sip:1001@acd>;tag=f{port}\r\nTo: <sip:1001@acd>\r\nCall-ID: reg{port}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:1001@127.0.0.1:{port}{params}\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
        );
        let req = match crate::sip::msg::parse(text.as_bytes(), true, &Default::default()) {
            Ok(crate::sip::msg::Message::Request(r)) => r,
            other => panic!("{other:?}"),
        };
        let from = Peer {
            transport: Transport::Udp,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
        };
        r.register(now, &req, "1001", from, "t").0
    }

    /// A REGISTER an edge proxy forwarded (RFC 3327): the phone's contact is behind the edge;
    /// requests for it go to the edge with the Path as their Route, and the 200 echoes the Path.
    #[test]
    fn a_registration_through_an_edge_is_reached_through_it() {
        let t0 = Instant::now();
        let mut r = Registrar::new(RegistrarConfig::default());
        let text = "REGISTER sip:acd SIP/2.0\r\nVia: SIP/2.0/UDP 10.77.0.10:5060;branch=z9hG4bKedge\r\nVia: SIP/2.0/UDP 10.77.0.30:5062;branch=z9hG4bKphone\r\nPath: <sip:10.77.0.10:5060;lr;received=sip:10.77.0.30:5062>\r\nFrom: <sip:1001@acd>;tag=f\r\nTo: <sip:1001@acd>\r\nCall-ID: regedge\r\nCSeq: 1 REGISTER\r\nSupported: path\r\nContact: <sip:1001@10.77.0.30:5062>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n";
        let req = match crate::sip::msg::parse(text.as_bytes(), true, &Default::default()) {
            Ok(crate::sip::msg::Message::Request(r)) => r,
            other => panic!("{other:?}"),
        };
        let from = Peer {
            transport: Transport::Udp,
            addr: "10.77.0.10:5060".parse().unwrap(),
        };
        let resp = r.register(t0, &req, "1001", from, "t").0;
        assert_eq!(resp.code, 200);
        assert_eq!(
            resp.headers.get(&HeaderName::Path),
            Some("<sip:10.77.0.10:5060;lr;received=sip:10.77.0.30:5062>")
        );
        let b = r.live("1001", t0).next().expect("bound");
        assert_eq!(
            b.peer.addr.to_string(),
            "10.77.0.10:5060",
            "sent to the edge"
        );
        assert_eq!(b.contact.to_string(), "sip:1001@10.77.0.30:5062");
        assert_eq!(b.path.len(), 1);
        // Saved and restored (a restart, another node) with its Path.
        let saved = SavedBinding::from_binding(b, t0, 1_000);
        let back = saved.to_binding(t0, 1_000).expect("still valid");
        assert_eq!(back.path, b.path);
        assert_eq!(back.peer, b.peer);
    }

    fn ports(r: &Registrar, now: Instant) -> Vec<u16> {
        r.live("1001", now).map(|b| b.peer.addr.port()).collect()
    }

    const LINPHONE: &str = "\"<urn:uuid:00000000-0000-1000-8000-0011aabbccdd>\"";

    #[test]
    fn every_phone_of_an_agent_stays_bound_newest_first_and_the_200_lists_them_with_params() {
        let t0 = Instant::now();
        let mut r = Registrar::new(RegistrarConfig::default());
        register(&mut r, t0, 5071, 600, 1);
        let ok = register_with(
            &mut r,
            t0 + Duration::from_secs(1),
            5072,
            300,
            1,
            &format!(";ob>;+sip.instance={LINPHONE};reg-id=1"),
        );
        assert_eq!(ok.code, 200);
        assert_eq!(ports(&r, t0 + Duration::from_secs(1)), vec![5072, 5071]);
        let text = String::from_utf8(ok.to_bytes().to_vec()).unwrap();
        let contacts: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("Contact: "))
            .collect();
        assert_eq!(
            contacts,
            vec![
                format!("Contact: <sip:1001@127.0.0.1:5072;ob>;+sip.instance={LINPHONE};reg-id=1;expires=300"),
                "Contact: <sip:1001@127.0.0.1:5071>;expires=599".to_string(),
            ],
            "{text}"
        );
    }

    #[test]
    fn the_same_instance_on_a_new_address_replaces_its_old_binding() {
        let t0 = Instant::now();
        let mut r = Registrar::new(RegistrarConfig::default());
        let inst = format!(">;+sip.instance={LINPHONE}");
        register_with(&mut r, t0, 5071, 600, 1, &inst);
        register(&mut r, t0, 5073, 600, 1);
        // The same phone restarted on a new port (new Call-ID, CSeq from 1).
        let ok = register_with(&mut r, t0 + Duration::from_secs(5), 5072, 600, 1, &inst);
        assert_eq!(ok.code, 200);
        assert_eq!(ports(&r, t0 + Duration::from_secs(5)), vec![5072, 5073]);
        assert_eq!(r.bindings("1001").len(), 2);
    }

    #[test]
    fn past_the_cap_the_binding_refreshed_longest_ago_makes_room() {
        let t0 = Instant::now();
        let mut r = Registrar::new(RegistrarConfig {
            max_bindings: 2,
            ..RegistrarConfig::default()
        });
        register(&mut r, t0, 5071, 600, 1);
        register(&mut r, t0, 5072, 600, 1);
        register(&mut r, t0, 5071, 600, 2); // 5071 refreshed: 5072 is now the oldest
        register(&mut r, t0, 5073, 600, 1);
        assert_eq!(ports(&r, t0), vec![5073, 5071]);
    }

    #[test]
    fn a_phone_that_misses_three_pings_is_not_rung_then_dropped() {
        let t0 = Instant::now();
        let mut r = Registrar::new(RegistrarConfig::default());
        register(&mut r, t0, 5071, 600, 1);
        register(&mut r, t0, 5072, 600, 1);
        let dead = r.bindings("1001")[1].contact.clone();
        assert_eq!(r.qualified("1001", &dead, false, t0), (None, false));
        assert_eq!(ports(&r, t0), vec![5071], "silent: not rung");
        assert_eq!(r.unexpired("1001", t0).count(), 2, "but still pinged");
        // It answers again: back.
        assert_eq!(r.qualified("1001", &dead, true, t0), (None, false));
        assert_eq!(ports(&r, t0), vec![5072, 5071]);
        for _ in 1..DROP_AFTER_MISSES {
            assert_eq!(r.qualified("1001", &dead, false, t0), (None, false));
        }
        assert_eq!(r.qualified("1001", &dead, false, t0), (None, true));
        assert_eq!(r.bindings("1001").len(), 1);
        // The last phone going silent takes the agent out.
        let last = r.bindings("1001")[0].contact.clone();
        assert_eq!(
            r.qualified("1001", &last, false, t0),
            (Some(Reachability::Down("1001".into())), false)
        );
        assert_eq!(
            r.qualified("1001", &last, true, t0),
            (Some(Reachability::Up("1001".into())), false)
        );
    }

    #[test]
    fn expiry_of_the_last_answering_phone_is_down_even_with_a_silent_one_left() {
        let t0 = Instant::now();
        let mut r = Registrar::new(RegistrarConfig::default());
        register(&mut r, t0, 5071, 600, 1);
        register(&mut r, t0, 5072, 60, 1);
        let silent = r.bindings("1001")[0].contact.clone();
        r.qualified("1001", &silent, false, t0);
        assert_eq!(
            r.expire(t0 + Duration::from_secs(61)),
            vec![Reachability::Down("1001".into())]
        );
        assert_eq!(r.bindings("1001").len(), 1, "the silent one lingers");
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

    #[test]
    fn a_saved_binding_keeps_its_instance_and_old_bare_uri_rows_still_read() {
        let t0 = Instant::now();
        let mut r = Registrar::new(RegistrarConfig::default());
        register_with(
            &mut r,
            t0,
            5072,
            300,
            1,
            &format!(";ob>;+sip.instance={LINPHONE}"),
        );
        let saved = SavedBinding::from_binding(&r.bindings("1001")[0], t0, 1_000);
        let back = saved.to_binding(t0, 1_000).expect("restored");
        assert_eq!(back.instance(), Some(LINPHONE));
        assert_eq!(back.contact, r.bindings("1001")[0].contact);
        let old = SavedBinding {
            contact: "sip:1001@127.0.0.1:5071".into(),
            ..saved
        };
        let back = old.to_binding(t0, 1_000).expect("a bare URI row reads");
        assert_eq!(back.contact.to_string(), "sip:1001@127.0.0.1:5071");
        assert_eq!(back.instance(), None);
    }
}
