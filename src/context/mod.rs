//! The store: the one place that speaks SQL. SQLite by default (created and migrated on first
//! start), PostgreSQL by URL, through one sqlx `Any` pool with the same queries for both
//! (`$n` placeholders work on both). Migrations live in `sql/<backend>/`.
//!
//! This issue stores agents; the caller context (campaigns, tickets, history) joins it next.

mod agent_desk;
mod agents;
pub mod attribution;
mod callbacks;
mod caller;
pub mod e164;
pub mod history;
pub mod history_writer;
pub mod http_source;
pub mod import;
mod records;
mod registrations;
pub mod saved_call;
mod sessions;
pub mod snapshots;
pub mod stats_rows;
pub mod time;

pub use agent_desk::SavedDesk;
pub use agents::{parse_skills, AgentLogin, AgentRecord, AgentRow, Role};
pub use callbacks::SavedCallback;
pub use caller::{
    CallerContext, CampaignSend, Customer, PastInteraction, SourceReport, Ticket,
    MAX_CAMPAIGN_WINDOW_S,
};
pub use history::{CallRecord, EventRow, InteractionRow};
pub use records::{Campaign, InteractionRecord, SendRow, TicketRecord};
pub use sessions::SavedSession;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL '{0}' (use sqlite://FILE or postgres://…)")]
    Url(String),
    #[error("agent '{0}' already exists")]
    AgentExists(String),
    #[error("{0}")]
    Invalid(String),
}

/// Which SQL dialect the pool speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated connection pool.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub backend: Backend,
}

impl Store {
    /// Opens (creating an SQLite file if needed) and migrates.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let mut wal = true;
        let (backend, url) = if url.starts_with("sqlite:") {
            let (url, journal) = take_journal_mode(url)?;
            wal = journal;
            let url = url.as_str();
            let url = if url.contains("mode=") || url.contains(":memory:") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        // One SQLite writer avoids SQLITE_BUSY; an in-memory database must stay on one connection.
        let max = if backend == Backend::Sqlite { 1 } else { 8 };
        let sqlite = backend == Backend::Sqlite && !url.contains(":memory:");
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    // Write-ahead logging: a commit appends once instead of writing pages twice
                    // (journal, then file), readers never wait for a writer, and with
                    // `synchronous = NORMAL` a commit does not wait for the disk. A killed
                    // process loses nothing committed; only an OS crash or a power cut can lose
                    // the last commits, which the spool and snapshots accept. WAL needs shared
                    // memory, so a database on a network filesystem asks for the rollback
                    // journal with `?journal_mode=delete`.
                    use sqlx::Executor;
                    if sqlite && wal {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    } else if sqlite {
                        conn.execute("PRAGMA journal_mode = DELETE").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("sql/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("sql/postgres").run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    /// Creates an empty PostgreSQL database `name` through the server at `admin_url` (used by
    /// tests for isolation, and by operators preparing a node). `name` must be a plain identifier.
    pub async fn create_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
        Self::admin(admin_url, &format!("CREATE DATABASE {}", ident(name)?)).await
    }

    /// Drops a PostgreSQL database created with [`Store::create_database`], disconnecting
    /// whoever still uses it (PostgreSQL 13+).
    pub async fn drop_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
        Self::admin(
            admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(name)?),
        )
        .await
    }

    /// Takes SQLite's exclusive lock (readers and writers elsewhere wait) until
    /// [`ExclusiveLock::release`]: for maintenance such as a bulk fix-up, and for proving that
    /// calls do not wait for a locked database.
    pub async fn lock_exclusive(&self) -> Result<ExclusiveLock, StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Invalid(
                "only an SQLite store can be locked this way".into(),
            ));
        }
        let mut conn = self.pool.acquire().await?;
        sqlx::query("BEGIN EXCLUSIVE").execute(&mut *conn).await?;
        Ok(ExclusiveLock { conn })
    }

    async fn admin(admin_url: &str, sql: &str) -> Result<(), StoreError> {
        sqlx::any::install_default_drivers();
        if !admin_url.starts_with("postgres") {
            return Err(StoreError::Url(admin_url.to_string()));
        }
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(admin_url)
            .await?;
        let r = sqlx::query(sql).execute(&pool).await.map(|_| ());
        pool.close().await;
        Ok(r?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A held SQLite exclusive lock; see [`Store::lock_exclusive`].
pub struct ExclusiveLock {
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
}

impl ExclusiveLock {
    pub async fn release(mut self) -> Result<(), StoreError> {
        sqlx::query("ROLLBACK").execute(&mut *self.conn).await?;
        Ok(())
    }
}

/// Takes acd's own `journal_mode=wal|delete` out of an SQLite URL (sqlx refuses parameters
/// it does not know); WAL unless it says `delete`.
fn take_journal_mode(url: &str) -> Result<(String, bool), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), true));
    };
    let mut wal = true;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("journal_mode=") {
            Some(v) if v.eq_ignore_ascii_case("wal") => wal = true,
            Some(v) if v.eq_ignore_ascii_case("delete") => wal = false,
            Some(_) => return Err(StoreError::Url(url.to_string())),
            None => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, wal))
}

fn ident(name: &str) -> Result<&str, StoreError> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    {
        Ok(name)
    } else {
        Err(StoreError::Invalid(format!(
            "'{name}' is not a plain database name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::take_journal_mode;

    #[test]
    fn the_journal_mode_is_taken_out_of_the_url_for_sqlx() {
        let wal = |u: &str| take_journal_mode(u).ok();
        assert_eq!(wal("sqlite://a.db"), Some(("sqlite://a.db".into(), true)));
        assert_eq!(
            wal("sqlite://a.db?journal_mode=delete"),
            Some(("sqlite://a.db".into(), false))
        );
        assert_eq!(
            wal("sqlite://a.db?mode=rwc&journal_mode=WAL"),
            Some(("sqlite://a.db?mode=rwc".into(), true))
        );
        assert_eq!(
            wal("sqlite://a.db?journal_mode=memory"),
            None,
            "refused, not ignored"
        );
    }
}
