//! The screen pop: what the chosen agent's desk shows about the caller, pushed *before* the
//! agent's phone rings. The INVITE waits (briefly) until the desk has the pop on the wire, so
//! an agent never picks up a call they know nothing about.

use super::manager::CallManager;
use crate::acd::CallId;
use crate::events::Event;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub use crate::events::{Pop, PopCampaign, PopRoute};

/// Offers waiting for their pop to reach the desk.
#[derive(Default)]
pub(super) struct PopGate {
    /// How long an INVITE may wait for the pop (`None`: send at once, no desk in the loop).
    pub wait: Option<Duration>,
    /// Agents with a desk open: only their phones wait for the pop.
    desks: std::collections::HashSet<String>,
    /// Agents with a desk open on other cluster nodes, and which nodes.
    desks_elsewhere: HashMap<String, std::collections::HashSet<String>>,
    /// (call, agent) → (queue, ring no later than).
    pending: HashMap<(CallId, String), (String, Instant)>,
}

impl CallManager {
    /// How long an agent's INVITE may wait for the agent's desk to have the pop; the desk
    /// layer answers with [`CallManager::pop_delivered`] (at once when the agent has no desk open).
    pub fn set_pop_wait(&mut self, wait: Option<Duration>) {
        self.pops.wait = wait;
    }

    /// Whether `agent` has a desk open (told by the desk layer); phones of agents without one
    /// ring at once, including any whose pop was waiting for the desk that just closed.
    pub fn set_desk_open(&mut self, now: Instant, agent: &str, open: bool) {
        if open {
            self.pops.desks.insert(agent.to_string());
            return;
        }
        self.pops.desks.remove(agent);
        self.release_pops_of(now, agent);
    }

    /// A desk of `agent` opened or closed on cluster node `node`: phones wait for pops shown
    /// there as for a desk here.
    pub fn set_desk_open_elsewhere(&mut self, now: Instant, node: &str, agent: &str, open: bool) {
        if open {
            self.pops
                .desks_elsewhere
                .entry(agent.to_string())
                .or_default()
                .insert(node.to_string());
            return;
        }
        if let Some(nodes) = self.pops.desks_elsewhere.get_mut(agent) {
            nodes.remove(node);
            if nodes.is_empty() {
                self.pops.desks_elsewhere.remove(agent);
            }
        }
        self.release_pops_of(now, agent);
    }

    /// A cluster node died: its desks are gone.
    pub fn desks_gone_elsewhere(&mut self, now: Instant, node: &str) {
        let agents: Vec<String> = self
            .pops
            .desks_elsewhere
            .iter()
            .filter(|(_, n)| n.contains(node))
            .map(|(a, _)| a.clone())
            .collect();
        for a in agents {
            self.set_desk_open_elsewhere(now, node, &a, false);
        }
    }

    fn has_desk(&self, agent: &str) -> bool {
        self.pops.desks.contains(agent) || self.pops.desks_elsewhere.contains_key(agent)
    }

    /// No desk of `agent` is open anywhere any more: phones waiting for its pops ring now.
    fn release_pops_of(&mut self, now: Instant, agent: &str) {
        if self.has_desk(agent) {
            return;
        }
        let waiting: Vec<CallId> = self
            .pops
            .pending
            .keys()
            .filter(|(_, a)| a == agent)
            .map(|(c, _)| *c)
            .collect();
        for call in waiting {
            self.pop_delivered(now, call, agent);
        }
        self.process(now);
    }

    /// The ACD chose `agent` for `call`: pop first, then ring.
    pub(super) fn offer_with_pop(
        &mut self,
        now: Instant,
        call: CallId,
        agent: &str,
        queue: &str,
        ring: Duration,
    ) {
        let Some(c) = self.calls.get(&call) else {
            self.acd.call_gone(now, call);
            return;
        };
        let ctx = c.context.clone().unwrap_or_default();
        let route = c.route.as_ref();
        let pop = Pop {
            call_id: call,
            interaction: c.interaction.clone(),
            caller: c.caller_number.clone(),
            customer: ctx.customer,
            campaign: ctx.campaigns.first().map(|s| PopCampaign {
                name: s.campaign.clone(),
                sent_at: s.sent_at,
                offer: s.offer.clone(),
            }),
            tickets: ctx.tickets,
            history: ctx.history,
            tags: ctx.tags,
            route: PopRoute {
                queue: queue.to_string(),
                rule: route.and_then(|r| r.rule.clone()),
                reason: route.map(|r| r.reason.clone()).unwrap_or_default(),
            },
            ring_timeout_s: ring.as_secs(),
            fields: route.map(|r| r.pop.clone()).unwrap_or_default(),
            transfers: c.transfers,
            notes: c.notes.clone(),
            callback_waited_s: c
                .called_back
                .map(|asked| now.saturating_duration_since(asked).as_secs()),
            caller_verified: c.identity.trusted,
            caller_basis: c.identity.basis.clone(),
        };
        self.events.push_back(Event::Offered {
            call,
            agent: agent.to_string(),
            queue: queue.to_string(),
            pop: std::sync::Arc::new(pop),
        });
        match self.pops.wait.filter(|_| self.has_desk(agent)) {
            Some(wait) => {
                self.pops
                    .pending
                    .insert((call, agent.to_string()), (queue.to_string(), now + wait));
                self.timers
                    .arm(now + wait, super::phase::Wake::Pop(call, agent.to_string()));
            }
            None => self.offer(now, call, agent, queue),
        }
    }

    /// The desk wrote `call`'s pop to `agent` (or has no desk open for them): ring now.
    pub fn pop_delivered(&mut self, now: Instant, call: CallId, agent: &str) {
        if let Some((queue, _)) = self.pops.pending.remove(&(call, agent.to_string())) {
            self.offer(now, call, agent, &queue);
        }
        self.process(now);
    }

    /// The call is over before its phones rang (caller gone).
    pub(super) fn pop_forget(&mut self, call: CallId) {
        self.pops.pending.retain(|(c, _), _| *c != call);
    }

    /// One agent's offer is over before the phone rang (ring timeout, phone gone).
    pub(super) fn pop_forget_agent(&mut self, call: CallId, agent: &str) {
        self.pops.pending.remove(&(call, agent.to_string()));
    }

    /// An agent's desk did not confirm the pop by `at`: ring now (unless the offer is over,
    /// or was made again with a later deadline).
    pub(super) fn pop_due(&mut self, now: Instant, call: CallId, agent: &str, at: Instant) {
        let key = (call, agent.to_string());
        if self
            .pops
            .pending
            .get(&key)
            .is_some_and(|(_, until)| *until == at)
        {
            if let Some((queue, _)) = self.pops.pending.remove(&key) {
                self.offer(now, call, agent, &queue);
            }
        }
    }
}
