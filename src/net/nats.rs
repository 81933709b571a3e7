//! The cluster's one connection: NATS (core subjects for commands, pops and events) and
//! JetStream KV for what must survive a node (partition leases, call snapshots, live nodes).
//! The sans-IO side (`cluster::lease`) decides what to do; this file only does it and says what
//! NATS answered, within a deadline, never blocking the core.
//!
//! Buckets are named after the cluster (`<name>_lease`, …), so two centres, or two test runs,
//! can share one NATS server without seeing each other. They need NATS 2.9: bucket `max_age`
//! and compare-and-set on a key's last revision, nothing newer (no per-key TTL).

use crate::cluster::lease::{LeaseOp, LeaseReply};
use crate::cluster::ClusterConfig;
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use std::time::Duration;
use thiserror::Error;
use tracing::{info, warn};

#[derive(Debug, Error)]
pub enum NatsError {
    #[error("cannot reach NATS at {url}: {why}")]
    Connect { url: String, why: String },
    #[error("NATS at {url} has no JetStream (start nats-server with -js): {why}")]
    Bucket { url: String, why: String },
}

/// How long one KV operation may take before it counts as "NATS did not answer".
const OP_DEADLINE: Duration = Duration::from_millis(1000);

/// A node's connection and its buckets.
#[derive(Clone)]
pub struct Nats {
    pub client: async_nats::Client,
    leases: kv::Store,
    /// Every agent's registered phones, as the node that registered them last wrote them.
    pub bindings: kv::Store,
    /// Calls in progress, each with the node that holds it (`snapshots`).
    pub calls: kv::Store,
    /// One key per live node, renewed by it every `renew_ms`: a node whose key expired is dead.
    pub nodes: kv::Store,
    /// Written into the lease key: who holds it (for operators reading the bucket).
    holder: Bytes,
}

impl Nats {
    /// Connects (reconnecting by itself for ever after) and makes sure the buckets exist.
    pub async fn connect(cfg: &ClusterConfig) -> Result<Nats, NatsError> {
        let url = cfg.nats.clone();
        let client = async_nats::ConnectOptions::new()
            .name(format!("acd {}", cfg.node))
            .connection_timeout(Duration::from_secs(2))
            .max_reconnects(None)
            .event_callback(|ev| async move { info!(event = %ev, "NATS") })
            .connect(url.as_str())
            .await
            .map_err(|e| NatsError::Connect {
                url: url.clone(),
                why: e.to_string(),
            })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(OP_DEADLINE);
        let leases = bucket(
            &js,
            &url,
            Bucket {
                name: format!("{}_lease", cfg.name),
                description: "acd partition leases (value: holder; revision: fencing epoch)",
                history: 1,
                max_age: Duration::from_millis(cfg.lease_ms),
            },
        )
        .await?;
        let bindings = bucket(
            &js,
            &url,
            Bucket {
                name: format!("{}_bindings", cfg.name),
                description: "acd agents' registered phones (value: node and bindings)",
                history: 1,
                max_age: Duration::ZERO,
            },
        )
        .await?;
        let calls = bucket(
            &js,
            &url,
            Bucket {
                name: format!("{}_calls", cfg.name),
                description: "acd calls in progress (value: owner node and call snapshot)",
                history: 1,
                max_age: Duration::ZERO,
            },
        )
        .await?;
        let nodes = bucket(
            &js,
            &url,
            Bucket {
                name: format!("{}_nodes", cfg.name),
                description: "acd live nodes (a key expires when its node stops renewing it)",
                history: 1,
                max_age: Duration::from_millis(cfg.lease_ms),
            },
        )
        .await?;
        Ok(Nats {
            client,
            leases,
            bindings,
            calls,
            nodes,
            holder: Bytes::from(cfg.node.clone()),
        })
    }

    /// The calls the calls bucket says this node holds (left by its last run, not yet taken
    /// over by another node).
    pub async fn my_calls(&self) -> Vec<crate::call::CallSnapshot> {
        let node = String::from_utf8_lossy(&self.holder).to_string();
        super::cluster_calls::owned_by(&self.calls, &node).await
    }

    /// Runs one lease operation on `partition`'s key and says what NATS answered.
    pub async fn lease(&self, partition: &str, op: LeaseOp) -> LeaseReply {
        let kv = &self.leases;
        let holder = self.holder.clone();
        let done = tokio::time::timeout(OP_DEADLINE, async move {
            match op {
                LeaseOp::Create => match kv.create(partition, holder).await {
                    Ok(rev) => LeaseReply::Done(rev),
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => LeaseReply::Taken,
                    Err(e) => {
                        warn!(partition, error = %e, "lease create");
                        LeaseReply::Unavailable
                    }
                },
                LeaseOp::Update { revision } => {
                    match kv.update(partition, holder, revision).await {
                        Ok(rev) => LeaseReply::Done(rev),
                        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                            LeaseReply::Taken
                        }
                        Err(e) => {
                            warn!(partition, error = %e, "lease renewal");
                            LeaseReply::Unavailable
                        }
                    }
                }
                LeaseOp::Release { revision } => {
                    match kv.delete_expect_revision(partition, Some(revision)).await {
                        Ok(()) => LeaseReply::Done(revision),
                        Err(_) => LeaseReply::Taken,
                    }
                }
            }
        })
        .await;
        done.unwrap_or(LeaseReply::Unavailable)
    }
}

/// A KV bucket's settings.
struct Bucket {
    name: String,
    description: &'static str,
    history: i64,
    /// Zero: entries stay until deleted.
    max_age: Duration,
}

/// The bucket, created if missing, as the stream a KV bucket is (`KV_<name>` on
/// `$KV.<name>.>`, one message per key kept, roll-ups allowed, direct gets on). Made here
/// rather than by async-nats's `create_key_value`, which first reads account fields NATS 2.9
/// does not send. A bucket that exists with other settings (an operator changed `lease_ms`) is
/// brought to these.
async fn bucket(js: &jetstream::Context, url: &str, b: Bucket) -> Result<kv::Store, NatsError> {
    use jetstream::stream;
    let config = stream::Config {
        name: format!("KV_{}", b.name),
        description: Some(b.description.to_string()),
        subjects: vec![format!("$KV.{}.>", b.name)],
        max_messages_per_subject: b.history,
        max_bytes: -1,
        max_age: b.max_age,
        max_message_size: -1,
        // On disk: the revisions (epochs) must keep rising across a NATS restart.
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        num_replicas: 1,
        discard: stream::DiscardPolicy::New,
        duplicate_window: match b.max_age {
            Duration::ZERO => Duration::from_secs(120),
            age => age.min(Duration::from_secs(120)),
        },
        ..Default::default()
    };
    let failed = |e: String| NatsError::Bucket {
        url: url.to_string(),
        why: format!("bucket {}: {e}", b.name),
    };
    if js.create_stream(config.clone()).await.is_err() {
        js.update_stream(&config)
            .await
            .map_err(|e| failed(e.to_string()))?;
    }
    js.get_key_value(&b.name)
        .await
        .map_err(|e| failed(e.to_string()))
}
