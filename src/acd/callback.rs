//! Callbacks: a waiting caller hangs up but keeps their place. When their turn comes the
//! engine reserves an agent as for any offer (one offer per agent, same order, same
//! strategies); the call layer rings the customer first and the agent only once they answer.
//! An unanswered callback frees the agent without counting a miss against them, and the
//! caller keeps their place but is not offered again until the retry delay has passed.

use super::engine::{Acd, Wake};
use super::{AgentState, CallId};
use std::time::{Duration, Instant};

impl Acd {
    /// The waiting caller `call` asked to be called back; `dial` is how long their phone may
    /// ring when their turn comes. False when the call is not waiting in a queue.
    pub fn callback(&mut self, call: CallId, dial: Duration) -> bool {
        if self.waiting_of(call).is_none() {
            return false;
        }
        self.calls.entry(call).or_default().callback = Some(dial);
        true
    }

    /// Marks `call`, about to be enqueued, as a callback (one restored after a restart), so its
    /// first offer already leaves time to ring the customer.
    pub fn expect_callback(&mut self, call: CallId, dial: Duration) {
        self.calls.entry(call).or_default().callback = Some(dial);
    }

    /// Whether `call` is a callback whose customer has not answered yet.
    pub fn is_callback(&self, call: CallId) -> bool {
        self.calls.get(&call).is_some_and(|r| r.callback.is_some())
    }

    /// The customer answered the callback: from now on the agent rings for the queue's ring
    /// timeout, and a later offer (if this agent does not answer) is an ordinary one. Returns
    /// the agent kept for the call, its queue and that ring timeout; `None` when no agent is
    /// kept any more (their phone went away meanwhile): the customer then waits in line.
    pub fn callback_answered(
        &mut self,
        now: Instant,
        call: CallId,
    ) -> Option<(String, String, Duration)> {
        let r = self.calls.get_mut(&call)?;
        r.callback = None;
        let p = r.line.as_mut()?;
        let ring = self
            .queues
            .get(&p.queue)
            .map_or(Duration::from_secs(15), |q| q.ring_timeout);
        let o = p.offer.as_mut()?;
        o.deadline = now + ring;
        let kept = (o.agent.clone(), p.queue.clone(), ring);
        self.timers.arm(now + ring, Wake::Ring(call));
        Some(kept)
    }

    /// The customer did not answer (or could not be reached): the reserved agent is free again,
    /// with no miss counted, and the caller keeps their place, not offered before `retry`.
    pub fn callback_unanswered(&mut self, now: Instant, call: CallId, retry: Duration) {
        let Some(agent) = self.offer_of(call).map(|(_, o)| o.agent.clone()) else {
            return;
        };
        let until = now + retry;
        self.calls.entry(call).or_default().held = Some(until);
        self.timers.arm(until, Wake::Held(call));
        self.requeue(now, call);
        if matches!(self.agent_state(&agent), Some(AgentState::Ringing(c)) if c == call) {
            self.make_idle(now, &agent, now);
        }
    }
}
