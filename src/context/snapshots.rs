//! Call snapshots in the database (issue 12): the writer that keeps `call_snapshots` in step
//! with the calls in progress, off the call path, and the read at start.
//!
//! The core hands over the latest state of each changed call; the writer keeps only the last
//! one per call while the database is busy (a call that changed five times during one write is
//! written once), writes each batch in one transaction, and on a failed write keeps the batch
//! and tries again, newer states replacing older ones. A call's row is deleted when it ends.

use super::{Store, StoreError};
use crate::call::{CallSnapshot, SnapshotWrite};
use sqlx::Row;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Capacity of the channel from the core (beyond it the core keeps the latest per call).
pub const SNAPSHOT_QUEUE: usize = 4096;

/// Rows written per transaction at most.
const BATCH: usize = 500;

/// A snapshot read back: its key, and the call or why it cannot be read.
pub type LoadedSnapshot = (String, Result<CallSnapshot, String>);

impl Store {
    /// Writes `upserts` (interaction, JSON) and deletes `deletes` in one transaction.
    pub async fn write_snapshots(
        &self,
        upserts: &[(&str, &str)],
        deletes: &[&str],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if upserts.is_empty() && deletes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for (interaction, body) in upserts {
            sqlx::query(
                "INSERT INTO call_snapshots (interaction, body, updated_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (interaction) DO UPDATE SET body = excluded.body, updated_ms = excluded.updated_ms",
            )
            .bind(*interaction)
            .bind(*body)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        for interaction in deletes {
            sqlx::query("DELETE FROM call_snapshots WHERE interaction = $1")
                .bind(*interaction)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every snapshot left by the last process, oldest change first.
    pub async fn load_snapshots(&self) -> Result<Vec<LoadedSnapshot>, StoreError> {
        let rows = sqlx::query(
            "SELECT interaction, body FROM call_snapshots ORDER BY updated_ms, interaction",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let interaction: String = r.try_get("interaction")?;
            let body: String = r.try_get("body")?;
            let parsed = serde_json::from_str::<CallSnapshot>(&body).map_err(|e| e.to_string());
            out.push((interaction, parsed));
        }
        Ok(out)
    }

    /// Deletes the snapshots of calls that are not coming back (unreadable ones).
    pub async fn delete_snapshots(&self, interactions: &[&str]) -> Result<(), StoreError> {
        self.write_snapshots(&[], interactions, 0).await
    }

    /// How many snapshots are stored (the status page and tests).
    pub async fn count_snapshots(&self) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM call_snapshots")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get::<i64, _>("n")?)
    }
}

/// The latest pending state per call: `Some(json)` to write, `None` to delete.
type Pending = HashMap<String, Option<String>>;

fn absorb(pending: &mut Pending, w: SnapshotWrite) {
    let body = w.body.and_then(|s| match serde_json::to_string(&s) {
        Ok(j) => Some(j),
        Err(e) => {
            warn!(interaction = %w.interaction, error = %e, "snapshot not serialisable");
            None
        }
    });
    pending.insert(w.interaction, body);
}

/// Writes what `pending` holds, up to [`BATCH`] rows; those written leave it.
async fn write_some(store: &Store, pending: &mut Pending) -> Result<(), StoreError> {
    let keys: Vec<String> = pending.keys().take(BATCH).cloned().collect();
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    for k in &keys {
        match pending.get(k) {
            Some(Some(body)) => upserts.push((k.as_str(), body.as_str())),
            _ => deletes.push(k.as_str()),
        }
    }
    store
        .write_snapshots(&upserts, &deletes, crate::context::time::unix_now_ms())
        .await?;
    for k in keys {
        pending.remove(&k);
    }
    Ok(())
}

/// The snapshot writer: runs until the core's sender is dropped, then writes what is left
/// (trying for a few seconds if the database is down) and returns.
pub async fn run_writer(store: Store, mut rx: mpsc::Receiver<SnapshotWrite>) {
    let mut pending = Pending::new();
    let mut failures = 0u32;
    let mut open = true;
    while open {
        if pending.is_empty() {
            match rx.recv().await {
                Some(w) => absorb(&mut pending, w),
                None => break,
            }
        } else if failures > 0 {
            // Back off after a failure, still taking newer states.
            let wait = Duration::from_millis(100u64 << failures.min(5));
            tokio::select! {
                w = rx.recv() => match w {
                    Some(w) => absorb(&mut pending, w),
                    None => open = false,
                },
                _ = tokio::time::sleep(wait) => {}
            }
        }
        while let Ok(w) = rx.try_recv() {
            absorb(&mut pending, w);
        }
        match write_some(&store, &mut pending).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    warn!(error = %e, pending = pending.len(), "call snapshots not written; retrying");
                }
            }
        }
    }
    // The core is gone: write what is left, giving the database a few tries.
    for _ in 0..20 {
        if pending.is_empty() {
            break;
        }
        if let Err(e) = write_some(&store, &mut pending).await {
            warn!(error = %e, left = pending.len(), "final snapshot write failed; retrying");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    if !pending.is_empty() {
        warn!(
            left = pending.len(),
            "call snapshots not written before exit"
        );
    } else {
        info!("call snapshots written");
    }
}
