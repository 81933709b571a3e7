//! Which nodes live: each renews its key in `<c>_nodes` every `renew_ms`; every node watches
//! the bucket and takes a node for dead when its key was not seen renewed for `lease_ms` on its
//! own clock. The coordinator (leader of `default`) then hands the dead node's calls over.

use super::{Found, Task};
use crate::cluster::ClusterInput;
use crate::control::Input;
use bytes::Bytes;
use std::collections::HashSet;
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::warn;

impl Task {
    /// Every `renew`: this node's liveness key, and a look at everyone else's.
    pub(super) fn tick(&mut self, found: &mpsc::Sender<Found>) {
        let now = Instant::now();
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + self.cfg.timing().renew;
        let (kv, me) = (self.nats.nodes.clone(), self.cfg.node.clone());
        tokio::spawn(async move {
            if let Err(e) = kv.put(&me, Bytes::from(me.clone())).await {
                warn!(error = %e, "liveness key not renewed");
            }
        });
        self.deaths(found);
    }

    /// Nodes not heard renewing their key for `lease_ms` are dead — but only while this node
    /// hears its own renewals (cut off from NATS, it knows nothing about anyone). The calls of
    /// the dead are handed over until none is left.
    fn deaths(&mut self, found: &mpsc::Sender<Found>) {
        let now = Instant::now();
        let lease = self.cfg.timing().lease;
        let me_fresh = self
            .heard
            .get(&self.cfg.node)
            .is_some_and(|t| now.saturating_duration_since(*t) < lease);
        if !me_fresh {
            // Once heard and now stale: cut off long enough to be taken for dead.
            self.cut_off |= self.heard.contains_key(&self.cfg.node);
            return;
        }
        if std::mem::take(&mut self.cut_off) {
            // Back: calls the survivors took over meanwhile are theirs (a call that did not
            // change while this node was away would otherwise never find out by a failed
            // write, and would end here a second time).
            let (kv, me, core) = (
                self.nats.calls.clone(),
                self.cfg.node.clone(),
                self.core.clone(),
            );
            tokio::spawn(async move {
                for interaction in crate::net::cluster_calls::held_elsewhere(&kv, &me).await {
                    let lost = ClusterInput::CallLost { interaction };
                    let _ = core.send(Input::Cluster(lost)).await;
                }
            });
        }
        let gone: Vec<String> = self
            .heard
            .iter()
            .filter(|(n, t)| **n != self.cfg.node && now.saturating_duration_since(**t) >= lease)
            .map(|(n, _)| n.clone())
            .collect();
        for node in gone {
            self.heard.remove(&node);
            warn!(%node, "node stopped renewing its liveness key: taking its calls over");
            self.dead.insert(node.clone());
            let (core, input) = (self.core.clone(), ClusterInput::NodeDown { node });
            tokio::spawn(async move {
                let _ = core.send(Input::Cluster(input)).await;
            });
        }
        // A node heard again (it was only slow, or restarted) is not dead any more.
        self.dead.retain(|n| !self.heard.contains_key(n));
        // Once, when this node has listened long enough to know who lives: calls of nodes
        // that died before it started (or before anyone coordinated).
        let sweep = !self.swept
            && now.saturating_duration_since(self.started) >= lease * 2
            && self.coordinator_epoch().is_some();
        if sweep {
            self.swept = true;
        }
        if !self.dead.is_empty() || sweep {
            self.reassign(found);
        }
    }

    /// The coordinator (leader of the default partition) hands out the calls of dead nodes.
    fn coordinator_epoch(&self) -> Option<u64> {
        self.leases
            .get(crate::cluster::DEFAULT_PARTITION)
            .and_then(|l| l.epoch(Instant::now()))
    }

    /// Nodes heard renewing their liveness key within the lease (this one among them when its
    /// own renewals are seen), sorted.
    pub(super) fn live_nodes(&self) -> Vec<String> {
        let now = Instant::now();
        let lease = self.cfg.timing().lease;
        let mut alive: Vec<String> = self
            .heard
            .iter()
            .filter(|(_, t)| now.saturating_duration_since(**t) < lease)
            .map(|(n, _)| n.clone())
            .collect();
        alive.sort();
        alive
    }

    /// If this node coordinates: every call of a dead node goes to a live one.
    pub(super) fn reassign(&mut self, found: &mpsc::Sender<Found>) {
        let Some(epoch) = self.coordinator_epoch() else {
            return;
        };
        if self.reassigning {
            return;
        }
        let now = Instant::now();
        let lease = self.cfg.timing().lease;
        let alive = self.live_nodes();
        if !alive.contains(&self.cfg.node) {
            return;
        }
        self.reassigning = true;
        let heard: HashSet<String> = self.heard.keys().cloned().collect();
        let dead = self.dead.clone();
        // Calls of nodes never heard at all are orphans once this node has listened a while.
        let orphans = now.saturating_duration_since(self.started) >= lease * 2;
        let (kv, tx) = (self.nats.calls.clone(), found.clone());
        tokio::spawn(async move {
            let handed =
                crate::net::cluster_calls::reassign(&kv, &dead, &heard, orphans, &alive).await;
            let _ = tx.send(Found::Handed(epoch, handed)).await;
        });
    }
}
