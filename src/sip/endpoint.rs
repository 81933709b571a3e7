//! The SIP endpoint: bytes in, bytes and events out. It parses, answers what needs no call logic
//! (stateless errors, OPTIONS, REGISTER with digest, CANCEL matching, 4xx for unsupported
//! extensions, media types and schemes) and hands everything about calls to the call layer as
//! [`EndpointEvent`]s. Sans-IO: `handle_*` take `now`, `poll_*` drain outputs.

use super::auth::{AuthError, Authenticator, Credentials};
use super::dialog::random_token;
use super::header::HeaderName;
use super::msg::{parse, Limits, Message, Request, Response};
use super::registrar::{Reachability, Registrar, RegistrarConfig, SavedBinding};
use super::transaction::{
    Incoming, Peer, State, TimerConfig, TransactionLayer, Transmit, TxEvent, TxKey,
};
use super::uri::Scheme;
use super::via::Method;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;
use tracing::debug;

/// Methods we implement, for Allow.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, INFO, UPDATE, PRACK";
/// Extensions we understand in Require, and list in Supported: reliable provisional
/// responses (RFC 3262) and session timers (RFC 4028).
pub const SUPPORTED: &[&str] = &["100rel", "timer"];

/// Writes where a request really came from into its top Via (RFC 3261 §18.2.1 `received`
/// when the sent-by host is not the source address; RFC 3581 `rport=` and `received` when the
/// client asked with a bare `rport`), so every response tells a phone behind NAT its public
/// address, as Kamailio and Asterisk do.
fn stamp_source(req: &mut Request, from: Peer) {
    let Some(via) = req.core.vias.first_mut() else {
        return;
    };
    let ip = from.addr.ip().to_string();
    let wants_rport = via
        .params
        .0
        .iter()
        .any(|p| p.name.eq_ignore_ascii_case("rport") && p.value.is_none());
    let host = via.host.trim_start_matches('[').trim_end_matches(']');
    if wants_rport {
        via.params.set("rport", Some(from.addr.port().to_string()));
    }
    if wants_rport || host != ip {
        via.params.set("received", Some(ip));
    }
}

/// What the call layer must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointEvent {
    /// INVITE (initial or re-INVITE), BYE, INFO, UPDATE or PRACK in a new server transaction.
    Request {
        key: TxKey,
        request: Box<Request>,
        from: Peer,
    },
    /// The caller cancelled the pending INVITE `invite`; 487 is the TU's to send.
    Cancel {
        invite: TxKey,
    },
    /// ACK for a 2xx.
    Ack {
        request: Box<Request>,
        from: Peer,
    },
    Response {
        key: TxKey,
        response: Box<Response>,
    },
    /// No answer at all to one of our requests (treat as 408).
    Timeout {
        key: TxKey,
    },
    /// A 2xx we sent was never acknowledged.
    AckTimeout {
        call_id: String,
    },
    /// An agent's reachability changed.
    Reachability(Reachability),
    /// An agent's bindings changed (a REGISTER was accepted): persist them.
    Bindings {
        agent: String,
        bindings: Vec<SavedBinding>,
    },
}

/// Endpoint settings.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    pub timers: TimerConfig,
    pub limits: Limits,
    pub registrar: RegistrarConfig,
    pub realm: String,
    pub algorithms: Vec<super::auth::Algorithm>,
    pub nonce_key: Vec<u8>,
    pub nonce_ttl_s: u64,
    pub guard: super::guard::GuardConfig,
    /// Requests per source per second, by class; the allow-list of trusted peers.
    pub budget: super::budget::BudgetConfig,
    /// Server transactions alive at once; past it new requests get 503 (each is kept ~32 s).
    pub max_transactions: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            timers: TimerConfig::default(),
            limits: Limits::default(),
            registrar: RegistrarConfig::default(),
            realm: "acd".into(),
            algorithms: vec![super::auth::Algorithm::Sha256, super::auth::Algorithm::Md5],
            nonce_key: random_token().into_bytes(),
            nonce_ttl_s: 300,
            guard: Default::default(),
            budget: Default::default(),
            max_transactions: 100_000,
        }
    }
}

/// Counters for the status page and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EndpointStats {
    pub received: u64,
    pub rejected: u64,
    /// Unparseable messages that could not be answered (garbage, broken responses).
    pub dropped: u64,
    /// Well-formed responses that matched no transaction (RFC 3261 §17.1.3: discard).
    pub stray_responses: u64,
    pub registers_ok: u64,
    pub auth_failures: u64,
    /// REGISTERs refused because their source address is banned for guessing passwords.
    pub banned: u64,
    /// Requests refused (503) or dropped by the per-source budgets.
    pub budget: super::budget::BudgetStats,
    /// New requests refused with 503 because `max_transactions` were alive.
    pub transactions_full: u64,
    /// New requests answered 503 because they waited too long in the core's queue (overload).
    pub shed: u64,
}

pub struct Endpoint {
    cfg: EndpointConfig,
    pub tx: TransactionLayer,
    pub registrar: Registrar,
    auth: Authenticator,
    credentials: HashMap<String, Credentials>,
    guard: super::guard::AuthGuard,
    budgets: super::budget::Budgets,
    epoch: Instant,
    epoch_unix: u64,
    events: VecDeque<EndpointEvent>,
    pub stats: EndpointStats,
}

impl Endpoint {
    /// `now`/`unix_now` anchor the nonce clock; both come from the driver.
    pub fn new(cfg: EndpointConfig, now: Instant, unix_now: u64) -> Endpoint {
        Endpoint {
            tx: TransactionLayer::new(cfg.timers),
            registrar: Registrar::new(cfg.registrar),
            auth: Authenticator::new(
                &cfg.realm,
                cfg.algorithms.clone(),
                cfg.nonce_key.clone(),
                cfg.nonce_ttl_s,
            ),
            credentials: HashMap::new(),
            guard: super::guard::AuthGuard::new(cfg.guard),
            budgets: super::budget::Budgets::new(cfg.budget.clone()),
            epoch: now,
            epoch_unix: unix_now,
            events: VecDeque::new(),
            stats: EndpointStats::default(),
            cfg,
        }
    }

    pub fn realm(&self) -> &str {
        &self.cfg.realm
    }

    /// RFC 3261 T1, the base of every retransmission interval.
    pub fn t1(&self) -> std::time::Duration {
        self.cfg.timers.t1
    }

    /// Replaces the agent credential directory (loaded from the database off the call path).
    pub fn set_credentials(&mut self, creds: HashMap<String, Credentials>) {
        self.credentials = creds;
    }

    /// Wall-clock seconds matching `now` (anchored when the endpoint was created).
    pub fn unix_secs(&self, now: Instant) -> u64 {
        self.epoch_unix + now.saturating_duration_since(self.epoch).as_secs()
    }

    /// The instant the endpoint's wall clock is anchored at, and the wall-clock milliseconds
    /// then (for layers that convert times the same way).
    pub fn clock_anchor(&self) -> (Instant, u64) {
        (self.epoch, self.epoch_unix * 1000)
    }

    /// Wall-clock milliseconds matching `now` (snapshots keep times that outlive the process).
    pub fn unix_ms(&self, now: Instant) -> u64 {
        self.epoch_unix * 1000 + now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// The `Instant` a wall-clock time in milliseconds corresponds to, for times saved by an
    /// earlier process (never later than `now`, never before the clock can say).
    pub fn instant_of_unix_ms(&self, now: Instant, unix_ms: u64) -> Instant {
        let ago = self.unix_ms(now).saturating_sub(unix_ms);
        now.checked_sub(std::time::Duration::from_millis(ago))
            .unwrap_or(now)
    }

    /// Sends a response with no server transaction behind it: the final answer to an INVITE
    /// received by an earlier process, which a resumed call cannot take over.
    pub fn respond_stateless(&mut self, resp: &Response, to: Peer) {
        self.tx.send_stateless(to, resp.to_bytes());
    }

    /// Feeds one datagram or one framed stream message.
    pub fn handle_input(&mut self, now: Instant, from: Peer, data: &[u8]) {
        match parse(data, from.transport.reliable(), &self.cfg.limits) {
            Ok(msg) => self.handle_message(now, from, msg),
            Err(rej) => self.reject(from, rej),
        }
    }

    /// A message that does not parse: a stateless 400 when its Via can be echoed, else dropped.
    fn reject(&mut self, from: Peer, rej: super::msg::Rejection) {
        self.stats.received += 1;
        if rej.answerable() {
            self.stats.rejected += 1;
            debug!(%from.addr, status = rej.status, warning = %rej.warning, "rejected");
            self.tx.send_stateless(from, Bytes::from(rej.to_bytes()));
        } else {
            self.stats.dropped += 1;
        }
    }

    /// One parsed message.
    fn handle_message(&mut self, now: Instant, from: Peer, msg: Message) {
        self.stats.received += 1;
        match msg {
            Message::Response(resp) => {
                if !self.tx.on_response(now, resp) {
                    self.stats.stray_responses += 1;
                }
            }
            Message::Request(req) => self.on_request(now, req, from),
        }
        self.drain_tx_events();
    }

    /// Answers a new request that waited too long for the core with a stateless 503 +
    /// Retry-After, at the cost of one parse. A retransmission of a request whose transaction
    /// exists is handled as usual (it is cheap, and answering it 503 would contradict the
    /// answer already sent).
    pub fn shed(&mut self, now: Instant, from: Peer, data: &[u8], retry_after_s: u32) {
        let req = match parse(data, from.transport.reliable(), &self.cfg.limits) {
            Ok(Message::Request(req)) => req,
            Ok(msg) => return self.handle_message(now, from, msg),
            Err(rej) => return self.reject(from, rej),
        };
        if req.method == Method::Ack || self.tx.knows(&req) {
            return self.handle_message(now, from, Message::Request(req));
        }
        self.stats.received += 1;
        self.stats.shed += 1;
        self.overloaded(&req, from, retry_after_s);
        self.drain_tx_events();
    }

    /// Checks a request's digest against `user`'s `creds` (a trunk's): true when it proves them. Else
    /// the request is answered 401 with fresh challenges (its transaction ends), a wrong
    /// answer counts towards the source's ban like a wrong REGISTER, and a banned source gets
    /// 403.
    pub fn authorize(
        &mut self,
        now: Instant,
        key: &TxKey,
        req: &Request,
        from: Peer,
        (user, creds): (&str, &Credentials),
    ) -> bool {
        let tag = random_token();
        if self.guard.is_banned(from.addr.ip(), now) {
            self.stats.banned += 1;
            self.tx
                .respond(now, key, &Response::to(req, 403, Some(&tag)));
            return false;
        }
        let secs = self.unix_secs(now);
        let authz = req.headers.get(&HeaderName::Authorization);
        let method = req.method.as_str().to_string();
        match self
            .auth
            .verify(secs, &method, authz, |u| (u == user).then(|| creds.clone()))
        {
            Ok(_) => {
                self.guard.succeeded(from.addr.ip());
                true
            }
            Err(e) => {
                self.stats.auth_failures += u64::from(authz.is_some());
                if matches!(e, AuthError::Rejected | AuthError::Replay) {
                    self.guard.failed(from.addr.ip(), now);
                }
                let mut r = Response::to(req, 401, Some(&tag));
                for c in self.auth.challenges(secs, e == AuthError::Stale) {
                    r.headers.push(HeaderName::WwwAuthenticate, c);
                }
                self.tx.respond(now, key, &r);
                false
            }
        }
    }

    /// Whether `ip` is a trusted peer (on the budget allow-list: a trunk, the edge proxy).
    pub fn trusted(&self, ip: std::net::IpAddr) -> bool {
        self.budgets.trusted(ip)
    }

    fn on_request(&mut self, now: Instant, mut req: Request, from: Peer) {
        use super::budget::{Class, Verdict};
        stamp_source(&mut req, from);
        let class = match req.method {
            Method::Invite if req.core.to.tag().is_none() => Class::Invite,
            Method::Register => Class::Register,
            Method::Options => Class::Options,
            _ => Class::Other,
        };
        let verdict = self.budgets.check(now, from.addr.ip(), class);
        self.stats.budget = self.budgets.stats.clone();
        match verdict {
            Verdict::Accept => {}
            Verdict::Refuse(after) => return self.overloaded(&req, from, after),
            Verdict::Drop => return,
        }
        // New work stops at the cap; requests inside a dialog (BYE, re-INVITE, INFO: they end
        // or keep calls already admitted) have the same again as headroom, so a table full of
        // new calls never strands a hang-up.
        let cap = if req.core.to.tag().is_some() {
            self.cfg.max_transactions.saturating_mul(2)
        } else {
            self.cfg.max_transactions
        };
        if self.tx.len() >= cap && !self.tx.knows(&req) {
            self.stats.transactions_full += 1;
            return self.overloaded(&req, from, 5);
        }
        let key = match self.tx.on_request(now, &req, from) {
            Incoming::New(k) => k,
            Incoming::Ack => {
                self.events.push_back(EndpointEvent::Ack {
                    request: Box::new(req),
                    from,
                });
                return;
            }
            Incoming::Absorbed => return,
        };
        if let Some(resp) = self.check_request(&req) {
            self.tx.respond(now, &key, &resp);
            return;
        }
        match req.method {
            Method::Options => {
                let mut r = Response::to(&req, 200, Some(&random_token()));
                self.capabilities(&mut r);
                self.tx.respond(now, &key, &r);
            }
            Method::Register => self.on_register(now, &key, &req, from),
            Method::Cancel => {
                let invite = TxKey {
                    method: Method::Invite,
                    ..key.clone()
                };
                // §9.2: a CANCEL matching an INVITE transaction gets 200 even when the INVITE
                // already has its final response (the CANCEL then has no effect); 481 only when
                // there is no such transaction.
                let state = self.tx.state(&invite);
                let pending = state == Some(State::Proceeding);
                let code = if state.is_some() { 200 } else { 481 };
                self.tx
                    .respond(now, &key, &Response::to(&req, code, Some(&random_token())));
                if pending {
                    self.events.push_back(EndpointEvent::Cancel { invite });
                }
            }
            Method::Invite | Method::Bye | Method::Info | Method::Update | Method::Prack => {
                self.events.push_back(EndpointEvent::Request {
                    key,
                    request: Box::new(req),
                    from,
                });
            }
            Method::Other(_) => {
                let mut r = Response::to(&req, 501, Some(&random_token()));
                r.headers.push(HeaderName::Allow, ALLOW);
                self.tx.respond(now, &key, &r);
            }
            _ => {
                let mut r = Response::to(&req, 405, Some(&random_token()));
                r.headers.push(HeaderName::Allow, ALLOW);
                self.tx.respond(now, &key, &r);
            }
        }
    }

    fn capabilities(&self, r: &mut Response) {
        r.headers.push(HeaderName::Allow, ALLOW);
        r.headers.push(HeaderName::Accept, "application/sdp");
        r.headers.push(HeaderName::Supported, SUPPORTED.join(", "));
    }

    /// A stateless 503 with Retry-After (nothing is kept for it); ACKs get no answer.
    fn overloaded(&mut self, req: &Request, from: Peer, retry_after_s: u32) {
        if req.method == Method::Ack {
            return;
        }
        let mut r = Response::to(req, 503, Some(&random_token()));
        r.headers
            .push(HeaderName::RetryAfter, retry_after_s.to_string());
        self.tx.send_stateless(from, r.to_bytes());
    }

    /// Checks every request must pass before its method is considered (416, 420, 415, 406).
    fn check_request(&self, req: &Request) -> Option<Response> {
        let reply = |code| Response::to(req, code, Some(&random_token()));
        if let Scheme::Other(_) = req.uri.scheme {
            return Some(reply(416));
        }
        if !matches!(req.method, Method::Ack | Method::Cancel) {
            let unsupported: Vec<&str> = req
                .headers
                .get_all(&HeaderName::Require)
                .filter(|t| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(t)))
                .collect();
            if !unsupported.is_empty() {
                let mut r = reply(420);
                r.headers
                    .push(HeaderName::Unsupported, unsupported.join(", "));
                return Some(r);
            }
        }
        if matches!(req.method, Method::Invite | Method::Update) {
            if !req.body.is_empty() {
                let ct = req.headers.get(&HeaderName::ContentType).unwrap_or("");
                let mime = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                if mime != "application/sdp" && mime != "multipart/mixed" {
                    let mut r = reply(415);
                    r.headers.push(HeaderName::Accept, "application/sdp");
                    return Some(r);
                }
            }
            let accepts: Vec<String> = req
                .headers
                .get_all(&HeaderName::Accept)
                .map(|a| {
                    a.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                })
                .collect();
            if !accepts.is_empty()
                && !accepts
                    .iter()
                    .any(|a| a == "application/sdp" || a == "application/*" || a == "*/*")
            {
                let mut r = reply(406);
                r.headers.push(HeaderName::Accept, "application/sdp");
                return Some(r);
            }
        }
        None
    }

    fn on_register(&mut self, now: Instant, key: &TxKey, req: &Request, from: Peer) {
        let tag = random_token();
        if !req.core.to.uri.is_sip() {
            self.tx
                .respond(now, key, &Response::to(req, 400, Some(&tag)));
            return;
        }
        if self.guard.is_banned(from.addr.ip(), now) {
            self.stats.banned += 1;
            let mut r = Response::to(req, 403, Some(&tag));
            r.headers.push(
                HeaderName::Warning,
                "399 acd \"too many failed logins from this address; try again later\"",
            );
            self.tx.respond(now, key, &r);
            return;
        }
        let secs = self.unix_secs(now);
        let authz = req.headers.get(&HeaderName::Authorization);
        let creds = &self.credentials;
        let verdict = self
            .auth
            .verify(secs, "REGISTER", authz, |u| creds.get(u).cloned());
        let user = match verdict {
            Ok(u) => u,
            Err(e) => {
                self.stats.auth_failures += u64::from(authz.is_some());
                if matches!(e, AuthError::Rejected | AuthError::Replay)
                    && self.guard.failed(from.addr.ip(), now)
                {
                    tracing::warn!(source = %from.addr.ip(), "banned after repeated failed logins");
                }
                debug!(error = %e, "REGISTER challenged");
                let mut r = Response::to(req, 401, Some(&tag));
                for c in self.auth.challenges(secs, e == AuthError::Stale) {
                    r.headers.push(HeaderName::WwwAuthenticate, c);
                }
                self.tx.respond(now, key, &r);
                return;
            }
        };
        self.guard.succeeded(from.addr.ip());
        if req.core.to.uri.user.as_deref() != Some(user.as_str()) {
            self.tx
                .respond(now, key, &Response::to(req, 403, Some(&tag)));
            return;
        }
        let (resp, change) = self.registrar.register(now, req, &user, from, &tag);
        if resp.code == 200 {
            self.stats.registers_ok += 1;
            let unix = self.unix_secs(now);
            let bindings = self
                .registrar
                .bindings(&user)
                .iter()
                .map(|b| SavedBinding::from_binding(b, now, unix))
                .collect();
            self.events.push_back(EndpointEvent::Bindings {
                agent: user.clone(),
                bindings,
            });
        }
        self.tx.respond(now, key, &resp);
        if let Some(c) = change {
            self.events.push_back(EndpointEvent::Reachability(c));
        }
    }

    /// Restores bindings saved before a restart (expired ones are skipped).
    pub fn restore_bindings(&mut self, now: Instant, saved: Vec<(String, SavedBinding)>) {
        let unix = self.unix_secs(now);
        for (agent, sb) in saved {
            if let Some(b) = sb.to_binding(now, unix) {
                if let Some(r) = self.registrar.restore(now, &agent, b) {
                    self.events.push_back(EndpointEvent::Reachability(r));
                }
            }
        }
    }

    /// Makes an agent's phones the ones another cluster node registered.
    pub fn replace_bindings(&mut self, now: Instant, agent: &str, saved: Vec<SavedBinding>) {
        let unix = self.unix_secs(now);
        let list = saved
            .into_iter()
            .filter_map(|sb| sb.to_binding(now, unix))
            .collect();
        if let Some(r) = self.registrar.replace(now, agent, list) {
            self.events.push_back(EndpointEvent::Reachability(r));
        }
    }

    /// Answers a server transaction on behalf of the call layer.
    pub fn respond(&mut self, now: Instant, key: &TxKey, resp: &Response) {
        self.tx.respond(now, key, resp);
    }

    /// Starts a client transaction.
    pub fn send_request(&mut self, now: Instant, req: &Request, to: Peer) -> TxKey {
        self.tx.send_request(now, req, to)
    }

    /// Takes over an INVITE another process sent (see [`TransactionLayer::adopt_invite`]).
    pub fn adopt_invite(&mut self, now: Instant, req: &Request, to: Peer) -> TxKey {
        self.tx.adopt_invite(now, req, to)
    }

    /// Sends an ACK for a 2xx (no transaction).
    pub fn send_ack(&mut self, req: &Request, to: Peer) {
        self.tx.send_stateless(to, req.to_bytes());
    }

    fn drain_tx_events(&mut self) {
        while let Some(e) = self.tx.poll_event() {
            let ev = match e {
                TxEvent::Response { key, response } => EndpointEvent::Response { key, response },
                TxEvent::Timeout { key } => EndpointEvent::Timeout { key },
                TxEvent::AckTimeout { call_id, .. } => EndpointEvent::AckTimeout { call_id },
                TxEvent::NoAckForError { .. } => continue,
            };
            self.events.push_back(ev);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        if self.registrar.next_expiry().is_some_and(|t| t <= now) {
            for r in self.registrar.expire(now) {
                self.events.push_back(EndpointEvent::Reachability(r));
            }
        }
        self.drain_tx_events();
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.tx.poll_timeout(), self.registrar.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tx.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
