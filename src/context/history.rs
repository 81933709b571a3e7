//! The interaction history writer: folds the event stream into one row per call and writes
//! rows in batches off the call path. A slow or absent database costs history, never a call.

use super::{Store, StoreError};
use crate::acd::CallId;
use crate::events::Event;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::broadcast;
use tracing::warn;

/// One call's row as the events describe it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
}

/// Calls in progress, folded from events; hands back a row when a call is over.
#[derive(Default)]
pub struct HistoryBook {
    open: HashMap<CallId, CallRecord>,
}

impl HistoryBook {
    /// Applies one event; returns the finished row when the call ended.
    pub fn apply(&mut self, ev: &Event, unix_now: i64) -> Option<CallRecord> {
        match ev {
            Event::CallArrived {
                call,
                interaction,
                caller,
                dialed,
            } => {
                self.open.insert(
                    *call,
                    CallRecord {
                        id: interaction.clone(),
                        phone: caller.clone(),
                        started_at: unix_now,
                        dialed: dialed.clone(),
                        ..Default::default()
                    },
                );
            }
            Event::ContextLookup {
                call,
                number,
                customer,
                campaigns,
                ..
            } => {
                if let Some(r) = self.open.get_mut(call) {
                    r.phone = number.clone();
                    r.customer_id = customer.clone();
                    r.campaign = campaigns.first().cloned();
                }
            }
            Event::Routed {
                call,
                queue,
                rule,
                reason,
                ..
            } => {
                if let Some(r) = self.open.get_mut(call) {
                    r.queue = Some(queue.clone());
                    r.rule = rule.clone();
                    r.reason = Some(reason.clone());
                }
            }
            Event::MenuChoice {
                call,
                queue: Some(q),
                ..
            }
            | Event::Queued { call, queue: q } => {
                if let Some(r) = self.open.get_mut(call) {
                    r.queue = Some(q.clone());
                }
            }
            Event::Connected {
                call,
                agent,
                wait_ms,
            } => {
                if let Some(r) = self.open.get_mut(call) {
                    r.agent_id = Some(agent.clone());
                    r.wait_ms.get_or_insert(*wait_ms as i64);
                }
            }
            Event::Transferred { call, .. } => {
                if let Some(r) = self.open.get_mut(call) {
                    r.transfers += 1;
                }
            }
            Event::Ended {
                call,
                agent,
                talk_ms,
                ..
            } => {
                let mut r = self.open.remove(call)?;
                r.agent_id = Some(agent.clone());
                r.outcome = Some("answered".into());
                r.talk_ms = Some(*talk_ms as i64);
                return Some(r);
            }
            Event::Abandoned { call, wait_ms, .. } => {
                let mut r = self.open.remove(call)?;
                r.outcome = Some(if r.transfers > 0 {
                    "abandoned after transfer".into()
                } else {
                    "abandoned".into()
                });
                r.wait_ms = Some(*wait_ms as i64);
                return Some(r);
            }
            _ => {}
        }
        None
    }
}

impl Store {
    /// Writes finished calls in one transaction; dispositions and notes set from the desk are
    /// kept (they may arrive first).
    pub async fn write_calls(&self, rows: &[CallRecord]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO interactions (id, phone, customer_id, started_at, dialed, queue, rule, reason, \
                 campaign, agent_id, outcome, wait_ms, talk_ms, transfers) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (id) DO UPDATE SET phone = excluded.phone, customer_id = excluded.customer_id, \
                 started_at = excluded.started_at, dialed = excluded.dialed, queue = excluded.queue, \
                 rule = excluded.rule, reason = excluded.reason, campaign = excluded.campaign, \
                 agent_id = excluded.agent_id, outcome = excluded.outcome, wait_ms = excluded.wait_ms, \
                 talk_ms = excluded.talk_ms, transfers = excluded.transfers",
            )
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
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
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
             CAST(transfers AS BIGINT) AS transfers, CAST(rating AS BIGINT) AS rating \
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
        }))
    }
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
}

/// Most rows written per transaction.
const BATCH: usize = 200;

/// Follows the event stream and writes each finished call, batching under load.
pub async fn run_writer(store: Store, mut events: broadcast::Receiver<Event>) {
    let mut book = HistoryBook::default();
    let mut batch: Vec<CallRecord> = Vec::new();
    loop {
        let ev = if batch.is_empty() {
            events.recv().await
        } else {
            match tokio::time::timeout(Duration::from_millis(20), events.recv()).await {
                Ok(ev) => ev,
                Err(_) => {
                    flush(&store, &mut batch).await;
                    continue;
                }
            }
        };
        match ev {
            Ok(Event::SurveyRating {
                interaction,
                number,
                rating,
                complaint,
                ..
            }) => {
                // The call's row may still be in the batch: write it first.
                flush(&store, &mut batch).await;
                if let Err(e) = store.set_rating(&interaction, rating).await {
                    warn!(error = %e, %interaction, "could not save the survey rating");
                }
                if complaint {
                    let now = crate::context::time::unix_now();
                    if let Err(e) = store.tag_number(&number, "complaint", now).await {
                        warn!(error = %e, %number, "could not tag the caller after a low rating");
                    }
                }
            }
            Ok(ev) => {
                if let Some(row) = book.apply(&ev, crate::context::time::unix_now()) {
                    batch.push(row);
                    if batch.len() >= BATCH {
                        flush(&store, &mut batch).await;
                    }
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(
                    missed = n,
                    "history writer fell behind; some calls are not in the history"
                )
            }
            Err(broadcast::error::RecvError::Closed) => {
                flush(&store, &mut batch).await;
                return;
            }
        }
    }
}

async fn flush(store: &Store, batch: &mut Vec<CallRecord>) {
    if batch.is_empty() {
        return;
    }
    if let Err(e) = store.write_calls(batch).await {
        warn!(error = %e, rows = batch.len(), "could not write call history");
    }
    batch.clear();
}
