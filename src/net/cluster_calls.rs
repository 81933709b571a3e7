//! Call snapshots in NATS KV (bucket `<c>_calls`): what another node needs to take a call over
//! when this one dies (SCALE-OUT §2.3), each entry naming its owner.
//!
//! Every write is a compare-and-set on the revision this node last wrote, so ownership moves
//! exactly once: the coordinator hands a dead node's call to one survivor with a CAS, and if the
//! "dead" node was only cut off and comes back, its next write fails and it lets the call go
//! (`ClusterInput::CallLost`) instead of fighting the survivor for it.

use crate::call::{CallSnapshot, SnapshotWrite};
use crate::cluster::ClusterInput;
use crate::control::Input;
use async_nats::jetstream::kv;
use bytes::Bytes;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// A call in the bucket.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OwnedCall {
    pub owner: String,
    pub call: CallSnapshot,
}

/// The KV key of an interaction (its id is hex and digits already; anything else is mapped).
pub fn key_of(interaction: &str) -> String {
    interaction
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes this node's snapshots as they come (the latest per call when several wait).
pub async fn run_writer(
    kv: kv::Store,
    node: String,
    mut rx: mpsc::Receiver<SnapshotWrite>,
    core: mpsc::Sender<Input>,
) {
    let mut revisions: HashMap<String, u64> = HashMap::new();
    let mut pending: HashMap<String, SnapshotWrite> = HashMap::new();
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(w) => {
                    pending.insert(w.interaction.clone(), w);
                }
                None => return,
            }
        }
        while let Ok(w) = rx.try_recv() {
            pending.insert(w.interaction.clone(), w);
        }
        let batch: Vec<SnapshotWrite> = pending.drain().map(|(_, w)| w).collect();
        let mut failed = false;
        for w in batch {
            match write(&kv, &node, &mut revisions, &w).await {
                Written::Done => {}
                Written::Lost => {
                    let interaction = w.interaction.clone();
                    warn!(%interaction, "another node holds this call now; letting it go");
                    let _ = core
                        .send(Input::Cluster(ClusterInput::CallLost { interaction }))
                        .await;
                }
                Written::Retry => {
                    failed = true;
                    // A newer state of the call may have come meanwhile: it wins.
                    pending.entry(w.interaction.clone()).or_insert(w);
                }
            }
        }
        if failed {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

enum Written {
    Done,
    /// Another node owns the entry.
    Lost,
    /// NATS did not answer: try again.
    Retry,
}

async fn write(
    kv: &kv::Store,
    node: &str,
    revisions: &mut HashMap<String, u64>,
    w: &SnapshotWrite,
) -> Written {
    let key = key_of(&w.interaction);
    let Some(body) = &w.body else {
        let rev = revisions.remove(&key);
        return match kv.delete_expect_revision(&key, rev).await {
            Ok(()) => Written::Done,
            // Someone else's now, or gone already: either way not ours to delete.
            Err(_) => Written::Done,
        };
    };
    let value = OwnedCall {
        owner: node.to_string(),
        call: (**body).clone(),
    };
    let Ok(bytes) = serde_json::to_vec(&value) else {
        return Written::Done;
    };
    let bytes = Bytes::from(bytes);
    let tried = match revisions.get(&key) {
        Some(rev) => kv
            .update(&key, bytes.clone(), *rev)
            .await
            .map_err(|e| matches!(e.kind(), kv::UpdateErrorKind::WrongLastRevision)),
        None => kv
            .create(&key, bytes.clone())
            .await
            .map_err(|e| matches!(e.kind(), kv::CreateErrorKind::AlreadyExists)),
    };
    match tried {
        Ok(rev) => {
            revisions.insert(key, rev);
            Written::Done
        }
        // The entry moved on: ours still (handed to us by the coordinator, or our own write
        // whose answer was lost), or another node's.
        Err(true) => match kv.entry(&key).await {
            Ok(Some(e)) if e.operation == kv::Operation::Put => {
                match serde_json::from_slice::<OwnedCall>(&e.value) {
                    Ok(c) if c.owner == node => match kv.update(&key, bytes, e.revision).await {
                        Ok(rev) => {
                            revisions.insert(key, rev);
                            Written::Done
                        }
                        Err(_) => Written::Retry,
                    },
                    _ => {
                        revisions.remove(&key);
                        Written::Lost
                    }
                }
            }
            // Deleted meanwhile (a takeover ended it): write it afresh.
            Ok(_) => {
                revisions.remove(&key);
                Written::Retry
            }
            Err(_) => Written::Retry,
        },
        Err(false) => Written::Retry,
    }
}

/// The coordinator hands every call of a dead node to a live node, one CAS each, spread in
/// turn over `alive`: of the nodes in `dead`, and when `orphans` of any node not `heard`
/// at all (it died before this one started). Returns the keys each survivor now owns.
pub async fn reassign(
    kv: &kv::Store,
    dead: &std::collections::HashSet<String>,
    heard: &std::collections::HashSet<String>,
    orphans: bool,
    alive: &[String],
) -> HashMap<String, Vec<String>> {
    let mut handed: HashMap<String, Vec<String>> = HashMap::new();
    if alive.is_empty() {
        return handed;
    }
    let keys: Vec<String> = match kv.keys().await {
        Ok(k) => {
            use futures_util::StreamExt;
            k.filter_map(|r| async move { r.ok() }).collect().await
        }
        Err(e) => {
            warn!(error = %e, "cannot list the calls bucket");
            return handed;
        }
    };
    let mut turn = 0usize;
    for key in keys {
        let Ok(Some(e)) = kv.entry(&key).await else {
            continue;
        };
        let Ok(mut c) = serde_json::from_slice::<OwnedCall>(&e.value) else {
            continue;
        };
        let gone = dead.contains(&c.owner) || (orphans && !heard.contains(&c.owner));
        if !gone {
            continue;
        }
        let to = alive[turn % alive.len()].clone();
        turn += 1;
        let from = std::mem::replace(&mut c.owner, to.clone());
        let Ok(bytes) = serde_json::to_vec(&c) else {
            continue;
        };
        match kv.update(&key, Bytes::from(bytes), e.revision).await {
            Ok(_) => {
                info!(%key, %from, %to, "call handed to a survivor");
                handed.entry(to).or_default().push(key);
            }
            Err(e) => warn!(%key, error = %e, "call not handed over (changed meanwhile)"),
        }
    }
    handed
}

/// The snapshots of `keys` this node owns now (handed to it by the coordinator).
pub async fn adopted(kv: &kv::Store, node: &str, keys: &[String]) -> Vec<CallSnapshot> {
    let mut out = Vec::new();
    for key in keys {
        if let Ok(Some(e)) = kv.entry(key).await {
            if let Ok(c) = serde_json::from_slice::<OwnedCall>(&e.value) {
                if c.owner == node {
                    out.push(c.call);
                }
            }
        }
    }
    out
}

/// The calls the bucket says `node` holds: what this node, started again before anyone took
/// its calls over, resumes itself.
///
/// Each is claimed first (rewritten at its revision): if the coordinator hands it to a survivor
/// in the same instant, exactly one of the two compare-and-sets wins, so a call is never taken
/// back here and over there at once.
pub async fn owned_by(kv: &kv::Store, node: &str) -> Vec<CallSnapshot> {
    let mut out = Vec::new();
    for (e, c) in every_call(kv).await {
        if c.owner == node && kv.update(&e.key, e.value.clone(), e.revision).await.is_ok() {
            out.push(c.call);
        }
    }
    out
}

/// The interactions the bucket says another node owns now (this node, cut off for a while,
/// still holding some of them must let them go).
pub async fn held_elsewhere(kv: &kv::Store, node: &str) -> Vec<String> {
    every_call(kv)
        .await
        .into_iter()
        .filter(|(_, c)| c.owner != node)
        .map(|(_, c)| c.call.interaction)
        .collect()
}

/// Who is talking on the calls in the bucket: agents a new leader must not offer a call to
/// until the node holding their call (or its survivor) says so.
pub async fn talking(kv: &kv::Store) -> Vec<(String, String)> {
    use crate::call::snapshot::SavedPhase;
    every_call(kv)
        .await
        .into_iter()
        .filter_map(|(_, c)| match &c.call.phase {
            SavedPhase::Connected { agent, .. } => {
                Some((agent.agent.clone(), c.call.queue.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Every readable call in the bucket now, with its entry (key and revision). A full listing:
/// for rare moments (a start, a new leader, a node back from a cut-off), not per call.
async fn every_call(kv: &kv::Store) -> Vec<(kv::Entry, OwnedCall)> {
    use futures_util::StreamExt;
    let Ok(keys) = kv.keys().await else {
        return Vec::new();
    };
    let keys: Vec<String> = keys.filter_map(|r| async move { r.ok() }).collect().await;
    let mut out = Vec::new();
    for key in keys {
        if let Ok(Some(e)) = kv.entry(&key).await {
            if let Ok(c) = serde_json::from_slice::<OwnedCall>(&e.value) {
                out.push((e, c));
            }
        }
    }
    out
}
