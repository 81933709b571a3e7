//! The only place with sockets and real time. The core task owns the [`CallManager`] and feeds it
//! bytes, media events and `Instant::now()`; transports and media tasks talk to it over channels.

pub mod cluster;
mod cluster_calls;
pub mod durable;
pub mod lanes;
pub mod media;
pub mod nats;
mod rtp_ports;
mod sip;

use crate::call::{CallManager, MediaCommand};
use crate::events::Event;
use crate::sip::transaction::Transport;
use bytes::Bytes;
use media::{CallMedia, MediaCtl, Prompts};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{info, warn};

pub use crate::control::CoreHandle;
use crate::control::{Input, StatusReport};
pub use sip::{TcpCounters, TcpLimits};

#[derive(Debug, Error)]
pub enum NetError {
    #[error("cannot start the media thread: {source}")]
    Media { source: std::io::Error },
    #[error(transparent)]
    Cluster(#[from] nats::NatsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Events held for the history writer beyond its channel before any is lost (~1 KB each).
const MAX_EVENT_OVERFLOW: usize = 1_000_000;

/// Capacity of the lossless channel to the history writer.
pub const DURABLE_QUEUE: usize = 65_536;

/// Socket-level settings.
pub struct NetConfig {
    pub sip_listen: SocketAddr,
    pub media_bind: IpAddr,
    pub tcp: TcpLimits,
    pub rtp_timeout: Duration,
    pub prompts: Arc<Prompts>,
    pub counters: Arc<media::MediaCounters>,
    /// How RTP legs learn their peer's address.
    pub learn: crate::media::bridge::LearnConfig,
    /// Trusted peers (not limited per source).
    pub trusted: Arc<Vec<crate::sip::budget::Cidr>>,
    pub tcp_counters: Arc<TcpCounters>,
    /// A new request that waited longer than this for the core is answered 503 + Retry-After
    /// (zero: never shed).
    pub overload_delay: Duration,
    pub lane_counters: Arc<lanes::LaneCounters>,
    /// SIP over TLS: its listener and certificate (none: no TLS).
    pub sip_tls: Option<SipTls>,
    /// The context store callers are looked up in (none: no lookups).
    pub store: Option<crate::context::Store>,
    /// Abandon a lookup after this long (the call layer has already moved on by then).
    pub lookup_budget: Duration,
    /// External context sources asked in parallel with the store.
    pub http_sources: Arc<Vec<crate::context::http_source::HttpSource>>,
    /// The lossless channel to the history writer and callback book (none: no durable
    /// consumer, as in tests that drive the core alone).
    pub durable: Option<mpsc::Sender<crate::events::Stamped>>,
    /// Where changed registrations go to be saved (a writer task that owns the store).
    pub persist: Option<mpsc::Sender<crate::call::Persist>>,
    /// Where call snapshots go to be written (none: calls are not snapshotted).
    pub snapshots: Option<mpsc::Sender<crate::call::SnapshotWrite>>,
    /// A node of several: its `[cluster]` and NATS connection (the cluster task starts with
    /// the core). None: one box.
    pub cluster: Option<cluster::ClusterSetup>,
}

/// The SIP-over-TLS listener and the certificate it presents.
pub struct SipTls {
    pub listener: TcpListener,
    pub certs: crate::tls::CertStore,
}

/// SIP's UDP socket and TCP listener, bound to the same port.
pub struct SipSockets {
    udp: tokio::net::UdpSocket,
    tcp: TcpListener,
}

impl SipSockets {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }
}

/// Binds SIP's UDP and TCP on `addr`. For port 0 (tests, ad-hoc runs) it picks a port free for
/// both: an ephemeral UDP port may already be some TCP connection's, so it tries again.
pub async fn bind_sip(addr: SocketAddr) -> Result<SipSockets, NetError> {
    let bind_err = |source| NetError::Bind { addr, source };
    let tries = if addr.port() == 0 { 50 } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let udp = sip::bind_udp(addr).map_err(bind_err)?;
        let port = udp.local_addr().map_err(bind_err)?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok(SipSockets { udp, tcp }),
            Err(e) => last = Some(e),
        }
    }
    Err(bind_err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no port free for UDP and TCP",
        )
    })))
}

/// Starts the core on SIP sockets from [`bind_sip`]; returns once everything listens.
pub async fn start(
    mut cfg: NetConfig,
    sockets: SipSockets,
    mut manager: CallManager,
) -> Result<CoreHandle, NetError> {
    let udp = Arc::new(sockets.udp);
    let tcp = sockets.tcp;
    let addr = udp.local_addr().map_err(|source| NetError::Bind {
        addr: cfg.sip_listen,
        source,
    })?;
    let (tx, inbox, rx) = lanes::lanes(cfg.lane_counters.clone());
    let (events, _) = broadcast::channel(4096);
    tokio::spawn(sip::udp_reader(udp.clone(), inbox.clone()));
    if let Some(t) = cfg.sip_tls.take() {
        info!(addr = ?t.listener.local_addr().ok(), cert = %t.certs.cert_path().display(), "SIP listening on TLS");
        tokio::spawn(sip::tcp_acceptor(
            t.listener,
            Some(t.certs),
            tx.clone(),
            inbox.clone(),
            cfg.tcp,
            cfg.trusted.clone(),
            cfg.tcp_counters.clone(),
        ));
    }
    tokio::spawn(sip::tcp_acceptor(
        tcp,
        None,
        tx.clone(),
        inbox.clone(),
        cfg.tcp,
        cfg.trusted.clone(),
        cfg.tcp_counters.clone(),
    ));
    let rtp = rtp_ports::Stash::new(cfg.media_bind);
    manager.set_port_binder(Box::new(rtp.clone()));
    manager.set_snapshots(cfg.snapshots.is_some());
    let cluster = match cfg.cluster.take() {
        Some(setup) => Some(cluster::start(setup, tx.clone()).await?),
        None => None,
    };
    let core = Core {
        cluster,
        manager,
        rtp,
        udp,
        tcp: HashMap::new(),
        tcp_pending: HashMap::new(),
        media: HashMap::new(),
        media_rt: media::MediaRuntime::start().map_err(|source| NetError::Media { source })?,
        durable: durable::DurableQueue::new(cfg.durable.clone(), MAX_EVENT_OVERFLOW),
        input: tx.clone(),
        inbox,
        events: events.clone(),
        cfg,
        drain_waiters: Vec::new(),
        snapshot_backlog: HashMap::new(),
        deadline: None,
    };
    tokio::spawn(core.run(rx));
    info!(%addr, "SIP listening on UDP and TCP");
    Ok(CoreHandle {
        input: tx,
        events,
        sip_addr: addr,
    })
}

struct Core {
    /// The cluster task (a node of several).
    cluster: Option<cluster::ClusterHandle>,
    manager: CallManager,
    /// RTP sockets bound as their ports were taken, waiting for their media task.
    rtp: rtp_ports::Stash,
    udp: Arc<UdpSocket>,
    tcp: HashMap<SocketAddr, mpsc::Sender<Bytes>>,
    /// Messages waiting for an outbound TCP connection being opened.
    tcp_pending: HashMap<SocketAddr, Vec<Bytes>>,
    media: HashMap<crate::acd::CallId, mpsc::Sender<MediaCtl>>,
    media_rt: media::MediaRuntime,
    durable: durable::DurableQueue,
    input: mpsc::Sender<Input>,
    inbox: lanes::SipInbox,
    events: broadcast::Sender<Event>,
    cfg: NetConfig,
    /// Who waits for a drain to finish.
    drain_waiters: Vec<oneshot::Sender<()>>,
    /// Snapshots the writer's channel had no room for: the latest per call, sent first next
    /// time (so an older state never overtakes a newer one).
    snapshot_backlog: HashMap<String, crate::call::SnapshotWrite>,
    /// When the manager wants [`crate::call::Input::Timeout`] next (its last output said).
    deadline: Option<Instant>,
}

impl Core {
    /// Reads the lanes in priority order (timers, control, dialog, fresh; see [`lanes`]) and
    /// sheds fresh requests that waited past the overload threshold.
    async fn run(mut self, mut rx: lanes::Lanes) {
        use crate::call::Input as CallInput;
        self.flush().await;
        loop {
            let input = match rx.next(self.deadline, self.cfg.overload_delay).await {
                None => return,
                Some(lanes::Next::Timer) => {
                    self.manager.handle(Instant::now(), CallInput::Timeout);
                    self.flush().await;
                    continue;
                }
                Some(lanes::Next::Shed(f)) => {
                    let shed = CallInput::ShedSip {
                        from: f.peer,
                        data: &f.data,
                    };
                    self.manager.handle(Instant::now(), shed);
                    self.flush().await;
                    continue;
                }
                Some(lanes::Next::Input(i)) => i,
            };
            let now = Instant::now();
            match input {
                Input::Sip(from, data) => self
                    .manager
                    .handle(now, CallInput::Sip { from, data: &data }),
                Input::Media(ev) => self.manager.handle(now, CallInput::Media(ev)),
                Input::Agents(a) => self.manager.set_agents(now, a),
                Input::RestoreCallbacks(saved) => {
                    info!(
                        callbacks = saved.len(),
                        "callbacks restored from the database"
                    );
                    self.manager.restore_callbacks(now, saved);
                }
                Input::Context {
                    call,
                    result,
                    sources,
                } => self.manager.handle(
                    now,
                    CallInput::Context {
                        call,
                        result,
                        sources,
                    },
                ),
                Input::TcpOpen(addr, w) => {
                    for m in self.tcp_pending.remove(&addr).into_iter().flatten() {
                        let _ = w.try_send(m);
                    }
                    self.tcp.insert(addr, w);
                }
                Input::TcpClosed(addr) => {
                    self.tcp.remove(&addr);
                    if let Some(lost) = self.tcp_pending.remove(&addr) {
                        warn!(to = %addr, messages = lost.len(), "TCP connection failed; messages dropped");
                    }
                }
                Input::Status(reply) => {
                    let _ = reply.send(StatusReport {
                        status: self.manager.status(now),
                        queues: self.manager.queue_status(now),
                        agents: self.manager.agent_status(now),
                        media: self.cfg.counters.snapshot(),
                        tcp_refused_total: self
                            .cfg
                            .tcp_counters
                            .refused_total
                            .load(std::sync::atomic::Ordering::Relaxed),
                        tcp_refused_per_source: self
                            .cfg
                            .tcp_counters
                            .refused_per_source
                            .load(std::sync::atomic::Ordering::Relaxed),
                        events_overflowed: self.durable.overflowed,
                        events_waiting: self.durable.waiting(),
                        events_lost: self.durable.lost,
                        fresh_waiting: self.inbox.fresh_waiting(),
                        fresh_dropped: self
                            .cfg
                            .lane_counters
                            .fresh_dropped
                            .load(std::sync::atomic::Ordering::Relaxed),
                        dialog_dropped: self
                            .cfg
                            .lane_counters
                            .dialog_dropped
                            .load(std::sync::atomic::Ordering::Relaxed),
                    });
                }
                Input::Cluster(crate::cluster::ClusterInput::Desk(d)) => {
                    // Another node's call, for a desk this node may hold: to the desk hub.
                    match d.note.clone().event() {
                        Some(ev) => {
                            let _ = self.events.send(ev);
                        }
                        None => self.manager.handle(
                            now,
                            CallInput::Cluster(crate::cluster::ClusterInput::Desk(d)),
                        ),
                    }
                }
                Input::Cluster(c) => self.manager.handle(now, CallInput::Cluster(c)),
                Input::TakeOver(calls) => {
                    let report = self.manager.take_over(now, calls);
                    info!(?report, "calls of a dead node taken over");
                }
                Input::Dialplan(d) => {
                    info!(queues = d.queues.len(), "dialplan reloaded");
                    self.manager.set_dialplan(*d);
                }
                Input::PopDelivered { call, agent } => match &self.cluster {
                    // Shown here for a call another node holds: that node rings now.
                    Some(c) if !self.manager.holds(call) => {
                        use crate::cluster::desk_relay::DeskNote;
                        c.send(crate::cluster::protocol::Outgoing::Desk(DeskNote::Shown {
                            call,
                            agent,
                        }))
                    }
                    _ => self
                        .manager
                        .handle(now, CallInput::PopDelivered { call, agent }),
                },
                Input::DeskOpen { agent, open } => {
                    if let Some(c) = &self.cluster {
                        use crate::cluster::desk_relay::DeskNote;
                        c.send(crate::cluster::protocol::Outgoing::Desk(DeskNote::Open {
                            agent: agent.clone(),
                            open,
                        }));
                    }
                    self.manager
                        .handle(now, CallInput::DeskOpen { agent, open })
                }
                Input::Desk { agent, cmd, reply } => {
                    match self.manager.agent_desk(now, &agent, cmd.clone()) {
                        // Another node leads the agent's partition: it decides.
                        Err(crate::call::DeskError::Elsewhere { partition, .. })
                            if self.cluster.is_some() =>
                        {
                            if let Some(c) = &self.cluster {
                                c.desk_command(cluster::DeskRequest {
                                    partition,
                                    agent,
                                    cmd,
                                    reply,
                                });
                            }
                        }
                        r => {
                            let _ = reply.send(r);
                        }
                    }
                }
                Input::Transfer {
                    agent,
                    call,
                    target,
                    note,
                    reply,
                } => {
                    let _ = reply.send(self.manager.transfer(now, &agent, call, target, note));
                }
                Input::Drain { on, done } => {
                    self.manager.set_draining(on);
                    if !on {
                        self.drain_waiters.clear();
                    }
                    self.drain_waiters.extend(done);
                }
                Input::Shutdown(done) => {
                    self.manager.shutdown(now);
                    self.flush().await;
                    self.finish_snapshots().await;
                    let _ = done.send(());
                    return;
                }
                Input::HandOver(done) => {
                    self.manager.hand_over(now);
                    self.flush().await;
                    self.finish_snapshots().await;
                    let _ = done.send(());
                    return;
                }
                Input::Resume(saved, reply) => {
                    let report = self.manager.resume(now, saved);
                    let _ = reply.send(report);
                }
            }
            self.flush().await;
        }
    }

    /// Does everything the manager asks, in its order, until it names its next deadline.
    async fn flush(&mut self) {
        use crate::call::Output;
        self.durable.pump();
        let now = Instant::now();
        let at_ms = crate::context::time::unix_now_ms();
        loop {
            match self.manager.poll_output(now) {
                Output::Transmit(t) => self.transmit(t).await,
                Output::Persist(p) => {
                    if let (Some(c), crate::call::Persist::Bindings(agent, list)) =
                        (&self.cluster, &p)
                    {
                        c.bindings(agent.clone(), list.clone());
                    }
                    if let Some(tx) = &self.cfg.persist {
                        if tx.try_send(p).is_err() {
                            warn!("agent state writer is behind; an update was not saved");
                        }
                    }
                }
                Output::Lookup(req) => self.spawn_lookup(req),
                Output::Media(cmd) => self.media_command(cmd),
                Output::Event(ev) => {
                    if let Some(c) = &self.cluster {
                        // The agent's desk may be open on another node.
                        if let Some(note) = crate::cluster::desk_relay::DeskNote::of(&ev) {
                            c.send(crate::cluster::protocol::Outgoing::Desk(note));
                        }
                    }
                    info!(target: "acd::events", event = %serde_json::to_string(&ev).unwrap_or_default());
                    self.durable.push(at_ms, ev.clone());
                    let _ = self.events.send(ev);
                }
                Output::Snapshot(w) => self.send_snapshot(w),
                Output::Cluster(o) => {
                    if let Some(c) = &self.cluster {
                        c.send(o);
                    }
                }
                Output::Timeout(at) => {
                    self.deadline = at;
                    break;
                }
            }
        }
        self.send_snapshot_backlog();
        if !self.drain_waiters.is_empty() && self.manager.drained() {
            for w in self.drain_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    /// Puts one SIP message on its transport.
    async fn transmit(&mut self, t: crate::sip::transaction::Transmit) {
        match t.to.transport {
            Transport::Udp => {
                if let Err(e) = self.udp.send_to(&t.data, t.to.addr).await {
                    warn!(to = %t.to.addr, error = %e, "udp send");
                }
            }
            // No outbound TLS: a TLS peer is reached on the connection it opened (phones
            // register over it and keep it up), never by dialling it.
            Transport::Tls => match self.tcp.get(&t.to.addr) {
                Some(w) => {
                    let _ = w.try_send(t.data);
                }
                None => {
                    warn!(to = %t.to.addr, "no TLS connection to this peer; message dropped")
                }
            },
            Transport::Tcp => match self.tcp.get(&t.to.addr) {
                Some(w) => {
                    let _ = w.try_send(t.data);
                }
                None => {
                    let first = !self.tcp_pending.contains_key(&t.to.addr);
                    self.tcp_pending.entry(t.to.addr).or_default().push(t.data);
                    if first {
                        tokio::spawn(sip::connect_out(
                            t.to.addr,
                            self.input.clone(),
                            self.inbox.clone(),
                            self.cfg.tcp,
                        ));
                    }
                }
            },
        }
    }

    /// Hands a changed call's snapshot to its writer, never blocking the core: past the
    /// channel's room the latest per call waits in the backlog (so an older state never
    /// overtakes a newer one).
    fn send_snapshot(&mut self, w: crate::call::SnapshotWrite) {
        use mpsc::error::TrySendError;
        let Some(tx) = &self.cfg.snapshots else {
            return;
        };
        if !self.snapshot_backlog.is_empty() {
            self.snapshot_backlog.insert(w.interaction.clone(), w);
            return;
        }
        if let Err(TrySendError::Full(w)) = tx.try_send(w) {
            self.snapshot_backlog.insert(w.interaction.clone(), w);
        }
    }

    /// Moves what waits in the snapshot backlog to the writer, as far as it has room.
    fn send_snapshot_backlog(&mut self) {
        use mpsc::error::TrySendError;
        let Some(tx) = self.cfg.snapshots.clone() else {
            return;
        };
        while let Some(k) = self.snapshot_backlog.keys().next().cloned() {
            let Some(w) = self.snapshot_backlog.remove(&k) else {
                break;
            };
            if let Err(TrySendError::Full(w)) = tx.try_send(w) {
                self.snapshot_backlog.insert(k, w);
                break;
            }
        }
    }

    /// Stopping: whatever waits in the backlog goes to the writer (waiting for room now).
    async fn finish_snapshots(&mut self) {
        let Some(tx) = self.cfg.snapshots.clone() else {
            return;
        };
        for (_, w) in self.snapshot_backlog.drain() {
            if tx.send(w).await.is_err() {
                break;
            }
        }
    }

    fn media_command(&mut self, cmd: MediaCommand) {
        match cmd {
            MediaCommand::Start(start) => {
                let (tx, rx) = mpsc::channel(8);
                self.media.insert(start.call, tx);
                let bound = self
                    .rtp
                    .take(start.caller_port)
                    .zip(self.rtp.take(start.agent_port));
                let m = CallMedia {
                    bound,
                    start,
                    bind_ip: self.cfg.media_bind,
                    rtp_timeout: self.cfg.rtp_timeout,
                    prompts: self.cfg.prompts.clone(),
                    counters: self.cfg.counters.clone(),
                    learn: self.cfg.learn,
                };
                self.media_rt
                    .spawn(media::run_call_media(m, rx, self.input.clone()));
            }
            MediaCommand::Bridge {
                call,
                agent_remote,
                agent_codec,
                agent_codec_pt,
                agent_dtmf_pt,
                agent_signalling,
                agent_srtp,
                record,
            } => self.control(
                call,
                MediaCtl::Bridge {
                    srtp: agent_srtp,
                    agent: crate::media::bridge::Expect {
                        sdp: agent_remote,
                        signalling: agent_signalling,
                        codec: agent_codec,
                        codec_pt: agent_codec_pt,
                        dtmf_pt: agent_dtmf_pt,
                    },
                    record,
                },
            ),
            MediaCommand::Retarget { call, leg, remote } => {
                let side = match leg {
                    crate::call::Leg::Caller => crate::media::recorder::Side::Caller,
                    crate::call::Leg::Agent => crate::media::recorder::Side::Agent,
                };
                self.control(call, MediaCtl::Retarget { side, remote })
            }
            MediaCommand::Relock { call, leg, addr } => {
                let side = match leg {
                    crate::call::Leg::Caller => crate::media::recorder::Side::Caller,
                    crate::call::Leg::Agent => crate::media::recorder::Side::Agent,
                };
                self.control(call, MediaCtl::Relock { side, addr })
            }
            MediaCommand::Hold { call } => self.control(call, MediaCtl::Hold),
            MediaCommand::Play { call, prompt } => self.control(call, MediaCtl::Play(prompt.0)),
            MediaCommand::Stop { call } => {
                self.control(call, MediaCtl::Stop);
                self.media.remove(&call);
            }
        }
    }

    /// Runs one context lookup off the core task: the store and every HTTP source at once, each
    /// within 90 % of the budget so whatever arrived in time is merged before the call moves on.
    fn spawn_lookup(&self, req: crate::call::LookupRequest) {
        let (Some(store), input, budget) = (
            self.cfg.store.clone(),
            self.input.clone(),
            self.cfg.lookup_budget,
        ) else {
            return;
        };
        let http = self.cfg.http_sources.clone();
        tokio::spawn(async move {
            use crate::context::{CallerContext, SourceReport};
            let per = budget.mul_f32(0.9);
            let unix = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let tasks: Vec<_> = http
                .iter()
                .cloned()
                .map(|src| {
                    let number = req.number.clone();
                    tokio::spawn(async move {
                        let t0 = Instant::now();
                        let mut part = CallerContext {
                            number: number.clone(),
                            ..Default::default()
                        };
                        let r = src.enrich(&number, &mut part, per).await;
                        (
                            src.name,
                            t0.elapsed(),
                            r.map(|_| part).map_err(|e| e.to_string()),
                        )
                    })
                })
                .collect();
            let t0 = Instant::now();
            let from_store = match tokio::time::timeout(per, store.lookup(&req.number, unix)).await
            {
                Ok(Ok(ctx)) => Ok(ctx),
                Ok(Err(e)) => Err(format!("context store: {e}")),
                Err(_) => Err(format!(
                    "context store: no answer within {} ms",
                    per.as_millis()
                )),
            };
            let mut sources = Vec::new();
            if !http.is_empty() {
                sources.push(SourceReport {
                    source: "database".into(),
                    ms: t0.elapsed().as_millis() as u64,
                    error: from_store.as_ref().err().cloned(),
                });
            }
            let mut merged = from_store.as_ref().ok().cloned();
            for t in tasks {
                let Ok((name, took, r)) = t.await else {
                    continue;
                };
                sources.push(SourceReport {
                    source: name,
                    ms: took.as_millis() as u64,
                    error: r.as_ref().err().cloned(),
                });
                if let Ok(part) = r {
                    match merged.as_mut() {
                        Some(m) => m.absorb(part),
                        None => merged = Some(part),
                    }
                }
            }
            let result = merged.ok_or_else(|| from_store.err().unwrap_or_default());
            let _ = input
                .send(Input::Context {
                    call: req.call,
                    result,
                    sources,
                })
                .await;
        });
    }

    /// Tells a call's media task what to do; a task that has already ended is simply gone.
    fn control(&self, call: crate::acd::CallId, ctl: MediaCtl) {
        if let Some(tx) = self.media.get(&call) {
            let _ = tx.try_send(ctl);
        }
    }
}
