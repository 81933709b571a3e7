//! Writing context records: customers, campaigns and their sends, tickets, interactions. Every
//! write is idempotent (an upsert or insert-if-absent), so imports can be re-run safely.

use super::{Store, StoreError};

/// A campaign's definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    pub name: String,
    pub offer: String,
    pub queue: Option<String>,
    pub skills: String,
    pub window_minutes: i64,
}

/// A ticket as imported or synced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketRecord {
    pub id: String,
    pub phone: Option<String>,
    pub customer_id: Option<String>,
    pub status: String,
    pub subject: String,
    pub skill: Option<String>,
    pub opened_at: i64,
}

/// One finished call, for the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InteractionRecord {
    pub id: String,
    pub phone: String,
    pub customer_id: Option<String>,
    pub started_at: i64,
    pub queue: Option<String>,
    pub agent_id: Option<String>,
    pub outcome: Option<String>,
    pub tags: Vec<String>,
}

impl Store {
    /// Creates or updates a customer with its E.164 phones and tags (replacing both).
    pub async fn upsert_customer(
        &self,
        id: &str,
        name: &str,
        email: Option<&str>,
        phones: &[String],
        tags: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO customers (id, name, email) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email",
        )
        .bind(id)
        .bind(name)
        .bind(email)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM customer_phones WHERE customer_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for p in phones {
            sqlx::query(
                "INSERT INTO customer_phones (phone, customer_id) VALUES ($1, $2) \
                 ON CONFLICT (phone) DO UPDATE SET customer_id = excluded.customer_id",
            )
            .bind(p)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM customer_tags WHERE customer_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for t in tags {
            sqlx::query("INSERT INTO customer_tags (customer_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(t)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn upsert_campaign(&self, c: &Campaign) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO campaigns (name, offer, queue, skills, window_minutes) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET offer = excluded.offer, queue = excluded.queue, \
             skills = excluded.skills, window_minutes = excluded.window_minutes",
        )
        .bind(&c.name)
        .bind(&c.offer)
        .bind(&c.queue)
        .bind(&c.skills)
        .bind(c.window_minutes)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that `campaign` was sent to E.164 `phone` at `sent_at`; true if it was new.
    pub async fn add_campaign_send(
        &self,
        campaign: &str,
        phone: &str,
        sent_at: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO campaign_sends (phone, sent_at, campaign) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(phone)
        .bind(sent_at)
        .bind(campaign)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    pub async fn upsert_ticket(&self, t: &TicketRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tickets (id, phone, customer_id, status, subject, skill, opened_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET \
             phone = excluded.phone, customer_id = excluded.customer_id, status = excluded.status, \
             subject = excluded.subject, skill = excluded.skill, opened_at = excluded.opened_at",
        )
        .bind(&t.id)
        .bind(&t.phone)
        .bind(&t.customer_id)
        .bind(&t.status)
        .bind(&t.subject)
        .bind(&t.skill)
        .bind(t.opened_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn record_interaction(&self, i: &InteractionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO interactions (id, phone, customer_id, started_at, queue, agent_id, outcome, tags) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET \
             queue = excluded.queue, agent_id = excluded.agent_id, outcome = excluded.outcome, tags = excluded.tags",
        )
        .bind(&i.id)
        .bind(&i.phone)
        .bind(&i.customer_id)
        .bind(i.started_at)
        .bind(&i.queue)
        .bind(&i.agent_id)
        .bind(&i.outcome)
        .bind(i.tags.join(","))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// One campaign send, as imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendRow {
    pub campaign: String,
    /// E.164.
    pub phone: String,
    pub sent_at: i64,
}

/// Rows per multi-row INSERT: well under SQLite's and PostgreSQL's bind-parameter limits.
const BATCH_ROWS: usize = 300;

impl Store {
    /// Inserts many sends in one transaction (multi-row statements); returns how many were new.
    /// Rows already present are skipped, so an import can be re-run.
    pub async fn add_campaign_sends(&self, rows: &[SendRow]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for chunk in rows.chunks(BATCH_ROWS) {
            let mut sql = String::with_capacity(64 + chunk.len() * 20);
            sql.push_str("INSERT INTO campaign_sends (phone, sent_at, campaign) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                let b = i * 3;
                sql.push_str(&format!("(${}, ${}, ${})", b + 1, b + 2, b + 3));
            }
            sql.push_str(" ON CONFLICT DO NOTHING");
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q.bind(&r.phone).bind(r.sent_at).bind(&r.campaign);
            }
            added += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }
}
