//! The call layer as one node of several (issue 14): what the cluster connection says reaches
//! the ACD facade (`cluster::Matcher`) and the registrar, and the call ids this node gives out
//! carry its prefix so no other node's meet them in a leader's engine.

use super::manager::CallManager;
use super::phase::{Input, Phase};
use super::{Leg, MediaCommand};
use crate::cluster::{ClusterConfig, ClusterInput, Matcher};
use std::time::Instant;
use tracing::{info, warn};

/// How long a relayed hang-up waits for the snapshot write that proves the call is this node's.
/// The write is made at once, but a node whose link just came back hears the relay as its
/// NATS connection resumes, with its writer and its sweep of the calls bucket still catching
/// up (the bed measured the drop of its lost calls 1.03 s after the relay): 3 s covers that,
/// and the caller has hung up already, so only the agent hears the silence a little longer.
pub(super) const RELAYED_HANG_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

impl CallManager {
    /// Makes this manager a cluster node: dispatch goes to the partitions' leaders (this node
    /// among them when its leases say so). Called once, before agents and calls arrive.
    pub fn set_cluster(&mut self, config: ClusterConfig) {
        let (at, unix_ms) = self.ep.clock_anchor();
        let wall = crate::cluster::WallClock { at, unix_ms };
        let prefix = crate::cluster::protocol::call_prefix(&config.node);
        let mut m = Matcher::node(config, self.dialplan.queues.clone(), wall);
        m.set_cross_queue(self.dialplan.cross_queue);
        m.set_auto_ready(self.acd.auto_ready());
        self.acd = m;
        self.set_next_call(prefix + 1);
    }

    pub(super) fn handle_cluster(&mut self, now: Instant, input: ClusterInput) {
        match input {
            ClusterInput::FromNode { partition, msg } => {
                self.acd.handle_from_node(now, &partition, msg)
            }
            ClusterInput::FromLeader(msg) => self.acd.handle_from_leader(now, msg),
            ClusterInput::Lead {
                partition,
                epoch,
                talking,
                live_nodes,
            } => self.acd.lead(now, &partition, epoch, &talking, &live_nodes),
            ClusterInput::NodeDown { node } => {
                self.acd.node_down(now, &node);
                self.desks_gone_elsewhere(now, &node);
            }
            ClusterInput::Desk(d) => {
                use crate::cluster::desk_relay::DeskNote;
                match d.note {
                    DeskNote::Open { agent, open } => {
                        self.set_desk_open_elsewhere(now, &d.node, &agent, open)
                    }
                    DeskNote::Shown { call, agent } => self.pop_delivered(now, call, &agent),
                    // Call changes are the desk hub's (the driver hands them to it).
                    _ => {}
                }
            }
            ClusterInput::CallLost { interaction } => self.forsake(now, &interaction),
            ClusterInput::Stray(s) => self.hung_up_elsewhere(now, &s),
            ClusterInput::Unlead { partition } => self.acd.unlead(&partition),
            ClusterInput::Bindings { agent, bindings } => {
                self.ep.replace_bindings(now, &agent, bindings);
                self.process(now);
            }
        }
        self.run_decisions(now);
    }

    /// Another node took a BYE for a dialog it does not hold: if it is one of this node's
    /// calls, that leg hung up; if not (yet), a takeover of it here will find it.
    fn hung_up_elsewhere(&mut self, now: Instant, s: &crate::cluster::protocol::StrayBye) {
        let held = self
            .by_sip_id
            .get(&s.call_id)
            .copied()
            .filter(|(call, leg)| {
                let Some(c) = self.calls.get(call) else {
                    return false;
                };
                match leg {
                    Leg::Caller => super::strays::ends(s, &c.caller.dialog),
                    Leg::Agent => c
                        .talk()
                        .and_then(|t| t.agent.dialog())
                        .is_some_and(|d| super::strays::ends(s, d)),
                }
            });
        match held {
            Some((call, leg)) => {
                // Not at once: this node may be the one that was cut off, still holding a call
                // a survivor took over (the relay reached it as its link came back). A snapshot
                // write now finds that out (`CallLost` drops the call); if the call is still
                // ours after the wait, the hang-up is applied.
                info!(call, ?leg, from = %s.node, "a hang-up another node took; ending this call once it is known to be ours");
                self.snapshot_mark(call);
                self.timers.arm(
                    now + RELAYED_HANG_UP_WAIT,
                    super::phase::Wake::HungUpElsewhere(call, leg),
                );
            }
            None => self.strays.note_relayed(now, s),
        }
    }

    /// The wait for a relayed hang-up is over: the call, if still here, ends as that leg's.
    pub(super) fn hang_up_relayed(&mut self, now: Instant, call: crate::acd::CallId, leg: Leg) {
        if !self.calls.contains_key(&call) {
            return;
        }
        self.step(now, call, Input::bye_of(leg));
    }

    /// Whether this node holds `call` (a pop shown for a call held elsewhere goes there).
    pub fn holds(&self, call: crate::acd::CallId) -> bool {
        self.calls.contains_key(&call)
    }

    /// Another node owns this call now (this one was cut off long enough to be taken for dead
    /// and the call was taken over): it is dropped here without a word to its phones, which
    /// talk to the survivor, and without a history event, which the survivor writes.
    pub(super) fn forsake(&mut self, _now: Instant, interaction: &str) {
        let Some(id) = self
            .calls
            .iter()
            .find(|(_, c)| c.interaction == interaction)
            .map(|(id, _)| *id)
        else {
            return;
        };
        self.pop_forget(id);
        let Some(mut c) = self.calls.remove(&id) else {
            return;
        };
        let _g = c.span.clone().entered();
        warn!("another node took this call over; dropped here without a word to its phones");
        Self::release_source(&mut self.per_source, c.source.take());
        self.reinvites.retain(|_, r| r.call != id);
        self.by_sip_id.remove(&c.caller.invite.core.call_id);
        self.by_caller_invite.remove(&c.caller.invite_key);
        let legs: Vec<&super::agent_leg::AgentLeg> = match &c.phase {
            Phase::Connected(t) => vec![&t.agent],
            Phase::Ringing(legs) => legs.iter().collect(),
            _ => Vec::new(),
        };
        for leg in legs {
            self.by_sip_id.remove(&leg.uac.invite.core.call_id);
            self.by_agent_tx.remove(&leg.uac.key);
        }
        self.ports.give(c.caller_port);
        self.ports.give(c.agent_port);
        self.media.push_back(MediaCommand::Stop { call: id });
        self.acd.forget(id);
        self.snapshots.written.remove(&id);
    }
}
