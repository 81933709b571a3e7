//! Dispatch: pairing waiting callers with free agents. A caller arriving looks for the best
//! free agent of its queue; an agent coming free looks for the best caller across its skills.
//! Both walk ordered indexes (callers by score and arrival, agents by idle time), never the
//! whole population.

use super::engine::{Acd, Key, LOOKAHEAD};
use super::{AgentState, CallId, Strategy};
use std::time::Instant;

impl Acd {
    /// True while `call` is kept for an agent other than `agent`.
    pub(super) fn reserved_for_other(
        &self,
        call: CallId,
        agent: Option<&str>,
        now: Instant,
    ) -> bool {
        self.reserved
            .get(&call)
            .is_some_and(|(a, until)| *until > now && Some(a.as_str()) != agent)
    }

    /// The first caller of `queue` that `agent` (or anyone, for `None`) may take.
    /// Whether `agent` has every extra skill `call` needs, at the level it needs.
    pub(super) fn eligible(&self, call: CallId, agent: &str) -> bool {
        self.required.get(&call).is_none_or(|req| {
            self.agents.get(agent).is_some_and(|a| {
                req.iter()
                    .all(|(s, l)| a.skills.get(s).is_some_and(|have| have >= l))
            })
        })
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
        loop {
            let Some(skill) = self.queues.get(queue).map(|q| q.skill.clone()) else {
                return;
            };
            let Some(idle) = self.idle.get(&skill).filter(|s| !s.is_empty()) else {
                return;
            };
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
            .filter(|(_, (a, until))| a == agent && *until > now)
            .filter_map(|(c, _)| self.calls.get(c).map(|w| (w.key, *c, w.queue.clone())))
            .min();
        if let Some((_, call, queue)) = mine {
            return self.offer(now, call, agent.to_string(), &queue);
        }
        let mut best: Option<(Key, CallId, String)> = None;
        for skill in a.skills.keys() {
            for q in self.queues_by_skill.get(skill).into_iter().flatten() {
                if let Some((k, c)) = self.first_available(q, agent, now) {
                    if best.as_ref().is_none_or(|(bk, _, _)| k < *bk) {
                        best = Some((k, c, q.clone()));
                    }
                }
            }
        }
        if let Some((_, call, queue)) = best {
            self.offer(now, call, agent.to_string(), &queue);
        }
    }
}
