//! Queue statistics, the numbers a contact centre is judged by: service level, average speed of
//! answer, abandonment (short abandons set apart), average handle time, transfers per call and
//! first-contact resolution; per queue, per agent and per hour of the day. The wallboard shows
//! today's figures from this same code.

use super::ReportError;
use crate::context::stats_rows::CallStatRow;
use crate::context::Store;
use serde::Serialize;
use std::collections::BTreeMap;

/// What the figures are measured against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Thresholds {
    /// Service level: answered within this many seconds.
    pub sl_s: u64,
    /// Callers who hang up this fast never had a fair chance: not counted against the service.
    pub short_abandon_s: u64,
    /// A call is resolved first time if the number does not call again within these days.
    pub fcr_days: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            sl_s: 20,
            short_abandon_s: 5,
            fcr_days: 7,
        }
    }
}

/// Counts and sums, turned into rates by [`Figures::from`].
#[derive(Clone, Debug, Default, PartialEq)]
struct Tally {
    calls: u64,
    answered: u64,
    answered_in_sl: u64,
    abandoned: u64,
    abandoned_short: u64,
    wait_answered_ms: i64,
    talk_ms: i64,
    transfers: i64,
    resolved_first: u64,
    callbacks: u64,
    callbacks_failed: u64,
    timed_out: u64,
}

impl Tally {
    fn add(&mut self, r: &CallStatRow, t: &Thresholds) {
        self.calls += 1;
        self.transfers += r.transfers;
        self.callbacks += r.callback as u64;
        self.callbacks_failed += (r.outcome.as_deref() == Some("callback failed")) as u64;
        self.timed_out += (r.outcome.as_deref() == Some("timed out")) as u64;
        match r.outcome.as_deref() {
            Some("answered") => {
                self.answered += 1;
                let w = r.wait_ms.unwrap_or(0);
                self.wait_answered_ms += w;
                self.answered_in_sl += (w as u64 <= t.sl_s * 1000) as u64;
                self.talk_ms += r.talk_ms.unwrap_or(0);
                self.resolved_first += (!r.repeated) as u64;
            }
            Some(o) if o.starts_with("abandoned") => {
                self.abandoned += 1;
                self.abandoned_short +=
                    ((r.wait_ms.unwrap_or(0) as u64) < t.short_abandon_s * 1000) as u64;
            }
            // Let go at the maximum wait, or never reached on a callback: not served.
            Some("timed out" | "callback failed") => self.abandoned += 1,
            _ => {}
        }
    }
}

/// The figures for one queue, agent or hour.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    pub calls: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub abandoned_short: u64,
    /// Answered within the threshold, of answered plus abandoned (short abandons left out), %.
    pub service_level_pct: Option<f64>,
    /// Average speed of answer (wait of answered calls), seconds.
    pub asa_s: Option<f64>,
    /// Abandoned (short abandons left out) of answered plus those, %.
    pub abandon_pct: Option<f64>,
    /// Average talk time of answered calls, seconds.
    pub aht_s: Option<f64>,
    pub transfers_per_call: Option<f64>,
    /// Answered calls whose number did not call again within the FCR window, %.
    pub fcr_pct: Option<f64>,
    /// Callers who asked to be called back, and of those the ones never reached.
    pub callbacks: u64,
    pub callbacks_failed: u64,
    /// Callers let go at a queue's maximum wait (no overflow queue).
    pub timed_out: u64,
}

fn ratio(n: f64, d: u64, scale: f64) -> Option<f64> {
    (d > 0).then(|| (n / d as f64 * scale * 10.0).round() / 10.0)
}

impl From<&Tally> for Figures {
    fn from(t: &Tally) -> Figures {
        let fair = t.answered + t.abandoned - t.abandoned_short;
        Figures {
            calls: t.calls,
            answered: t.answered,
            abandoned: t.abandoned,
            abandoned_short: t.abandoned_short,
            service_level_pct: ratio(t.answered_in_sl as f64, fair, 100.0),
            asa_s: ratio(t.wait_answered_ms as f64 / 1000.0, t.answered, 1.0),
            abandon_pct: ratio((t.abandoned - t.abandoned_short) as f64, fair, 100.0),
            aht_s: ratio(t.talk_ms as f64 / 1000.0, t.answered, 1.0),
            transfers_per_call: (t.calls > 0)
                .then(|| (t.transfers as f64 / t.calls as f64 * 100.0).round() / 100.0),
            fcr_pct: ratio(t.resolved_first as f64, t.answered, 100.0),
            callbacks: t.callbacks,
            callbacks_failed: t.callbacks_failed,
            timed_out: t.timed_out,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueReport {
    pub since: i64,
    pub until: i64,
    pub thresholds: Thresholds,
    pub total: Figures,
    pub queues: BTreeMap<String, Figures>,
    pub agents: BTreeMap<String, Figures>,
    /// By hour of the day (UTC), 0–23.
    pub hours: BTreeMap<u8, Figures>,
}

/// Folds call rows into the report (pure: tested without a database).
pub fn build(rows: &[CallStatRow], since: i64, until: i64, t: Thresholds) -> QueueReport {
    let mut total = Tally::default();
    let mut queues: BTreeMap<String, Tally> = BTreeMap::new();
    let mut agents: BTreeMap<String, Tally> = BTreeMap::new();
    let mut hours: BTreeMap<u8, Tally> = BTreeMap::new();
    for r in rows {
        total.add(r, &t);
        if let Some(q) = &r.queue {
            queues.entry(q.clone()).or_default().add(r, &t);
        }
        if let Some(a) = &r.agent_id {
            agents.entry(a.clone()).or_default().add(r, &t);
        }
        let h = (r.started_at.rem_euclid(86_400) / 3600) as u8;
        hours.entry(h).or_default().add(r, &t);
    }
    QueueReport {
        since,
        until,
        thresholds: t,
        total: Figures::from(&total),
        queues: figures(queues),
        agents: figures(agents),
        hours: figures(hours),
    }
}

fn figures<K: Ord>(m: BTreeMap<K, Tally>) -> BTreeMap<K, Figures> {
    m.into_iter().map(|(k, v)| (k, Figures::from(&v))).collect()
}

pub async fn report(
    store: &Store,
    since: i64,
    until: i64,
    t: Thresholds,
) -> Result<QueueReport, ReportError> {
    let rows = store
        .call_stat_rows(since, until, t.fcr_days as i64 * 86_400)
        .await?;
    Ok(build(&rows, since, until, t))
}

fn n(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

const HEAD: [&str; 14] = [
    "",
    "calls",
    "answered",
    "abandoned",
    "short",
    "sl%",
    "asa_s",
    "abandon%",
    "aht_s",
    "xfer/call",
    "fcr%",
    "callbacks",
    "cb_failed",
    "timed_out",
];

fn cells(name: &str, f: &Figures) -> [String; 14] {
    [
        name.to_string(),
        f.calls.to_string(),
        f.answered.to_string(),
        f.abandoned.to_string(),
        f.abandoned_short.to_string(),
        n(f.service_level_pct),
        n(f.asa_s),
        n(f.abandon_pct),
        n(f.aht_s),
        f.transfers_per_call
            .map(|x| format!("{x:.2}"))
            .unwrap_or_else(|| "-".into()),
        n(f.fcr_pct),
        f.callbacks.to_string(),
        f.callbacks_failed.to_string(),
        f.timed_out.to_string(),
    ]
}

fn sections(r: &QueueReport) -> Vec<(String, Vec<(String, &Figures)>)> {
    vec![
        (
            "queue".into(),
            r.queues
                .iter()
                .map(|(k, v)| (k.clone(), v))
                .chain([("(all)".to_string(), &r.total)])
                .collect(),
        ),
        (
            "agent".into(),
            r.agents.iter().map(|(k, v)| (k.clone(), v)).collect(),
        ),
        (
            "hour (UTC)".into(),
            r.hours
                .iter()
                .map(|(k, v)| (format!("{k:02}:00"), v))
                .collect(),
        ),
    ]
}

/// Plain-text tables: per queue, per agent, per hour.
pub fn table(r: &QueueReport) -> String {
    let mut out = format!(
        "service level = answered within {} s; short abandon < {} s; FCR = no repeat call within {} days\n",
        r.thresholds.sl_s, r.thresholds.short_abandon_s, r.thresholds.fcr_days
    );
    for (title, rows) in sections(r) {
        let mut head = HEAD.map(String::from);
        head[0] = title;
        out.push('\n');
        for line in std::iter::once(head).chain(rows.iter().map(|(k, f)| cells(k, f))) {
            out.push_str(&format!(
                "{:<14} {:>6} {:>8} {:>9} {:>6} {:>6} {:>6} {:>9} {:>6} {:>9} {:>6}\n",
                line[0],
                line[1],
                line[2],
                line[3],
                line[4],
                line[5],
                line[6],
                line[7],
                line[8],
                line[9],
                line[10]
            ));
        }
    }
    out
}

/// CSV: one row per queue, agent and hour, with a `kind` column.
pub fn csv(r: &QueueReport) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head = vec!["kind".to_string(), "name".to_string()];
    head.extend(HEAD[1..].iter().map(|s| s.to_string()));
    let _ = w.write_record(&head);
    for (kind, rows) in sections(r) {
        for (k, f) in rows {
            let mut rec = vec![kind.clone()];
            rec.extend(cells(&k, f));
            let _ = w.write_record(&rec);
        }
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        q: &str,
        agent: Option<&str>,
        outcome: &str,
        wait_s: i64,
        talk_s: i64,
        repeated: bool,
    ) -> CallStatRow {
        CallStatRow {
            queue: Some(q.into()),
            agent_id: agent.map(String::from),
            started_at: 9 * 3600 + 60,
            outcome: Some(outcome.into()),
            wait_ms: Some(wait_s * 1000),
            talk_ms: (outcome == "answered").then_some(talk_s * 1000),
            transfers: 0,
            repeated,
            callback: outcome == "callback failed",
        }
    }

    #[test]
    fn the_standard_figures() {
        let rows = vec![
            row("sales", Some("1001"), "answered", 10, 100, false),
            row("sales", Some("1001"), "answered", 30, 200, true),
            row("sales", None, "abandoned", 2, 0, false),
            row("sales", None, "abandoned", 40, 0, false),
            CallStatRow {
                transfers: 2,
                ..row("support", Some("1002"), "answered", 5, 60, false)
            },
        ];
        let r = build(&rows, 0, 86_400, Thresholds::default());
        let s = &r.queues["sales"];
        assert_eq!(
            (s.calls, s.answered, s.abandoned, s.abandoned_short),
            (4, 2, 2, 1)
        );
        // 1 answered in 20 s, of 2 answered + 2 abandoned − 1 short.
        assert_eq!(s.service_level_pct, Some(33.3));
        assert_eq!(s.asa_s, Some(20.0));
        assert_eq!(s.abandon_pct, Some(33.3));
        assert_eq!(s.aht_s, Some(150.0));
        assert_eq!(s.fcr_pct, Some(50.0));
        assert_eq!(r.queues["support"].transfers_per_call, Some(2.0));
        assert_eq!(r.agents["1001"].answered, 2);
        assert_eq!(r.hours[&9].calls, 5);
        assert_eq!(r.total.calls, 5);
        assert!(table(&r).contains("sales"));
        assert!(csv(&r).contains("queue,sales,4,2,2,1,33.3,20.0,33.3,150.0,0.00,50.0,0,0,0"));
    }

    #[test]
    fn callbacks_and_callers_let_go_are_counted_and_count_as_unserved() {
        let rows = vec![
            CallStatRow {
                callback: true,
                ..row("sales", Some("1001"), "answered", 300, 60, false)
            },
            row("sales", None, "callback failed", 900, 0, false),
            row("sales", None, "timed out", 600, 0, false),
        ];
        let r = build(&rows, 0, 86_400, Thresholds::default());
        let s = &r.queues["sales"];
        assert_eq!((s.callbacks, s.callbacks_failed, s.timed_out), (2, 1, 1));
        assert_eq!((s.answered, s.abandoned), (1, 2));
        assert_eq!(
            s.service_level_pct,
            Some(0.0),
            "none of the three served in 20 s"
        );
    }
}
