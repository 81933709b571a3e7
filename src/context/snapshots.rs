//! Call snapshots in the database (issue 12): the writer that keeps `call_snapshots` in step
//! with the calls in progress, off the call path, and the read at start.
//!
//! The core hands over the latest state of each changed call; the writer gathers them for
//! [`GATHER`] and keeps only the last one per call (a call that changed five times meanwhile is
//! written once), writes each batch in one transaction, and on a failed write keeps the batch
//! and tries again, newer states replacing older ones. A call's row is deleted when it ends; a
//! call that ended before it was ever written costs nothing.

use super::saved_call::{CallSnapshot, SnapshotWrite};
use super::{Store, StoreError};
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Capacity of the channel from the core (beyond it the core keeps the latest per call).
pub const SNAPSHOT_QUEUE: usize = 4096;

/// Rows written per transaction at most.
const BATCH: usize = 500;

/// Rows per multi-row statement (3 values each: far under both backends' bind limits).
const ROWS_PER_STATEMENT: usize = 100;

/// A snapshot read back: its key, and the call or why it cannot be read.
pub type LoadedSnapshot = (String, Result<CallSnapshot, String>);

impl Store {
    /// Writes `upserts` (interaction, JSON) and deletes `deletes` in one transaction, a few
    /// multi-row statements rather than one per row.
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
        for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
            let mut sql =
                String::from("INSERT INTO call_snapshots (interaction, body, updated_ms) VALUES ");
            super::history::placeholders(&mut sql, chunk.len(), 3, self.backend);
            sql.push_str(
                " ON CONFLICT (interaction) DO UPDATE SET body = excluded.body, updated_ms = excluded.updated_ms",
            );
            let mut q = sqlx::query(&sql);
            for (interaction, body) in chunk {
                q = q.bind(*interaction).bind(*body).bind(now_ms);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in deletes.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from("DELETE FROM call_snapshots WHERE interaction IN ");
            super::history::placeholders(&mut sql, 1, chunk.len(), self.backend);
            let mut q = sqlx::query(&sql);
            for interaction in chunk {
                q = q.bind(*interaction);
            }
            q.execute(&mut *tx).await?;
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

/// How long the writer gathers calls' new states before it writes them, so many calls share
/// one transaction (the core already joins one call's burst of changes into one state, see
/// `call::snapshot::GATHER`). A call's state replaced meanwhile is written once, and a call
/// that ends meanwhile not at all. The price: a crash loses at most this much (and the core's
/// window) of the newest changes; such a call resumes from its previous snapshot, or, if it is
/// younger than that, is not resumed.
pub const GATHER: Duration = Duration::from_millis(50);

/// What the writer holds: the newest pending state per call (`Some` to write, `None` to
/// delete; serialised only when written, so a state replaced before its write costs no JSON),
/// and which calls have a row in the table (so a call that ends before its first write is
/// simply forgotten).
struct Pending<T> {
    rows: HashMap<String, Option<T>>,
    stored: HashSet<String>,
}

impl<T: serde::Serialize> Pending<T> {
    fn new(stored: impl IntoIterator<Item = String>) -> Self {
        Pending {
            rows: HashMap::new(),
            stored: stored.into_iter().collect(),
        }
    }

    /// The newest state of `interaction`: a row to write, or (`None`) the call has ended.
    fn put(&mut self, interaction: String, body: Option<T>) {
        if body.is_some() || self.stored.contains(&interaction) {
            self.rows.insert(interaction, body);
        } else {
            self.rows.remove(&interaction);
        }
    }

    /// Writes up to [`BATCH`] rows; those written leave it.
    async fn write_some(&mut self, store: &Store) -> Result<(), StoreError> {
        let keys: Vec<String> = self.rows.keys().take(BATCH).cloned().collect();
        let mut bodies = Vec::new();
        let mut deletes = Vec::new();
        for k in &keys {
            match self.rows.get(k) {
                Some(Some(body)) => match serde_json::to_string(body) {
                    Ok(j) => bodies.push((k.as_str(), j)),
                    Err(e) => warn!(interaction = %k, error = %e, "snapshot not serialisable"),
                },
                _ => deletes.push(k.as_str()),
            }
        }
        let upserts: Vec<(&str, &str)> = bodies.iter().map(|(k, j)| (*k, j.as_str())).collect();
        store
            .write_snapshots(&upserts, &deletes, crate::context::time::unix_now_ms())
            .await?;
        for k in keys {
            if let Some(row) = self.rows.remove(&k) {
                if row.is_some() {
                    self.stored.insert(k);
                } else {
                    self.stored.remove(&k);
                }
            }
        }
        Ok(())
    }
}

/// The snapshot writer: runs until the core's sender is dropped, then writes what is left
/// (trying for a few seconds if the database is down) and returns. `inherited` are the rows
/// the last process left (the calls being resumed), so their deletes reach the table.
pub async fn run_writer(
    store: Store,
    mut rx: mpsc::Receiver<SnapshotWrite>,
    inherited: Vec<String>,
) {
    let mut pending: Pending<Box<CallSnapshot>> = Pending::new(inherited);
    let mut failures = 0u32;
    let mut open = true;
    while open {
        if pending.rows.is_empty() {
            match rx.recv().await {
                Some(w) => pending.put(w.interaction, w.body),
                None => break,
            }
        }
        // Gather (after a failure: back off) without waking for every change, then take all
        // that came meanwhile; the channel holds far more than a window's worth.
        let wait = if failures > 0 {
            Duration::from_millis(100u64 << failures.min(5))
        } else {
            GATHER
        };
        if pending.rows.len() < BATCH {
            tokio::time::sleep(wait).await;
        }
        loop {
            match rx.try_recv() {
                Ok(w) => pending.put(w.interaction, w.body),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if pending.rows.is_empty() {
            continue;
        }
        match pending.write_some(&store).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    warn!(error = %e, pending = pending.rows.len(), "call snapshots not written; retrying");
                }
            }
        }
    }
    // The core is gone: write what is left, giving the database a few tries.
    for _ in 0..20 {
        if pending.rows.is_empty() {
            break;
        }
        if let Err(e) = pending.write_some(&store).await {
            warn!(error = %e, left = pending.rows.len(), "final snapshot write failed; retrying");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    if !pending.rows.is_empty() {
        warn!(
            left = pending.rows.len(),
            "call snapshots not written before exit"
        );
    } else {
        info!("call snapshots written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn rows(store: &Store) -> Vec<String> {
        sqlx::query("SELECT interaction FROM call_snapshots ORDER BY interaction")
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String, _>("interaction").unwrap())
            .collect()
    }

    #[tokio::test]
    async fn only_the_latest_state_is_written_and_ended_calls_leave_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/s.db", dir.path().display()))
            .await
            .unwrap();
        store
            .write_snapshots(&[("old", "{}")], &[], 1)
            .await
            .unwrap();
        let mut p: Pending<u32> = Pending::new(["old".to_string()]);
        // A call that changed twice is one row with its last state; one that began and
        // ended between two writes is nothing to do at all.
        p.put("a".into(), Some(1));
        p.put("a".into(), Some(2));
        p.put("brief".into(), Some(1));
        p.put("brief".into(), None);
        assert_eq!(p.rows.len(), 1, "only a's row is left to write");
        p.write_some(&store).await.unwrap();
        assert_eq!(rows(&store).await, ["a", "old"]);
        let body: String = sqlx::query("SELECT body FROM call_snapshots WHERE interaction = 'a'")
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .try_get("body")
            .unwrap();
        assert_eq!(body, "2");
        // Ended: the call written by this process and the one left by the last are deleted.
        p.put("a".into(), None);
        p.put("old".into(), None);
        p.write_some(&store).await.unwrap();
        assert!(rows(&store).await.is_empty());
        assert!(p.stored.is_empty() && p.rows.is_empty());
    }
}
