//! Dispatch cost when an agent becomes free: 1,000 agents (999 of them talking) and 100, 1,000
//! or 10,000 callers waiting. It should be flat (per-queue ordered index, per-skill idle index,
//! no scan of all callers). Criterion gives the mean; p50/p99 are printed from 20,000 timed
//! rounds per size.
//!
//! Two shapes: a plain skill queue, and a widening queue whose free agent has only the skill a
//! widening step added (dispatch then merges the idle sets of every skill the queue draws on
//! and checks each caller's stage).

use acd::acd::{Acd, Decision, QueueConfig, Widen};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const AGENTS: u64 = 1_000;

fn queue(widening: bool) -> QueueConfig {
    let q = QueueConfig {
        retry_after: Duration::ZERO,
        ..QueueConfig::new("sales", "sales")
    };
    if !widening {
        return q;
    }
    QueueConfig {
        min_level: 4,
        widen: vec![Widen {
            after: Duration::from_secs(1),
            min_level: None,
            skills: vec![("billing".into(), 1)],
        }],
        ..q
    }
}

/// An engine with `waiting` callers queued and every agent but "a" busy with a call. With
/// `widening`, "a" has only the billing skill and reaches callers once they have waited 1 s.
fn engine(t0: Instant, waiting: u64, widening: bool) -> Acd {
    let mut acd = Acd::new(vec![queue(widening)]);
    let skills = HashMap::from([("sales".to_string(), 5)]);
    let a = if widening { "billing" } else { "sales" };
    acd.upsert_agent(t0, "a", HashMap::from([(a.to_string(), 5)]));
    // The other agents each take one of the first callers and keep talking.
    for i in 0..AGENTS - 1 {
        let id = format!("b{i}");
        acd.upsert_agent(t0, &id, skills.clone());
        acd.agent_online(t0, &id);
        acd.enqueue(t0, 1_000_000 + i, "sales", 0).unwrap();
        acd.offer_answered(t0, 1_000_000 + i);
    }
    for call in 0..waiting {
        acd.enqueue(t0, call, "sales", 0).unwrap();
    }
    acd.handle_timeout(t0 + Duration::from_secs(2));
    while acd.poll_decision().is_some() {}
    acd
}

/// Agent "a" comes free → is offered the head caller → answers → hangs up; a new caller keeps
/// the queue at the same depth. The clock moves 2 s a round so new callers widen in time
/// (outside the timed part).
fn round(acd: &mut Acd, now: &mut Instant, next: &mut u64) -> Duration {
    *now += Duration::from_secs(2);
    acd.handle_timeout(*now);
    while acd.poll_decision().is_some() {}
    let t = Instant::now();
    acd.agent_online(*now, "a");
    let offered = std::iter::from_fn(|| acd.poll_decision()).find_map(|d| match d {
        Decision::Offer { call, .. } => Some(call),
        _ => None,
    });
    let took = t.elapsed();
    let Some(call) = offered else { unreachable!() };
    acd.offer_answered(*now, call);
    acd.agent_free(*now, "a");
    acd.agent_offline(*now, "a");
    acd.enqueue(*now, *next, "sales", 0).unwrap();
    *next += 1;
    while acd.poll_decision().is_some() {}
    took
}

fn dispatch(c: &mut Criterion) {
    for widening in [false, true] {
        let name = if widening {
            "agent_ready_to_offer_widened"
        } else {
            "agent_ready_to_offer"
        };
        let mut g = c.benchmark_group(name);
        for waiting in [100u64, 1_000, 10_000] {
            let t0 = Instant::now();
            let mut acd = engine(t0, waiting, widening);
            let mut now = t0 + Duration::from_secs(2);
            let mut next = waiting;
            let mut times: Vec<Duration> = (0..20_000)
                .map(|_| round(&mut acd, &mut now, &mut next))
                .collect();
            times.sort();
            let pct = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
            println!(
                "{name}, {AGENTS} agents, {waiting} waiting: p50 {:.2} µs, p99 {:.2} µs, max {:.1} µs",
                pct(0.5).as_secs_f64() * 1e6,
                pct(0.99).as_secs_f64() * 1e6,
                times[times.len() - 1].as_secs_f64() * 1e6
            );
            g.bench_with_input(BenchmarkId::from_parameter(waiting), &waiting, |b, _| {
                b.iter(|| round(&mut acd, &mut now, &mut next))
            });
        }
        g.finish();
    }
}

criterion_group!(acd_benches, dispatch);
criterion_main!(acd_benches);
