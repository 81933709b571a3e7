//! Saved callbacks: written from the event stream by the history writer, read once at start
//! so callers who were promised a callback are called after a restart too.

use super::{Store, StoreError};
use sqlx::Row;

/// A callback as the database keeps it until it is answered, given up or cancelled.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedCallback {
    /// The call's interaction history row (the same row after a restart).
    pub interaction: String,
    /// The caller's number, as the pop shows it.
    pub number: String,
    /// Where to call: the Request-URI, and the address the INVITE goes to.
    pub target: String,
    pub peer: std::net::SocketAddr,
    pub queue: String,
    pub priority: i32,
    pub dialed: String,
    /// The caller's codec was G.711 A-law (else µ-law).
    pub pcma: bool,
    pub arrived_at_ms: i64,
    pub requested_at_ms: i64,
    /// Tries made so far.
    pub attempts: u32,
    /// The E.164 number this callback counted against the day's caps (trunk callbacks), kept
    /// in `callback_grants` so a restart does not reset the caps. None for Contact callbacks
    /// and for callbacks restored after a restart (already counted).
    #[serde(default)]
    pub granted: Option<String>,
}

impl Store {
    /// Keeps a callback (again, if it is already there: the same row).
    pub async fn save_callback(&self, c: &SavedCallback) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO callbacks (interaction, number, target, peer, queue, priority, dialed, \
             pcma, arrived_at_ms, requested_at_ms, attempts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (interaction) DO UPDATE SET attempts = excluded.attempts",
        )
        .bind(&c.interaction)
        .bind(&c.number)
        .bind(&c.target)
        .bind(c.peer.to_string())
        .bind(&c.queue)
        .bind(i64::from(c.priority))
        .bind(&c.dialed)
        .bind(i64::from(c.pcma))
        .bind(c.arrived_at_ms)
        .bind(c.requested_at_ms)
        .bind(i64::from(c.attempts))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records how many tries a callback has had.
    pub async fn set_callback_attempts(
        &self,
        interaction: &str,
        attempts: u32,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE callbacks SET attempts = $1 WHERE interaction = $2")
            .bind(i64::from(attempts))
            .bind(interaction)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The callback moved to another queue (overflow): after a restart it waits there.
    pub async fn set_callback_queue(
        &self,
        interaction: &str,
        queue: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE callbacks SET queue = $1 WHERE interaction = $2")
            .bind(queue)
            .bind(interaction)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The callback is over (answered, given up, or the caller's call ended otherwise).
    pub async fn delete_callback(&self, interaction: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM callbacks WHERE interaction = $1")
            .bind(interaction)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every kept callback, oldest request first. Rows that cannot be read are skipped with a
    /// warning rather than stopping the start.
    pub async fn load_callbacks(&self) -> Result<Vec<SavedCallback>, StoreError> {
        let rows = sqlx::query(
            "SELECT interaction, number, target, peer, queue, priority, dialed, pcma, \
             arrived_at_ms, requested_at_ms, attempts FROM callbacks \
             ORDER BY requested_at_ms, interaction",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let interaction: String = r.try_get("interaction")?;
            let peer: String = r.try_get("peer")?;
            let Ok(peer) = peer.parse() else {
                tracing::warn!(%interaction, %peer, "saved callback with a bad address; skipped");
                continue;
            };
            out.push(SavedCallback {
                number: r.try_get("number")?,
                target: r.try_get("target")?,
                peer,
                queue: r.try_get("queue")?,
                priority: r.try_get::<i64, _>("priority")? as i32,
                dialed: r.try_get("dialed")?,
                pcma: r.try_get::<i64, _>("pcma")? != 0,
                arrived_at_ms: r.try_get("arrived_at_ms")?,
                requested_at_ms: r.try_get("requested_at_ms")?,
                attempts: r.try_get::<i64, _>("attempts")?.clamp(0, u32::MAX as i64) as u32,
                granted: None,
                interaction,
            });
        }
        Ok(out)
    }

    /// Counts a trunk callback against its day's caps (once per interaction).
    pub async fn save_callback_grant(
        &self,
        interaction: &str,
        number: &str,
        day: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO callback_grants (interaction, number, day) VALUES ($1, $2, $3) \
             ON CONFLICT (interaction) DO NOTHING",
        )
        .bind(interaction)
        .bind(number)
        .bind(day)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Trunk callbacks granted on `day` (days since the epoch, UTC), per number.
    pub async fn callback_grants(&self, day: i64) -> Result<Vec<(String, u32)>, StoreError> {
        let rows = sqlx::query(
            "SELECT number, COUNT(*) AS n FROM callback_grants WHERE day = $1 \
             GROUP BY number ORDER BY number",
        )
        .bind(day)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let n: i64 = r.try_get("n")?;
            out.push((r.try_get("number")?, n.clamp(0, u32::MAX as i64) as u32));
        }
        Ok(out)
    }
}
