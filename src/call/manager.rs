use super::phase::{Input, Phase, Wake};
use super::uac::UacLeg;
use super::{Leg, MediaCommand, PortPool};
use crate::acd::{CallId, Decision};
use crate::cluster::{Decided, Matcher};
use crate::context::AgentRecord;
use crate::events::Event;
use crate::routing::Dialplan;
use crate::sdp::Negotiated;
use crate::sip::dialog::{random_token, Dialog};
use crate::sip::endpoint::{Endpoint, EndpointEvent};
use crate::sip::header::HeaderName;
use crate::sip::msg::{Request, Response};
use crate::sip::registrar::{Reachability, SavedBinding};
use crate::sip::transaction::{Peer, Transmit, Transport, TxKey};
use crate::sip::uri::{NameAddr, Uri};
use crate::sip::via::Method;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Instant;
use tracing::{info, Span};

/// Agent state the core hands to the database writer, so a restart finds it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Persist {
    /// An agent's registered contacts (an empty list forgets them).
    Bindings(String, Vec<SavedBinding>),
    /// An agent's desk choice and the end of their wrap-up (unix ms).
    Desk {
        agent: String,
        desk: crate::acd::Desk,
        wrap_until_ms: Option<u64>,
    },
}

/// Settings the call layer needs from the config.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// The address we put in Via, Contact and SDP.
    pub advertise: IpAddr,
    pub sip_port: u16,
    /// The SIP-over-TLS port, when TLS is on: TLS legs name it in their Via and Contact.
    pub tls_port: Option<u16>,
    pub rtp_low: u16,
    pub rtp_high: u16,
    /// Ping registered agent phones with OPTIONS this often (`None`: never).
    pub qualify_every: Option<std::time::Duration>,
    /// Ask the context store about each caller, waiting at most this long (`None`: don't ask).
    pub lookup_budget: Option<std::time::Duration>,
    /// Whose dialling rules turn caller numbers into E.164.
    pub country: crate::context::e164::Country,
    /// Calls at once, and from one untrusted source address (past them: 503 + Retry-After).
    pub max_calls: usize,
    pub max_calls_per_source: usize,
    pub retry_after_s: u32,
    /// Where PSTN calls come from: only these are believed about the caller's number.
    pub trunks: Vec<super::Trunk>,
}

impl ManagerConfig {
    /// Our sent-by for messages on `transport` (TLS has its own port).
    pub(super) fn via_host(&self, transport: Transport) -> String {
        let ip = match self.advertise {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        let port = match (transport, self.tls_port) {
            (Transport::Tls, Some(p)) => p,
            _ => self.sip_port,
        };
        format!("{ip}:{port}")
    }
}

pub(super) struct CallerLeg {
    pub invite_key: TxKey,
    pub invite: Request,
    /// `invite` as text, made once for the call's snapshots (it never changes).
    pub invite_text: super::snapshot::TextOnce,
    pub dialog: Dialog,
    /// Our SDP answer, resent in 183/200 and re-INVITE answers.
    pub sdp: Bytes,
    /// A 2xx was sent.
    pub answered: bool,
    /// The session timer the caller asked for (RFC 4028), if any.
    pub session: Option<super::session_timer::SessionTimer>,
    /// Our reliable 183 waiting for its PRACK (RFC 3262).
    pub prack: Option<Box<super::prack::Reliable>>,
}

/// One call: its caller leg, where it is ([`Phase`], with the agent side when there is one),
/// its media and what routing learnt about it.
pub(super) struct Call {
    pub span: Span,
    pub caller_number: String,
    pub queue: String,
    pub caller: CallerLeg,
    pub phase: Phase,
    pub media: Negotiated,
    /// Our SRTP key on the caller leg (when the caller offered SRTP; `media.srtp` has theirs).
    pub caller_key: Option<crate::media::srtp::MasterKey>,
    /// From the route; kept for joining the queue once a late offer is answered.
    pub priority: i32,
    pub caller_port: u16,
    pub agent_port: u16,
    pub arrived: Instant,
    /// Our o= session id (kept for the call's life, across a resume) and version, bumped
    /// with every new SDP we send on this call.
    pub sdp_session: u64,
    pub sdp_version: u64,
    /// What the context store knows about the caller (for routing, the pop and the history).
    pub context: Option<crate::context::CallerContext>,
    /// The Request-URI user the caller dialled.
    pub dialed: String,
    /// The routing decision, with its trace.
    pub route: Option<crate::routing::Decision>,
    /// A prompt plays over the hold music (a rule's prompt, an announcement): the music
    /// comes back when it ends.
    pub prompt_playing: bool,
    /// Where the caller's RTP really comes from, when the media task locked onto another
    /// address than their SDP's (NAT); kept in the snapshot.
    pub caller_learned: Option<std::net::SocketAddr>,
    /// This call's interaction history row.
    pub interaction: String,
    /// Blind transfers so far, and the notes agents left for the next one.
    pub transfers: u32,
    pub notes: Vec<String>,
    /// A callback whose customer answered: when they asked for it (for the pop).
    pub called_back: Option<Instant>,
    /// Who the caller is, and whether a trunk vouches for it (`caller_number` is its number).
    pub identity: super::Identity,
    /// The address the caller's INVITE came from, counted in `per_source` while their leg is
    /// live (`None` once released, or for calls restored after a restart).
    pub source: Option<IpAddr>,
}

/// Counters that show nothing is left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    pub calls: usize,
    pub acd_calls: usize,
    pub stale_agent_legs: usize,
    pub transactions: usize,
    pub free_rtp_ports: usize,
    /// RTP ports skipped because they would not bind (another program holds them).
    pub rtp_bind_failures: u64,
    /// The node is draining: no new calls.
    pub draining: bool,
    /// Re-INVITEs sent to the legs of calls taken over from the last process and not yet
    /// answered: 0 once every resumed phone has re-latched (or been given up on).
    pub resuming: usize,
    /// Call snapshots taken since start (the writer stores the newest of each call).
    pub snapshots_taken: u64,
    /// Inputs a call's phase did not expect (a BYE for a leg it no longer has, a digit before
    /// the caller proved their address): each is logged; a growing count is a peer or a bug
    /// to look at.
    pub unexpected_inputs: u64,
    pub registered_agents: usize,
    pub sip: crate::sip::endpoint::EndpointStats,
    pub totals: Totals,
    /// New calls refused because `max_calls` were in progress, or because their source
    /// already had `max_calls_per_source`.
    pub calls_full: u64,
    pub source_full: u64,
    /// Callback requests refused by the `[callback]` policy (untrusted number, prefix, caps).
    pub callbacks_refused: u64,
    /// A cluster node: the partitions it leads now, with their epochs (empty on one box).
    pub leading: Vec<(String, u64)>,
}

/// Calls since start, by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub arrived: u64,
    pub refused: u64,
    pub connected: u64,
    pub abandoned: u64,
    pub ended: u64,
}

impl Totals {
    fn count(&mut self, ev: &Event) {
        match ev {
            Event::CallArrived { .. } => self.arrived += 1,
            Event::CallRefused { .. } => self.refused += 1,
            Event::Connected { .. } => self.connected += 1,
            Event::Abandoned { .. } => self.abandoned += 1,
            Event::Ended { .. } => self.ended += 1,
            _ => {}
        }
    }
}

/// Owns the SIP endpoint, the ACD engine and every live call.
pub struct CallManager {
    pub(super) cfg: ManagerConfig,
    pub(super) ep: Endpoint,
    /// The ACD: this process's engine, or the cluster's partition leaders (see `cluster`).
    pub(super) acd: Matcher,
    pub(super) dialplan: Dialplan,
    pub(super) calls: HashMap<CallId, Call>,
    /// SIP Call-ID → (call, leg).
    pub(super) by_sip_id: HashMap<String, (CallId, Leg)>,
    pub(super) by_caller_invite: HashMap<TxKey, CallId>,
    pub(super) by_agent_tx: HashMap<TxKey, CallId>,
    /// Our INVITEs we gave up on (ring timeout, the caller left) until they are finished.
    pub(super) stale: HashMap<TxKey, UacLeg>,
    pub(super) ports: PortPool,
    agents: HashMap<String, AgentRecord>,
    next_call: CallId,
    pub(super) media: VecDeque<MediaCommand>,
    pub(super) events: VecDeque<Event>,
    totals: Totals,
    pub(super) persist: VecDeque<Persist>,
    pub(super) qualify: super::qualify::Qualify,
    pub(super) lookups: super::context_lookup::Lookups,
    pub(super) pops: super::pop::PopGate,
    pub(super) recordings: Option<std::path::PathBuf>,
    pub(super) callbacks: super::callback::Callbacks,
    /// Every call-layer timer (menus, surveys, lookups, announcements, callbacks, pops,
    /// qualify), lazily cancelled against the deadlines the calls keep.
    pub(super) timers: crate::timers::TimerHeap<Wake>,
    /// Inputs a call's phase did not expect (see [`super::phase`]).
    pub(super) unexpected_inputs: u64,
    /// Live caller legs per untrusted source address (bounded: a source past its cap is
    /// refused, and an entry goes when its count does).
    pub(super) per_source: HashMap<IpAddr, usize>,
    /// Callbacks granted today (per-number and per-day caps).
    pub(super) callback_ledger: crate::routing::callback_policy::CallbackLedger,
    /// New calls are refused (503) while the ones in progress finish (see `drain`).
    pub(super) draining: bool,
    pub(super) calls_full: u64,
    pub(super) source_full: u64,
    /// Makes interaction ids unique across restarts of this process.
    pub(super) boot: String,
    pub(super) snapshots: super::snapshot::Snapshots,
    /// Re-INVITEs sent to resumed calls' legs: their 2xx are ACKed and may move media.
    pub(super) reinvites: HashMap<TxKey, super::resume::Reinvite>,
    /// Cluster nodes: BYEs for calls not held here yet (a dead node's, see `strays`).
    pub(super) strays: super::strays::Strays,
}

impl CallManager {
    pub fn new(cfg: ManagerConfig, ep: Endpoint, dialplan: Dialplan) -> CallManager {
        CallManager {
            acd: {
                let (at, unix_ms) = ep.clock_anchor();
                let wall = crate::cluster::WallClock { at, unix_ms };
                let mut acd = Matcher::single(dialplan.queues.clone(), wall);
                acd.set_cross_queue(dialplan.cross_queue);
                acd
            },
            ports: PortPool::new(cfg.rtp_low, cfg.rtp_high),
            cfg,
            ep,
            dialplan,
            calls: HashMap::new(),
            by_sip_id: HashMap::new(),
            by_caller_invite: HashMap::new(),
            by_agent_tx: HashMap::new(),
            stale: HashMap::new(),
            agents: HashMap::new(),
            next_call: 1,
            media: VecDeque::new(),
            events: VecDeque::new(),
            totals: Totals::default(),
            persist: VecDeque::new(),
            qualify: Default::default(),
            lookups: Default::default(),
            pops: Default::default(),
            recordings: None,
            callbacks: Default::default(),
            timers: Default::default(),
            unexpected_inputs: 0,
            per_source: HashMap::new(),
            callback_ledger: Default::default(),
            draining: false,
            calls_full: 0,
            source_full: 0,
            boot: random_token().chars().take(8).collect(),
            snapshots: Default::default(),
            reinvites: HashMap::new(),
            strays: Default::default(),
        }
    }

    pub(super) fn via_host(&self) -> String {
        self.via_host_on(Transport::Udp)
    }

    /// Our sent-by for messages on `transport` (TLS has its own port).
    pub(super) fn via_host_on(&self, transport: Transport) -> String {
        self.cfg.via_host(transport)
    }

    pub(super) fn contact(&self) -> NameAddr {
        self.contact_on(Transport::Udp)
    }

    /// Our Contact for a dialog on `transport`: a TLS peer is told to come back over TLS, to
    /// the TLS port (RFC 3261 §26.2.1; `transport=tls` rather than `sips:`, which would demand
    /// TLS on every hop, as phones expect).
    pub(super) fn contact_on(&self, transport: Transport) -> NameAddr {
        let (host, port) = self
            .via_host_on(transport)
            .rsplit_once(':')
            .map(|(h, p)| (h.to_string(), p.parse().ok()))
            .unwrap_or_default();
        let mut uri = Uri::sip(Some("acd"), &host, port);
        if transport == Transport::Tls && self.cfg.tls_port.is_some() {
            uri.params.set("transport", Some("tls".to_string()));
        }
        NameAddr::new(uri)
    }

    /// Replaces the agent directory: credentials for digest, skills for the ACD.
    pub fn set_agents(&mut self, now: Instant, agents: Vec<AgentRecord>) {
        let creds = agents
            .iter()
            .map(|a| (a.id.clone(), a.credentials.clone()))
            .collect();
        self.ep.set_credentials(creds);
        let new: HashMap<String, AgentRecord> =
            agents.into_iter().map(|a| (a.id.clone(), a)).collect();
        for gone in self.agents.keys().filter(|k| !new.contains_key(*k)) {
            self.acd.remove_agent(now, gone);
        }
        for a in new.values() {
            self.acd.upsert_agent(now, &a.id, a.skills.clone());
            self.acd.set_agent_wrapup(&a.id, a.wrapup);
            if self.ep.registrar.lookup(&a.id, now).is_some() {
                self.acd.agent_online(now, &a.id);
            }
        }
        self.agents = new;
        self.run_decisions(now);
    }

    /// Swaps the dialplan; calls in progress keep their queue.
    pub fn set_dialplan(&mut self, dialplan: Dialplan) {
        self.acd.set_queues(dialplan.queues.clone());
        self.acd.set_cross_queue(dialplan.cross_queue);
        self.dialplan = dialplan;
    }

    pub fn handle_sip(&mut self, now: Instant, from: Peer, data: &[u8]) {
        self.ep.handle_input(now, from, data);
        self.process(now);
    }

    /// Makes the port pool bind every RTP port as it is taken (see [`super::ports`]).
    pub fn set_port_binder(&mut self, binder: Box<dyn super::ports::PortBinder>) {
        self.ports.set_binder(binder);
    }

    /// A new request that waited past the overload threshold: 503 + Retry-After unless it
    /// belongs to a transaction already running.
    pub fn shed_sip(&mut self, now: Instant, from: Peer, data: &[u8]) {
        self.ep.shed(now, from, data, self.cfg.retry_after_s);
        self.process(now);
    }

    pub(super) fn process(&mut self, now: Instant) {
        while let Some(ev) = self.ep.poll_event() {
            match ev {
                EndpointEvent::Request { key, request, from } => {
                    self.on_request(now, key, *request, from)
                }
                EndpointEvent::Cancel { invite } => self.on_cancel(now, &invite),
                EndpointEvent::Ack { request, .. } => self.on_ack(now, &request),
                EndpointEvent::Response { key, response } => self.on_response(now, key, *response),
                EndpointEvent::Timeout { key } => self.on_agent_timeout(now, &key),
                EndpointEvent::AckTimeout { call_id } => {
                    if let Some(&(call, Leg::Caller)) = self.by_sip_id.get(&call_id) {
                        self.step(now, call, Input::AckTimeout);
                    }
                }
                EndpointEvent::Bindings { agent, bindings } => {
                    self.persist.push_back(Persist::Bindings(agent, bindings));
                }
                EndpointEvent::Reachability(r) => self.reachability(now, r),
            }
            self.run_decisions(now);
        }
        self.run_decisions(now);
    }

    /// An agent became reachable (a phone registered or answers OPTIONS again) or not (its
    /// last answering phone expired, un-registered or went silent).
    pub(super) fn reachability(&mut self, now: Instant, r: Reachability) {
        let (agent, up) = match r {
            Reachability::Up(a) => (a, true),
            Reachability::Down(a) => (a, false),
        };
        if up {
            self.acd.agent_online(now, &agent);
            self.qualify_start(now, &agent);
        } else {
            self.acd.agent_offline(now, &agent);
        }
        self.events.push_back(Event::AgentReachable { agent, up });
    }

    pub(super) fn run_decisions(&mut self, now: Instant) {
        while let Some(d) = self.acd.poll_decision() {
            let d = match d {
                Decided::Acd(d) => d,
                Decided::Withdraw { call, agent } => {
                    // A new leader re-offers the caller; this ring is nobody's miss.
                    self.drop_agent_leg(now, call, &agent);
                    continue;
                }
                Decided::Refused { call, why } => {
                    if let Some(c) = self.calls.get(&call) {
                        let _g = c.span.enter();
                        tracing::warn!(%why, "the partition's leader refused the caller");
                    }
                    self.end_call(now, call, crate::events::Side::System, 503);
                    continue;
                }
            };
            match d {
                Decision::Offer {
                    call,
                    agent,
                    queue,
                    ring_timeout,
                } => {
                    if self.caller_away(call) {
                        self.dial_customer(now, call, &agent)
                    } else {
                        self.offer_with_pop(now, call, &agent, &queue, ring_timeout)
                    }
                }
                Decision::RingTimeout { call, agent } => {
                    self.drop_agent_leg(now, call, &agent);
                    self.events.push_back(Event::RingNoAnswer { call, agent });
                }
                Decision::Overflow { call, from, to } => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        let _g = c.span.enter();
                        info!(%from, %to, "waited the maximum; overflow");
                        c.queue = to.clone();
                    }
                    self.events.push_back(Event::Overflow {
                        call,
                        from,
                        to: to.clone(),
                    });
                    self.events.push_back(Event::Queued { call, queue: to });
                }
                Decision::WaitedOut { call, queue } => self.waited_out(now, call, &queue),
                Decision::DeskChanged {
                    agent,
                    desk,
                    wrap_until,
                } => {
                    let unix_now = self.ep.unix_ms(now);
                    let wrap_until_ms = wrap_until
                        .map(|t| unix_now + t.saturating_duration_since(now).as_millis() as u64);
                    self.persist.push_back(Persist::Desk {
                        agent,
                        desk,
                        wrap_until_ms,
                    });
                }
                Decision::AgentChanged {
                    agent,
                    state,
                    reason,
                } => self.events.push_back(Event::AgentState {
                    agent,
                    state,
                    reason,
                }),
            }
        }
    }

    fn reply(&mut self, now: Instant, key: &TxKey, req: &Request, code: u16) {
        let r = Response::to(req, code, Some(&random_token()));
        self.ep.respond(now, key, &r);
    }

    fn on_request(&mut self, now: Instant, key: TxKey, req: Request, from: Peer) {
        let known = self.by_sip_id.get(&req.core.call_id).copied();
        match (&req.method, known) {
            (Method::Invite, None) if req.core.to.tag().is_none() => {
                self.on_invite(now, key, req, from)
            }
            (_, Some((call, leg))) if self.dialog_matches(call, leg, &req) => match req.method {
                Method::Bye => {
                    self.reply(now, &key, &req, 200);
                    self.step(now, call, Input::bye_of(leg));
                }
                Method::Invite | Method::Update => self.on_reoffer(now, key, req, from, call, leg),
                Method::Prack if leg == Leg::Caller => self.on_prack(now, &key, &req, call),
                Method::Prack => self.reply(now, &key, &req, 481),
                Method::Info if leg == Leg::Caller => {
                    let ct = req.headers.get(&HeaderName::ContentType).unwrap_or("");
                    self.reply(now, &key, &req, 200);
                    if let Some(digit) = crate::media::dtmf::from_sip_info(ct, &req.body) {
                        self.digit(now, call, digit);
                    }
                }
                _ => self.reply(now, &key, &req, 200),
            },
            // A dead node's call hung up before its takeover (see `strays`).
            (Method::Bye, None)
                if self.acd.is_cluster()
                    && req.core.to.tag().is_some()
                    && self.strays.note(now, &req.core) =>
            {
                info!(sip_call_id = %req.core.call_id, "a BYE for a call not held here (yet): taken");
                self.reply(now, &key, &req, 200)
            }
            _ => self.reply(now, &key, &req, 481),
        }
    }

    /// Where call ids start (a cluster node's carry its prefix).
    pub(super) fn set_next_call(&mut self, first: CallId) {
        self.next_call = self.next_call.max(first);
    }

    pub(super) fn next_call(&mut self) -> CallId {
        self.next_call += 1;
        self.next_call - 1
    }

    /// The caller cancelled before we answered.
    fn on_cancel(&mut self, now: Instant, invite: &TxKey) {
        if let Some(&call) = self.by_caller_invite.get(invite) {
            self.step(now, call, Input::Cancel);
        }
    }

    /// Sends the caller their 200 OK if they were waiting on early media.
    pub(super) fn answer_caller(&mut self, now: Instant, call: CallId) {
        let contact = self.contact();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.caller.answered || self.answer_held_for_prack(call) {
            return;
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.caller.answered = true;
        let tag = c.caller.dialog.local.tag().unwrap_or("").to_string();
        let mut r = Response::to(&c.caller.invite, 200, Some(&tag));
        r.core.contacts.push(contact);
        r.headers
            .push(HeaderName::Allow, crate::sip::endpoint::ALLOW);
        r.headers.push(
            HeaderName::Supported,
            crate::sip::endpoint::SUPPORTED.join(", "),
        );
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = c.caller.sdp.clone();
        let key = c.caller.invite_key.clone();
        self.session_start(now, call, &mut r.headers);
        self.ep.respond(now, &key, &r);
    }

    /// Registrations saved before a restart: agents reachable again at once.
    pub fn restore_bindings(&mut self, now: Instant, saved: Vec<(String, SavedBinding)>) {
        self.ep.restore_bindings(now, saved);
        self.process(now);
    }

    /// Desk choices saved before a restart (agent, choice, wrap-up end in unix ms), applied
    /// after their registrations so a paused agent is not offered a call in between.
    pub fn restore_desks(&mut self, now: Instant, saved: Vec<crate::context::SavedDesk>) {
        let unix_now = self.ep.unix_ms(now);
        for (agent, desk, wrap_until_ms) in saved {
            // A deadline, so ahead of now (what is left of the wrap-up), not clamped to it.
            let until = wrap_until_ms
                .map(|ms| now + std::time::Duration::from_millis(ms.saturating_sub(unix_now)));
            self.acd.restore_desk(now, &agent, desk, until);
        }
        self.process(now);
    }

    /// What to write to the database about agents (off the call path).
    pub fn poll_persist(&mut self) -> Option<Persist> {
        self.persist.pop_front()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.ep.poll_transmit()
    }

    pub fn poll_media(&mut self) -> Option<MediaCommand> {
        self.media.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        self.totals.count(&ev);
        if let Some(call) = ev.call() {
            self.snapshot_mark(call);
        }
        Some(ev)
    }

    pub fn status(&self, now: Instant) -> Status {
        Status {
            calls: self.calls.len(),
            acd_calls: self.acd.calls_in_system(),
            stale_agent_legs: self.stale.len(),
            transactions: self.ep.tx.len(),
            free_rtp_ports: self.ports.available(),
            rtp_bind_failures: self.ports.bind_failures,
            registered_agents: self
                .agents
                .keys()
                .filter(|a| self.ep.registrar.lookup(a, now).is_some())
                .count(),
            sip: self.ep.stats.clone(),
            totals: self.totals.clone(),
            calls_full: self.calls_full,
            source_full: self.source_full,
            callbacks_refused: self.callback_ledger.refused,
            draining: self.draining,
            resuming: self.reinvites.values().filter(|r| !r.answered).count(),
            snapshots_taken: self.snapshots.taken,
            unexpected_inputs: self.unexpected_inputs,
            leading: if self.acd.is_cluster() {
                self.acd.leading()
            } else {
                Vec::new()
            },
        }
    }

    pub fn queue_status(&self, now: Instant) -> Vec<crate::acd::QueueStatus> {
        self.acd.queue_status(now)
    }

    pub fn agent_status(&self, now: Instant) -> Vec<crate::acd::AgentStatus> {
        self.acd.agent_status(now)
    }
}
