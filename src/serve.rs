//! Assembles a running server from a [`Config`]: store, dialplan, prompts, SIP core, media, HTTP,
//! and the directory reload that picks up `acd agents …` changes without a restart.

use crate::call::{CallManager, ManagerConfig};
use crate::config::Config;
use crate::context::{Store, StoreError};
use crate::control::Input;
use crate::media::prompt::{default_hold_music, default_welcome, Prompt, PromptError};
use crate::net::{self, CoreHandle, NetConfig, NetError, TcpLimits};
use crate::routing::{Dialplan, DialplanError};
use crate::sip::endpoint::{Endpoint, EndpointConfig};
use crate::sip::registrar::RegistrarConfig;
use crate::sip::transaction::TimerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use thiserror::Error;
use tracing::{info, warn};

/// The demo dialplan, used when `dialplans/default.toml` is not beside the working directory.
pub const DEFAULT_DIALPLAN: &str = include_str!("../dialplans/default.toml");

#[derive(Debug, Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dialplan(#[from] DialplanError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("cannot listen on {addr} (HTTP): {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
}

/// Demo seeding.
#[derive(Clone, Debug, Default)]
pub struct Demo {
    pub enabled: bool,
    pub password: Option<String>,
}

/// A started server.
pub struct Running {
    pub core: CoreHandle,
    pub http_addr: SocketAddr,
    /// The SIP-over-TLS address, when TLS is on.
    pub sip_tls_addr: Option<SocketAddr>,
    /// Certificates to read again on SIGHUP (SIP's and the desk's).
    pub certs: Vec<crate::tls::CertStore>,
    pub store: Store,
    /// The demo agents' password, when seeded.
    pub demo_password: Option<String>,
    /// The call snapshot writer; it ends once the core has stopped and its writes are done.
    pub snapshot_writer: Option<tokio::task::JoinHandle<()>>,
    /// The agent state writer (registrations, desk choices); it ends once the core has
    /// stopped and the last change is saved.
    pub agent_writer: Option<tokio::task::JoinHandle<()>>,
}

/// The demo agents: id, name, skills.
pub const DEMO_AGENTS: &[(&str, &str, &str)] = &[
    ("1001", "Anna", "sales:5,service:4"),
    ("1002", "Ben", "support:5"),
    ("1003", "Chloe", "sales:3,support:3,management:5"),
];

/// The demo's desk users beyond the agents: (id, name, role).
pub const DEMO_STAFF: &[(&str, &str, crate::context::Role)] = &[
    ("sup", "Sam", crate::context::Role::Supervisor),
    ("mkt", "Mia", crate::context::Role::Marketer),
    ("admin", "Administrator", crate::context::Role::Admin),
];

/// The demo's known callers, one per rule of `dialplans/default.toml`.
pub const DEMO_CALLERS: &[(&str, &str)] = &[
    (
        "+15551230001",
        "got the 'spring-ac-offer' SMS 5 minutes before start → service sales, no menu",
    ),
    ("+15551230002", "has an open ticket → support, no menu"),
    (
        "+15551230003",
        "is tagged 'complaint' → management, no menu",
    ),
];

/// Seeds the context that makes the demo tell its story.
async fn seed_demo_context(store: &Store, now: i64) -> Result<(), StoreError> {
    use crate::context::{Campaign, TicketRecord};
    store
        .upsert_campaign(&Campaign {
            name: "spring-ac-offer".into(),
            offer: "Air-conditioner service -20% this week".into(),
            queue: Some("service-sales".into()),
            skills: "service".into(),
            window_minutes: 60,
        })
        .await?;
    store
        .add_campaign_send("spring-ac-offer", "+15551230001", now - 300)
        .await?;
    store
        .upsert_customer(
            "demo-2",
            "Dana Reyes",
            Some("dana@example.com"),
            &["+15551230002".into()],
            &[],
        )
        .await?;
    store
        .upsert_ticket(&TicketRecord {
            id: "T-1042".into(),
            phone: Some("+15551230002".into()),
            customer_id: Some("demo-2".into()),
            status: "open".into(),
            subject: "AC unit leaking water".into(),
            skill: Some("support".into()),
            opened_at: now - 2 * 86_400,
        })
        .await?;
    store
        .upsert_customer(
            "demo-3",
            "Sam Park",
            None,
            &["+15551230003".into()],
            &["complaint".into()],
        )
        .await?;
    Ok(())
}

/// The demo dialplan for a binary run away from its source tree: its recorded prompts are
/// taken from the source tree when it is still there, else left out (built-in tones play).
fn builtin_dialplan() -> String {
    let prompts = concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/");
    if std::path::Path::new(prompts).is_dir() {
        return DEFAULT_DIALPLAN.replace("\"../prompts/", &format!("\"{prompts}"));
    }
    without_prompts(DEFAULT_DIALPLAN)
}

fn without_prompts(plan: &str) -> String {
    plan.lines()
        .filter(|l| !l.contains("\"../prompts/"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads the configured dialplan, falling back to the built-in one for the default path.
pub fn load_dialplan(cfg: &Config) -> Result<Dialplan, DialplanError> {
    if cfg.dialplan == Config::default().dialplan && !cfg.dialplan.exists() {
        return Dialplan::parse(&builtin_dialplan(), "(built-in dialplans/default.toml)");
    }
    Dialplan::load(&cfg.dialplan)
}

async fn seed_demo(store: &Store, realm: &str, password: &str) -> Result<(), StoreError> {
    for (id, name, role) in DEMO_STAFF {
        store.remove_agent(id).await?;
        store.add_agent(id, name, realm, password, &[]).await?;
        store.set_role(id, *role).await?;
    }
    for (id, name, skills) in DEMO_AGENTS {
        store.remove_agent(id).await?;
        store
            .add_agent(
                id,
                name,
                realm,
                password,
                &crate::context::parse_skills(skills)?,
            )
            .await?;
    }
    Ok(())
}

/// The digest algorithms offered. With the default setting the demo offers MD5 alone: SIPp 3.6
/// answers only the first challenge and only with MD5, and baresip 1.0 (libre) gives up with
/// "Function not implemented" when any challenge names SHA-256, whatever the order (both seen
/// here; see shared/peers). Production keeps SHA-256 first, MD5 second (RFC 8760).
fn algorithms(cfg: &Config, demo: &Demo) -> Vec<crate::sip::auth::Algorithm> {
    let algs = cfg.sip.auth_algorithms.clone();
    if demo.enabled && algs == Config::default().sip.auth_algorithms {
        info!("demo: offering MD5 digest only so SIPp 3.6 and baresip 1.0 can register (set sip.auth_algorithms to change)");
        return vec![crate::sip::auth::Algorithm::Md5];
    }
    algs
}

pub async fn start(cfg: &Config, demo: &Demo) -> Result<Running, ServeError> {
    let store = Store::open(&cfg.database.url).await?;
    let demo_password = if demo.enabled {
        let pw = demo
            .password
            .clone()
            .unwrap_or_else(|| format!("{:08x}", rand::random::<u32>()));
        seed_demo(&store, &cfg.sip.realm, &pw).await?;
        let unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        seed_demo_context(&store, unix).await?;
        Some(pw)
    } else {
        None
    };
    let dialplan = load_dialplan(cfg)?;
    let prompts = Arc::new(net::media::Prompts {
        welcome: match &cfg.media.welcome {
            Some(p) => Prompt::load(p)?,
            None => Prompt::from_pcm(&default_welcome()),
        },
        hold: match &cfg.media.hold_music {
            Some(p) => Prompt::load(p)?,
            None => Prompt::from_pcm(&default_hold_music()),
        },
    });
    let (rtp_low, rtp_high) = cfg.rtp_range().map_err(ServeError::Config)?;
    let now = Instant::now();
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let ep_cfg = EndpointConfig {
        timers: TimerConfig {
            t1: Duration::from_millis(cfg.sip.t1_ms.max(1)),
            ..TimerConfig::default()
        },
        limits: crate::sip::msg::Limits {
            max_message: cfg.sip.max_message_bytes,
            ..Default::default()
        },
        registrar: RegistrarConfig {
            min_expires: cfg.sip.min_expires_s,
            max_expires: cfg.sip.max_expires_s,
            max_bindings: cfg.sip.max_phones_per_agent.max(1),
            ..Default::default()
        },
        realm: cfg.sip.realm.clone(),
        algorithms: algorithms(cfg, demo),
        nonce_ttl_s: cfg.sip.nonce_ttl_s,
        guard: crate::sip::guard::GuardConfig {
            max_failures: cfg.sip.auth_max_failures.max(1),
            ban: Duration::from_secs(cfg.sip.auth_ban_s),
            ..Default::default()
        },
        budget: crate::sip::budget::BudgetConfig {
            per_s: [
                cfg.sip.invite_per_s,
                cfg.sip.register_per_s,
                cfg.sip.options_per_s,
                cfg.sip.other_per_s,
            ],
            drop_factor: cfg.sip.flood_drop_factor,
            retry_after_s: cfg.sip.retry_after_s,
            allow: trusted_peers(cfg),
            ..Default::default()
        },
        max_transactions: cfg.sip.max_transactions,
        ..EndpointConfig::default()
    };
    let endpoint = Endpoint::new(ep_cfg, now, unix);
    let advertise = cfg.advertise();
    if cfg.sip.advertise.is_none() && cfg.sip.listen.ip().is_unspecified() {
        warn!("listening on all interfaces; advertising 127.0.0.1 — set sip.advertise (--advertise) for phones on other hosts");
    }
    let sip_listen = cfg.sip.listen;
    // Bind first so an ephemeral port (":0", used by tests) is known before building Contact/Via;
    // the sockets stay bound, so nothing can take the port in between.
    let sockets = net::bind_sip(sip_listen).await?;
    let bound = sockets.local_addr().map_err(|source| NetError::Bind {
        addr: sip_listen,
        source,
    })?;
    let sip_tls = match cfg.sip.tls_listen {
        None => None,
        Some(addr) => {
            let certs = load_certs(cfg, &[])?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| NetError::Bind { addr, source })?;
            Some(net::SipTls { listener, certs })
        }
    };
    let sip_tls_addr = match &sip_tls {
        Some(t) => Some(t.listener.local_addr().map_err(|source| NetError::Bind {
            addr: sip_listen,
            source,
        })?),
        None => None,
    };
    let mut certs: Vec<crate::tls::CertStore> = sip_tls.iter().map(|t| t.certs.clone()).collect();
    let mut manager = CallManager::new(
        ManagerConfig {
            advertise,
            sip_port: bound.port(),
            tls_port: sip_tls_addr.map(|a| a.port()),
            rtp_low,
            rtp_high,
            qualify_every: (cfg.sip.qualify_s > 0).then(|| Duration::from_secs(cfg.sip.qualify_s)),
            lookup_budget: (cfg.context.lookup_budget_ms > 0)
                .then(|| Duration::from_millis(cfg.context.lookup_budget_ms)),
            country: {
                let c = crate::context::e164::Country::by_iso(&cfg.context.default_country)
                    .map_err(|e| ServeError::Config(e.to_string()))?;
                c.warm_up();
                c
            },
            max_calls: cfg.sip.max_calls,
            max_calls_per_source: cfg.sip.max_calls_per_source,
            retry_after_s: cfg.sip.retry_after_s,
            trunks: cfg.trunk.clone(),
        },
        endpoint,
        dialplan,
    );
    let mut cluster_calls = Vec::new();
    // A node of several: NATS first (a node that cannot reach it says so and stops, rather than
    // run as a box of its own beside the cluster).
    let cluster = match &cfg.cluster {
        Some(c) => {
            let nats = net::nats::Nats::connect(c).await.map_err(NetError::from)?;
            manager.set_cluster(c.clone());
            // Calls this node held before it stopped that no other node took over meanwhile
            // (a restart within the liveness key's life): resumed here, on their own ports.
            cluster_calls = nats.my_calls().await;
            info!(node = %c.node, cluster = %c.name, nats = %c.nats, "cluster node");
            Some((c.clone(), nats))
        }
        None => None,
    };
    let clustered = cluster.is_some();
    manager.set_ready_on_register(cfg.http.ready_on_register);
    manager.set_recordings_dir(Some(cfg.media.recordings_dir.clone()));
    manager.set_pop_wait(
        (cfg.http.pop_wait_ms > 0).then(|| Duration::from_millis(cfg.http.pop_wait_ms)),
    );
    manager.set_agents(now, store.load_directory(&cfg.sip.realm).await?);
    let saved = store.load_bindings(unix).await?;
    if !saved.is_empty() {
        info!(
            bindings = saved.len(),
            "registrations restored from the database"
        );
    }
    manager.restore_bindings(now, saved);
    manager.restore_desks(now, store.load_desks().await?);
    // The day's trunk-callback caps count what was granted before a restart.
    let day = (unix as i64).div_euclid(86_400);
    manager.restore_callback_grants(now, store.callback_grants(day).await?);
    let (persist_tx, persist_rx) = tokio::sync::mpsc::channel(4096);
    let agent_writer = tokio::spawn(persist_agents(store.clone(), persist_rx));
    let media_bind = if sip_listen.ip().is_unspecified() {
        sip_listen.ip()
    } else {
        advertise
    };
    // Created before the core so the writer misses nothing, not even the first events.
    let (durable_tx, durable_rx) = tokio::sync::mpsc::channel(net::DURABLE_QUEUE);
    // Calls left by the last process, read before the writer can change the table. A cluster
    // node's calls are taken over by the other nodes, not from this table.
    let saved_calls = if clustered {
        Vec::new()
    } else {
        store.load_snapshots().await?
    };
    let left: Vec<String> = saved_calls.iter().map(|(k, _)| k.clone()).collect();
    // A cluster node's snapshots go to the calls bucket (the cluster task writes them).
    let (cluster_snapshots, cluster) = match cluster {
        Some((config, nats)) => {
            let (tx, rx) = if cfg.calls.snapshots {
                let (tx, rx) =
                    tokio::sync::mpsc::channel(crate::context::snapshots::SNAPSHOT_QUEUE);
                (Some(tx), Some(rx))
            } else {
                (None, None)
            };
            let setup = net::cluster::ClusterSetup {
                config,
                nats,
                snapshots: rx,
            };
            (tx, Some(setup))
        }
        None => (None, None),
    };
    let (snapshots, snapshot_writer) = if clustered {
        (cluster_snapshots, None)
    } else if cfg.calls.snapshots {
        let (tx, rx) = tokio::sync::mpsc::channel(crate::context::snapshots::SNAPSHOT_QUEUE);
        let writer = tokio::spawn(crate::context::snapshots::run_writer(
            store.clone(),
            rx,
            left.clone(),
        ));
        (Some(tx), Some(writer))
    } else {
        (None, None)
    };
    let core = net::start(
        NetConfig {
            sip_listen: bound,
            media_bind,
            tcp: TcpLimits {
                max_connections: cfg.sip.tcp_max_connections,
                max_per_source: cfg.sip.tcp_max_per_source,
                idle: Duration::from_secs(cfg.sip.tcp_idle_timeout_s),
                max_message: cfg.sip.max_message_bytes,
            },
            rtp_timeout: Duration::from_secs(cfg.media.rtp_timeout_s),
            prompts,
            counters: Default::default(),
            learn: cfg.media.learn(),
            trusted: Arc::new(trusted_peers(cfg)),
            tcp_counters: Default::default(),
            overload_delay: Duration::from_millis(cfg.sip.overload_delay_ms),
            lane_counters: Default::default(),
            sip_tls,
            persist: Some(persist_tx),
            durable: Some(durable_tx),
            snapshots,
            store: Some(store.clone()),
            lookup_budget: Duration::from_millis(cfg.context.lookup_budget_ms.max(1)),
            http_sources: Arc::new(cfg.context.http.clone()),
            cluster,
        },
        sockets,
        manager,
    )
    .await?;
    tokio::spawn(reload_directory(
        store.clone(),
        cfg.sip.realm.clone(),
        Duration::from_secs(cfg.database.reload_s.max(1)),
        core.input.clone(),
    ));
    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .map_err(|source| ServeError::Http {
            addr: cfg.http.listen,
            source,
        })?;
    let http_addr = listener.local_addr().map_err(|source| ServeError::Http {
        addr: cfg.http.listen,
        source,
    })?;
    if cfg.media.recording_retention_days > 0 {
        tokio::spawn(expire_recordings(
            store.clone(),
            cfg.media.recordings_dir.clone(),
            cfg.media.recording_retention_days,
        ));
    }
    tokio::spawn(crate::context::history_writer::run_writer(
        store.clone(),
        durable_rx,
        Some(cfg.database.spool_dir.clone()),
    ));
    // Callbacks promised before a restart, now that the writer follows their events.
    let callbacks = store.load_callbacks().await?;
    if !callbacks.is_empty() {
        let _ = core.input.send(Input::RestoreCallbacks(callbacks)).await;
    }
    resume_calls(&store, &core, saved_calls).await?;
    if !cluster_calls.is_empty() {
        if let Some(r) = core.resume(cluster_calls).await {
            info!(
                resumed = r.resumed,
                ended = r.ended,
                "calls of this node's last run taken back"
            );
        }
    }
    if !cfg.calls.snapshots && !left.is_empty() {
        // No writer to delete them as the calls end: they were taken over once, and the next
        // start must not find them again.
        let keys: Vec<&str> = left.iter().map(String::as_str).collect();
        store.delete_snapshots(&keys).await?;
    }
    // Desk sessions of the previous run: agents and supervisors stay logged in.
    let sessions = store
        .load_sessions(crate::context::time::unix_now())
        .await?;
    let app = crate::desk::start(
        core.clone(),
        Some(store.clone()),
        crate::desk::DeskConfig {
            realm: cfg.sip.realm.clone(),
            session_ttl: Duration::from_secs(cfg.http.session_ttl_s.max(60)),
            thresholds: cfg.reports.thresholds(),
            attribution: cfg.reports.attribution,
            metrics_token: cfg.http.metrics_token.clone().filter(|t| !t.is_empty()),
            login_failures: cfg.http.login_failures,
            login_window: Duration::from_secs(cfg.http.login_window_s),
        },
        sessions,
    );
    if cfg.http.https {
        let https = load_certs(cfg, &[b"http/1.1"])?;
        certs.push(https.clone());
        tokio::spawn(crate::desk::https::serve(listener, app, https));
        info!(%http_addr, "HTTPS listening");
    } else {
        tokio::spawn(async move {
            let svc = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let _ = axum::serve(listener, svc).await;
        });
        info!(%http_addr, "HTTP listening");
    }
    Ok(Running {
        core,
        http_addr,
        sip_tls_addr,
        certs,
        store,
        demo_password,
        snapshot_writer,
        agent_writer: Some(agent_writer),
    })
}

/// Takes over the calls a process that did not stop cleanly left (agents, registrations and
/// callbacks are back by now, and the history writer follows). Snapshots that cannot be read
/// are deleted: nothing can be done for their calls.
async fn resume_calls(
    store: &Store,
    core: &CoreHandle,
    saved: Vec<crate::context::snapshots::LoadedSnapshot>,
) -> Result<(), ServeError> {
    if saved.is_empty() {
        return Ok(());
    }
    let mut calls = Vec::with_capacity(saved.len());
    let mut unreadable = Vec::new();
    for (interaction, s) in saved {
        match s {
            Ok(s) => calls.push(s),
            Err(e) => {
                warn!(%interaction, error = %e, "call snapshot unreadable; deleted");
                unreadable.push(interaction);
            }
        }
    }
    let keys: Vec<&str> = unreadable.iter().map(String::as_str).collect();
    store.delete_snapshots(&keys).await?;
    let n = calls.len();
    if let Some(r) = core.resume(calls).await {
        info!(
            saved = n,
            resumed = r.resumed,
            ended = r.ended,
            unreadable = r.unreadable,
            "calls from the last run taken over"
        );
    }
    Ok(())
}

impl Running {
    /// Stops the server: ends its calls (or, with `hand_over`, leaves them to the next start)
    /// and waits until their snapshots and the agents' last desk choices and registrations are
    /// written, so the next start finds exactly the calls it must take over and every agent
    /// as they were.
    pub async fn stop(&mut self, hand_over: bool) {
        if hand_over {
            self.core.hand_over().await;
        } else {
            self.core.shutdown().await;
        }
        for (writer, what) in [
            (self.snapshot_writer.take(), "call snapshots"),
            (self.agent_writer.take(), "agent states"),
        ] {
            let Some(w) = writer else { continue };
            if tokio::time::timeout(Duration::from_secs(10), w)
                .await
                .is_err()
            {
                warn!("{what} still being written after 10 s; stopping anyway");
            }
        }
    }
}

/// Writes changed registrations and desk choices; a database outage costs only their restore
/// after a restart.
async fn persist_agents(store: Store, mut rx: tokio::sync::mpsc::Receiver<crate::call::Persist>) {
    use crate::call::Persist;
    while let Some(p) = rx.recv().await {
        match p {
            Persist::Bindings(agent, bindings) => {
                if let Err(e) = store.save_bindings(&agent, &bindings).await {
                    warn!(%agent, error = %e, "could not save registration");
                }
            }
            Persist::Desk {
                agent,
                desk,
                wrap_until_ms,
            } => {
                if let Err(e) = store.save_desk(&agent, &desk, wrap_until_ms).await {
                    warn!(%agent, error = %e, "could not save the desk state");
                }
            }
        }
    }
}

/// Re-reads agents periodically so CLI changes apply to a running server, off the call path.
async fn reload_directory(
    store: Store,
    realm: String,
    every: Duration,
    core: tokio::sync::mpsc::Sender<Input>,
) {
    let mut last = None;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match store.load_directory(&realm).await {
            Ok(d) if last.as_ref() != Some(&d) => {
                last = Some(d.clone());
                if core.send(Input::Agents(d)).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "agent directory reload failed; keeping the last one"),
        }
    }
}

/// Deletes recordings older than the retention period, hourly, and forgets them in the history.
async fn expire_recordings(store: Store, dir: std::path::PathBuf, days: u64) {
    let keep = Duration::from_secs(days * 86_400);
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let mut removed = 0;
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > keep);
            let wav = e.path().extension().is_some_and(|x| x == "wav");
            if old && wav && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
        let cutoff = crate::context::time::unix_now() - keep.as_secs() as i64;
        match store.expire_recordings(cutoff).await {
            Ok(n) if removed > 0 || n > 0 => {
                info!(files = removed, rows = n, "expired recordings removed")
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "could not expire recordings in the history"),
        }
    }
}

/// The `[tls]` certificate, for a listener offering `alpn`.
fn load_certs(cfg: &Config, alpn: &[&[u8]]) -> Result<crate::tls::CertStore, ServeError> {
    let (Some(cert), Some(key)) = (&cfg.tls.cert, &cfg.tls.key) else {
        return Err(ServeError::Config(
            "sip.tls_listen and http.https need [tls] cert and key (PEM files)".into(),
        ));
    };
    crate::tls::CertStore::load(cert, key, alpn).map_err(|e| ServeError::Config(e.to_string()))
}

/// Peers exempt from per-source budgets and caps: `sip.trusted` and every trunk's addresses.
fn trusted_peers(cfg: &Config) -> Vec<crate::sip::budget::Cidr> {
    let mut all = cfg.sip.trusted.clone();
    all.extend(cfg.trunk.iter().flat_map(|t| t.addresses.iter().copied()));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_plan_loads_with_and_without_its_recorded_prompts() {
        let with = Dialplan::parse(&builtin_dialplan(), "built-in").unwrap();
        assert!(with.announcements("sales").unwrap().voice.is_some());
        let without = Dialplan::parse(&without_prompts(DEFAULT_DIALPLAN), "built-in").unwrap();
        let a = without.announcements("sales").unwrap();
        assert!(a.voice.is_none(), "built-in tones instead");
        assert!(without.message("sales").is_none());
    }
}
