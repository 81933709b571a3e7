pub use super::queue_config::{CrossQueue, QueueConfig, Strategy, Widen};
pub(super) use super::records::{CallRecord, Offer, Place};
use super::CallId;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AcdError {
    #[error("unknown queue '{0}'")]
    UnknownQueue(String),
    #[error("call {0} is already queued")]
    Duplicate(CallId),
    #[error("queue '{0}' is full")]
    Full(String),
    #[error("queue '{0}' has no agent logged in")]
    NoAgents(String),
}

/// What an agent is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "call")]
pub enum AgentState {
    /// Not registered.
    Offline,
    /// Registered and free.
    Idle,
    /// Being offered a call.
    Ringing(CallId),
    /// Talking.
    Busy(CallId),
    /// Missed or rejected a call; free again later.
    Resting,
    /// Registered, but not logged in at the desk (or logged out): offered nothing.
    LoggedOut,
    /// On a pause (break, lunch, …); the reason is in [`AgentStatus::reason`].
    Paused,
    /// After-call work.
    WrapUp,
}

/// What the agent chose at the desk; combined with registration and calls into [`AgentState`].
/// Kept in the database, so a restart neither logs agents out nor ends their pause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Desk {
    LoggedOut,
    Ready,
    Paused(String),
}

/// What the engine wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Ring `agent` for `call`; the engine has already started the ring timer.
    Offer {
        call: CallId,
        agent: String,
        queue: String,
        ring_timeout: Duration,
    },
    /// `agent` did not answer in time: stop ringing. The call is already back at the head.
    RingTimeout { call: CallId, agent: String },
    /// `call` waited its queue's maximum and moved to the overflow queue.
    Overflow {
        call: CallId,
        from: String,
        to: String,
    },
    /// `call` waited its queue's maximum and the queue has no overflow: it has left the queue,
    /// and the caller is to hear the queue's timeout message and be let go.
    WaitedOut { call: CallId, queue: String },
    /// The agent's state changed (for the desk, the wallboard and the history).
    /// The agent's desk choice or the end of their after-call work changed: worth keeping
    /// across a restart (`wrap_until` is when wrap-up ends, if they are in it).
    DeskChanged {
        agent: String,
        desk: Desk,
        wrap_until: Option<Instant>,
    },
    AgentChanged {
        agent: String,
        state: AgentState,
        reason: Option<String>,
    },
}

pub(super) struct Agent {
    pub(super) skills: HashMap<String, u8>,
    pub(super) state: AgentState,
    pub(super) idle_since: Instant,
    pub(super) rest_until: Option<Instant>,
    /// A phone is registered.
    pub(super) registered: bool,
    pub(super) desk: Desk,
    pub(super) wrap_until: Option<Instant>,
    /// The queue of the agent's current or last call (for its wrap-up time).
    pub(super) last_queue: Option<String>,
    /// When the state last changed.
    pub(super) since: Instant,
    /// Offers in a row that rang out (auto-pause counts these).
    pub(super) misses: u32,
    /// Calls answered and time talked since start (fewest-calls, least-talk-time).
    pub(super) answered: u64,
    pub(super) talk: Duration,
    /// The agent's own after-call time, which wins over the queue's.
    pub(super) wrapup: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wake {
    Ring(CallId),
    Rest,
    WrapUp,
    /// A call's reservation for its preferred agent runs out.
    Reserve(CallId),
    /// A caller has waited the queue's maximum.
    MaxWait(CallId),
    /// A caller reaches the queue's next widening step.
    Widen(CallId),
    /// A callback that was not answered may be tried again.
    Held(CallId),
    /// The hold on all offers ends (`hold_offers`).
    Offers,
}

/// Where a caller is on their queue's widening steps.
pub(super) struct Widening {
    /// When the caller joined this queue (widening restarts in an overflow queue).
    pub(super) joined: Instant,
    /// How many steps apply.
    pub(super) stage: usize,
    /// When the next step is due (stale timers are told apart by this).
    pub(super) next: Option<Instant>,
}

/// A waiting caller's place: a score (higher first) then arrival order. The score is the
/// caller's priority, or with ageing `priority × age − arrival` in milliseconds, which orders
/// callers exactly as "one priority point per `age` waited" would, without ever re-sorting.
pub(super) type Key = (Reverse<i64>, u64);

/// Ageing off: one priority point is worth more waiting than any caller ever does.
const NO_AGEING_MS: i64 = 1 << 40;

/// How many waiting callers dispatch looks at to find one an agent may take.
pub(super) const LOOKAHEAD: usize = 64;

/// Live view of one queue.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueStatus {
    pub name: String,
    pub skill: String,
    pub waiting: usize,
    /// Of those waiting, callers who hung up to be called back.
    pub callbacks: usize,
    pub ringing: usize,
    pub longest_wait_s: u64,
}

/// Live view of one agent.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentStatus {
    pub id: String,
    #[serde(flatten)]
    pub state: AgentState,
    /// Why the agent is paused.
    pub reason: Option<String>,
    /// Seconds in this state.
    pub in_state_s: u64,
    pub skills: Vec<String>,
}

/// The engine.
pub struct Acd {
    pub(super) queues: HashMap<String, QueueConfig>,
    pub(super) queues_by_skill: HashMap<String, Vec<String>>,
    /// Each queue's waiting (not offered) callers in order: an index over `calls`.
    pub(super) waiting: HashMap<String, BTreeMap<Key, CallId>>,
    /// One record per call the engine knows.
    pub(super) calls: HashMap<CallId, CallRecord>,
    pub(super) agents: HashMap<String, Agent>,
    pub(super) idle: HashMap<String, BTreeSet<(Instant, String)>>,
    pub(super) timers: crate::timers::TimerHeap<Wake>,
    /// Calls with a reservation for their preferred agent: an index over `calls`, so an agent
    /// coming free finds the callers kept for them without looking at every call.
    pub(super) reserved: BTreeSet<CallId>,
    pub(super) seq: u64,
    pub(super) out: std::collections::VecDeque<Decision>,
    /// New agents start Ready (phones only, no desk) rather than LoggedOut.
    pub(super) auto_ready: bool,
    /// The agent each round-robin queue offered last.
    pub(super) rr_last: HashMap<String, String>,
    /// Random and weighted-random strategies (seedable for tests).
    pub(super) rng: rand::rngs::StdRng,
    /// The time scores are measured from (the first caller's arrival).
    pub(super) epoch: Option<Instant>,
    /// Answered calls and their total talk time per queue (expected-wait estimates).
    pub(super) handled: HashMap<String, (u64, Duration)>,
    pub(super) cross_queue: CrossQueue,
    /// No offers before this (a new cluster leader hearing every node's callers first, so the
    /// first offers go in first-joined order, not to whoever reported first).
    pub(super) held_until: Option<Instant>,
}

impl Acd {
    pub fn new(queues: Vec<QueueConfig>) -> Acd {
        let mut acd = Acd {
            queues: HashMap::new(),
            queues_by_skill: HashMap::new(),
            waiting: HashMap::new(),
            calls: HashMap::new(),
            agents: HashMap::new(),
            idle: HashMap::new(),
            timers: Default::default(),
            reserved: BTreeSet::new(),
            seq: 0,
            out: Default::default(),
            auto_ready: true,
            rr_last: HashMap::new(),
            rng: rand::SeedableRng::from_entropy(),
            epoch: None,
            handled: HashMap::new(),
            cross_queue: CrossQueue::default(),
            held_until: None,
        };
        acd.set_queues(queues);
        acd
    }

    /// Replaces queue settings (dialplan reload). Callers already waiting stay where they are; a
    /// queue the new plan drops keeps its old settings until its last caller is served or leaves.
    pub fn set_queues(&mut self, queues: Vec<QueueConfig>) {
        let mut next: HashMap<String, QueueConfig> =
            queues.into_iter().map(|q| (q.name.clone(), q)).collect();
        for (name, old) in &self.queues {
            let busy = self.waiting.get(name).is_some_and(|w| !w.is_empty())
                || self.calls.values().any(|c| {
                    c.line
                        .as_ref()
                        .is_some_and(|p| p.offer.is_some() && &p.queue == name)
                });
            if busy && !next.contains_key(name) {
                next.insert(name.clone(), old.clone());
            }
        }
        self.queues_by_skill.clear();
        for q in next.values() {
            for skill in q.skills() {
                let names = self.queues_by_skill.entry(skill.to_string()).or_default();
                if !names.contains(&q.name) {
                    names.push(q.name.clone());
                }
            }
            self.waiting.entry(q.name.clone()).or_default();
        }
        self.waiting
            .retain(|name, w| next.contains_key(name) || !w.is_empty());
        self.queues = next;
    }

    /// Adds or updates an agent's skills (from the database); state is kept.
    pub fn upsert_agent(&mut self, now: Instant, id: &str, skills: HashMap<String, u8>) {
        let was_idle = self.agents.get(id).map(|a| a.state) == Some(AgentState::Idle);
        if was_idle {
            self.unindex(id);
        }
        let desk = if self.auto_ready {
            Desk::Ready
        } else {
            Desk::LoggedOut
        };
        let a = self.agents.entry(id.to_string()).or_insert(Agent {
            skills: HashMap::new(),
            state: AgentState::Offline,
            idle_since: now,
            rest_until: None,
            registered: false,
            desk,
            wrap_until: None,
            last_queue: None,
            since: now,
            misses: 0,
            answered: 0,
            talk: Duration::ZERO,
            wrapup: None,
        });
        a.skills = skills;
        if was_idle {
            self.index(id);
            self.dispatch_agent(now, id);
        }
    }

    /// Removes an agent entirely (deleted from the database).
    pub fn remove_agent(&mut self, now: Instant, id: &str) {
        self.agent_offline(now, id);
        self.agents.remove(id);
    }

    pub(super) fn index(&mut self, id: &str) {
        if let Some(a) = self.agents.get(id) {
            for s in a.skills.keys() {
                self.idle
                    .entry(s.clone())
                    .or_default()
                    .insert((a.idle_since, id.to_string()));
            }
        }
    }

    pub(super) fn unindex(&mut self, id: &str) {
        if let Some(a) = self.agents.get(id) {
            for s in a.skills.keys() {
                if let Some(set) = self.idle.get_mut(s) {
                    set.remove(&(a.idle_since, id.to_string()));
                }
            }
        }
    }

    /// The agent registered a phone.
    pub fn agent_online(&mut self, now: Instant, id: &str) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        a.registered = true;
        if a.state == AgentState::Offline {
            self.make_idle(now, id, now);
        }
    }

    /// The agent's phone is gone. A call ringing there goes back to the head of its queue.
    pub fn agent_offline(&mut self, now: Instant, id: &str) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        a.registered = false;
        let state = a.state;
        if let AgentState::Ringing(call) = state {
            if !self.leave_offer(call, id) {
                self.requeue(now, call);
            }
            self.out.push_back(Decision::RingTimeout {
                call,
                agent: id.to_string(),
            });
        }
        self.set_state(now, id, AgentState::Offline);
    }

    /// A caller joins `queue`. Higher `priority` is served first; ties by arrival.
    pub fn enqueue(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &str,
        priority: i32,
    ) -> Result<(), AcdError> {
        self.enqueue_for(now, call, queue, priority, None)
    }

    /// Like [`Acd::enqueue`], with the call kept for `preferred` agent (offered to them at once,
    /// or as soon as they are free) until the fallback delay ends; then anyone may take it.
    /// Other callers are not held up behind a reserved one.
    pub fn enqueue_for(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &str,
        priority: i32,
        preferred: Option<(&str, Duration)>,
    ) -> Result<(), AcdError> {
        if !self.queues.contains_key(queue) {
            return Err(AcdError::UnknownQueue(queue.to_string()));
        }
        if self.line_of(call).is_some() {
            return Err(AcdError::Duplicate(call));
        }
        if let Some(refused) = self.refuses(queue) {
            // Full, or nobody to answer: the overflow queue if there is one (one hop only).
            let to = self.queues.get(queue).and_then(|q| q.overflow.clone());
            return match to.filter(|to| self.queues.contains_key(to) && self.refuses(to).is_none())
            {
                Some(to) => {
                    self.out.push_back(Decision::Overflow {
                        call,
                        from: queue.to_string(),
                        to: to.clone(),
                    });
                    self.enqueue_for(now, call, &to, priority, preferred)
                }
                None => Err(refused),
            };
        }
        self.place(call, queue, priority, now);
        if let Some((agent, fallback)) = preferred.filter(|(a, _)| self.agents.contains_key(*a)) {
            self.reserve(call, agent, now + fallback);
            self.timers.arm(now + fallback, Wake::Reserve(call));
            if self.agents.get(agent).map(|a| a.state) == Some(AgentState::Idle) {
                self.offer(now, call, agent.to_string(), queue);
            }
        }
        self.dispatch_queue(now, queue);
        Ok(())
    }

    /// Puts `call` in line as if it joined `queue` at `joined` (now, or before a restart):
    /// its place, its maximum wait and its widening steps all count from then.
    pub(super) fn place(&mut self, call: CallId, queue: &str, priority: i32, joined: Instant) {
        self.seq += 1;
        let age_ms = self
            .queues
            .get(queue)
            .and_then(|q| q.age)
            .map_or(NO_AGEING_MS, |a| a.as_millis().max(1) as i64);
        let epoch = *self.epoch.get_or_insert(joined);
        // Signed: a caller placed later may have joined before the first one placed (callers
        // resumed or reported to a new leader arrive in any order) and must still go first.
        let arrival_ms = match joined.checked_duration_since(epoch) {
            Some(d) => d.as_millis() as i64,
            None => -(epoch.duration_since(joined).as_millis() as i64),
        };
        let key = (
            Reverse(
                (priority as i64)
                    .saturating_mul(age_ms)
                    .saturating_sub(arrival_ms),
            ),
            self.seq,
        );
        self.insert_waiting(call, queue, key, joined);
        self.arm_max_wait(joined, call, queue);
        self.arm_widen(joined, call, queue);
    }

    fn insert_waiting(&mut self, call: CallId, queue: &str, key: Key, enqueued: Instant) {
        self.waiting
            .entry(queue.to_string())
            .or_default()
            .insert(key, call);
        self.calls.entry(call).or_default().line = Some(Place {
            queue: queue.to_string(),
            key,
            enqueued,
            offer: None,
        });
    }

    /// Whether anyone with `queue`'s skill is logged in with a phone (paused counts).
    pub(super) fn staffed(&self, queue: &str) -> bool {
        let Some(q) = self.queues.get(queue) else {
            return false;
        };
        self.agents.values().any(|a| {
            a.skills.contains_key(&q.skill)
                && !matches!(a.state, AgentState::Offline | AgentState::LoggedOut)
        })
    }

    /// Why `queue` would turn a new caller away, if it would.
    fn refuses(&self, queue: &str) -> Option<AcdError> {
        let q = self.queues.get(queue)?;
        let waiting = self.waiting.get(queue).map_or(0, |w| w.len());
        if q.max_len.is_some_and(|max| waiting >= max) {
            return Some(AcdError::Full(queue.to_string()));
        }
        if !q.join_empty && !self.staffed(queue) {
            return Some(AcdError::NoAgents(queue.to_string()));
        }
        None
    }

    /// Puts an offered call back where it was (its original arrival order) and re-dispatches.
    pub(super) fn requeue(&mut self, now: Instant, call: CallId) {
        let Some(p) = self.calls.get_mut(&call).and_then(|r| r.line.as_mut()) else {
            return;
        };
        if p.offer.take().is_some() {
            let (queue, key) = (p.queue.clone(), p.key);
            self.waiting
                .entry(queue.clone())
                .or_default()
                .insert(key, call);
            self.dispatch_queue(now, &queue);
        }
    }

    pub(super) fn rest(&mut self, now: Instant, agent: &str, queue: &str) {
        let retry = self
            .queues
            .get(queue)
            .map(|q| q.retry_after)
            .unwrap_or_default();
        if retry.is_zero() {
            self.make_idle(now, agent, now);
            return;
        }
        self.set_state(now, agent, AgentState::Resting);
        if let Some(a) = self.agents.get_mut(agent) {
            a.rest_until = Some(now + retry);
        }
        self.timers.arm(now + retry, Wake::Rest);
    }

    /// The agent answered: the call is theirs.
    /// Skills (with minimum levels) `call` needs besides its queue's skill; set before enqueuing.
    pub fn require(&mut self, call: CallId, skills: Vec<(String, u8)>) {
        if skills.is_empty() && !self.calls.contains_key(&call) {
            return;
        }
        self.calls.entry(call).or_default().required = skills;
        self.tidy(call);
    }

    /// The (first) agent offered `call` answered: the call is theirs.
    pub fn offer_answered(&mut self, now: Instant, call: CallId) -> Option<String> {
        let agent = self.offer_of(call)?.1.agent.clone();
        self.offer_taken(now, call, &agent);
        Some(agent)
    }

    /// `agent` answered `call`; under ring-all the other ringing agents are free again and
    /// returned (their phones must stop ringing).
    pub fn offer_taken(&mut self, now: Instant, call: CallId, agent: &str) -> Vec<String> {
        if self.offer_of(call).is_none() {
            return Vec::new();
        }
        // Answered: the engine is done with the call.
        self.unreserve(call);
        let Some(o) = self
            .calls
            .remove(&call)
            .and_then(|r| r.line)
            .and_then(|p| p.offer)
        else {
            return Vec::new();
        };
        if let Some(a) = self.agents.get_mut(agent) {
            a.misses = 0;
            a.answered += 1;
        }
        self.set_state(now, agent, AgentState::Busy(call));
        let losers: Vec<String> = std::iter::once(o.agent)
            .chain(o.others)
            .filter(|a| a != agent)
            .collect();
        for a in &losers {
            self.make_idle(now, a, now);
        }
        losers
    }

    /// Takes `agent` out of a ring-all offer that others still ring for; false when it was the
    /// offer's only agent (the caller then needs requeueing).
    fn leave_offer(&mut self, call: CallId, agent: &str) -> bool {
        let Some(o) = self.offer_mut(call) else {
            return false;
        };
        if o.others.is_empty() {
            return false;
        }
        if o.agent == agent {
            o.agent = o.others.remove(0);
        } else {
            o.others.retain(|a| a != agent);
        }
        true
    }

    /// The (first) agent offered `call` declined or could not be reached.
    pub fn offer_failed(&mut self, now: Instant, call: CallId) {
        if let Some(agent) = self.offer_of(call).map(|(_, o)| o.agent.clone()) {
            self.agent_failed(now, call, &agent);
        }
    }

    /// `agent` declined `call` or could not be reached: they rest; the call goes back to the
    /// head of its queue unless other agents still ring for it.
    pub fn agent_failed(&mut self, now: Instant, call: CallId, agent: &str) {
        let Some(queue) = self.offer_of(call).map(|(p, _)| p.queue.clone()) else {
            return;
        };
        if !self.leave_offer(call, agent) {
            self.requeue(now, call);
        }
        self.rest(now, agent, &queue);
    }

    /// The caller left (abandon, error). Returns the agent that was ringing for it, now freed.
    pub fn call_gone(&mut self, now: Instant, call: CallId) -> Option<String> {
        self.reserved.remove(&call);
        let p = self.calls.remove(&call)?.line?;
        let Some(o) = p.offer else {
            if let Some(q) = self.waiting.get_mut(&p.queue) {
                q.remove(&p.key);
            }
            return None;
        };
        for a in &o.others {
            self.make_idle(now, a, now);
        }
        self.make_idle(now, &o.agent, now);
        Some(o.agent)
    }

    pub(super) fn offer(&mut self, now: Instant, call: CallId, agent: String, queue: &str) {
        let Some(key) = self.waiting_of(call).map(|p| p.key) else {
            return;
        };
        // One chance with the preferred agent; after that the call is anyone's.
        self.unreserve(call);
        if let Some(q) = self.waiting.get_mut(queue) {
            q.remove(&key);
        }
        // A callback first rings the customer, then the agent: both fit in the deadline.
        let callback = self.calls.get(&call).and_then(|r| r.callback);
        let ring = self
            .queues
            .get(queue)
            .map(|q| q.ring_timeout)
            .unwrap_or(Duration::from_secs(15))
            + callback.unwrap_or_default();
        if let Some(p) = self.calls.get_mut(&call).and_then(|r| r.line.as_mut()) {
            p.offer = Some(Offer {
                agent: agent.clone(),
                others: Vec::new(),
                deadline: now + ring,
            });
        }
        if let Some(a) = self.agents.get_mut(&agent) {
            a.last_queue = Some(queue.to_string());
        }
        self.set_state(now, &agent, AgentState::Ringing(call));
        self.timers.arm(now + ring, Wake::Ring(call));
        self.out.push_back(Decision::Offer {
            call,
            agent,
            queue: queue.to_string(),
            ring_timeout: ring,
        });
        let Some(q) = self.queues.get(queue) else {
            return;
        };
        if q.strategy != Strategy::RingAll || callback.is_some() {
            return;
        }
        // Ring-all: every other free agent who may take this caller rings too.
        let others: Vec<String> = self
            .idle_for(queue)
            .into_iter()
            .map(|(_, a)| a)
            .filter(|a| self.eligible(call, a))
            .collect();
        for a in &others {
            if let Some(ag) = self.agents.get_mut(a) {
                ag.last_queue = Some(queue.to_string());
            }
            self.set_state(now, a, AgentState::Ringing(call));
            self.out.push_back(Decision::Offer {
                call,
                agent: a.clone(),
                queue: queue.to_string(),
                ring_timeout: ring,
            });
        }
        if let Some(o) = self.offer_mut(call) {
            o.others = others;
        }
    }

    pub fn poll_decision(&mut self) -> Option<Decision> {
        self.out.pop_front()
    }

    pub fn agent_state(&self, id: &str) -> Option<AgentState> {
        self.agents.get(id).map(|a| a.state)
    }
}
