//! What nodes and partition leaders say to each other over NATS (SCALE-OUT §0.2–0.4), as JSON.
//! A node holding calls tells the leader of their queue's partition what happens to them
//! ([`NodeMsg`]); the leader answers with what to do ([`LeaderMsg`]), every message stamped with
//! its epoch so a node can refuse a deposed leader ([`super::lease::Fence`]).
//!
//! Times cross the wire as wall-clock milliseconds: `Instant`s mean nothing on another host.
//! Call ids are cluster-wide (see [`call_prefix`]), so the leader keys its engine by the id the
//! node gave the call, and a node that takes a call over keeps it.

use crate::acd::CallId;
use serde::{Deserialize, Serialize};

/// A node's message to a partition's leader (subject `<cluster>.p.<partition>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromNode {
    pub node: String,
    #[serde(flatten)]
    pub msg: NodeMsg,
}

/// A caller in line, as its node knows it: enough for any leader to put them back where they
/// were (their first enqueue time keeps their place; SCALE-OUT §0.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InLine {
    pub call: CallId,
    pub queue: String,
    pub priority: i32,
    /// When the caller first joined this queue (wall-clock ms).
    pub enqueued_ms: u64,
    /// Kept for this agent until `fallback_ms` after joining (a preferred agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred: Option<(String, u64)>,
    /// Skills beyond the queue's, with minimum levels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<(String, u8)>,
    /// A callback: how long the customer's phone may ring when their turn comes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_ms: Option<u64>,
    /// A resumed caller (taken over, or re-announced to a new leader): placed by
    /// `enqueued_ms` even if the queue is full or unstaffed now.
    #[serde(default)]
    pub resumed: bool,
}

/// A call of this node's that an agent is talking on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Talking {
    pub call: CallId,
    pub agent: String,
    pub queue: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum NodeMsg {
    /// A caller joins a queue.
    Enqueue(InLine),
    /// The caller left (abandoned, ended, taken elsewhere).
    Gone { call: CallId },
    /// `agent` answered `call`.
    Taken { call: CallId, agent: String },
    /// `agent` declined `call` or could not be reached.
    Failed { call: CallId, agent: String },
    /// `agent`'s call ended (or was transferred away from them): wrap-up, then free.
    AgentFree { agent: String },
    /// The waiting caller asked to be called back.
    Callback { call: CallId, dial_ms: u64 },
    /// The customer answered their callback: ring the agent kept for them.
    CallbackAnswered { call: CallId },
    /// The customer did not answer: free the agent, retry after `retry_ms`.
    CallbackUnanswered { call: CallId, retry_ms: u64 },
    /// Everything the node holds in the partition: the answer to [`LeaderMsg::Reconcile`], and
    /// every few seconds unasked (anti-entropy: a lost message heals).
    Calls {
        epoch: u64,
        waiting: Vec<InLine>,
        talking: Vec<Talking>,
        /// All of the node's calls in the partition (a call the leader has from it and that is
        /// missing here is gone); false: just these (one call resumed).
        #[serde(default)]
        complete: bool,
    },
}

/// A leader's message to one node (`<cluster>.node.<node>`) or to all (`<cluster>.nodes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromLeader {
    pub partition: String,
    pub epoch: u64,
    #[serde(flatten)]
    pub msg: LeaderMsg,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum LeaderMsg {
    /// Ring `agent` for `call` (the leader's ring timer runs).
    Offer {
        call: CallId,
        agent: String,
        queue: String,
        ring_ms: u64,
    },
    /// Stop ringing `agent`: the call is back at the head of its line.
    RingTimeout { call: CallId, agent: String },
    /// The call waited its queue's maximum and moved on.
    Overflow {
        call: CallId,
        from: String,
        to: String,
    },
    /// The call waited its queue's maximum and the queue has nowhere to send it.
    WaitedOut { call: CallId, queue: String },
    /// The call cannot join its queue (unknown, full, nobody to answer).
    Refused { call: CallId, why: String },
    /// A new leader asks every node for its calls in the partition before dispatching.
    Reconcile,
    /// The partition's queues and agents now (every second), for every node's wallboard,
    /// desks and status.
    Status {
        queues: Vec<crate::acd::QueueStatus>,
        agents: Vec<crate::acd::AgentStatus>,
    },
    /// The coordinator handed these calls (KV keys in the calls bucket) of a dead node to this
    /// node: take them over.
    Adopt { keys: Vec<String> },
    /// An agent's desk choice changed (all nodes keep it, so the next leader starts from it).
    Desk {
        agent: String,
        desk: WireDesk,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wrap_until_ms: Option<u64>,
    },
}

/// [`crate::acd::Desk`] on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "desk", content = "reason", rename_all = "snake_case")]
pub enum WireDesk {
    LoggedOut,
    Ready,
    Paused(String),
}

impl From<&crate::acd::Desk> for WireDesk {
    fn from(d: &crate::acd::Desk) -> Self {
        match d {
            crate::acd::Desk::LoggedOut => WireDesk::LoggedOut,
            crate::acd::Desk::Ready => WireDesk::Ready,
            crate::acd::Desk::Paused(r) => WireDesk::Paused(r.clone()),
        }
    }
}

impl From<WireDesk> for crate::acd::Desk {
    fn from(d: WireDesk) -> Self {
        match d {
            WireDesk::LoggedOut => crate::acd::Desk::LoggedOut,
            WireDesk::Ready => crate::acd::Desk::Ready,
            WireDesk::Paused(r) => crate::acd::Desk::Paused(r),
        }
    }
}

/// Where a message goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// To the leader of a partition, whichever node that is now.
    Leader { partition: String, msg: FromNode },
    /// To one node.
    Node { node: String, msg: FromLeader },
    /// To every node.
    Nodes(FromLeader),
    /// To every node's desk side (`desk_relay`).
    Desk(super::desk_relay::DeskNote),
    /// To every node: a hang-up this node took for a dialog it does not hold.
    Stray(StrayBye),
}

/// A BYE a node answered for a dialog it did not hold (a dead node's call, retried here by the
/// edge; see `call::strays`). With three nodes or more the call may be another survivor's by
/// then: that node ends the leg as if the BYE had come to it. The BYE carried the dialog's
/// Call-ID and both tags, the same proof a BYE sent to the right node gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrayBye {
    pub node: String,
    pub call_id: String,
    pub from_tag: String,
    pub to_tag: String,
}

/// The high bits of every call id a node gives out: the node's name hashed to 1..=1023 in bits
/// 43-52, so ids from different nodes do not meet in a leader's engine (the low 43 bits count
/// calls) and every id stays below 2^53, exact as a JavaScript number on the desk. Two names
/// that hash alike are refused when the second node joins (`acd_nodes`).
pub fn call_prefix(node: &str) -> CallId {
    // FNV-1a: stable across builds and platforms (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Never zero, so a cluster id never equals a one-box id.
    ((h % 1023) + 1) << 43
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back_as_written() {
        let m = FromNode {
            node: "acd1".into(),
            msg: NodeMsg::Enqueue(InLine {
                call: 7,
                queue: "sales".into(),
                priority: 3,
                enqueued_ms: 1_700_000_000_000,
                preferred: Some(("alice".into(), 20_000)),
                required: vec![("fr".into(), 2)],
                callback_ms: None,
                resumed: false,
            }),
        };
        let text = serde_json::to_string(&m).expect("serialises");
        assert!(text.contains("\"t\":\"enqueue\""), "{text}");
        assert_eq!(serde_json::from_str::<FromNode>(&text).ok(), Some(m));
        let l = FromLeader {
            partition: "p".into(),
            epoch: 9,
            msg: LeaderMsg::Desk {
                agent: "bob".into(),
                desk: WireDesk::Paused("lunch".into()),
                wrap_until_ms: None,
            },
        };
        let text = serde_json::to_string(&l).expect("serialises");
        assert_eq!(serde_json::from_str::<FromLeader>(&text).ok(), Some(l));
        assert!(serde_json::from_str::<FromLeader>("{\"partition\":\"p\"}").is_err());
    }

    #[test]
    fn call_ids_of_different_nodes_do_not_meet() {
        let (a, b) = (call_prefix("acd1"), call_prefix("acd2"));
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert_eq!(a & ((1 << 43) - 1), 0, "the low bits count calls");
        assert!(a + (1 << 43) - 1 < 1 << 53, "exact in JavaScript");
        assert_eq!(call_prefix("acd1"), a, "stable");
    }
}
