//! `lookup(number, now)` → [`CallerContext`]: everything routing and the screen pop need to know
//! about a caller, read with indexed queries on one connection.

use super::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// How far back campaign sends are read at all; each campaign's own window then applies.
pub const MAX_CAMPAIGN_WINDOW_S: i64 = 90 * 24 * 3600;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
}

/// A campaign message this number received, still inside the campaign's attribution window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignSend {
    pub campaign: String,
    pub sent_at: i64,
    pub offer: String,
    pub queue: Option<String>,
    pub skills: String,
    pub window_minutes: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub status: String,
    pub subject: String,
    pub skill: Option<String>,
    pub opened_at: i64,
}

/// One earlier call, for the pop and for "last agent" routing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastInteraction {
    pub started_at: i64,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub outcome: Option<String>,
    pub tags: Vec<String>,
}

/// Who is calling, as far as the store knows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

impl CallerContext {
    /// Adds what another source knows: the first customer and last agent found win; tags and
    /// open tickets add up without duplicates.
    pub fn absorb(&mut self, other: CallerContext) {
        if self.customer.is_none() {
            self.customer = other.customer;
        }
        for t in other.tags {
            if !self.tags.contains(&t) {
                self.tags.push(t);
            }
        }
        self.tags.sort();
        for t in other.tickets {
            if !self.tickets.iter().any(|x| x.id == t.id) {
                self.tickets.push(t);
            }
        }
        if self.last_agent.is_none() {
            self.last_agent = other.last_agent;
        }
    }
}

/// How one context source did on one lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    pub source: String,
    pub ms: u64,
    pub error: Option<String>,
}

fn tags_of(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every part of a caller's context in one statement, so a lookup is one round trip to the
/// database (five separate queries cost ~450 µs, nearly all of it per-query overhead). Each
/// branch reads its own index; rows are tagged by `kind` and sorted again in Rust.
const LOOKUP_SQL: &str = "\
SELECT 'customer' AS kind, c.id AS a, c.name AS b, c.email AS c, NULL AS d, 0 AS n1, 0 AS n2 \
  FROM customer_phones p JOIN customers c ON c.id = p.customer_id WHERE p.phone = $1 \
UNION ALL \
SELECT 'send', s.campaign, c.offer, c.queue, c.skills, s.sent_at, c.window_minutes \
  FROM (SELECT campaign, sent_at FROM campaign_sends \
        WHERE phone = $1 AND sent_at >= $2 AND sent_at <= $3 ORDER BY sent_at DESC LIMIT 50) s \
  JOIN campaigns c ON c.name = s.campaign \
UNION ALL \
SELECT 'ticket', t.id, t.status, t.subject, t.skill, t.opened_at, 0 \
  FROM (SELECT id, status, subject, skill, opened_at FROM tickets \
        WHERE (phone = $1 OR customer_id = (SELECT customer_id FROM customer_phones WHERE phone = $1)) \
          AND status <> 'closed' ORDER BY opened_at DESC LIMIT 20) t \
UNION ALL \
SELECT 'tag', g.tag, NULL, NULL, NULL, 0, 0 FROM customer_tags g \
  WHERE g.customer_id = (SELECT customer_id FROM customer_phones WHERE phone = $1) \
UNION ALL \
SELECT 'history', i.queue, i.agent_id, i.outcome, i.tags, i.started_at, 0 \
  FROM (SELECT queue, agent_id, outcome, tags, started_at FROM interactions \
        WHERE phone = $1 ORDER BY started_at DESC LIMIT 5) i";

impl Store {
    /// Reads the context of E.164 `number` at `now` (Unix seconds), in one round trip.
    pub async fn lookup(&self, number: &str, now: i64) -> Result<CallerContext, StoreError> {
        let rows = sqlx::query(LOOKUP_SQL)
            .bind(number)
            .bind(now - MAX_CAMPAIGN_WINDOW_S)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        let mut ctx = CallerContext {
            number: number.to_string(),
            ..Default::default()
        };
        for r in rows {
            let kind: String = r.try_get("kind")?;
            let a: Option<String> = r.try_get("a")?;
            let b: Option<String> = r.try_get("b")?;
            let c: Option<String> = r.try_get("c")?;
            let d: Option<String> = r.try_get("d")?;
            let n1: i64 = r.try_get("n1")?;
            let n2: i64 = r.try_get("n2")?;
            match kind.as_str() {
                "customer" => {
                    ctx.customer = Some(Customer {
                        id: a.unwrap_or_default(),
                        name: b.unwrap_or_default(),
                        email: c,
                    })
                }
                "send" if n1 + n2 * 60 >= now => ctx.campaigns.push(CampaignSend {
                    campaign: a.unwrap_or_default(),
                    sent_at: n1,
                    offer: b.unwrap_or_default(),
                    queue: c,
                    skills: d.unwrap_or_default(),
                    window_minutes: n2,
                }),
                "ticket" => ctx.tickets.push(Ticket {
                    id: a.unwrap_or_default(),
                    status: b.unwrap_or_default(),
                    subject: c.unwrap_or_default(),
                    skill: d,
                    opened_at: n1,
                }),
                "tag" => ctx.tags.extend(a),
                "history" => ctx.history.push(PastInteraction {
                    started_at: n1,
                    queue: a,
                    agent: b,
                    outcome: c,
                    tags: tags_of(d.as_deref().unwrap_or("")),
                }),
                _ => {}
            }
        }
        ctx.campaigns.sort_by_key(|s| std::cmp::Reverse(s.sent_at));
        ctx.tickets.sort_by_key(|t| std::cmp::Reverse(t.opened_at));
        ctx.tags.sort();
        ctx.history.sort_by_key(|h| std::cmp::Reverse(h.started_at));
        ctx.last_agent = ctx
            .history
            .iter()
            .find_map(|h| h.agent.clone().map(|a| (a, h.started_at)));
        Ok(ctx)
    }
}
