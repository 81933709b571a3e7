//! The engine's timers: ring timeouts, rests after a missed call, wrap-up, preferred-agent
//! reservations and maximum waits, all on one heap (the shared [`crate::timers::TimerHeap`])
//! whose head is the next wake-up.

use super::engine::{Acd, Decision, Wake};
use super::AgentState;
use std::time::Instant;

impl Acd {
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, wake)) = self.timers.pop_due(now) {
            match wake {
                Wake::Ring(call) => {
                    let Some((p, o)) = self.offer_of(call) else {
                        continue;
                    };
                    if o.deadline != at {
                        continue;
                    }
                    let queue = p.queue.clone();
                    let agents: Vec<String> = std::iter::once(o.agent.clone())
                        .chain(o.others.iter().cloned())
                        .collect();
                    for agent in &agents {
                        self.out.push_back(Decision::RingTimeout {
                            call,
                            agent: agent.clone(),
                        });
                    }
                    self.requeue(now, call);
                    for agent in &agents {
                        if !self.missed(now, agent, &queue) {
                            self.rest(now, agent, &queue);
                        }
                    }
                }
                Wake::Reserve(call) => {
                    let expired = self
                        .calls
                        .get(&call)
                        .and_then(|r| r.reserved.as_ref())
                        .is_some_and(|(_, until)| *until <= now);
                    if expired {
                        self.unreserve(call);
                        self.tidy(call);
                        if let Some(q) = self.waiting_of(call).map(|p| p.queue.clone()) {
                            self.dispatch_queue(now, &q);
                        }
                    }
                }
                Wake::MaxWait(call) => self.max_wait_reached(now, call, at),
                Wake::Offers => {
                    if self.held_until == Some(at) {
                        self.release_offers(now);
                    }
                }
                Wake::Widen(call) => self.widen_due(now, call, at),
                Wake::Held(call) => {
                    let Some(r) = self.calls.get_mut(&call).filter(|r| r.held == Some(at)) else {
                        continue;
                    };
                    r.held = None;
                    if let Some(q) = self.waiting_of(call).map(|p| p.queue.clone()) {
                        self.dispatch_queue(now, &q);
                    }
                }
                Wake::WrapUp => {
                    let due: Vec<String> = self
                        .agents
                        .iter()
                        .filter(|(_, a)| {
                            a.state == AgentState::WrapUp && a.wrap_until.is_some_and(|t| t <= now)
                        })
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in due {
                        self.make_idle(now, &id, now);
                    }
                }
                Wake::Rest => {
                    let due: Vec<String> = self
                        .agents
                        .iter()
                        .filter(|(_, a)| {
                            a.state == AgentState::Resting && a.rest_until.is_some_and(|t| t <= now)
                        })
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in due {
                        self.make_idle(now, &id, now);
                    }
                }
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek()
    }
}
