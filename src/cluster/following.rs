//! The node's side of [`Matcher`]: what a leader elsewhere says, fenced by its epoch, turned
//! into decisions for this node's calls; and this node's calls reported to a new leader.

use super::matcher::{Decided, Matcher};
use super::protocol::{FromLeader, InLine, LeaderMsg, NodeMsg, Talking};
use crate::acd::Decision;
use std::time::{Duration, Instant};
use tracing::warn;

/// How often a node re-announces its calls to each leader (SCALE-OUT §0.3: anti-entropy).
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(2);

impl Matcher {
    /// A leader's message to this node (or to all). One under an older epoch than this node
    /// has seen for the partition comes from a deposed leader and is refused.
    pub fn handle_from_leader(&mut self, now: Instant, m: FromLeader) {
        let Some(n) = &mut self.node else {
            return;
        };
        if self.led.contains_key(&m.partition) {
            // Our own broadcast (Reconcile, Desk) looped back; or a deposed leader's, which
            // the fence below would refuse anyway.
            if self.led.get(&m.partition).map(|l| l.epoch) == Some(m.epoch) {
                return;
            }
        }
        if !n.fence.admit(&m.partition, m.epoch) {
            warn!(partition = %m.partition, epoch = m.epoch, "refused a deposed leader's message");
            return;
        }
        let ours = |call| self.mine.contains_key(&call);
        let d = match m.msg {
            LeaderMsg::Offer {
                call,
                agent,
                queue,
                ring_ms,
            } if ours(call) => Decided::Acd(Decision::Offer {
                call,
                agent,
                queue,
                ring_timeout: Duration::from_millis(ring_ms),
            }),
            LeaderMsg::RingTimeout { call, agent } if ours(call) => {
                Decided::Acd(Decision::RingTimeout { call, agent })
            }
            LeaderMsg::Overflow { call, from, to } if ours(call) => {
                Decided::Acd(Decision::Overflow { call, from, to })
            }
            LeaderMsg::WaitedOut { call, queue } if ours(call) => {
                Decided::Acd(Decision::WaitedOut { call, queue })
            }
            LeaderMsg::Refused { call, why } if ours(call) => Decided::Refused { call, why },
            LeaderMsg::Reconcile => return self.report_calls(&m.partition, m.epoch),
            LeaderMsg::Status { queues, agents } => {
                self.remote_status
                    .insert(m.partition.clone(), (now, queues, agents));
                return;
            }
            LeaderMsg::Desk {
                agent,
                desk,
                wrap_until_ms,
            } => {
                let until = wrap_until_ms.map(|ms| self.wall.instant_ahead(now, ms));
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.desk = Some((desk.into(), until));
                }
                return;
            }
            // About a call this node no longer holds (it ended meanwhile): the leader hears
            // of that from the `Gone` already on its way.
            _ => return,
        };
        self.inbox.push_back(d);
    }

    /// Tells a new leader of `partition` about this node's calls in it. Phones ringing for
    /// them are stopped first: the new leader knows nothing of those offers and offers again.
    fn report_calls(&mut self, partition: &str, epoch: u64) {
        self.send_calls(partition, epoch, true);
    }

    /// Every [`ANNOUNCE_EVERY`], each leader elsewhere hears all of this node's calls in its
    /// partition, so a lost message (an enqueue, a hang-up, an agent freed) heals without a
    /// new leader.
    pub(super) fn announce(&mut self, now: Instant) {
        let Some(n) = &mut self.node else {
            return;
        };
        if n.next_announce.is_none_or(|t| t > now) {
            return;
        }
        // Armed again while this node holds calls (the next join arms it otherwise).
        n.next_announce = (!self.mine.is_empty()).then(|| now + ANNOUNCE_EVERY);
        let mut parts: Vec<String> = self.mine.values().map(|m| m.partition.clone()).collect();
        parts.sort();
        parts.dedup();
        for p in parts {
            if self.led.contains_key(&p) {
                continue;
            }
            let epoch = self
                .node
                .as_ref()
                .and_then(|n| n.fence.epoch(&p))
                .unwrap_or(0);
            self.send_calls(&p, epoch, false);
        }
    }

    /// Sends this node's calls in `partition` to its leader; `withdraw` stops ringing phones
    /// first (for a new leader).
    fn send_calls(&mut self, partition: &str, epoch: u64, withdraw_rings: bool) {
        let mut waiting: Vec<InLine> = Vec::new();
        let mut talking = Vec::new();
        let mut withdraw = Vec::new();
        for m in self.mine.values_mut().filter(|m| m.partition == partition) {
            if withdraw_rings {
                for agent in m.ringing.drain(..) {
                    withdraw.push((m.line.call, agent));
                }
            }
            match &m.talking {
                Some(agent) => talking.push(Talking {
                    call: m.line.call,
                    agent: agent.clone(),
                    queue: m.line.queue.clone(),
                }),
                None => {
                    let mut l = m.line.clone();
                    l.resumed = true;
                    waiting.push(l);
                }
            }
        }
        for (call, agent) in withdraw {
            self.inbox.push_back(Decided::Withdraw { call, agent });
        }
        waiting.sort_by_key(|l| (l.enqueued_ms, l.call));
        self.tell_leader(
            partition,
            NodeMsg::Calls {
                epoch,
                waiting,
                talking,
                complete: true,
            },
        );
    }
}
