//! The interaction history in the store: one row per call, the call's event log, and what the
//! desk and the survey add afterwards (disposition, note, tags, rating). Every write is an
//! upsert or insert-if-absent, so replaying a spooled batch after an outage never duplicates.

use super::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// One call's row as the events describe it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub id: String,
    pub phone: String,
    pub customer_id: Option<String>,
    pub started_at: i64,
    pub dialed: String,
    pub queue: Option<String>,
    pub rule: Option<String>,
    pub reason: Option<String>,
    pub campaign: Option<String>,
    pub agent_id: Option<String>,
    /// answered, abandoned.
    pub outcome: Option<String>,
    pub wait_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub transfers: i32,
    /// The WAV file of the conversation, when its queue records.
    pub recording: Option<String>,
    /// The open ticket the caller had (newest), as matched at call time.
    pub ticket: Option<String>,
}

impl Store {
    /// Writes finished calls and their event logs in one transaction (multi-row statements).
    /// Dispositions, notes and ratings set from the desk are kept (they may arrive first);
    /// events already stored are skipped, so a replayed batch changes nothing.
    pub async fn write_calls(
        &self,
        rows: &[CallRecord],
        events: &[EventRow],
    ) -> Result<(), StoreError> {
        if rows.is_empty() && events.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        // PostgreSQL refuses one statement touching a row twice: the last version of a row wins.
        let mut last: std::collections::HashMap<&str, &CallRecord> = Default::default();
        for r in rows {
            last.insert(&r.id, r);
        }
        let mut unique: Vec<&CallRecord> = last.into_values().collect();
        unique.sort_by(|a, b| a.id.cmp(&b.id));
        for chunk in unique.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO interactions (id, phone, customer_id, started_at, dialed, queue, rule, reason, \
                 campaign, agent_id, outcome, wait_ms, talk_ms, transfers, recording, ticket) VALUES ",
            );
            placeholders(&mut sql, chunk.len(), 16, self.backend);
            sql.push_str(
                " ON CONFLICT (id) DO UPDATE SET phone = excluded.phone, customer_id = excluded.customer_id, \
                 started_at = excluded.started_at, dialed = excluded.dialed, queue = excluded.queue, \
                 rule = excluded.rule, reason = excluded.reason, campaign = excluded.campaign, \
                 agent_id = excluded.agent_id, outcome = excluded.outcome, wait_ms = excluded.wait_ms, \
                 talk_ms = excluded.talk_ms, transfers = excluded.transfers, recording = excluded.recording, ticket = excluded.ticket",
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(&r.id)
                    .bind(&r.phone)
                    .bind(&r.customer_id)
                    .bind(r.started_at)
                    .bind(&r.dialed)
                    .bind(&r.queue)
                    .bind(&r.rule)
                    .bind(&r.reason)
                    .bind(&r.campaign)
                    .bind(&r.agent_id)
                    .bind(&r.outcome)
                    .bind(r.wait_ms)
                    .bind(r.talk_ms)
                    .bind(r.transfers)
                    .bind(&r.recording)
                    .bind(&r.ticket);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in events.chunks(ROWS_PER_STATEMENT * 2) {
            let mut sql = String::from(
                "INSERT INTO interaction_events (interaction, seq, at_ms, kind, data) VALUES ",
            );
            placeholders(&mut sql, chunk.len(), 5, self.backend);
            sql.push_str(" ON CONFLICT DO NOTHING");
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(&e.interaction)
                    .bind(e.seq)
                    .bind(e.at_ms)
                    .bind(&e.kind)
                    .bind(&e.data);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// How many calls and logged events the history holds (operators' and tests' check).
    pub async fn history_counts(&self) -> Result<(i64, i64), StoreError> {
        use sqlx::Row;
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM interactions) AS calls, \
             (SELECT COUNT(*) FROM interaction_events) AS events",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((r.try_get("calls")?, r.try_get("events")?))
    }

    /// One call's event log, in order.
    pub async fn call_events(&self, interaction: &str) -> Result<Vec<EventRow>, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT interaction, CAST(seq AS BIGINT) AS seq, at_ms, kind, data FROM interaction_events \
             WHERE interaction = $1 ORDER BY seq",
        )
        .bind(interaction)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let seq: i64 = r.try_get("seq")?;
                Ok(EventRow {
                    interaction: r.try_get("interaction")?,
                    seq: seq as i32,
                    at_ms: r.try_get("at_ms")?,
                    kind: r.try_get("kind")?,
                    data: r.try_get("data")?,
                })
            })
            .collect()
    }

    /// The agent's disposition, note and tags for one call (replacing earlier ones).
    pub async fn set_disposition(
        &self,
        id: &str,
        disposition: &str,
        note: &str,
        tags: &[String],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO interactions (id, phone, started_at, disposition, note, tags) \
             VALUES ($1, '', 0, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
             disposition = excluded.disposition, note = excluded.note, tags = excluded.tags",
        )
        .bind(id)
        .bind(disposition)
        .bind(note)
        .bind(tags.join(","))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets recordings of calls that started before `cutoff` (their files are deleted by
    /// the retention task); returns how many rows changed.
    pub async fn expire_recordings(&self, cutoff: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE interactions SET recording = NULL WHERE recording IS NOT NULL AND started_at < $1",
        )
        .bind(cutoff)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Interaction ids of one number, newest first.
    pub async fn interactions_of(&self, phone: &str) -> Result<Vec<String>, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT id FROM interactions WHERE phone = $1 ORDER BY started_at DESC, id DESC",
        )
        .bind(phone)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| r.try_get("id").map_err(StoreError::from))
            .collect()
    }

    /// The caller's survey rating for one call.
    pub async fn set_rating(&self, id: &str, rating: u8) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO interactions (id, phone, started_at, rating) VALUES ($1, '', 0, $2) \
             ON CONFLICT (id) DO UPDATE SET rating = excluded.rating",
        )
        .bind(id)
        .bind(rating as i32)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Tags the customer who owns `phone` (E.164); a number nobody owns becomes a customer of
    /// its own, so the tag follows it to the next call.
    pub async fn tag_number(&self, phone: &str, tag: &str, at: i64) -> Result<(), StoreError> {
        use sqlx::Row;
        let mut tx = self.pool.begin().await?;
        let owner = sqlx::query("SELECT customer_id FROM customer_phones WHERE phone = $1")
            .bind(phone)
            .fetch_optional(&mut *tx)
            .await?;
        let customer: String = match owner {
            Some(r) => r.try_get("customer_id")?,
            None => {
                sqlx::query(
                    "INSERT INTO customers (id, name, created_at) VALUES ($1, $1, $2) ON CONFLICT (id) DO NOTHING",
                )
                .bind(phone)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                sqlx::query("INSERT INTO customer_phones (phone, customer_id) VALUES ($1, $1)")
                    .bind(phone)
                    .execute(&mut *tx)
                    .await?;
                phone.to_string()
            }
        };
        sqlx::query(
            "INSERT INTO customer_tags (customer_id, tag, tagged_at) VALUES ($1, $2, $3) \
             ON CONFLICT (customer_id, tag) DO UPDATE SET tagged_at = excluded.tagged_at",
        )
        .bind(&customer)
        .bind(tag)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One interaction row as the desk and tests read it.
    pub async fn interaction(&self, id: &str) -> Result<Option<InteractionRow>, StoreError> {
        use sqlx::Row;
        let row = sqlx::query(
            "SELECT id, phone, queue, agent_id, outcome, disposition, note, tags, rule, campaign, \
             CAST(transfers AS BIGINT) AS transfers, CAST(rating AS BIGINT) AS rating, recording, ticket \
             FROM interactions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let tags: String = r.try_get("tags")?;
        Ok(Some(InteractionRow {
            id: r.try_get("id")?,
            phone: r.try_get("phone")?,
            queue: r.try_get("queue")?,
            agent_id: r.try_get("agent_id")?,
            outcome: r.try_get("outcome")?,
            disposition: r.try_get("disposition")?,
            note: r.try_get("note")?,
            tags: tags
                .split(',')
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect(),
            rule: r.try_get("rule")?,
            campaign: r.try_get("campaign")?,
            transfers: r.try_get("transfers")?,
            rating: r.try_get("rating")?,
            recording: r.try_get("recording")?,
            ticket: r.try_get("ticket")?,
        }))
    }
}

/// Rows per multi-row statement (14 columns: well under both backends' bind limits).
const ROWS_PER_STATEMENT: usize = 100;

/// `($1, $2, …), (…)` for `rows` rows of `cols` values. SQLite gets anonymous `?` instead:
/// SQLite finds a numbered parameter's name by walking a list, so binding n numbered
/// parameters costs O(n²) — 7 % of acd's CPU under load with 100-row statements.
pub(super) fn placeholders(sql: &mut String, rows: usize, cols: usize, backend: super::Backend) {
    use std::fmt::Write;
    for i in 0..rows {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            match backend {
                super::Backend::Sqlite => sql.push('?'),
                super::Backend::Postgres => {
                    let _ = write!(sql, "${}", i * cols + c + 1);
                }
            }
        }
        sql.push(')');
    }
}

/// One entry of a call's event log: the event as JSON, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    pub interaction: String,
    pub seq: i32,
    pub at_ms: i64,
    /// The event's `type` (call_arrived, routed, offered, connected, …).
    pub kind: String,
    pub data: String,
}

/// An interaction as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InteractionRow {
    pub id: String,
    pub phone: String,
    pub queue: Option<String>,
    pub agent_id: Option<String>,
    pub outcome: Option<String>,
    pub disposition: Option<String>,
    pub note: Option<String>,
    pub tags: Vec<String>,
    pub rule: Option<String>,
    pub campaign: Option<String>,
    pub transfers: i64,
    /// The caller's post-call survey answer, 1–5.
    pub rating: Option<i64>,
    pub recording: Option<String>,
    pub ticket: Option<String>,
}
