//! Dispatch: pairing waiting callers with free agents. A caller arriving looks for the best
//! free agent of its queue; an agent coming free looks for the best caller across its skills.
//! Both walk ordered indexes (callers by score and arrival, agents by idle time), never the
//! whole population.

use super::engine::{Acd, Key, LOOKAHEAD};
use super::{AgentState, CallId, CrossQueue, Strategy};
use std::cmp::Reverse;
use std::time::Instant;

impl Acd {
    /// True while `call` is kept for an agent other than `agent`.
    pub(super) fn reserved_for_other(
        &self,
        call: CallId,
        agent: Option<&str>,
        now: Instant,
    ) -> bool {
        self.calls.get(&call).is_some_and(|r| {
            r.reserved
                .as_ref()
                .is_some_and(|(a, until)| *until > now && Some(a.as_str()) != agent)
                || r.held.is_some_and(|until| until > now)
        })
    }

    /// Whether `agent` may take `call`: their skills meet the call's queue as widened so far,
    /// and every extra skill the call needs, at the level it needs.
    pub(super) fn eligible(&self, call: CallId, agent: &str) -> bool {
        let Some(a) = self.agents.get(agent) else {
            return false;
        };
        let Some(r) = self.calls.get(&call) else {
            return false;
        };
        r.line
            .as_ref()
            .is_some_and(|p| self.accepts(call, &p.queue, a))
            && r.required
                .iter()
                .all(|(s, l)| a.skills.get(s).is_some_and(|have| have >= l))
    }

    /// The first caller of `queue` that `agent` may take, looking at most [`LOOKAHEAD`] callers
    /// deep so dispatch stays bounded however long the queue is.
    pub(super) fn first_available(
        &self,
        queue: &str,
        agent: &str,
        now: Instant,
    ) -> Option<(Key, CallId)> {
        self.waiting
            .get(queue)?
            .iter()
            .take(LOOKAHEAD)
            .find(|(_, c)| {
                !self.reserved_for_other(**c, Some(agent), now) && self.eligible(**c, agent)
            })
            .map(|(k, c)| (*k, *c))
    }

    pub(super) fn dispatch_queue(&mut self, now: Instant, queue: &str) {
        if self.held_until.is_some() {
            return;
        }
        loop {
            let Some(q) = self.queues.get(queue) else {
                return;
            };
            // Most queues draw on one skill's idle agents; a widening queue on several.
            let merged;
            let idle = if q.widen.iter().all(|w| w.skills.is_empty()) {
                match self.idle.get(&q.skill) {
                    Some(set) => set,
                    None => return,
                }
            } else {
                merged = self.idle_for(queue);
                &merged
            };
            if idle.is_empty() {
                return;
            }
            // The first callers (in priority and arrival order) paired with the agents who may
            // take them (longest idle first); callers needing skills nobody idle has wait.
            let all = !matches!(
                self.queues.get(queue).map(|q| q.strategy),
                Some(Strategy::LongestIdle | Strategy::RingAll) | None
            );
            let pick = self
                .waiting
                .get(queue)
                .into_iter()
                .flatten()
                .filter(|(_, c)| !self.reserved_for_other(**c, None, now))
                .take(LOOKAHEAD)
                .find_map(|(_, &c)| {
                    let mut ok = idle
                        .iter()
                        .filter(|(_, a)| self.eligible(c, a))
                        .map(|(_, a)| a.clone());
                    let v: Vec<String> = if all {
                        ok.collect()
                    } else {
                        ok.next().into_iter().collect()
                    };
                    (!v.is_empty()).then_some((c, v))
                });
            let Some((call, candidates)) = pick else {
                return;
            };
            let Some(agent) = self.choose(queue, candidates) else {
                return;
            };
            self.offer(now, call, agent, queue);
        }
    }

    /// Offers the best waiting call among the agent's queues to a newly idle agent.
    pub(super) fn dispatch_agent(&mut self, now: Instant, agent: &str) {
        if self.held_until.is_some() {
            return;
        }
        let Some(a) = self.agents.get(agent) else {
            return;
        };
        if a.state != AgentState::Idle {
            return;
        }
        // Callers who asked for this agent come first.
        let mine = self
            .reserved
            .iter()
            .filter(|c| {
                self.calls
                    .get(c)
                    .and_then(|r| r.reserved.as_ref())
                    .is_some_and(|(a, until)| a == agent && *until > now)
            })
            .filter_map(|c| self.waiting_of(*c).map(|p| (p.key, *c, p.queue.clone())))
            .min();
        if let Some((_, call, queue)) = mine {
            return self.offer(now, call, agent.to_string(), &queue);
        }
        // Across the agent's queues: the best caller by (queue weight if configured, score,
        // arrival). A queue reached through two skills is looked at once.
        let mut best: Option<((Reverse<i32>, Key), CallId, String)> = None;
        let mut seen: Vec<&String> = Vec::new();
        for skill in a.skills.keys() {
            for q in self.queues_by_skill.get(skill).into_iter().flatten() {
                if seen.contains(&q) {
                    continue;
                }
                seen.push(q);
                if let Some((k, c)) = self.first_available(q, agent, now) {
                    let weight = match self.cross_queue {
                        CrossQueue::LongestWaiting => 0,
                        CrossQueue::QueueWeight => self.queues.get(q).map_or(0, |x| x.weight),
                    };
                    let rank = (Reverse(weight), k);
                    if best.as_ref().is_none_or(|(b, _, _)| rank < *b) {
                        best = Some((rank, c, q.clone()));
                    }
                }
            }
        }
        if let Some((_, call, queue)) = best {
            self.offer(now, call, agent.to_string(), &queue);
        }
    }
}
