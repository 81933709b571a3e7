//! Agents' desk choices (ready, paused with a reason, logged out) and the end of their
//! after-call work, so a restart neither logs agents out nor ends their pause (issue 12).

use super::{Store, StoreError};
use crate::acd::Desk;
use sqlx::Row;

/// A desk row read back: the agent, their choice, and when their wrap-up ends (unix ms).
pub type SavedDesk = (String, Desk, Option<u64>);

impl Store {
    /// Keeps `agent`'s desk choice and wrap-up end (replacing what was kept).
    pub async fn save_desk(
        &self,
        agent: &str,
        desk: &Desk,
        wrap_until_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let (choice, reason) = match desk {
            Desk::Ready => ("ready", None),
            Desk::Paused(r) => ("paused", Some(r.as_str())),
            Desk::LoggedOut => ("logged_out", None),
        };
        sqlx::query(
            "INSERT INTO agent_desk (agent_id, choice, reason, wrap_until_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (agent_id) DO UPDATE SET \
             choice = excluded.choice, reason = excluded.reason, \
             wrap_until_ms = excluded.wrap_until_ms, updated_ms = excluded.updated_ms",
        )
        .bind(agent)
        .bind(choice)
        .bind(reason)
        .bind(wrap_until_ms.map(|t| t as i64))
        .bind(super::time::unix_now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every kept desk; rows whose choice this version does not know are skipped.
    pub async fn load_desks(&self) -> Result<Vec<SavedDesk>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent_id, choice, reason, wrap_until_ms FROM agent_desk ORDER BY agent_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let choice: String = r.try_get("choice")?;
            let reason: Option<String> = r.try_get("reason")?;
            let desk = match (choice.as_str(), reason) {
                ("ready", _) => Desk::Ready,
                ("paused", Some(r)) => Desk::Paused(r),
                ("logged_out", _) => Desk::LoggedOut,
                _ => continue,
            };
            let wrap: Option<i64> = r.try_get("wrap_until_ms")?;
            out.push((r.try_get("agent_id")?, desk, wrap.map(|t| t.max(0) as u64)));
        }
        Ok(out)
    }
}
