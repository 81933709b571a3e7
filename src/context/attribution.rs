//! The rows campaign reports are made of: each call matched to the campaign send that brought
//! it (the latest, or first, send to the caller's number inside that campaign's window before
//! the call), and recipients per campaign. One indexed lookup per call; aggregation is done by
//! `report/`.

use super::{Store, StoreError};
use sqlx::Row;

/// Which send a call is credited to when its number got several campaigns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// The most recent send before the call (what the caller most likely reacted to).
    #[default]
    Latest,
    /// The earliest send still inside its window.
    First,
}

/// One call credited to one campaign send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributedCall {
    pub interaction: String,
    pub phone: String,
    pub campaign: String,
    pub sent_at: i64,
    pub started_at: i64,
    pub outcome: Option<String>,
    pub wait_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub disposition: Option<String>,
}

/// A campaign and how many numbers it was sent to in the period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignRecipients {
    pub campaign: String,
    pub offer: String,
    pub window_minutes: i64,
    pub recipients: i64,
}

impl Store {
    /// Calls credited to sends made in `[since, until)` (unix seconds).
    pub async fn attributed_calls(
        &self,
        since: i64,
        until: i64,
        rule: Attribution,
    ) -> Result<Vec<AttributedCall>, StoreError> {
        let pick = match rule {
            Attribution::Latest => "MAX",
            Attribution::First => "MIN",
        };
        // The longest window bounds every index range scan on (phone, sent_at).
        let widest: i64 =
            sqlx::query("SELECT COALESCE(MAX(window_minutes), 0) * 60 AS w FROM campaigns")
                .fetch_one(&self.pool)
                .await?
                .try_get("w")?;
        let sql = format!(
            "SELECT i.id, i.phone, s.campaign, s.sent_at, i.started_at, i.outcome, i.wait_ms, i.talk_ms, i.disposition \
             FROM interactions i JOIN campaign_sends s ON s.phone = i.phone AND s.sent_at = ( \
               SELECT {pick}(s2.sent_at) FROM campaign_sends s2 JOIN campaigns c2 ON c2.name = s2.campaign \
               WHERE s2.phone = i.phone AND s2.sent_at <= i.started_at \
                 AND s2.sent_at >= i.started_at - $3 \
                 AND s2.sent_at >= i.started_at - c2.window_minutes * 60) \
             JOIN campaigns c ON c.name = s.campaign \
             WHERE i.started_at >= $1 AND i.started_at < $2 + $3 AND s.sent_at >= $1 AND s.sent_at < $2 \
               AND s.sent_at >= i.started_at - c.window_minutes * 60 \
             ORDER BY i.id, s.campaign"
        );
        let rows = sqlx::query(&sql)
            .bind(since)
            .bind(until)
            .bind(widest)
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<AttributedCall> = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.try_get("id")?;
            // Two campaigns sent in the same second: the call counts once.
            if out.last().is_some_and(|l| l.interaction == id) {
                continue;
            }
            out.push(AttributedCall {
                interaction: id,
                phone: r.try_get("phone")?,
                campaign: r.try_get("campaign")?,
                sent_at: r.try_get("sent_at")?,
                started_at: r.try_get("started_at")?,
                outcome: r.try_get("outcome")?,
                wait_ms: r.try_get("wait_ms")?,
                talk_ms: r.try_get("talk_ms")?,
                disposition: r.try_get("disposition")?,
            });
        }
        Ok(out)
    }

    /// Every campaign with its distinct recipients among sends in `[since, until)`.
    pub async fn campaign_recipients(
        &self,
        since: i64,
        until: i64,
    ) -> Result<Vec<CampaignRecipients>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.name, c.offer, c.window_minutes, \
             (SELECT COUNT(DISTINCT s.phone) FROM campaign_sends s \
              WHERE s.campaign = c.name AND s.sent_at >= $1 AND s.sent_at < $2) AS recipients \
             FROM campaigns c ORDER BY c.name",
        )
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(CampaignRecipients {
                    campaign: r.try_get("name")?,
                    offer: r.try_get("offer")?,
                    window_minutes: r.try_get("window_minutes")?,
                    recipients: r.try_get("recipients")?,
                })
            })
            .collect()
    }
}
