//! Time-based widening: a queue may first want its best agents (skill at a minimum level),
//! then, as a caller waits, accept lower levels and other skill groups. Each caller carries
//! the number of steps reached; one timer per caller moves it on, and dispatch runs again at
//! once so an agent the wider search allows is offered the caller without polling.

use super::engine::{Acd, Agent, CrossQueue, QueueConfig, Wake, Widening};
use super::CallId;
use std::collections::BTreeSet;
use std::time::Instant;

impl QueueConfig {
    /// Every skill this queue ever draws agents from: its own, then the widening steps'.
    pub(super) fn skills(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.skill.as_str()).chain(
            self.widen
                .iter()
                .flat_map(|w| w.skills.iter().map(|(s, _)| s.as_str())),
        )
    }
}

impl Acd {
    /// Which caller an agent working several queues gets first.
    pub fn set_cross_queue(&mut self, rule: CrossQueue) {
        self.cross_queue = rule;
    }

    /// Whether `agent`'s skills meet `queue` at the widening stage `call` has reached.
    pub(super) fn accepts(&self, call: CallId, queue: &str, agent: &Agent) -> bool {
        let Some(q) = self.queues.get(queue) else {
            return false;
        };
        let stage = self
            .calls
            .get(&call)
            .and_then(|r| r.widening.as_ref())
            .map_or(0, |w| w.stage);
        let steps = &q.widen[..stage.min(q.widen.len())];
        let level = steps
            .iter()
            .rev()
            .find_map(|w| w.min_level)
            .unwrap_or(q.min_level);
        agent.skills.get(&q.skill).is_some_and(|l| *l >= level)
            || steps
                .iter()
                .flat_map(|w| &w.skills)
                .any(|(s, l)| agent.skills.get(s).is_some_and(|have| have >= l))
    }

    /// Idle agents holding any skill `queue` draws on, longest idle first.
    pub(super) fn idle_for(&self, queue: &str) -> BTreeSet<(Instant, String)> {
        let Some(q) = self.queues.get(queue) else {
            return BTreeSet::new();
        };
        q.skills()
            .filter_map(|s| self.idle.get(s))
            .flatten()
            .cloned()
            .collect()
    }

    /// Starts widening for a caller who just joined `queue` (or moved there on overflow).
    pub(super) fn arm_widen(&mut self, now: Instant, call: CallId, queue: &str) {
        let first = self.queues.get(queue).and_then(|q| q.widen.first());
        let at = first.map(|f| now + f.after);
        let Some(r) = self.calls.get_mut(&call) else {
            return;
        };
        r.widening = at.map(|at| Widening {
            joined: now,
            stage: 0,
            next: Some(at),
        });
        let Some(at) = at else {
            return;
        };
        self.timers.arm(at, Wake::Widen(call));
    }

    /// A widening timer fired: apply every step now due, arm the next, and look for an agent.
    pub(super) fn widen_due(&mut self, now: Instant, call: CallId, at: Instant) {
        let Some(r) = self.calls.get_mut(&call) else {
            return;
        };
        let (Some(p), Some(w)) = (r.line.as_ref(), r.widening.as_mut()) else {
            return;
        };
        let (queue, waiting) = (p.queue.clone(), p.offer.is_none());
        let Some(q) = self.queues.get(&queue) else {
            return;
        };
        if w.next != Some(at) {
            return; // re-armed in another queue
        }
        let waited = now.saturating_duration_since(w.joined);
        w.stage = q.widen.iter().take_while(|s| s.after <= waited).count();
        w.next = q.widen.get(w.stage).map(|s| w.joined + s.after);
        if let Some(next) = w.next {
            self.timers.arm(next, Wake::Widen(call));
        }
        tracing::debug!(call, queue, stage = w.stage, "search widened");
        if waiting {
            self.dispatch_queue(now, &queue);
        }
    }
}
