//! Desk sessions kept across restarts (by token hash, never the token).

use super::{Role, Store, StoreError};
use sqlx::Row;

/// A session as the database keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedSession {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    pub agent: String,
    pub name: String,
    pub role: Role,
    /// Unix seconds.
    pub expires_at: i64,
}

impl Store {
    pub async fn save_session(&self, s: &SavedSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO desk_sessions (token_hash, agent, name, role, expires_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind(&s.token_hash)
        .bind(&s.agent)
        .bind(&s.name)
        .bind(s.role.as_str())
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM desk_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_agent_sessions(&self, agent: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM desk_sessions WHERE agent = $1")
            .bind(agent)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sessions still valid at `unix_now`; expired ones are deleted.
    pub async fn load_sessions(&self, unix_now: i64) -> Result<Vec<SavedSession>, StoreError> {
        sqlx::query("DELETE FROM desk_sessions WHERE expires_at <= $1")
            .bind(unix_now)
            .execute(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT token_hash, agent, name, role, expires_at FROM desk_sessions \
             ORDER BY expires_at",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let role: String = r.try_get("role")?;
            let Some(role) = Role::parse(&role) else {
                continue;
            };
            out.push(SavedSession {
                token_hash: r.try_get("token_hash")?,
                agent: r.try_get("agent")?,
                name: r.try_get("name")?,
                role,
                expires_at: r.try_get("expires_at")?,
            });
        }
        Ok(out)
    }
}
