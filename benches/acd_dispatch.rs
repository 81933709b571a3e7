//! Dispatch cost when an agent becomes free, with 100 and 10,000 callers waiting: it should be
//! flat (per-queue ordered index, no scan of all callers).

use acd::acd::{Acd, Decision, QueueConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn dispatch(c: &mut Criterion) {
    let mut g = c.benchmark_group("agent_ready_to_offer");
    for waiting in [100u64, 10_000] {
        g.bench_with_input(
            BenchmarkId::from_parameter(waiting),
            &waiting,
            |b, &waiting| {
                let t0 = Instant::now();
                let mut acd = Acd::new(vec![QueueConfig {
                    name: "sales".into(),
                    skill: "sales".into(),
                    ring_timeout: Duration::from_secs(15),
                    retry_after: Duration::ZERO,
                    wrapup: Duration::ZERO,
                    strategy: Default::default(),
                    autopause_after: 0,
                    max_wait: None,
                    overflow: None,
                    age: None,
                }]);
                acd.upsert_agent(t0, "a", HashMap::from([("sales".to_string(), 5)]));
                for call in 0..waiting {
                    acd.enqueue(t0, call, "sales", 0).unwrap();
                }
                let mut next = waiting;
                b.iter(|| {
                    // Agent comes free → offered the head → answers; a new caller keeps the depth.
                    acd.agent_online(t0, "a");
                    let Some(call) =
                        std::iter::from_fn(|| acd.poll_decision()).find_map(|d| match d {
                            Decision::Offer { call, .. } => Some(call),
                            _ => None,
                        })
                    else {
                        unreachable!()
                    };
                    acd.offer_answered(t0, call);
                    acd.agent_free(t0, "a");
                    acd.agent_offline(t0, "a");
                    acd.enqueue(t0, next, "sales", 0).unwrap();
                    next += 1;
                    while acd.poll_decision().is_some() {}
                });
            },
        );
    }
    g.finish();
}

criterion_group!(acd_benches, dispatch);
criterion_main!(acd_benches);
