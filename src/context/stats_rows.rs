//! The rows queue statistics are made of: calls in a period with what happened to them, and
//! whether the same number called again within N days (first-contact resolution).

use super::{Store, StoreError};
use sqlx::Row;

/// One call as queue statistics see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallStatRow {
    pub queue: Option<String>,
    pub agent_id: Option<String>,
    pub started_at: i64,
    pub outcome: Option<String>,
    pub wait_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub transfers: i64,
    /// The same number called again within the FCR window after this call.
    pub repeated: bool,
    /// The caller asked to be called back.
    pub callback: bool,
}

impl Store {
    /// Calls started in `[since, until)`, each with whether its number called again within
    /// `repeat_s` seconds.
    pub async fn call_stat_rows(
        &self,
        since: i64,
        until: i64,
        repeat_s: i64,
    ) -> Result<Vec<CallStatRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.queue, i.agent_id, i.started_at, i.outcome, i.wait_ms, i.talk_ms, \
             CAST(i.transfers AS BIGINT) AS transfers, \
             CASE WHEN EXISTS (SELECT 1 FROM interactions j WHERE j.phone = i.phone \
               AND j.started_at > i.started_at AND j.started_at <= i.started_at + $3) \
             THEN 1 ELSE 0 END AS repeated, \
             CASE WHEN EXISTS (SELECT 1 FROM interaction_events e WHERE e.interaction = i.id \
               AND e.kind = 'callback_requested') THEN 1 ELSE 0 END AS callback \
             FROM interactions i WHERE i.started_at >= $1 AND i.started_at < $2 AND i.phone <> ''",
        )
        .bind(since)
        .bind(until)
        .bind(repeat_s)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let repeated: i32 = r.try_get("repeated")?;
                let callback: i32 = r.try_get("callback")?;
                Ok(CallStatRow {
                    queue: r.try_get("queue")?,
                    agent_id: r.try_get("agent_id")?,
                    started_at: r.try_get("started_at")?,
                    outcome: r.try_get("outcome")?,
                    wait_ms: r.try_get("wait_ms")?,
                    talk_ms: r.try_get("talk_ms")?,
                    transfers: r.try_get("transfers")?,
                    repeated: repeated != 0,
                    callback: callback != 0,
                })
            })
            .collect()
    }
}
