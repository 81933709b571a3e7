//! The facade's verbs about calls (see [`Matcher`]): each is applied to the engine of the
//! call's partition when this node leads it, else sent to that partition's leader; either way
//! this node's own record of the call (`mine`) follows, for the next leader.

use super::matcher::{Matcher, Mine};
use super::protocol::{InLine, NodeMsg, Talking};
use crate::acd::{AcdError, CallId};
use std::time::{Duration, Instant};

impl Matcher {
    /// Skills (with minimum levels) `call` needs besides its queue's; set before it joins.
    pub fn require(&mut self, call: CallId, skills: Vec<(String, u8)>) {
        if skills.is_empty() {
            self.required.remove(&call);
        } else {
            self.required.insert(call, skills);
        }
    }

    /// Marks `call`, about to join a queue, as a callback (one restored after a restart).
    pub fn expect_callback(&mut self, call: CallId, dial: Duration) {
        self.callbacks.insert(call, dial);
    }

    /// A caller joins `queue` now, kept for `preferred` agent for a while if given.
    pub fn enqueue_for(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &str,
        priority: i32,
        preferred: Option<(&str, Duration)>,
    ) -> Result<(), AcdError> {
        self.join(now, call, queue, priority, preferred, now, false)
    }

    /// A caller saved before a restart (or taken over) rejoins as if at `joined`.
    pub fn enqueue_resumed(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &str,
        priority: i32,
        joined: Instant,
    ) -> Result<(), AcdError> {
        self.join(now, call, queue, priority, None, joined, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn join(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &str,
        priority: i32,
        preferred: Option<(&str, Duration)>,
        joined: Instant,
        resumed: bool,
    ) -> Result<(), AcdError> {
        let partition = self.partition_of_queue(queue);
        let line = InLine {
            call,
            queue: queue.to_string(),
            priority,
            enqueued_ms: self.wall.ms(joined),
            preferred: preferred.map(|(a, d)| (a.to_string(), d.as_millis() as u64)),
            required: self.required.remove(&call).unwrap_or_default(),
            callback_ms: self.callbacks.remove(&call).map(|d| d.as_millis() as u64),
            resumed,
        };
        let enqueued = joined.min(now);
        let mine = Mine {
            partition: partition.clone(),
            line: line.clone(),
            enqueued,
            ringing: Vec::new(),
            talking: None,
        };
        let local = self.led.contains_key(&partition);
        if local {
            let acd = self
                .engine_of(&partition)
                .ok_or(AcdError::UnknownQueue(queue.to_string()))?;
            super::leading::enqueue(acd, now, &line, enqueued)?;
        } else {
            self.tell_leader(&partition, NodeMsg::Enqueue(line));
        }
        self.mine.insert(call, mine);
        if let Some(n) = &mut self.node {
            n.next_announce
                .get_or_insert(now + super::following::ANNOUNCE_EVERY);
        }
        Ok(())
    }

    /// The waiting caller asked to be called back. False when they are not in line.
    pub fn callback(&mut self, call: CallId, dial: Duration) -> bool {
        let Some(m) = self.mine.get_mut(&call) else {
            return false;
        };
        m.line.callback_ms = Some(dial.as_millis() as u64);
        match self.call_engine(call) {
            Some(acd) => acd.callback(call, dial),
            None => {
                let p = self.call_partition(call);
                self.tell_leader(
                    &p,
                    NodeMsg::Callback {
                        call,
                        dial_ms: dial.as_millis() as u64,
                    },
                );
                true
            }
        }
    }

    pub fn is_callback(&self, call: CallId) -> bool {
        let p = self.call_partition(call);
        match self.led.get(&p) {
            Some(l) => l.acd.is_callback(call),
            None => self
                .mine
                .get(&call)
                .is_some_and(|m| m.line.callback_ms.is_some()),
        }
    }

    /// The customer answered their callback: the agent kept for them, when known here (a
    /// leader elsewhere answers with an offer instead).
    pub fn callback_answered(
        &mut self,
        now: Instant,
        call: CallId,
    ) -> Option<(String, String, Duration)> {
        if let Some(m) = self.mine.get_mut(&call) {
            m.line.callback_ms = None;
        }
        match self.call_engine(call) {
            Some(acd) => acd.callback_answered(now, call),
            None => {
                let p = self.call_partition(call);
                self.tell_leader(&p, NodeMsg::CallbackAnswered { call });
                None
            }
        }
    }

    pub fn callback_unanswered(&mut self, now: Instant, call: CallId, retry: Duration) {
        if let Some(m) = self.mine.get_mut(&call) {
            m.ringing.clear();
        }
        match self.call_engine(call) {
            Some(acd) => acd.callback_unanswered(now, call, retry),
            None => {
                let p = self.call_partition(call);
                let retry_ms = retry.as_millis() as u64;
                self.tell_leader(&p, NodeMsg::CallbackUnanswered { call, retry_ms });
            }
        }
    }

    /// The caller left.
    pub fn call_gone(&mut self, now: Instant, call: CallId) {
        let partition = self.call_partition(call);
        self.required.remove(&call);
        self.callbacks.remove(&call);
        self.positions.remove(&call);
        let Some(_) = self.mine.remove(&call) else {
            return;
        };
        match self.engine_of(&partition) {
            Some(acd) => {
                acd.call_gone(now, call);
            }
            None => self.tell_leader(&partition, NodeMsg::Gone { call }),
        }
    }

    /// The call is over: nothing of it is kept (whatever the engine still had went with
    /// [`Matcher::call_gone`] or [`Matcher::agent_free`]).
    pub fn forget(&mut self, call: CallId) {
        self.mine.remove(&call);
        self.required.remove(&call);
        self.callbacks.remove(&call);
        self.positions.remove(&call);
    }

    /// `agent` answered `call`.
    pub fn offer_taken(&mut self, now: Instant, call: CallId, agent: &str) {
        if let Some(m) = self.mine.get_mut(&call) {
            m.ringing.clear();
            m.talking = Some(agent.to_string());
        }
        match self.call_engine(call) {
            Some(acd) => {
                acd.offer_taken(now, call, agent);
            }
            None => {
                let p = self.call_partition(call);
                let msg = NodeMsg::Taken {
                    call,
                    agent: agent.to_string(),
                };
                self.tell_leader(&p, msg);
            }
        }
    }

    /// `agent` declined `call` or could not be reached.
    pub fn agent_failed(&mut self, now: Instant, call: CallId, agent: &str) {
        if let Some(m) = self.mine.get_mut(&call) {
            m.ringing.retain(|a| a != agent);
        }
        match self.call_engine(call) {
            Some(acd) => acd.agent_failed(now, call, agent),
            None => {
                let p = self.call_partition(call);
                let msg = NodeMsg::Failed {
                    call,
                    agent: agent.to_string(),
                };
                self.tell_leader(&p, msg);
            }
        }
    }

    /// `agent`'s call ended or left them: their wrap-up starts. The call is done with the ACD
    /// (a transfer puts it back in line afresh).
    pub fn agent_free(&mut self, now: Instant, agent: &str) {
        self.mine.retain(|_, m| m.talking.as_deref() != Some(agent));
        match self.agent_engine(agent) {
            Some(acd) => acd.agent_free(now, agent),
            None => {
                let p = self.partition_of_agent(agent);
                let msg = NodeMsg::AgentFree {
                    agent: agent.to_string(),
                };
                self.tell_leader(&p, msg);
            }
        }
    }

    /// `agent` is still talking on `call` (a call resumed after a restart or taken over).
    pub fn resume_busy(&mut self, now: Instant, agent: &str, call: CallId, queue: &str) {
        let partition = self.partition_of_queue(queue);
        let enqueued_ms = self.wall.ms(now);
        let m = self.mine.entry(call).or_insert_with(|| Mine {
            partition: partition.clone(),
            line: InLine {
                call,
                queue: queue.to_string(),
                priority: 0,
                enqueued_ms,
                preferred: None,
                required: Vec::new(),
                callback_ms: None,
                resumed: true,
            },
            enqueued: now,
            ringing: Vec::new(),
            talking: None,
        });
        m.talking = Some(agent.to_string());
        match self.engine_of(&partition) {
            Some(acd) => {
                acd.resume_busy(now, agent, call, queue);
            }
            None => {
                let msg = NodeMsg::Calls {
                    complete: false,
                    epoch: 0,
                    waiting: Vec::new(),
                    talking: vec![Talking {
                        call,
                        agent: agent.to_string(),
                        queue: queue.to_string(),
                    }],
                };
                self.tell_leader(&partition, msg);
            }
        }
    }

    /// When `call` joined its queue (for its snapshot).
    pub fn enqueued_at(&self, call: CallId) -> Option<Instant> {
        self.mine
            .get(&call)
            .filter(|m| m.talking.is_none())
            .map(|m| m.enqueued)
    }

    /// A waiting caller's place in line and expected wait (seconds).
    /// (A leader also answers for callers other nodes hold.)
    pub fn position(&self, now: Instant, call: CallId) -> Option<(usize, u64)> {
        if !self.mine.contains_key(&call) {
            return self.led.values().find_map(|l| l.acd.position(now, call));
        }
        let p = self.call_partition(call);
        match self.led.get(&p) {
            Some(l) => l.acd.position(now, call),
            None => self.positions.get(&call).copied(),
        }
    }
}
