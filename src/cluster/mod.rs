//! Several acd nodes as one centre (issue 14; `design/SCALE-OUT.md`). Sans-IO like the cores it
//! sits between: what a node is called and which queues make a partition (`[cluster]` in
//! acd.toml), the partition leases (`lease`: who may dispatch, with the NATS KV revision as the
//! fencing epoch). The NATS connection that carries all of it is `net::nats`.
//!
//! A node without `[cluster]` is today's single box: nothing here runs and no NATS is needed.

mod calls;
pub mod desk_relay;
pub(crate) mod following;
mod leading;
pub mod lease;
pub mod matcher;
pub mod protocol;

pub use matcher::{Decided, MatchError, Matcher, WallClock};

use serde::Deserialize;
use std::collections::BTreeSet;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ClusterError {
    #[error(
        "[cluster] node '{0}': use 1-32 letters, digits, '-' or '_' (it is part of NATS subjects)"
    )]
    NodeName(String),
    #[error("[cluster] name '{0}': use 1-32 letters, digits, '-' or '_'")]
    ClusterName(String),
    #[error("[cluster] partition '{0}': use 1-32 letters, digits, '-' or '_'")]
    PartitionName(String),
    #[error("[cluster] partition '{0}' is named twice")]
    DuplicatePartition(String),
    #[error("[cluster] queue '{queue}' is in partitions '{first}' and '{second}'; a queue has one leader")]
    QueueTwice {
        queue: String,
        first: String,
        second: String,
    },
    #[error("[cluster] nats '{0}' is not a nats:// URL")]
    NatsUrl(String),
    #[error("[cluster] renew_ms ({renew}) must be below hold_ms ({hold}), and hold_ms below lease_ms ({lease})")]
    Timing { renew: u64, hold: u64, lease: u64 },
}

/// What the cluster connection tells a node's core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterInput {
    /// A node's message to `partition`'s leader (heard by every node; only the leader acts).
    FromNode {
        partition: String,
        msg: protocol::FromNode,
    },
    /// A leader's message to this node or to all.
    FromLeader(protocol::FromLeader),
    /// This node now leads `partition` under `epoch`; `talking` is every agent on a call
    /// anywhere in the cluster (agent, queue), from the calls bucket: not to be offered a call
    /// before the node holding theirs reports it.
    Lead {
        partition: String,
        epoch: u64,
        talking: Vec<(String, String)>,
        /// The other nodes alive now: the new leader hears from each before it offers.
        live_nodes: Vec<String>,
    },
    /// A node stopped renewing its liveness key: its calls are being handed to survivors.
    NodeDown { node: String },
    /// A note from another node's desk side (see `desk_relay`).
    Desk(desk_relay::FromDesk),
    /// Another node took a hang-up for a dialog it does not hold: maybe this node's.
    Stray(protocol::StrayBye),
    /// Another node owns this call now (this node was cut off and the call was taken over):
    /// let it go without a word to its phones.
    CallLost { interaction: String },
    /// This node no longer leads `partition`.
    Unlead { partition: String },
    /// Another node's registrar changed an agent's phones: this node's copy follows.
    Bindings {
        agent: String,
        bindings: Vec<crate::sip::registrar::SavedBinding>,
    },
}

/// `[cluster]`: this node's name, where NATS is, and how queues are split among leaders.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Unique among the nodes; names the node's NATS subjects and its call snapshots' owner.
    pub node: String,
    /// The cluster's name: its NATS buckets and subjects start with it, so two centres (or two
    /// test runs) can share a NATS server.
    #[serde(default = "default_name")]
    pub name: String,
    /// The NATS server (JetStream on). Several, comma-separated, for a NATS cluster.
    #[serde(default = "default_nats")]
    pub nats: String,
    /// Partitions of queues, each with one leader at a time. Queues no partition names are in
    /// [`DEFAULT_PARTITION`].
    #[serde(default, rename = "partition")]
    pub partitions: Vec<PartitionConfig>,
    /// A lease not renewed for this long lapses in NATS (the bucket's `max_age`), and another
    /// node may take it.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// The leader renews this often…
    #[serde(default = "default_renew_ms")]
    pub renew_ms: u64,
    /// …and stops dispatching once its last renewal NATS confirmed was sent this long ago, so
    /// it is quiet before the lease can pass (`lease_ms`) to another node.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
}

/// `[[cluster.partition]]`: a set of queues (usually one tenant's) whose agents they share.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PartitionConfig {
    pub name: String,
    pub queues: Vec<String>,
}

/// Where queues go that no `[[cluster.partition]]` names.
pub const DEFAULT_PARTITION: &str = "default";

fn default_name() -> String {
    "acd".to_string()
}
fn default_nats() -> String {
    "nats://127.0.0.1:4222".to_string()
}
fn default_lease_ms() -> u64 {
    2000
}
fn default_renew_ms() -> u64 {
    500
}
fn default_hold_ms() -> u64 {
    1500
}

/// A name that can sit in a NATS subject token and a KV key.
fn token_ok(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl ClusterConfig {
    /// Checks names, the queue split and the lease timing; the error says what to change.
    pub fn validate(&self) -> Result<(), ClusterError> {
        if !token_ok(&self.node) {
            return Err(ClusterError::NodeName(self.node.clone()));
        }
        if !token_ok(&self.name) {
            return Err(ClusterError::ClusterName(self.name.clone()));
        }
        for url in self.nats.split(',') {
            let url = url.trim();
            let ok = url
                .strip_prefix("nats://")
                .or_else(|| url.strip_prefix("tls://"))
                .is_some_and(|rest| !rest.is_empty());
            if !ok {
                return Err(ClusterError::NatsUrl(url.to_string()));
            }
        }
        let mut names = BTreeSet::new();
        let mut owner: std::collections::BTreeMap<&str, &str> = Default::default();
        for p in &self.partitions {
            if !token_ok(&p.name) {
                return Err(ClusterError::PartitionName(p.name.clone()));
            }
            if !names.insert(p.name.as_str()) {
                return Err(ClusterError::DuplicatePartition(p.name.clone()));
            }
            for q in &p.queues {
                if let Some(first) = owner.insert(q, &p.name) {
                    return Err(ClusterError::QueueTwice {
                        queue: q.clone(),
                        first: first.to_string(),
                        second: p.name.clone(),
                    });
                }
            }
        }
        if !(self.renew_ms < self.hold_ms && self.hold_ms < self.lease_ms) {
            return Err(ClusterError::Timing {
                renew: self.renew_ms,
                hold: self.hold_ms,
                lease: self.lease_ms,
            });
        }
        Ok(())
    }

    /// The partition that leads `queue`.
    pub fn partition_of(&self, queue: &str) -> &str {
        self.partitions
            .iter()
            .find(|p| p.queues.iter().any(|q| q == queue))
            .map(|p| p.name.as_str())
            .unwrap_or(DEFAULT_PARTITION)
    }

    /// Every partition, the default one last (it exists whether or not queues are left for it).
    pub fn partition_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.partitions.iter().map(|p| p.name.clone()).collect();
        if !v.iter().any(|p| p == DEFAULT_PARTITION) {
            v.push(DEFAULT_PARTITION.to_string());
        }
        v
    }

    pub fn timing(&self) -> lease::LeaseTiming {
        lease::LeaseTiming {
            lease: Duration::from_millis(self.lease_ms),
            renew: Duration::from_millis(self.renew_ms),
            hold: Duration::from_millis(self.hold_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> ClusterConfig {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn a_node_needs_only_its_name() {
        let c = cfg("node = \"acd1\"\n");
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.nats, "nats://127.0.0.1:4222");
        assert_eq!(c.partition_of("sales"), DEFAULT_PARTITION);
        assert_eq!(c.partition_names(), vec![DEFAULT_PARTITION.to_string()]);
    }

    #[test]
    fn queues_map_to_their_partition() {
        let c = cfg(
            "node = \"a\"\n[[partition]]\nname = \"acme\"\nqueues = [\"sales\", \"support\"]\n",
        );
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.partition_of("support"), "acme");
        assert_eq!(c.partition_of("billing"), DEFAULT_PARTITION);
        assert_eq!(c.partition_names(), vec!["acme", DEFAULT_PARTITION]);
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let c = cfg("node = \"acd 1\"\n");
        assert_eq!(c.validate(), Err(ClusterError::NodeName("acd 1".into())));
        let c = cfg("node = \"a.b\"\n");
        assert!(matches!(c.validate(), Err(ClusterError::NodeName(_))));
        let c = cfg("node = \"a\"\nnats = \"http://x\"\n");
        assert!(matches!(c.validate(), Err(ClusterError::NatsUrl(_))));
        let c = cfg("node = \"a\"\n[[partition]]\nname = \"p\"\nqueues = [\"q\"]\n[[partition]]\nname = \"r\"\nqueues = [\"q\"]\n");
        let e = c.validate().unwrap_err();
        assert!(
            e.to_string().contains("'q' is in partitions 'p' and 'r'"),
            "{e}"
        );
        let c = cfg("node = \"a\"\nhold_ms = 2500\n");
        assert!(matches!(c.validate(), Err(ClusterError::Timing { .. })));
        assert!(toml::from_str::<ClusterConfig>("node = \"a\"\nleader = 1\n").is_err());
    }
}
