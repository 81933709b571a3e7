//! `lookup(number, now)` → [`CallerContext`]: everything routing and the screen pop need to know
//! about a caller, read with indexed queries on one connection.

use super::{Store, StoreError};
use serde::Serialize;
use sqlx::Row;

/// How far back campaign sends are read at all; each campaign's own window then applies.
pub const MAX_CAMPAIGN_WINDOW_S: i64 = 90 * 24 * 3600;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
}

/// A campaign message this number received, still inside the campaign's attribution window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CampaignSend {
    pub campaign: String,
    pub sent_at: i64,
    pub offer: String,
    pub queue: Option<String>,
    pub skills: String,
    pub window_minutes: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ticket {
    pub id: String,
    pub status: String,
    pub subject: String,
    pub skill: Option<String>,
    pub opened_at: i64,
}

/// One earlier call, for the pop and for "last agent" routing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PastInteraction {
    pub started_at: i64,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub outcome: Option<String>,
    pub tags: Vec<String>,
}

/// Who is calling, as far as the store knows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CallerContext {
    /// E.164.
    pub number: String,
    pub customer: Option<Customer>,
    /// Inside their windows, latest first.
    pub campaigns: Vec<CampaignSend>,
    /// Not closed, newest first.
    pub tickets: Vec<Ticket>,
    pub tags: Vec<String>,
    /// Newest first, at most five.
    pub history: Vec<PastInteraction>,
    /// The agent of the most recent call that reached one, and when.
    pub last_agent: Option<(String, i64)>,
}

fn tags_of(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

impl Store {
    /// Reads the context of E.164 `number` at `now` (Unix seconds).
    pub async fn lookup(&self, number: &str, now: i64) -> Result<CallerContext, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut ctx = CallerContext {
            number: number.to_string(),
            ..Default::default()
        };
        if let Some(r) = sqlx::query(
            "SELECT c.id, c.name, c.email FROM customer_phones p JOIN customers c ON c.id = p.customer_id WHERE p.phone = $1",
        )
        .bind(number)
        .fetch_optional(&mut *conn)
        .await?
        {
            ctx.customer = Some(Customer {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                email: r.try_get("email")?,
            });
        }
        let rows = sqlx::query(
            "SELECT s.campaign, s.sent_at, c.offer, c.queue, c.skills, c.window_minutes \
             FROM campaign_sends s JOIN campaigns c ON c.name = s.campaign \
             WHERE s.phone = $1 AND s.sent_at >= $2 AND s.sent_at <= $3 \
             ORDER BY s.sent_at DESC LIMIT 50",
        )
        .bind(number)
        .bind(now - MAX_CAMPAIGN_WINDOW_S)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            let send = CampaignSend {
                campaign: r.try_get("campaign")?,
                sent_at: r.try_get("sent_at")?,
                offer: r.try_get("offer")?,
                queue: r.try_get("queue")?,
                skills: r.try_get("skills")?,
                window_minutes: r.try_get("window_minutes")?,
            };
            if send.sent_at + send.window_minutes * 60 >= now {
                ctx.campaigns.push(send);
            }
        }
        let customer_id = ctx
            .customer
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_default();
        let rows = sqlx::query(
            "SELECT id, status, subject, skill, opened_at FROM tickets \
             WHERE (phone = $1 OR customer_id = $2) AND status <> 'closed' \
             ORDER BY opened_at DESC LIMIT 20",
        )
        .bind(number)
        .bind(&customer_id)
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            ctx.tickets.push(Ticket {
                id: r.try_get("id")?,
                status: r.try_get("status")?,
                subject: r.try_get("subject")?,
                skill: r.try_get("skill")?,
                opened_at: r.try_get("opened_at")?,
            });
        }
        if !customer_id.is_empty() {
            let rows =
                sqlx::query("SELECT tag FROM customer_tags WHERE customer_id = $1 ORDER BY tag")
                    .bind(&customer_id)
                    .fetch_all(&mut *conn)
                    .await?;
            for r in rows {
                ctx.tags.push(r.try_get("tag")?);
            }
        }
        let rows = sqlx::query(
            "SELECT started_at, queue, agent_id, outcome, tags FROM interactions \
             WHERE phone = $1 ORDER BY started_at DESC LIMIT 5",
        )
        .bind(number)
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            let tags: String = r.try_get("tags")?;
            ctx.history.push(PastInteraction {
                started_at: r.try_get("started_at")?,
                queue: r.try_get("queue")?,
                agent: r.try_get("agent_id")?,
                outcome: r.try_get("outcome")?,
                tags: tags_of(&tags),
            });
        }
        ctx.last_agent = ctx
            .history
            .iter()
            .find_map(|h| h.agent.clone().map(|a| (a, h.started_at)));
        Ok(ctx)
    }
}
