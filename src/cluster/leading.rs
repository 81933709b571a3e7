//! The leader's side of [`Matcher`]: taking a partition (a fresh engine, built from the agents
//! this node knows and the calls every node reports), commands from nodes applied to it, and
//! its decisions sent to the node that holds each call.

use super::matcher::{Decided, Led, Matcher};
use super::protocol::{FromLeader, FromNode, InLine, LeaderMsg, NodeMsg, Outgoing, Talking};
use crate::acd::{Acd, AcdError, CallId, Decision};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Puts one caller in `acd`'s line as the node described them.
pub(super) fn enqueue(
    acd: &mut Acd,
    now: Instant,
    l: &InLine,
    joined: Instant,
) -> Result<(), AcdError> {
    if !l.required.is_empty() {
        acd.require(l.call, l.required.clone());
    }
    if let Some(ms) = l.callback_ms {
        acd.expect_callback(l.call, Duration::from_millis(ms));
    }
    if l.resumed {
        acd.enqueue_resumed(now, l.call, &l.queue, l.priority, joined)
    } else {
        let pref = l
            .preferred
            .as_ref()
            .map(|(a, ms)| (a.as_str(), Duration::from_millis(*ms)));
        acd.enqueue_for(now, l.call, &l.queue, l.priority, pref)
    }
}

impl Matcher {
    /// This node now leads `partition` under `epoch`: a fresh engine with the partition's
    /// queues and agents (their reachability and desk choices as this node last saw them),
    /// this node's own calls put back by the time they first joined, and every other node
    /// asked for theirs before anything is offered to their callers.
    ///
    /// `talking` is every agent on a call anywhere (from the calls bucket): those not on one
    /// of this node's calls are kept busy until their node reports them, or for
    /// [`super::matcher::ORPHAN_GRACE`] at most.
    pub fn lead(
        &mut self,
        now: Instant,
        partition: &str,
        epoch: u64,
        busy_anywhere: &[(String, String)],
        live_nodes: &[String],
    ) {
        let mut acd = Acd::new(self.queues_of(partition));
        acd.set_cross_queue(self.cross_queue);
        acd.set_auto_ready(self.auto_ready);
        let agents: Vec<(String, super::matcher::AgentInfo)> = self
            .agents
            .iter()
            .filter(|(id, _)| self.partition_of_agent(id) == partition)
            .map(|(id, a)| (id.clone(), a.clone()))
            .collect();
        for (id, a) in &agents {
            acd.upsert_agent(now, id, a.skills.clone());
            acd.set_agent_wrapup(id, a.wrapup);
            if a.reachable {
                acd.agent_online(now, id);
            }
        }
        // This node's own talking agents are busy before anyone is offered a call.
        let talking: Vec<(CallId, String, String)> = self
            .mine
            .values()
            .filter(|m| m.partition == partition)
            .filter_map(|m| Some((m.line.call, m.talking.clone()?, m.line.queue.clone())))
            .collect();
        for (call, agent, queue) in &talking {
            acd.resume_busy(now, agent, *call, queue);
        }
        let mut orphans = Vec::new();
        for (n, (agent, queue)) in talking_elsewhere(
            busy_anywhere,
            &agents_talking_here(&talking),
            partition,
            self,
        )
        .into_iter()
        .enumerate()
        {
            // A placeholder call id no node gives out (below 2^53, above every node's).
            let placeholder = (1u64 << 53) - 1 - n as u64;
            acd.resume_busy(now, &agent, placeholder, &queue);
            orphans.push((now + super::matcher::ORPHAN_GRACE, agent, placeholder));
        }
        for (id, a) in &agents {
            if let Some((desk, until)) = &a.desk {
                acd.restore_desk(now, id, desk.clone(), *until);
            }
        }
        info!(partition, epoch, agents = agents.len(), "leading partition");
        let mut led = Led::new(acd, epoch);
        led.orphans = orphans;
        let me = self.node.as_ref().map(|n| n.name.clone());
        led.awaiting = live_nodes
            .iter()
            .filter(|n| Some(n.as_str()) != me.as_deref())
            .cloned()
            .collect();
        if !led.awaiting.is_empty() {
            led.acd.hold_offers(now + super::matcher::RECONCILE_WAIT);
        }
        led.next_status = Some(now);
        self.led.insert(partition.to_string(), led);
        // Ours: ringing phones stop (a new leader re-offers), callers rejoin in order.
        let mut waiting: Vec<InLine> = Vec::new();
        let mut withdraw = Vec::new();
        for m in self.mine.values_mut().filter(|m| m.partition == partition) {
            for agent in m.ringing.drain(..) {
                withdraw.push((m.line.call, agent));
            }
            if m.talking.is_none() {
                let mut l = m.line.clone();
                l.resumed = true;
                waiting.push(l);
            }
        }
        for (call, agent) in withdraw {
            self.inbox.push_back(Decided::Withdraw { call, agent });
        }
        waiting.sort_by_key(|l| (l.enqueued_ms, l.call));
        for l in waiting {
            self.leader_enqueue(now, partition, None, l);
        }
        if let Some(n) = &mut self.node {
            n.fence.admit(partition, epoch);
            n.out.push_back(Outgoing::Nodes(FromLeader {
                partition: partition.to_string(),
                epoch,
                msg: LeaderMsg::Reconcile,
            }));
        }
    }

    /// This node no longer leads `partition` (lease lapsed, taken, released): its engine is
    /// dropped; the calls stay where they are, and the next leader hears of them.
    pub fn unlead(&mut self, partition: &str) {
        if self.led.remove(partition).is_some() {
            info!(partition, "no longer leading partition");
        }
    }

    /// `node` died: its callers leave every line this node leads (the survivor that takes each
    /// call over puts it back by its first-joined time), phones ringing for them are freed, and
    /// agents talking on its calls stay busy until the survivor claims them (or the grace ends).
    pub fn node_down(&mut self, now: Instant, node: &str) {
        for led in self.led.values_mut() {
            let calls: Vec<CallId> = led
                .owners
                .iter()
                .filter(|(_, n)| n.as_str() == node)
                .map(|(c, _)| *c)
                .collect();
            for call in calls {
                led.acd.call_gone(now, call);
                led.owners.remove(&call);
            }
            for (agent, (call, n)) in &led.busy_on {
                if n == node {
                    led.orphans
                        .push((now + super::matcher::ORPHAN_GRACE, agent.clone(), *call));
                }
            }
        }
    }

    /// The partitions this node leads now, with their epochs.
    pub fn leading(&self) -> Vec<(String, u64)> {
        self.led.iter().map(|(p, l)| (p.clone(), l.epoch)).collect()
    }

    /// Puts a caller held by `owner` (None: this node) in the partition's line.
    fn leader_enqueue(&mut self, now: Instant, partition: &str, owner: Option<&str>, l: InLine) {
        let joined = self.wall.instant(now, l.enqueued_ms);
        let Some(led) = self.led.get_mut(partition) else {
            return;
        };
        match owner {
            Some(o) => led.owners.insert(l.call, o.to_string()),
            None => led.owners.remove(&l.call),
        };
        if let Err(e) = enqueue(&mut led.acd, now, &l, joined) {
            if e == AcdError::Duplicate(l.call) {
                return; // already in line (a re-announce)
            }
            led.owners.remove(&l.call);
            let why = e.to_string();
            match owner {
                Some(o) => self.send_to(partition, o, LeaderMsg::Refused { call: l.call, why }),
                None => self.inbox.push_back(Decided::Refused { call: l.call, why }),
            }
        }
    }

    /// A node's message to the leader of `partition` (ignored unless this node leads it).
    pub fn handle_from_node(&mut self, now: Instant, partition: &str, m: FromNode) {
        if !self.led.contains_key(partition) {
            return;
        }
        let me = self.node.as_ref().map(|n| n.name.clone());
        if me.as_deref() == Some(m.node.as_str()) {
            // Our own message looped back (we became leader while it was on its way): the
            // facade already applied what it needed when it found the engine here.
            return;
        }
        let node = m.node;
        let Some(led) = self.led.get_mut(partition) else {
            return;
        };
        let acd = &mut led.acd;
        match m.msg {
            NodeMsg::Enqueue(l) => self.leader_enqueue(now, partition, Some(&node), l),
            NodeMsg::Gone { call } => {
                acd.call_gone(now, call);
                led.owners.remove(&call);
            }
            NodeMsg::Taken { call, agent } => {
                acd.offer_taken(now, call, &agent);
                led.owners.remove(&call);
                led.busy_on.insert(agent, (call, node));
            }
            NodeMsg::Failed { call, agent } => acd.agent_failed(now, call, &agent),
            NodeMsg::AgentFree { agent } => {
                led.busy_on.remove(&agent);
                acd.agent_free(now, &agent)
            }
            NodeMsg::Callback { call, dial_ms } => {
                acd.callback(call, Duration::from_millis(dial_ms));
            }
            NodeMsg::CallbackAnswered { call } => {
                if let Some((agent, queue, ring)) = acd.callback_answered(now, call) {
                    let msg = LeaderMsg::Offer {
                        call,
                        agent,
                        queue,
                        ring_ms: ring.as_millis() as u64,
                    };
                    self.send_to(partition, &node, msg);
                }
            }
            NodeMsg::CallbackUnanswered { call, retry_ms } => {
                acd.callback_unanswered(now, call, Duration::from_millis(retry_ms))
            }
            NodeMsg::Calls {
                waiting,
                talking,
                complete,
                ..
            } => {
                if complete {
                    self.prune(now, partition, &node, &waiting, &talking);
                }
                self.merge_calls(now, partition, &node, waiting, talking);
                // The last account this leader waited for: offers may start.
                if let Some(led) = self.led.get_mut(partition) {
                    if complete && led.awaiting.remove(&node) && led.awaiting.is_empty() {
                        led.acd.release_offers(now);
                    }
                }
            }
        }
    }

    /// A node's account of its calls: agents talking are busy, callers in line are put back in
    /// the order they first joined (those already in line stay where they are).
    fn merge_calls(
        &mut self,
        now: Instant,
        partition: &str,
        node: &str,
        mut waiting: Vec<InLine>,
        talking: Vec<Talking>,
    ) {
        if let Some(led) = self.led.get_mut(partition) {
            for t in &talking {
                if led.acd.agent_state(&t.agent) != Some(crate::acd::AgentState::Busy(t.call)) {
                    // Still offered or in line here (the node's "taken" was lost): done now.
                    if led.acd.enqueued_at(t.call).is_some() {
                        led.acd.offer_taken(now, t.call, &t.agent);
                        led.acd.call_gone(now, t.call);
                    }
                    led.acd.resume_busy(now, &t.agent, t.call, &t.queue);
                }
                led.busy_on
                    .insert(t.agent.clone(), (t.call, node.to_string()));
            }
        }
        waiting.sort_by_key(|l| (l.enqueued_ms, l.call));
        for mut l in waiting {
            l.resumed = true;
            self.leader_enqueue(now, partition, Some(node), l);
        }
    }

    /// A node's complete account: its calls this leader holds and the node no longer has are
    /// gone (their `Gone` was lost), and agents it no longer reports talking are free.
    fn prune(
        &mut self,
        now: Instant,
        partition: &str,
        node: &str,
        waiting: &[InLine],
        talking: &[Talking],
    ) {
        let Some(led) = self.led.get_mut(partition) else {
            return;
        };
        let reported: std::collections::HashSet<CallId> = waiting
            .iter()
            .map(|l| l.call)
            .chain(talking.iter().map(|t| t.call))
            .collect();
        let gone: Vec<CallId> = led
            .owners
            .iter()
            .filter(|(c, n)| n.as_str() == node && !reported.contains(c))
            .map(|(c, _)| *c)
            .collect();
        for call in gone {
            warn!(call, %node, "a caller the node no longer has left the line");
            led.acd.call_gone(now, call);
            led.owners.remove(&call);
        }
        let freed: Vec<String> = led
            .busy_on
            .iter()
            .filter(|(_, (c, n))| n.as_str() == node && !reported.contains(c))
            .map(|(a, _)| a.clone())
            .collect();
        for agent in freed {
            warn!(%agent, %node, "an agent the node no longer reports talking is free");
            led.busy_on.remove(&agent);
            led.acd.agent_free(now, &agent);
        }
    }

    fn send_to(&mut self, partition: &str, node: &str, msg: LeaderMsg) {
        let epoch = self.led.get(partition).map_or(0, |l| l.epoch);
        if let Some(n) = &mut self.node {
            n.out.push_back(Outgoing::Node {
                node: node.to_string(),
                msg: FromLeader {
                    partition: partition.to_string(),
                    epoch,
                    msg,
                },
            });
        }
    }

    /// The next thing the call layer is to do, in the order it was decided: decisions from
    /// leaders elsewhere and from this node's engines alike.
    pub fn poll_decision(&mut self) -> Option<Decided> {
        self.pump();
        let d = self.inbox.pop_front()?;
        self.note(&d);
        Some(d)
    }

    /// Moves every engine's decisions on: one about a call another node holds is sent there,
    /// the rest wait in the inbox for the call layer. Done before anything is read from this
    /// matcher, so the leader's answers leave even while its own call layer has nothing to do.
    pub(super) fn pump(&mut self) {
        let parts: Vec<String> = self.led.keys().cloned().collect();
        for p in parts {
            while let Some(d) = self.led.get_mut(&p).and_then(|l| l.acd.poll_decision()) {
                let owner = call_of(&d).and_then(|c| self.led.get(&p)?.owners.get(&c).cloned());
                match owner {
                    Some(node) => self.forward(&p, &node, d),
                    None => {
                        if let Decision::DeskChanged {
                            agent,
                            desk,
                            wrap_until,
                        } = &d
                        {
                            self.desk_changed(&p, agent, desk, *wrap_until);
                        }
                        self.inbox.push_back(Decided::Acd(d));
                    }
                }
            }
        }
    }

    /// Keeps this node's own record of its calls in step with what it is told to do.
    fn note(&mut self, d: &Decided) {
        match d {
            Decided::Acd(Decision::Offer { call, agent, .. }) => {
                if let Some(m) = self.mine.get_mut(call) {
                    m.ringing.push(agent.clone());
                }
            }
            Decided::Acd(Decision::RingTimeout { call, agent })
            | Decided::Withdraw { call, agent } => {
                if let Some(m) = self.mine.get_mut(call) {
                    m.ringing.retain(|a| a != agent);
                }
            }
            Decided::Acd(Decision::Overflow { call, to, .. }) => {
                if let Some(m) = self.mine.get_mut(call) {
                    m.line.queue = to.clone();
                }
            }
            Decided::Acd(Decision::WaitedOut { call, .. }) | Decided::Refused { call, .. } => {
                self.mine.remove(call);
            }
            _ => {}
        }
    }

    /// An agent's desk choice changed here, the leader: every node keeps it for the next one.
    fn desk_changed(
        &mut self,
        partition: &str,
        agent: &str,
        desk: &crate::acd::Desk,
        wrap_until: Option<Instant>,
    ) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.desk = Some((desk.clone(), wrap_until));
        }
        let epoch = self.led.get(partition).map_or(0, |l| l.epoch);
        let wrap_until_ms = wrap_until.map(|t| self.wall.ms(t));
        if let Some(n) = &mut self.node {
            n.out.push_back(Outgoing::Nodes(FromLeader {
                partition: partition.to_string(),
                epoch,
                msg: LeaderMsg::Desk {
                    agent: agent.to_string(),
                    desk: desk.into(),
                    wrap_until_ms,
                },
            }));
        }
    }

    /// Sends a decision about another node's call to that node.
    fn forward(&mut self, partition: &str, node: &str, d: Decision) {
        let msg = match d {
            Decision::Offer {
                call,
                agent,
                queue,
                ring_timeout,
            } => LeaderMsg::Offer {
                call,
                agent,
                queue,
                ring_ms: ring_timeout.as_millis() as u64,
            },
            Decision::RingTimeout { call, agent } => LeaderMsg::RingTimeout { call, agent },
            Decision::Overflow { call, from, to } => LeaderMsg::Overflow { call, from, to },
            Decision::WaitedOut { call, queue } => {
                if let Some(l) = self.led.get_mut(partition) {
                    l.owners.remove(&call);
                }
                LeaderMsg::WaitedOut { call, queue }
            }
            other => {
                warn!(?other, "an agent decision has no call to forward");
                return;
            }
        };
        self.send_to(partition, node, msg);
    }
}

fn call_of(d: &Decision) -> Option<CallId> {
    match d {
        Decision::Offer { call, .. }
        | Decision::RingTimeout { call, .. }
        | Decision::Overflow { call, .. }
        | Decision::WaitedOut { call, .. } => Some(*call),
        Decision::DeskChanged { .. } | Decision::AgentChanged { .. } => None,
    }
}

/// The agents talking on this node's own calls.
fn agents_talking_here(here: &[(CallId, String, String)]) -> Vec<String> {
    here.iter().map(|(_, a, _)| a.clone()).collect()
}

/// Of the agents talking anywhere, those of `partition` not on one of this node's calls.
fn talking_elsewhere(
    all: &[(String, String)],
    here: &[String],
    partition: &str,
    m: &Matcher,
) -> Vec<(String, String)> {
    all.iter()
        .filter(|(agent, queue)| !here.contains(agent) && m.partition_of_queue(queue) == partition)
        .cloned()
        .collect()
}
