//! Taking calls back after a restart (issue 12): a waiting caller goes back in line where they
//! were, by the time they first joined, and an agent who was talking is busy with that call
//! again, so nobody is offered a second call on top of one they are still in.

use super::engine::{Acd, AcdError, AgentState, Desk, Wake};
use super::CallId;
use std::time::Instant;

impl Acd {
    /// Makes no offer until `until` (or [`Acd::release_offers`]): callers and agents are taken
    /// in meanwhile, and then matched as if they had all come at once, in line order.
    pub fn hold_offers(&mut self, until: Instant) {
        self.held_until = Some(until);
        self.timers.arm(until, Wake::Offers);
    }

    /// Ends a hold: every idle agent and every queue is matched now.
    pub fn release_offers(&mut self, now: Instant) {
        if self.held_until.take().is_none() {
            return;
        }
        // Agents first: a caller kept for their preferred agent is theirs.
        let idle: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, a)| a.state == AgentState::Idle)
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            self.dispatch_agent(now, &id);
        }
        let mut queues: Vec<String> = self.queues.keys().cloned().collect();
        queues.sort();
        for q in queues {
            self.dispatch_queue(now, &q);
        }
    }

    /// When `call` joined its queue (waiting or being offered), for its snapshot.
    pub fn enqueued_at(&self, call: CallId) -> Option<Instant> {
        self.line_of(call).map(|p| p.enqueued)
    }

    /// Puts a caller saved before a restart back in `queue` as if they had joined at `joined`:
    /// resumed in the order they first joined, they keep their places, and their maximum wait
    /// and widening steps go on from where they were. A full or unstaffed queue still takes
    /// them back (they were already in it).
    pub fn enqueue_resumed(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &str,
        priority: i32,
        joined: Instant,
    ) -> Result<(), AcdError> {
        if !self.queues.contains_key(queue) {
            return Err(AcdError::UnknownQueue(queue.to_string()));
        }
        if self.line_of(call).is_some() {
            return Err(AcdError::Duplicate(call));
        }
        self.place(call, queue, priority, joined.min(now));
        self.dispatch_queue(now, queue);
        Ok(())
    }

    /// What `agent` chose at the desk before a restart (ready, paused with its reason, logged
    /// out), and the end of their after-call work if they were in it: a pause survives the
    /// restart, and wrap-up ends when it would have. An agent ringing or talking keeps that
    /// state (the choice applies when the call ends, as at the desk).
    pub fn restore_desk(
        &mut self,
        now: Instant,
        agent: &str,
        desk: Desk,
        wrap_until: Option<Instant>,
    ) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        a.desk = desk;
        let registered = a.registered;
        let free = !matches!(a.state, AgentState::Busy(_) | AgentState::Ringing(_));
        if !free {
            return;
        }
        match wrap_until {
            Some(until) if until > now && registered => self.start_wrapup(now, agent, until),
            _ => self.make_idle(now, agent, now),
        }
    }

    /// `agent` is still talking on `call` (resumed after a restart), for `queue`: busy, and
    /// wrap-up follows when the call ends, as if it had never been interrupted.
    pub fn resume_busy(&mut self, now: Instant, agent: &str, call: CallId, queue: &str) -> bool {
        let Some(a) = self.agents.get_mut(agent) else {
            return false;
        };
        a.last_queue = Some(queue.to_string());
        self.set_state(now, agent, AgentState::Busy(call));
        true
    }
}
