//! Prometheus text exposition: counters the hub keeps (pop and lookup latency) plus the live
//! call, queue and agent figures the core reports at scrape time.

use crate::control::StatusReport;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fixed-bucket latency histogram in milliseconds; lock-free to record.
pub struct Histogram {
    bounds_ms: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_us: AtomicU64,
    count: AtomicU64,
}

const BOUNDS: &[f64] = &[
    0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 150.0, 250.0, 500.0, 1000.0,
];

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            bounds_ms: BOUNDS,
            counts: BOUNDS.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record_us(&self, us: u64) {
        let ms = us as f64 / 1000.0;
        if let Some(i) = self.bounds_ms.iter().position(|b| ms <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (b, c) in self.bounds_ms.iter().zip(&self.counts) {
            cum += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cum}", b / 1000.0);
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {n}");
    }
}

/// What the hub measures.
#[derive(Default)]
pub struct Metrics {
    /// From the Offered event reaching the desk layer to the pop written on the agent's socket.
    pub pop_latency: Histogram,
    /// From the Offered event to the desk saying the pop is on screen (the phone rings then).
    pub pop_shown_latency: Histogram,
    /// The context lookup of each call.
    pub lookup_latency: Histogram,
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole `/metrics` page.
pub fn render(m: &Metrics, s: &StatusReport) -> String {
    let mut out = String::with_capacity(4096);
    let t = &s.status.totals;
    out.push_str(
        "# HELP acd_calls_total Calls since start, by outcome.\n# TYPE acd_calls_total counter\n",
    );
    for (k, v) in [
        ("arrived", t.arrived),
        ("refused", t.refused),
        ("connected", t.connected),
        ("abandoned", t.abandoned),
        ("ended", t.ended),
    ] {
        let _ = writeln!(out, "acd_calls_total{{outcome=\"{k}\"}} {v}");
    }
    let waiting: usize = s.queues.iter().map(|q| q.waiting).sum();
    let ringing: usize = s.queues.iter().map(|q| q.ringing).sum();
    let talking = s
        .agents
        .iter()
        .filter(|a| matches!(a.state, crate::acd::AgentState::Busy(_)))
        .count();
    out.push_str("# HELP acd_calls Live calls by state.\n# TYPE acd_calls gauge\n");
    let _ = writeln!(out, "acd_calls{{state=\"waiting\"}} {waiting}");
    let _ = writeln!(out, "acd_calls{{state=\"ringing\"}} {ringing}");
    let _ = writeln!(out, "acd_calls{{state=\"talking\"}} {talking}");
    let other = s.status.calls.saturating_sub(waiting + ringing + talking);
    let _ = writeln!(out, "acd_calls{{state=\"other\"}} {other}");
    out.push_str(
        "# HELP acd_queue_waiting Callers waiting per queue.\n# TYPE acd_queue_waiting gauge\n",
    );
    for q in &s.queues {
        let _ = writeln!(
            out,
            "acd_queue_waiting{{queue=\"{}\"}} {}",
            label(&q.name),
            q.waiting
        );
    }
    out.push_str("# HELP acd_queue_callbacks Of the callers waiting, those to be called back.\n# TYPE acd_queue_callbacks gauge\n");
    for q in &s.queues {
        let _ = writeln!(
            out,
            "acd_queue_callbacks{{queue=\"{}\"}} {}",
            label(&q.name),
            q.callbacks
        );
    }
    out.push_str("# HELP acd_queue_longest_wait_seconds Longest current wait per queue.\n# TYPE acd_queue_longest_wait_seconds gauge\n");
    for q in &s.queues {
        let _ = writeln!(
            out,
            "acd_queue_longest_wait_seconds{{queue=\"{}\"}} {}",
            label(&q.name),
            q.longest_wait_s
        );
    }
    out.push_str("# HELP acd_agents Agents by state.\n# TYPE acd_agents gauge\n");
    let mut by_state: std::collections::BTreeMap<&str, usize> = [
        "offline",
        "logged_out",
        "idle",
        "ringing",
        "busy",
        "resting",
        "paused",
        "wrap_up",
    ]
    .into_iter()
    .map(|k| (k, 0))
    .collect();
    for a in &s.agents {
        *by_state
            .entry(super::wallboard::state_name(a.state))
            .or_default() += 1;
    }
    for (k, v) in by_state {
        let _ = writeln!(out, "acd_agents{{state=\"{k}\"}} {v}");
    }
    m.pop_latency.render(
        &mut out,
        "acd_pop_latency_seconds",
        "From the offer to the screen pop written on the agent's WebSocket.",
    );
    m.pop_shown_latency.render(
        &mut out,
        "acd_pop_shown_seconds",
        "From the offer to the agent's desk confirming the pop is on screen.",
    );
    m.lookup_latency.render(
        &mut out,
        "acd_context_lookup_seconds",
        "Caller context lookup time per call.",
    );
    let _ = writeln!(
        out,
        "# HELP acd_rtp_packets_relayed_total RTP packets relayed.\n# TYPE acd_rtp_packets_relayed_total counter\nacd_rtp_packets_relayed_total{{direction=\"to_agent\"}} {}\nacd_rtp_packets_relayed_total{{direction=\"to_caller\"}} {}",
        s.media.relayed_to_agent, s.media.relayed_to_caller
    );
    let _ = writeln!(
        out,
        "# HELP acd_rtp_packets_dropped_total RTP packets the relay refused: from a stranger to a locked leg, a NAT candidate in probation, a payload type not negotiated, not RTP.\n# TYPE acd_rtp_packets_dropped_total counter"
    );
    for (reason, n) in &s.media.dropped {
        let _ = writeln!(
            out,
            "acd_rtp_packets_dropped_total{{reason=\"{reason}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP acd_rtp_legs_learned_total RTP legs that locked onto their peer's address.\n# TYPE acd_rtp_legs_learned_total counter\nacd_rtp_legs_learned_total {}",
        s.media.learned
    );
    render_limits(&mut out, s);
    out
}

/// The defences against floods: every cap and budget has a counter here (SECURITY.md).
fn render_limits(out: &mut String, s: &StatusReport) {
    use crate::sip::budget::Class;
    let sip = &s.status.sip;
    let _ = writeln!(
        out,
        "# HELP acd_sip_budget_refused_total Requests over their source's budget, answered 503 + Retry-After.\n# TYPE acd_sip_budget_refused_total counter"
    );
    for c in Class::ALL {
        let _ = writeln!(
            out,
            "acd_sip_budget_refused_total{{class=\"{}\"}} {}",
            c.label(),
            sip.budget.refused[c as usize]
        );
    }
    let _ = writeln!(
        out,
        "# HELP acd_sip_budget_dropped_total Requests far over their source's budget, not answered.\n# TYPE acd_sip_budget_dropped_total counter"
    );
    for c in Class::ALL {
        let _ = writeln!(
            out,
            "acd_sip_budget_dropped_total{{class=\"{}\"}} {}",
            c.label(),
            sip.budget.dropped[c as usize]
        );
    }
    for (name, help, kind, v) in [
        (
            "acd_sip_budget_sources",
            "Source addresses tracked by the budgets.",
            "gauge",
            sip.budget.sources as u64,
        ),
        (
            "acd_sip_budget_evictions_total",
            "Times the source table filled and its older half was dropped.",
            "counter",
            sip.budget.evictions,
        ),
        (
            "acd_sip_transactions",
            "Live SIP transactions.",
            "gauge",
            s.status.transactions as u64,
        ),
        (
            "acd_sip_transactions_full_total",
            "Requests refused (503) because sip.max_transactions were alive.",
            "counter",
            sip.transactions_full,
        ),
        (
            "acd_sip_auth_banned_total",
            "REGISTERs refused from addresses banned for guessing passwords.",
            "counter",
            sip.banned,
        ),
        (
            "acd_sip_auth_failures_total",
            "Wrong digest answers.",
            "counter",
            sip.auth_failures,
        ),
        (
            "acd_sip_overload_shed_total",
            "New requests answered 503 + Retry-After because they waited past sip.overload_delay_ms.",
            "counter",
            sip.shed,
        ),
        (
            "acd_sip_overload_waiting",
            "New requests waiting for the core now.",
            "gauge",
            s.fresh_waiting as u64,
        ),
        (
            "acd_sip_overload_dropped_total",
            "New UDP requests dropped unanswered because their queue was full.",
            "counter",
            s.fresh_dropped,
        ),
        (
            "acd_sip_dialog_dropped_total",
            "In-dialog UDP messages dropped because their queue was full.",
            "counter",
            s.dialog_dropped,
        ),
        (
            "acd_rtp_port_bind_failures_total",
            "RTP ports skipped because they would not bind (held by another program).",
            "counter",
            s.status.rtp_bind_failures,
        ),
        (
            "acd_rtp_digits_dropped_total",
            "Digits not reported because the core was behind and the call's backlog was full.",
            "counter",
            s.media.digits_dropped,
        ),
        (
            "acd_callbacks_refused_total",
            "Callback requests refused by the [callback] policy (unverified number, prefix, daily caps).",
            "counter",
            s.status.callbacks_refused,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP acd_history_events_overflowed_total Events for the history writer that waited beyond its channel (none lost).\n# TYPE acd_history_events_overflowed_total counter\nacd_history_events_overflowed_total {}\n# HELP acd_history_events_waiting Events waiting for the history writer's channel.\n# TYPE acd_history_events_waiting gauge\nacd_history_events_waiting {}\n# HELP acd_history_events_lost_total Events lost past the overflow cap (the writer was stuck).\n# TYPE acd_history_events_lost_total counter\nacd_history_events_lost_total {}",
        s.events_overflowed, s.events_waiting, s.events_lost
    );
    let _ = writeln!(
        out,
        "# HELP acd_calls_refused_cap_total New calls refused (503) by a cap.\n# TYPE acd_calls_refused_cap_total counter\nacd_calls_refused_cap_total{{cap=\"max_calls\"}} {}\nacd_calls_refused_cap_total{{cap=\"max_calls_per_source\"}} {}",
        s.status.calls_full, s.status.source_full
    );
    let _ = writeln!(
        out,
        "# HELP acd_tcp_refused_total TCP connections closed at accept by a cap.\n# TYPE acd_tcp_refused_total counter\nacd_tcp_refused_total{{cap=\"tcp_max_connections\"}} {}\nacd_tcp_refused_total{{cap=\"tcp_max_per_source\"}} {}",
        s.tcp_refused_total, s.tcp_refused_per_source
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_in_seconds() {
        let h = Histogram::default();
        h.record_us(300);
        h.record_us(4_000);
        h.record_us(2_000_000);
        let mut s = String::new();
        h.render(&mut s, "x", "help");
        assert!(s.contains("x_bucket{le=\"0.0005\"} 1"), "{s}");
        assert!(s.contains("x_bucket{le=\"0.005\"} 2"), "{s}");
        assert!(s.contains("x_bucket{le=\"1\"} 2"), "{s}");
        assert!(s.contains("x_bucket{le=\"+Inf\"} 3"), "{s}");
        assert!(s.contains("x_count 3"), "{s}");
    }
}
