//! How a queue picks among the free agents who may take a caller, what happens to an agent who
//! keeps letting offers ring out, and where a caller goes after waiting too long.

use super::engine::{Acd, Decision, Desk, Strategy, Wake};
use super::{AgentState, CallId};
use rand::Rng;
use std::cmp::Reverse;
use std::time::{Duration, Instant};

impl Acd {
    /// Makes random strategies repeatable (tests, simulations).
    pub fn set_seed(&mut self, seed: u64) {
        self.rng = rand::SeedableRng::seed_from_u64(seed);
    }

    /// The agent `queue`'s strategy picks among `candidates` (free, eligible, longest idle first).
    pub(super) fn choose(&mut self, queue: &str, candidates: Vec<String>) -> Option<String> {
        let (strategy, skill) = self
            .queues
            .get(queue)
            .map(|q| (q.strategy, q.skill.clone()))?;
        let level = |acd: &Acd, a: &str| {
            acd.agents
                .get(a)
                .and_then(|x| x.skills.get(&skill).copied())
                .unwrap_or(1)
        };
        match strategy {
            Strategy::LongestIdle | Strategy::RingAll => candidates.into_iter().next(),
            // `min_by_key` keeps the first of equals: ties go to the longest idle.
            Strategy::FewestCalls => candidates
                .into_iter()
                .min_by_key(|a| self.agents.get(a).map_or(0, |x| x.answered)),
            Strategy::LeastTalkTime => candidates
                .into_iter()
                .min_by_key(|a| self.agents.get(a).map_or(Duration::ZERO, |x| x.talk)),
            Strategy::Linear => candidates
                .into_iter()
                .min_by_key(|a| (Reverse(level(self, a)), a.clone())),
            Strategy::RoundRobin => {
                let mut sorted = candidates;
                sorted.sort();
                let last = self.rr_last.get(queue).cloned().unwrap_or_default();
                let next = sorted
                    .iter()
                    .find(|a| **a > last)
                    .or_else(|| sorted.first())
                    .cloned()?;
                self.rr_last.insert(queue.to_string(), next.clone());
                Some(next)
            }
            Strategy::Random => {
                if candidates.is_empty() {
                    return None;
                }
                let i = self.rng.gen_range(0..candidates.len());
                candidates.into_iter().nth(i)
            }
            Strategy::WeightedRandom => {
                let weights: Vec<u32> = candidates.iter().map(|a| level(self, a) as u32).collect();
                let total: u32 = weights.iter().sum();
                if total == 0 {
                    return None;
                }
                let mut r = self.rng.gen_range(0..total);
                for (a, w) in candidates.into_iter().zip(weights) {
                    if r < w {
                        return Some(a);
                    }
                    r -= w;
                }
                None
            }
        }
    }

    /// An offer to `agent` rang out. True when that was one too many and the agent is now
    /// paused (rather than resting): the desk shows why, and Ready brings them back.
    pub(super) fn missed(&mut self, now: Instant, agent: &str, queue: &str) -> bool {
        let limit = self.queues.get(queue).map_or(0, |q| q.autopause_after);
        let Some(a) = self.agents.get_mut(agent) else {
            return false;
        };
        a.misses += 1;
        if limit == 0 || a.misses < limit {
            return false;
        }
        a.misses = 0;
        a.desk = Desk::Paused(if limit == 1 {
            "missed a call".to_string()
        } else {
            format!("missed {limit} calls in a row")
        });
        self.set_state(now, agent, AgentState::Paused);
        self.desk_changed(agent);
        true
    }

    /// Starts the queue's maximum-wait clock for a caller who just joined it.
    pub(super) fn arm_max_wait(&mut self, now: Instant, call: CallId, queue: &str) {
        let at = self
            .queues
            .get(queue)
            .and_then(|q| q.max_wait)
            .map(|max| now + max);
        if let Some(r) = self.calls.get_mut(&call) {
            r.max_wait_at = at;
        }
        if let Some(at) = at {
            self.timers.arm(at, Wake::MaxWait(call));
        }
    }

    /// The caller's wait is over: to the overflow queue, keeping their priority and arrival
    /// order. A caller being offered right now is checked again a second later.
    pub(super) fn max_wait_reached(&mut self, now: Instant, call: CallId, at: Instant) {
        let Some(r) = self
            .calls
            .get_mut(&call)
            .filter(|r| r.max_wait_at == Some(at))
        else {
            return; // re-armed or gone
        };
        let Some(p) = r.line.as_ref() else {
            return;
        };
        if p.offer.is_some() {
            let again = now + Duration::from_secs(1);
            r.max_wait_at = Some(again);
            self.timers.arm(again, Wake::MaxWait(call));
            return;
        }
        let callback = r.callback.is_some();
        let queue = Some(p.queue.clone());
        let no_overflow = queue
            .as_ref()
            .and_then(|q| self.queues.get(q))
            .is_some_and(|q| q.overflow.is_none());
        if no_overflow && callback {
            // A callback is a promise, not a caller on hold: it keeps its place.
            self.clear_max_wait(call);
        } else if no_overflow {
            // Nowhere to send them: they are let go (the call layer plays the queue's message).
            self.call_gone(now, call);
            if let Some(queue) = queue {
                self.out.push_back(Decision::WaitedOut { call, queue });
            }
        } else if !self.move_to_overflow(now, call) {
            self.clear_max_wait(call);
        }
    }

    fn clear_max_wait(&mut self, call: CallId) {
        if let Some(r) = self.calls.get_mut(&call) {
            r.max_wait_at = None;
        }
    }

    /// Moves a waiting caller to their queue's overflow queue, keeping their place by arrival;
    /// false when the queue has none.
    fn move_to_overflow(&mut self, now: Instant, call: CallId) -> bool {
        let Some(w) = self.waiting_of(call) else {
            return false;
        };
        let from = w.queue.clone();
        let Some(to) = self
            .queues
            .get(&from)
            .and_then(|q| q.overflow.clone())
            .filter(|to| self.queues.contains_key(to))
        else {
            return false;
        };
        let key = w.key;
        if let Some(q) = self.waiting.get_mut(&from) {
            q.remove(&key);
        }
        self.waiting
            .entry(to.clone())
            .or_default()
            .insert(key, call);
        if let Some(p) = self.calls.get_mut(&call).and_then(|r| r.line.as_mut()) {
            p.queue = to.clone();
        }
        self.out.push_back(Decision::Overflow {
            call,
            from,
            to: to.clone(),
        });
        self.arm_max_wait(now, call, &to);
        self.arm_widen(now, call, &to);
        self.dispatch_queue(now, &to);
        true
    }

    /// `agent` logged out or lost their phone: queues with `leave_empty` that now have nobody
    /// logged in send their waiting callers to the overflow queue.
    pub(super) fn agent_left(&mut self, now: Instant, agent: &str) {
        let Some(skills) = self.agents.get(agent).map(|a| a.skills.clone()) else {
            return;
        };
        let emptied: Vec<String> = self
            .queues
            .values()
            .filter(|q| q.leave_empty && q.overflow.is_some() && skills.contains_key(&q.skill))
            .map(|q| q.name.clone())
            .filter(|q| !self.staffed(q))
            .collect();
        for q in emptied {
            let calls: Vec<CallId> = self
                .waiting
                .get(&q)
                .map(|w| w.values().copied().collect())
                .unwrap_or_default();
            for call in calls {
                self.move_to_overflow(now, call);
            }
        }
    }
}

/// Handle time assumed for a queue before its first answered call.
const DEFAULT_HANDLE: Duration = Duration::from_secs(180);

impl Acd {
    /// A waiting caller's place in line (1 = next) and the expected wait in seconds: the callers
    /// ahead, times the queue's average handle time so far, shared by the agents working it.
    /// `None` when the call is not waiting (ringing, talking, gone).
    pub fn position(&self, _now: Instant, call: CallId) -> Option<(usize, u64)> {
        let w = self.waiting_of(call)?;
        let ahead = self.waiting.get(&w.queue)?.range(..w.key).count();
        let q = self.queues.get(&w.queue)?;
        let (n, total) = self.handled.get(&w.queue).copied().unwrap_or_default();
        let avg = if n == 0 {
            DEFAULT_HANDLE
        } else {
            total / n as u32
        };
        let working = self
            .agents
            .values()
            .filter(|a| a.skills.contains_key(&q.skill))
            .filter(|a| {
                !matches!(
                    a.state,
                    AgentState::Offline | AgentState::LoggedOut | AgentState::Paused
                )
            })
            .count()
            .max(1);
        let wait = avg.as_secs() * (ahead as u64 + 1) / working as u64;
        Some((ahead + 1, wait))
    }
}
