//! Agents' registered contacts, so a restart does not log every agent out.

use super::{Store, StoreError};
use crate::sip::registrar::SavedBinding;
use sqlx::Row;

impl Store {
    /// Replaces `agent`'s saved bindings with `bindings` (an empty list forgets them).
    pub async fn save_bindings(
        &self,
        agent: &str,
        bindings: &[SavedBinding],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM registrations WHERE agent_id = $1")
            .bind(agent)
            .execute(&mut *tx)
            .await?;
        for b in bindings {
            sqlx::query(
                "INSERT INTO registrations (agent_id, contact, transport, peer, call_id, cseq, expires_at, path) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(agent)
            .bind(&b.contact)
            .bind(&b.transport)
            .bind(b.peer.to_string())
            .bind(&b.call_id)
            .bind(b.cseq as i64)
            .bind(b.expires_at as i64)
            .bind(b.path.join("\n"))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Bindings still valid at `unix_now`; rows that no longer parse are skipped.
    pub async fn load_bindings(
        &self,
        unix_now: u64,
    ) -> Result<Vec<(String, SavedBinding)>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent_id, contact, transport, peer, call_id, cseq, expires_at, path FROM registrations WHERE expires_at > $1 ORDER BY agent_id",
        )
        .bind(unix_now as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let peer: String = r.try_get("peer")?;
            let Ok(peer) = peer.parse() else { continue };
            let cseq: i64 = r.try_get("cseq")?;
            let expires: i64 = r.try_get("expires_at")?;
            out.push((
                r.try_get("agent_id")?,
                SavedBinding {
                    contact: r.try_get("contact")?,
                    transport: r.try_get("transport")?,
                    peer,
                    call_id: r.try_get("call_id")?,
                    cseq: u32::try_from(cseq).unwrap_or(0),
                    expires_at: u64::try_from(expires).unwrap_or(0),
                    path: {
                        let p: String = r.try_get("path")?;
                        p.lines().map(str::to_string).collect()
                    },
                },
            ));
        }
        Ok(out)
    }
}
