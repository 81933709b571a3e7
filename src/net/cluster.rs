//! The cluster task of a node: runs the partition leases against NATS KV, carries the core's
//! messages to leaders and nodes, hears theirs, and keeps the agents' phones in step through
//! the bindings bucket. The core never waits on NATS: it hands messages over a bounded
//! channel and hears back as [`ClusterInput`]s on its control lane.
//!
//! Subjects (`<c>` is the cluster's name): `<c>.p.<partition>` to a partition's leader (every
//! node listens, only the leader acts), `<c>.node.<node>` to one node, `<c>.nodes` to all.
//!
//! A leader's message leaves only while its lease is valid under the epoch it carries: a
//! leader that lapsed is silent at the source, besides being refused by the nodes' fences.

use super::nats::Nats;
use crate::cluster::desk_relay::FromDesk;
use crate::cluster::lease::{Lease, LeaseEvent, LeaseOp, LeaseReply};
use crate::cluster::protocol::{FromLeader, FromNode, Outgoing, StrayBye};
use crate::cluster::{ClusterConfig, ClusterInput};
use crate::control::Input;
use crate::sip::registrar::SavedBinding;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::{info, warn};

mod desk;
mod liveness;

pub use desk::DeskRequest;

/// Messages from the core waiting for NATS, at most.
const OUT_QUEUE: usize = 8192;

/// What the core hands to the cluster task.
#[derive(Clone)]
pub struct ClusterHandle {
    out: mpsc::Sender<Outgoing>,
    desk: mpsc::Sender<DeskRequest>,
    bindings: mpsc::Sender<(String, Vec<SavedBinding>)>,
    pub counters: Arc<ClusterCounters>,
}

/// What went wrong, for the status page.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    /// Messages the core produced that the task had no room for.
    pub dropped: AtomicU64,
    /// Leader messages not sent because the lease had lapsed.
    pub fenced: AtomicU64,
    /// Messages heard that did not parse.
    pub unreadable: AtomicU64,
}

impl ClusterHandle {
    /// Asks the leader of the agent's partition to apply a desk command; the answer comes on
    /// `reply` (a "leader elsewhere" error when none answers in time).
    pub fn desk_command(&self, r: DeskRequest) {
        if let Err(e) = self.desk.try_send(r) {
            let r = match e {
                mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
            };
            let _ = r.reply.send(Err(crate::call::DeskError::Elsewhere {
                agent: r.agent,
                partition: r.partition,
            }));
        }
    }

    pub fn send(&self, o: Outgoing) {
        if self.out.try_send(o).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            warn!("cluster connection is behind; a message was dropped (the next re-announce heals it)");
        }
    }

    /// This node's registrar changed an agent's phones: every other node's copy follows.
    pub fn bindings(&self, agent: String, list: Vec<SavedBinding>) {
        if self.bindings.try_send((agent, list)).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The bindings bucket's value: who wrote it (a node ignores its own) and the phones.
#[derive(serde::Serialize, serde::Deserialize)]
struct BindingsValue {
    node: String,
    bindings: Vec<SavedBinding>,
}

/// What a node brings to the cluster task.
pub struct ClusterSetup {
    pub config: ClusterConfig,
    pub nats: Nats,
    /// The core's call snapshots, written to the calls bucket (none: not snapshotted).
    pub snapshots: Option<mpsc::Receiver<crate::call::SnapshotWrite>>,
}

/// Starts the task; it runs as long as the core's input is open.
pub async fn start(
    setup: ClusterSetup,
    core: mpsc::Sender<Input>,
) -> Result<ClusterHandle, super::nats::NatsError> {
    let ClusterSetup {
        config: cfg,
        nats,
        snapshots,
    } = setup;
    if let Some(rx) = snapshots {
        tokio::spawn(super::cluster_calls::run_writer(
            nats.calls.clone(),
            cfg.node.clone(),
            rx,
            core.clone(),
        ));
    }
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let (bind_tx, bind_rx) = mpsc::channel(OUT_QUEUE);
    let (desk_tx, desk_rx) = mpsc::channel(256);
    let counters = Arc::new(ClusterCounters::default());
    let c = cfg.name.clone();
    let sub = |s: String| {
        let client = nats.client.clone();
        let url = cfg.nats.clone();
        async move {
            client
                .subscribe(s)
                .await
                .map_err(|e| super::nats::NatsError::Connect {
                    url,
                    why: e.to_string(),
                })
        }
    };
    let to_leaders = sub(format!("{c}.p.*")).await?;
    let to_me = sub(format!("{c}.node.{}", cfg.node)).await?;
    let to_all = sub(format!("{c}.nodes")).await?;
    let desks = sub(format!("{c}.desk")).await?;
    let strays = sub(format!("{c}.stray")).await?;
    let desk_calls = sub(format!("{c}.deskcmd.*")).await?;
    let watch = nats.bindings.watch_with_history(">").await.map_err(|e| {
        super::nats::NatsError::Bucket {
            url: cfg.nats.clone(),
            why: format!("watching the bindings bucket: {e}"),
        }
    })?;
    let nodes_watch =
        nats.nodes
            .watch_with_history(">")
            .await
            .map_err(|e| super::nats::NatsError::Bucket {
                url: cfg.nats.clone(),
                why: format!("watching the nodes bucket: {e}"),
            })?;
    let task = Task {
        cfg,
        nats,
        core,
        counters: counters.clone(),
        leases: HashMap::new(),
        heard: HashMap::new(),
        dead: HashSet::new(),
        reassigning: false,
        started: Instant::now(),
        swept: false,
        cut_off: false,
        next_tick: Instant::now(),
    };
    tokio::spawn(task.run(
        out_rx,
        bind_rx,
        desk_rx,
        [to_leaders, to_me, to_all, desks, desk_calls, strays],
        watch,
        nodes_watch,
    ));
    Ok(ClusterHandle {
        out: out_tx,
        desk: desk_tx,
        bindings: bind_tx,
        counters,
    })
}

struct Task {
    cfg: ClusterConfig,
    nats: Nats,
    core: mpsc::Sender<Input>,
    counters: Arc<ClusterCounters>,
    leases: HashMap<String, Lease>,
    /// When each node's liveness key was last seen renewed (through a watch of the bucket, on
    /// this node's monotonic clock: no host's wall clock is trusted).
    heard: HashMap<String, Instant>,
    /// Nodes taken for dead whose calls may not all be handed over yet.
    dead: HashSet<String>,
    /// A hand-over job is under way.
    reassigning: bool,
    started: Instant,
    /// The one sweep for orphans (calls of nodes never heard) was done.
    swept: bool,
    /// This node's own renewals went unseen for a lease: the survivors may hold its calls.
    cut_off: bool,
    next_tick: Instant,
}

/// What a background KV job found.
enum Found {
    /// Calls handed to survivors (node → keys), under the coordinator's epoch.
    Handed(u64, HashMap<String, Vec<String>>),
    /// Agents talking anywhere, for a partition this node has just come to lead.
    Talking {
        partition: String,
        epoch: u64,
        talking: Vec<(String, String)>,
    },
}

impl Task {
    #[allow(clippy::too_many_arguments)]
    async fn run(
        mut self,
        mut out: mpsc::Receiver<Outgoing>,
        mut bind: mpsc::Receiver<(String, Vec<SavedBinding>)>,
        mut desk_req: mpsc::Receiver<DeskRequest>,
        subs: [async_nats::Subscriber; 6],
        mut watch: async_nats::jetstream::kv::Watch,
        mut nodes_watch: async_nats::jetstream::kv::Watch,
    ) {
        let now = Instant::now();
        for p in self.cfg.partition_names() {
            self.leases.insert(p, Lease::new(now, self.cfg.timing()));
        }
        let [mut to_leaders, mut to_me, mut to_all, mut desks, mut desk_calls, mut strays] = subs;
        let (op_tx, mut op_rx) = mpsc::channel::<(String, LeaseReply)>(64);
        let (found_tx, mut found_rx) = mpsc::channel::<Found>(64);
        let prefix = format!("{}.p.", self.cfg.name);
        loop {
            self.tick(&found_tx);
            let wake = self.leases(&op_tx, &found_tx).await.min(self.next_tick);
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(wake));
            tokio::select! {
                o = out.recv() => match o {
                    Some(o) => self.publish(o).await,
                    None => return self.release().await,
                },
                Some((agent, list)) = bind.recv() => self.put_bindings(agent, list),
                Some(m) = to_leaders.next() => {
                    let partition = m.subject.as_str().strip_prefix(&prefix).unwrap_or("").to_string();
                    match serde_json::from_slice::<FromNode>(&m.payload) {
                        Ok(msg) => self.tell(ClusterInput::FromNode { partition, msg }).await,
                        Err(e) => self.unreadable(&m.subject, e),
                    }
                }
                Some(m) = to_me.next() => self.leader_heard(&m).await,
                Some(f) = found_rx.recv() => self.found(f, &found_tx).await,
                Some(m) = to_all.next() => self.leader_heard(&m).await,
                Some(r) = desk_req.recv() => self.ask_leader(r),
                Some(m) = desk_calls.next() => self.desk_call_heard(m).await,
                Some(m) = strays.next() => match serde_json::from_slice::<StrayBye>(&m.payload) {
                    Ok(s) if s.node != self.cfg.node => self.tell(ClusterInput::Stray(s)).await,
                    Ok(_) => {}
                    Err(e) => self.unreadable(&m.subject, e),
                },
                Some(m) = desks.next() => match serde_json::from_slice::<FromDesk>(&m.payload) {
                    Ok(d) if d.node != self.cfg.node => self.tell(ClusterInput::Desk(d)).await,
                    Ok(_) => {}
                    Err(e) => self.unreadable(&m.subject, e),
                },
                Some(e) = nodes_watch.next() => {
                    if let Ok(e) = e {
                        if e.operation == async_nats::jetstream::kv::Operation::Put {
                            self.heard.insert(e.key, Instant::now());
                        }
                    }
                }
                Some(e) = watch.next() => match e {
                    Ok(entry) => self.bindings_heard(entry).await,
                    Err(e) => warn!(error = %e, "bindings watch"),
                },
                Some((p, reply)) = op_rx.recv() => {
                    if let Some(l) = self.leases.get_mut(&p) {
                        l.on_reply(Instant::now(), reply);
                    }
                }
                _ = sleep => {}
            }
        }
    }

    /// Starts every lease operation that is due, reports leadership changes to the core, and
    /// says when to look again.
    async fn leases(
        &mut self,
        op_tx: &mpsc::Sender<(String, LeaseReply)>,
        found: &mpsc::Sender<Found>,
    ) -> Instant {
        let now = Instant::now();
        let mut events = Vec::new();
        // Each node takes at most its share of the partitions, ⌈P/N⌉ (N: nodes heard alive),
        // so with many partitions the leaderships spread over the nodes.
        let lease = self.cfg.timing().lease;
        let alive = self
            .heard
            .values()
            .filter(|t| now.saturating_duration_since(**t) < lease)
            .count()
            .max(1);
        let share = self.leases.len().div_ceil(alive);
        let held = self
            .leases
            .values()
            .filter(|l| l.epoch(now).is_some())
            .count();
        for l in self.leases.values_mut() {
            l.set_wanted(held < share);
        }
        for (p, l) in &mut self.leases {
            if let Some(op) = l.poll_op(now) {
                let (nats, p, tx) = (self.nats.clone(), p.clone(), op_tx.clone());
                tokio::spawn(async move {
                    let reply = nats.lease(&p, op).await;
                    let _ = tx.send((p, reply)).await;
                });
            }
            while let Some(ev) = l.poll_event() {
                events.push((p.clone(), ev));
            }
        }
        for (partition, ev) in events {
            match ev {
                LeaseEvent::Acquired { epoch } => {
                    info!(%partition, epoch, "lease taken: leading");
                    // Who is talking anywhere first, so the new engine offers them nothing.
                    let (kv, tx) = (self.nats.calls.clone(), found.clone());
                    tokio::spawn(async move {
                        let talking = super::cluster_calls::talking(&kv).await;
                        let _ = tx
                            .send(Found::Talking {
                                partition,
                                epoch,
                                talking,
                            })
                            .await;
                    });
                }
                LeaseEvent::Lost { epoch } => {
                    warn!(%partition, epoch, "lease lost: no longer leading");
                    self.tell(ClusterInput::Unlead { partition }).await;
                }
            }
        }
        self.leases
            .values()
            .filter_map(|l| l.poll_timeout())
            .min()
            .unwrap_or(now + self.cfg.timing().renew)
    }

    async fn found(&mut self, f: Found, found: &mpsc::Sender<Found>) {
        match f {
            Found::Handed(epoch, handed) => {
                self.reassigning = false;
                if handed.is_empty() {
                    // Nothing of theirs is left in the bucket.
                    self.dead.clear();
                }
                for (node, keys) in handed {
                    let msg = FromLeader {
                        partition: crate::cluster::DEFAULT_PARTITION.to_string(),
                        epoch,
                        msg: crate::cluster::protocol::LeaderMsg::Adopt { keys },
                    };
                    self.publish(Outgoing::Node { node, msg }).await;
                }
            }
            Found::Talking {
                partition,
                epoch,
                talking,
            } => {
                if self
                    .leases
                    .get(&partition)
                    .and_then(|l| l.epoch(Instant::now()))
                    != Some(epoch)
                {
                    return; // lost again meanwhile
                }
                let coordinator = partition == crate::cluster::DEFAULT_PARTITION;
                let live_nodes = self.live_nodes();
                self.tell(ClusterInput::Lead {
                    partition,
                    epoch,
                    talking,
                    live_nodes,
                })
                .await;
                if coordinator {
                    // Calls of nodes that died before this node coordinated.
                    self.reassign(found);
                }
            }
        }
    }

    async fn tell(&self, input: ClusterInput) {
        let _ = self.core.send(Input::Cluster(input)).await;
    }

    fn unreadable(&self, subject: &str, e: serde_json::Error) {
        self.counters.unreadable.fetch_add(1, Ordering::Relaxed);
        warn!(%subject, error = %e, "unreadable cluster message ignored");
    }

    async fn leader_heard(&self, m: &async_nats::Message) {
        match serde_json::from_slice::<FromLeader>(&m.payload) {
            Ok(FromLeader {
                msg: crate::cluster::protocol::LeaderMsg::Adopt { keys },
                ..
            }) => {
                // Only what the bucket says is ours now is taken over (the CAS is the fence).
                let (kv, me, core) = (
                    self.nats.calls.clone(),
                    self.cfg.node.clone(),
                    self.core.clone(),
                );
                tokio::spawn(async move {
                    let calls = super::cluster_calls::adopted(&kv, &me, &keys).await;
                    info!(
                        handed = keys.len(),
                        taking = calls.len(),
                        "taking over a dead node's calls"
                    );
                    if !calls.is_empty() {
                        let _ = core.send(Input::TakeOver(calls)).await;
                    }
                });
            }
            Ok(msg) => self.tell(ClusterInput::FromLeader(msg)).await,
            Err(e) => self.unreadable(&m.subject, e),
        }
    }

    /// Sends one message; a leader's only under a lease that is valid with its epoch.
    async fn publish(&self, o: Outgoing) {
        let c = &self.cfg.name;
        let (subject, body) = match &o {
            Outgoing::Leader { partition, msg } => {
                (format!("{c}.p.{partition}"), serde_json::to_vec(msg))
            }
            Outgoing::Node { node, msg } => {
                if !self.may_speak(msg) {
                    return;
                }
                (format!("{c}.node.{node}"), serde_json::to_vec(msg))
            }
            Outgoing::Nodes(msg) => {
                if !self.may_speak(msg) {
                    return;
                }
                (format!("{c}.nodes"), serde_json::to_vec(msg))
            }
            Outgoing::Desk(note) => {
                let d = FromDesk {
                    node: self.cfg.node.clone(),
                    note: note.clone(),
                };
                (format!("{c}.desk"), serde_json::to_vec(&d))
            }
            Outgoing::Stray(s) => {
                let s = StrayBye {
                    node: self.cfg.node.clone(),
                    ..s.clone()
                };
                (format!("{c}.stray"), serde_json::to_vec(&s))
            }
        };
        let Ok(body) = body else { return };
        if let Err(e) = self.nats.client.publish(subject, Bytes::from(body)).await {
            warn!(error = %e, "cluster publish");
        }
    }

    fn may_speak(&self, m: &FromLeader) -> bool {
        let valid = self
            .leases
            .get(&m.partition)
            .and_then(|l| l.epoch(Instant::now()));
        if valid == Some(m.epoch) {
            return true;
        }
        self.counters.fenced.fetch_add(1, Ordering::Relaxed);
        false
    }

    fn put_bindings(&self, agent: String, bindings: Vec<SavedBinding>) {
        let value = BindingsValue {
            node: self.cfg.node.clone(),
            bindings,
        };
        let Ok(body) = serde_json::to_vec(&value) else {
            return;
        };
        let kv = self.nats.bindings.clone();
        tokio::spawn(async move {
            if let Err(e) = kv.put(&agent, Bytes::from(body)).await {
                warn!(%agent, error = %e, "agent's phones not shared with the cluster");
            }
        });
    }

    async fn bindings_heard(&self, entry: async_nats::jetstream::kv::Entry) {
        let Ok(v) = serde_json::from_slice::<BindingsValue>(&entry.value) else {
            self.counters.unreadable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if v.node == self.cfg.node {
            return;
        }
        let input = ClusterInput::Bindings {
            agent: entry.key,
            bindings: v.bindings,
        };
        self.tell(input).await;
    }

    /// The core is gone (a clean stop): leases are freed for the next node at once.
    async fn release(&mut self) {
        let now = Instant::now();
        for (p, l) in &mut self.leases {
            if let Some(op @ LeaseOp::Release { .. }) = l.release(now) {
                let _ = self.nats.lease(p, op).await;
            }
        }
    }
}
