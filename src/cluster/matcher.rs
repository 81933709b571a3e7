//! Where the call layer's ACD questions go. One box: to the engine in this process, exactly as
//! before. A cluster node: to the engine of the call's partition if this node leads it, else as
//! a message to the leader, whose answers come back as decisions (`leading` is the leader's
//! side, `following` the node's).
//!
//! Either way the call layer sees one facade with the engine's own verbs. What the facade keeps
//! besides the engines is what a *new* leader needs and no single engine may be trusted with:
//! - the agent directory, reachability and desk choices seen from this node (a new leader
//!   builds its engine from them);
//! - this node's own calls in line or talking (`mine`), with the time each first joined its
//!   queue: a new leader asks every node for them (`reconcile`) and so keeps FIFO order exact.

use super::lease::Fence;
use super::protocol::{InLine, Outgoing};
use crate::acd::{
    Acd, AgentState, AgentStatus, CallId, CrossQueue, Decision, Desk, DeskCommand, PresenceError,
    QueueConfig, QueueStatus,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MatchError {
    #[error(transparent)]
    Presence(#[from] PresenceError),
    /// The agent's partition is led by another node: ask it (the caller routes the request).
    #[error("agent '{agent}' is dispatched by partition '{partition}', led elsewhere")]
    Elsewhere { agent: String, partition: String },
}

/// What the call layer is to do, from this node's engine or a leader elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decided {
    Acd(Decision),
    /// A new leader took over while `agent`'s phone rang for `call`: stop it (no miss counted;
    /// the caller is still in line and will be offered again).
    Withdraw {
        call: CallId,
        agent: String,
    },
    /// The call could not join its queue.
    Refused {
        call: CallId,
        why: String,
    },
}

/// Wall-clock milliseconds for `Instant`s (messages and new leaders need times that mean the
/// same on every host).
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    pub at: Instant,
    pub unix_ms: u64,
}

impl WallClock {
    pub fn ms(&self, t: Instant) -> u64 {
        match t.checked_duration_since(self.at) {
            Some(d) => self.unix_ms + d.as_millis() as u64,
            None => self
                .unix_ms
                .saturating_sub(self.at.duration_since(t).as_millis() as u64),
        }
    }

    /// The `Instant` of a wall-clock time, past or future (a wrap-up's end).
    pub fn instant_ahead(&self, now: Instant, ms: u64) -> Instant {
        let now_ms = self.ms(now);
        if ms >= now_ms {
            now + Duration::from_millis(ms - now_ms)
        } else {
            self.instant(now, ms)
        }
    }

    /// The `Instant` of a wall-clock time, never after `now` (a time from a host whose clock
    /// is ahead is taken as now).
    pub fn instant(&self, now: Instant, ms: u64) -> Instant {
        let now_ms = self.ms(now);
        now.checked_sub(Duration::from_millis(now_ms.saturating_sub(ms)))
            .unwrap_or(now)
    }
}

/// One partition this node leads.
pub(super) struct Led {
    pub acd: Acd,
    pub epoch: u64,
    /// Calls held by other nodes (absent: this node's own).
    pub owners: HashMap<CallId, String>,
    /// Agents talking on another node's call: agent → (call, node).
    pub busy_on: HashMap<String, (CallId, String)>,
    /// When the partition's status goes to every node next.
    pub next_status: Option<Instant>,
    /// Agents kept busy on a call nobody has claimed yet (its node died, or a new leader heard
    /// of it only from the calls bucket): freed at the instant unless claimed by then.
    pub orphans: Vec<(Instant, String, CallId)>,
    /// Live nodes whose answer to this leader's `Reconcile` has not come yet: no offer is made
    /// until they have all answered (or [`RECONCILE_WAIT`] is up), so callers who joined first
    /// on another node are offered before later ones on this node.
    pub awaiting: std::collections::HashSet<String>,
}

impl Led {
    pub fn new(acd: Acd, epoch: u64) -> Led {
        Led {
            acd,
            epoch,
            owners: HashMap::new(),
            busy_on: HashMap::new(),
            orphans: Vec::new(),
            next_status: None,
            awaiting: Default::default(),
        }
    }
}

/// The longest a new leader waits for the live nodes' accounts before it offers anything (they
/// answer in milliseconds; this bounds a node that died meanwhile).
pub const RECONCILE_WAIT: Duration = Duration::from_millis(400);

/// How long an agent stays busy on a call whose node died before the survivor that takes it
/// over says so (a takeover needs ~3 s; a call that could not be taken over frees them then).
pub const ORPHAN_GRACE: Duration = Duration::from_secs(15);

/// What this node knows of an agent (for building a new leader's engine).
#[derive(Clone, Debug, Default)]
pub(super) struct AgentInfo {
    pub skills: HashMap<String, u8>,
    pub wrapup: Option<Duration>,
    pub reachable: bool,
    pub desk: Option<(Desk, Option<Instant>)>,
}

/// One of this node's calls, as a new leader needs it.
#[derive(Clone, Debug)]
pub(super) struct Mine {
    pub partition: String,
    pub line: InLine,
    pub enqueued: Instant,
    /// Agents whose phones ring for it now.
    pub ringing: Vec<String>,
    /// The agent talking on it.
    pub talking: Option<String>,
}

/// The cluster side, absent on one box.
pub(super) struct Node {
    pub name: String,
    pub config: super::ClusterConfig,
    pub fence: Fence,
    pub out: VecDeque<Outgoing>,
    /// When this node next re-announces its calls to their leaders.
    pub next_announce: Option<Instant>,
}

pub struct Matcher {
    pub(super) node: Option<Node>,
    pub(super) led: BTreeMap<String, Led>,
    pub(super) queues: Vec<QueueConfig>,
    pub(super) cross_queue: CrossQueue,
    pub(super) auto_ready: bool,
    pub(super) agents: HashMap<String, AgentInfo>,
    pub(super) mine: HashMap<CallId, Mine>,
    /// Set before a call joins a queue (its partition is known only then).
    pub(super) required: HashMap<CallId, Vec<(String, u8)>>,
    pub(super) callbacks: HashMap<CallId, Duration>,
    /// Decisions for this node's calls from leaders elsewhere.
    pub(super) inbox: VecDeque<Decided>,
    pub(super) wall: WallClock,
    /// Waiting callers' positions, as the last leader elsewhere told them.
    pub(super) positions: HashMap<CallId, (usize, u64)>,
    /// The last status each leader elsewhere sent, and when it came.
    pub(super) remote_status: HashMap<String, (Instant, Vec<QueueStatus>, Vec<AgentStatus>)>,
}

/// How often a leader sends its partition's status to every node.
pub const STATUS_EVERY: Duration = Duration::from_secs(1);

/// A leader's status older than this is not shown (no leader now, or it cannot reach us).
pub const STATUS_STALE: Duration = Duration::from_secs(5);

impl Matcher {
    /// One box: one engine for every queue, always in charge.
    pub fn single(queues: Vec<QueueConfig>, wall: WallClock) -> Matcher {
        let mut m = Matcher::empty(queues.clone(), wall);
        m.led.insert(
            super::DEFAULT_PARTITION.to_string(),
            Led::new(Acd::new(queues), 0),
        );
        m
    }

    /// A cluster node: it leads nothing until a lease says so ([`Matcher::lead`]).
    pub fn node(
        config: super::ClusterConfig,
        queues: Vec<QueueConfig>,
        wall: WallClock,
    ) -> Matcher {
        let mut m = Matcher::empty(queues, wall);
        m.node = Some(Node {
            name: config.node.clone(),
            config,
            fence: Fence::default(),
            out: VecDeque::new(),
            next_announce: None,
        });
        m
    }

    fn empty(queues: Vec<QueueConfig>, wall: WallClock) -> Matcher {
        Matcher {
            node: None,
            led: BTreeMap::new(),
            queues,
            cross_queue: CrossQueue::default(),
            auto_ready: false,
            agents: HashMap::new(),
            mine: HashMap::new(),
            required: HashMap::new(),
            callbacks: HashMap::new(),
            inbox: VecDeque::new(),
            wall,
            positions: HashMap::new(),
            remote_status: HashMap::new(),
        }
    }

    /// The one-box engine (tests that look inside it).
    pub fn engine(&self) -> Option<&Acd> {
        self.led.get(super::DEFAULT_PARTITION).map(|l| &l.acd)
    }

    pub fn is_cluster(&self) -> bool {
        self.node.is_some()
    }

    /// The partition that dispatches `queue`.
    pub fn partition_of_queue(&self, queue: &str) -> String {
        match &self.node {
            Some(n) => n.config.partition_of(queue).to_string(),
            None => super::DEFAULT_PARTITION.to_string(),
        }
    }

    /// The partition that dispatches an agent: that of the first queue (in dialplan order) one
    /// of their skills serves.
    pub fn partition_of_agent(&self, agent: &str) -> String {
        let Some(n) = &self.node else {
            return super::DEFAULT_PARTITION.to_string();
        };
        let skills = self.agents.get(agent).map(|a| &a.skills);
        self.queues
            .iter()
            .find(|q| skills.is_some_and(|s| s.contains_key(&q.skill)))
            .map(|q| n.config.partition_of(&q.name).to_string())
            .unwrap_or_else(|| super::DEFAULT_PARTITION.to_string())
    }

    /// The engine of `partition`, when this node leads it.
    pub(super) fn engine_of(&mut self, partition: &str) -> Option<&mut Acd> {
        self.led.get_mut(partition).map(|l| &mut l.acd)
    }

    pub(super) fn agent_engine(&mut self, agent: &str) -> Option<&mut Acd> {
        let p = self.partition_of_agent(agent);
        self.engine_of(&p)
    }

    /// The engine of the partition `call` is in line for, if this node leads it.
    pub(super) fn call_engine(&mut self, call: CallId) -> Option<&mut Acd> {
        let p = self.call_partition(call);
        self.engine_of(&p)
    }

    pub(super) fn call_partition(&self, call: CallId) -> String {
        match self.mine.get(&call) {
            Some(m) => m.partition.clone(),
            None if self.node.is_none() => super::DEFAULT_PARTITION.to_string(),
            // Unknown here: no engine will know it either.
            None => String::new(),
        }
    }

    /// The queues a partition's engine holds.
    pub(super) fn queues_of(&self, partition: &str) -> Vec<QueueConfig> {
        self.queues
            .iter()
            .filter(|q| self.partition_of_queue(&q.name) == partition)
            .cloned()
            .collect()
    }

    pub fn set_queues(&mut self, queues: Vec<QueueConfig>) {
        self.queues = queues;
        let parts: Vec<String> = self.led.keys().cloned().collect();
        for p in parts {
            let qs = self.queues_of(&p);
            if let Some(acd) = self.engine_of(&p) {
                acd.set_queues(qs);
            }
        }
    }

    pub fn set_cross_queue(&mut self, rule: CrossQueue) {
        self.cross_queue = rule;
        for l in self.led.values_mut() {
            l.acd.set_cross_queue(rule);
        }
    }

    pub fn set_auto_ready(&mut self, on: bool) {
        self.auto_ready = on;
        for l in self.led.values_mut() {
            l.acd.set_auto_ready(on);
        }
    }

    pub fn auto_ready(&self) -> bool {
        self.auto_ready
    }

    /// Seeds every engine's random strategies (tests).
    pub fn set_seed(&mut self, seed: u64) {
        for l in self.led.values_mut() {
            l.acd.set_seed(seed);
        }
    }

    pub fn upsert_agent(&mut self, now: Instant, id: &str, skills: HashMap<String, u8>) {
        self.agents.entry(id.to_string()).or_default().skills = skills.clone();
        if let Some(acd) = self.agent_engine(id) {
            acd.upsert_agent(now, id, skills);
        }
    }

    pub fn remove_agent(&mut self, now: Instant, id: &str) {
        if let Some(acd) = self.agent_engine(id) {
            acd.remove_agent(now, id);
        }
        self.agents.remove(id);
    }

    pub fn set_agent_wrapup(&mut self, id: &str, wrapup: Option<Duration>) {
        if let Some(a) = self.agents.get_mut(id) {
            a.wrapup = wrapup;
        }
        if let Some(acd) = self.agent_engine(id) {
            acd.set_agent_wrapup(id, wrapup);
        }
    }

    pub fn agent_online(&mut self, now: Instant, id: &str) {
        if let Some(a) = self.agents.get_mut(id) {
            a.reachable = true;
        }
        if let Some(acd) = self.agent_engine(id) {
            acd.agent_online(now, id);
        }
    }

    pub fn agent_offline(&mut self, now: Instant, id: &str) {
        if let Some(a) = self.agents.get_mut(id) {
            a.reachable = false;
        }
        if let Some(acd) = self.agent_engine(id) {
            acd.agent_offline(now, id);
        }
    }

    pub fn restore_desk(&mut self, now: Instant, agent: &str, desk: Desk, until: Option<Instant>) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.desk = Some((desk.clone(), until));
        }
        if let Some(acd) = self.agent_engine(agent) {
            acd.restore_desk(now, agent, desk, until);
        }
    }

    /// An agent's choice at the desk, where this node dispatches them.
    pub fn desk(&mut self, now: Instant, agent: &str, cmd: DeskCommand) -> Result<(), MatchError> {
        let partition = self.partition_of_agent(agent);
        match self.engine_of(&partition) {
            Some(acd) => Ok(acd.desk(now, agent, cmd)?),
            None => Err(MatchError::Elsewhere {
                agent: agent.to_string(),
                partition,
            }),
        }
    }

    /// Whether an agent of that name exists (a transfer's target).
    pub fn knows_agent(&self, agent: &str) -> bool {
        self.agents.contains_key(agent)
    }

    /// The agent's state, where this node dispatches them.
    pub fn agent_state(&self, agent: &str) -> Option<AgentState> {
        let p = self.partition_of_agent(agent);
        self.led.get(&p)?.acd.agent_state(agent)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.announce(now);
        self.send_status(now);
        for l in self.led.values_mut() {
            l.acd.handle_timeout(now);
            let (due, later): (Vec<_>, Vec<_>) =
                l.orphans.drain(..).partition(|(at, _, _)| *at <= now);
            l.orphans = later;
            for (_, agent, call) in due {
                if l.acd.agent_state(&agent) == Some(AgentState::Busy(call)) {
                    tracing::warn!(%agent, "nobody took over the call this agent was on; free again");
                    l.busy_on.remove(&agent);
                    l.acd.agent_free(now, &agent);
                }
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let announce = self
            .node
            .as_ref()
            .filter(|_| !self.mine.is_empty())
            .and_then(|n| n.next_announce);
        self.led
            .values()
            .flat_map(|l| {
                l.acd
                    .poll_timeout()
                    .into_iter()
                    .chain(l.orphans.iter().map(|o| o.0))
            })
            .chain(announce)
            .chain(self.led.values().filter_map(|l| l.next_status))
            .min()
    }

    pub fn calls_in_system(&self) -> usize {
        self.led.values().map(|l| l.acd.calls_in_system()).sum()
    }

    /// Every queue of the centre: those of partitions led here, then what the leaders
    /// elsewhere last said of theirs.
    pub fn queue_status(&self, now: Instant) -> Vec<QueueStatus> {
        let mut v: Vec<QueueStatus> = self
            .led
            .values()
            .flat_map(|l| l.acd.queue_status(now))
            .collect();
        v.extend(self.fresh_remote(now).flat_map(|(q, _)| q.iter().cloned()));
        v
    }

    /// Every agent of the centre, as [`Matcher::queue_status`].
    pub fn agent_status(&self, now: Instant) -> Vec<AgentStatus> {
        let mut v: Vec<AgentStatus> = self
            .led
            .values()
            .flat_map(|l| l.acd.agent_status(now))
            .collect();
        v.extend(self.fresh_remote(now).flat_map(|(_, a)| a.iter().cloned()));
        v
    }

    fn fresh_remote(
        &self,
        now: Instant,
    ) -> impl Iterator<Item = (&Vec<QueueStatus>, &Vec<AgentStatus>)> {
        self.remote_status
            .iter()
            .filter(move |(p, (at, _, _))| {
                !self.led.contains_key(*p) && now.saturating_duration_since(*at) < STATUS_STALE
            })
            .map(|(_, (_, q, a))| (q, a))
    }

    /// A leader sends its partition's status to every node each [`STATUS_EVERY`].
    fn send_status(&mut self, now: Instant) {
        let Some(n) = &mut self.node else {
            return;
        };
        for (p, l) in &mut self.led {
            if l.next_status.is_some_and(|t| t > now) {
                continue;
            }
            l.next_status = Some(now + STATUS_EVERY);
            n.out
                .push_back(Outgoing::Nodes(super::protocol::FromLeader {
                    partition: p.clone(),
                    epoch: l.epoch,
                    msg: super::protocol::LeaderMsg::Status {
                        queues: l.acd.queue_status(now),
                        agents: l.acd.agent_status(now),
                    },
                }));
        }
    }

    /// A message for this node's cluster connection to send.
    pub fn poll_outgoing(&mut self) -> Option<Outgoing> {
        self.pump();
        self.node.as_mut()?.out.pop_front()
    }

    pub(super) fn tell_leader(&mut self, partition: &str, msg: super::protocol::NodeMsg) {
        if let Some(n) = &mut self.node {
            let from = super::protocol::FromNode {
                node: n.name.clone(),
                msg,
            };
            n.out.push_back(Outgoing::Leader {
                partition: partition.to_string(),
                msg: from,
            });
        }
    }
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
mod tests;
