//! Campaign attribution: per campaign, the recipients, the recipients who called inside the
//! window, what became of their calls, and when they called after the send.

use super::ReportError;
use crate::context::attribution::{AttributedCall, Attribution, CampaignRecipients};
use crate::context::Store;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// Hours-since-send buckets are capped here (later calls count in the last bucket).
pub const MAX_HOURS: usize = 72;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CampaignRow {
    pub campaign: String,
    pub offer: String,
    pub window_minutes: i64,
    /// Distinct numbers the campaign was sent to in the period.
    pub recipients: i64,
    /// Recipients who called inside the window.
    pub callers: u64,
    /// Callers per recipient, percent.
    pub response_pct: Option<f64>,
    pub calls: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub avg_wait_s: Option<f64>,
    pub avg_talk_s: Option<f64>,
    pub dispositions: BTreeMap<String, u64>,
    /// Calls dispositioned `sale`, per recipient, percent.
    pub conversion_pct: Option<f64>,
    /// Calls by whole hours since the send (index 0 = within the first hour).
    pub by_hour: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CampaignReport {
    pub since: i64,
    pub until: i64,
    pub attribution: Attribution,
    pub campaigns: Vec<CampaignRow>,
}

fn pct(n: u64, d: i64) -> Option<f64> {
    (d > 0).then(|| (1000.0 * n as f64 / d as f64).round() / 10.0)
}

fn avg(v: &[i64]) -> Option<f64> {
    (!v.is_empty()).then(|| (v.iter().sum::<i64>() as f64 / v.len() as f64 / 100.0).round() / 10.0)
}

/// Folds attributed calls into per-campaign rows (pure: tested without a database).
pub fn build(
    campaigns: Vec<CampaignRecipients>,
    calls: &[AttributedCall],
    since: i64,
    until: i64,
    attribution: Attribution,
) -> CampaignReport {
    let rows = campaigns
        .into_iter()
        .map(|c| {
            let mine: Vec<&AttributedCall> =
                calls.iter().filter(|x| x.campaign == c.campaign).collect();
            let hours = ((c.window_minutes.max(1) as usize).div_ceil(60)).clamp(1, MAX_HOURS);
            let mut by_hour = vec![0u64; hours];
            let mut dispositions = BTreeMap::new();
            let (mut waits, mut talks) = (Vec::new(), Vec::new());
            let (mut answered, mut abandoned) = (0, 0);
            for x in &mine {
                let h = ((x.started_at - x.sent_at).max(0) / 3600) as usize;
                by_hour[h.min(hours - 1)] += 1;
                match x.outcome.as_deref() {
                    Some("answered") => {
                        answered += 1;
                        talks.extend(x.talk_ms);
                    }
                    Some(o) if o.starts_with("abandoned") => abandoned += 1,
                    Some("timed out" | "callback failed") => abandoned += 1,
                    _ => {}
                }
                waits.extend(x.wait_ms);
                if let Some(d) = &x.disposition {
                    *dispositions.entry(d.clone()).or_insert(0) += 1;
                }
            }
            let callers = mine
                .iter()
                .map(|x| x.phone.as_str())
                .collect::<HashSet<_>>()
                .len() as u64;
            let sales = dispositions.get("sale").copied().unwrap_or(0);
            CampaignRow {
                response_pct: pct(callers, c.recipients),
                conversion_pct: pct(sales, c.recipients),
                campaign: c.campaign,
                offer: c.offer,
                window_minutes: c.window_minutes,
                recipients: c.recipients,
                callers,
                calls: mine.len() as u64,
                answered,
                abandoned,
                avg_wait_s: avg(&waits),
                avg_talk_s: avg(&talks),
                dispositions,
                by_hour,
            }
        })
        .collect();
    CampaignReport {
        since,
        until,
        attribution,
        campaigns: rows,
    }
}

/// Reads and builds the report for `[since, until)`.
pub async fn report(
    store: &Store,
    since: i64,
    until: i64,
    attribution: Attribution,
) -> Result<CampaignReport, ReportError> {
    let campaigns = store.campaign_recipients(since, until).await?;
    let calls = store.attributed_calls(since, until, attribution).await?;
    Ok(build(campaigns, &calls, since, until, attribution))
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

fn dispositions(d: &BTreeMap<String, u64>) -> String {
    d.iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A plain-text table for the terminal.
pub fn table(r: &CampaignReport) -> String {
    let mut out = format!(
        "{:<20} {:>10} {:>8} {:>7} {:>6} {:>8} {:>9} {:>7} {:>7} {:>6}  dispositions\n",
        "campaign",
        "recipients",
        "callers",
        "resp%",
        "calls",
        "answered",
        "abandoned",
        "wait_s",
        "talk_s",
        "conv%"
    );
    for c in &r.campaigns {
        out.push_str(&format!(
            "{:<20} {:>10} {:>8} {:>7} {:>6} {:>8} {:>9} {:>7} {:>7} {:>6}  {}\n",
            c.campaign,
            c.recipients,
            c.callers,
            num(c.response_pct),
            c.calls,
            c.answered,
            c.abandoned,
            num(c.avg_wait_s),
            num(c.avg_talk_s),
            num(c.conversion_pct),
            dispositions(&c.dispositions)
        ));
    }
    out
}

/// CSV with a header row (spreadsheet-ready).
pub fn csv(r: &CampaignReport) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "campaign",
        "offer",
        "recipients",
        "callers",
        "response_pct",
        "calls",
        "answered",
        "abandoned",
        "avg_wait_s",
        "avg_talk_s",
        "conversion_pct",
        "dispositions",
        "calls_by_hour",
    ]);
    for c in &r.campaigns {
        let by_hour: Vec<String> = c.by_hour.iter().map(u64::to_string).collect();
        let _ = w.write_record([
            c.campaign.clone(),
            c.offer.clone(),
            c.recipients.to_string(),
            c.callers.to_string(),
            num(c.response_pct),
            c.calls.to_string(),
            c.answered.to_string(),
            c.abandoned.to_string(),
            num(c.avg_wait_s),
            num(c.avg_talk_s),
            num(c.conversion_pct),
            dispositions(&c.dispositions),
            by_hour.join(" "),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(
        id: &str,
        phone: &str,
        campaign: &str,
        after_s: i64,
        outcome: &str,
        disp: Option<&str>,
    ) -> AttributedCall {
        AttributedCall {
            interaction: id.into(),
            phone: phone.into(),
            campaign: campaign.into(),
            sent_at: 1000,
            started_at: 1000 + after_s,
            outcome: Some(outcome.into()),
            wait_ms: Some(2000),
            talk_ms: (outcome == "answered").then_some(60_000),
            disposition: disp.map(String::from),
        }
    }

    #[test]
    fn rows_count_callers_once_and_bucket_calls_by_hours_since_the_send() {
        let camps = vec![CampaignRecipients {
            campaign: "spring".into(),
            offer: "AC -20%".into(),
            window_minutes: 180,
            recipients: 10,
        }];
        let calls = vec![
            call("a", "+1", "spring", 60, "answered", Some("sale")),
            call("b", "+1", "spring", 4000, "abandoned", None),
            call("c", "+2", "spring", 9000, "answered", Some("resolved")),
        ];
        let r = build(camps, &calls, 0, 10_000, Attribution::Latest);
        let c = &r.campaigns[0];
        assert_eq!((c.callers, c.calls, c.answered, c.abandoned), (2, 3, 2, 1));
        assert_eq!(c.by_hour, vec![1, 1, 1]);
        assert_eq!(c.response_pct, Some(20.0));
        assert_eq!(c.conversion_pct, Some(10.0));
        assert_eq!(c.avg_wait_s, Some(2.0));
        assert_eq!(c.avg_talk_s, Some(60.0));
        assert_eq!(c.dispositions.get("sale"), Some(&1));
        assert!(csv(&r)
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("spring,AC -20%,10,2,20.0,3,2,1"));
        assert!(table(&r).contains("spring"));
    }
}
