//! The call layer as one node of several (issue 14): what the cluster connection says reaches
//! the ACD facade (`cluster::Matcher`) and the registrar, and the call ids this node gives out
//! carry its prefix so no other node's meet them in a leader's engine.

use super::manager::CallManager;
use crate::cluster::{ClusterConfig, ClusterInput, Matcher};
use std::time::Instant;

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
            ClusterInput::Lead { partition, epoch } => self.acd.lead(now, &partition, epoch),
            ClusterInput::Unlead { partition } => self.acd.unlead(&partition),
            ClusterInput::Bindings { agent, bindings } => {
                self.ep.replace_bindings(now, &agent, bindings);
                self.process(now);
            }
        }
        self.run_decisions(now);
    }
}
