//! Dispatch cost when an agent becomes free: 1,000 agents (999 of them talking) and 100, 1,000
//! or 10,000 callers waiting. It should be flat (per-queue ordered index, per-skill idle index,
//! no scan of all callers). Criterion gives the mean; p50/p99 are printed from 20,000 timed
//! rounds per size.

use acd::acd::{Acd, Decision, QueueConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const AGENTS: u64 = 1_000;

/// An engine with `waiting` callers queued and every agent but "a" busy with a call.
fn engine(t0: Instant, waiting: u64) -> Acd {
    let mut acd = Acd::new(vec![QueueConfig {
        retry_after: Duration::ZERO,
        ..QueueConfig::new("sales", "sales")
    }]);
    let skills = HashMap::from([("sales".to_string(), 5)]);
    acd.upsert_agent(t0, "a", skills.clone());
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
    while acd.poll_decision().is_some() {}
    acd
}

/// Agent "a" comes free → is offered the head caller → answers → hangs up; a new caller keeps
/// the queue at the same depth.
fn round(acd: &mut Acd, t0: Instant, next: &mut u64) -> Duration {
    let t = Instant::now();
    acd.agent_online(t0, "a");
    let offered = std::iter::from_fn(|| acd.poll_decision()).find_map(|d| match d {
        Decision::Offer { call, .. } => Some(call),
        _ => None,
    });
    let took = t.elapsed();
    let Some(call) = offered else { unreachable!() };
    acd.offer_answered(t0, call);
    acd.agent_free(t0, "a");
    acd.agent_offline(t0, "a");
    acd.enqueue(t0, *next, "sales", 0).unwrap();
    *next += 1;
    while acd.poll_decision().is_some() {}
    took
}

fn dispatch(c: &mut Criterion) {
    let mut g = c.benchmark_group("agent_ready_to_offer");
    for waiting in [100u64, 1_000, 10_000] {
        let t0 = Instant::now();
        let mut acd = engine(t0, waiting);
        let mut next = waiting;
        let mut times: Vec<Duration> = (0..20_000)
            .map(|_| round(&mut acd, t0, &mut next))
            .collect();
        times.sort();
        let pct = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "agent ready → offer, {AGENTS} agents, {waiting} waiting: p50 {:.2} µs, p99 {:.2} µs, max {:.1} µs",
            pct(0.5).as_secs_f64() * 1e6,
            pct(0.99).as_secs_f64() * 1e6,
            times[times.len() - 1].as_secs_f64() * 1e6
        );
        g.bench_with_input(BenchmarkId::from_parameter(waiting), &waiting, |b, _| {
            b.iter(|| round(&mut acd, t0, &mut next))
        });
    }
    g.finish();
}

criterion_group!(acd_benches, dispatch);
criterion_main!(acd_benches);
