//! Context lookup latency with 10 k and 1 M campaign sends in SQLite (10 M with
//! ACD_BENCH_10M=1; PostgreSQL too with ACD_TEST_POSTGRES_URL). Criterion gives the mean; the
//! printed p50/p99 come from 20,000 timed lookups of random callers. Databases are built once and
//! kept under target/bench-data.

use acd::context::{Campaign, SendRow, Store};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::{Duration, Instant};

const NOW: i64 = 1_795_428_000;

fn phone(i: u64) -> String {
    format!("+1555{:07}", i % 10_000_000)
}

async fn build(url: &str, sends: u64) -> Store {
    let s = Store::open(url).await.expect("store opens");
    if s.lookup(&phone(0), NOW)
        .await
        .map(|c| !c.campaigns.is_empty())
        .unwrap_or(false)
    {
        return s; // built by an earlier run
    }
    for (i, name) in [
        "spring-ac-offer",
        "winter-promo",
        "loyalty",
        "reminder",
        "survey",
    ]
    .iter()
    .enumerate()
    {
        s.upsert_campaign(&Campaign {
            name: name.to_string(),
            offer: format!("{name} offer"),
            queue: Some("sales".into()),
            skills: "sales:3".into(),
            window_minutes: 60 * 24 * (i as i64 + 1),
        })
        .await
        .expect("campaign");
    }
    // Five sends per phone over the last 30 days: sends/5 distinct callers.
    let phones = (sends / 5).max(1);
    let mut batch = Vec::with_capacity(30_000);
    for n in 0..sends {
        batch.push(SendRow {
            campaign: [
                "spring-ac-offer",
                "winter-promo",
                "loyalty",
                "reminder",
                "survey",
            ][(n % 5) as usize]
                .into(),
            phone: phone(n % phones),
            sent_at: NOW - ((n * 7919) % (30 * 86_400)) as i64,
        });
        if batch.len() == batch.capacity() {
            s.add_campaign_sends(&batch).await.expect("insert");
            batch.clear();
        }
    }
    s.add_campaign_sends(&batch).await.expect("insert");
    s
}

fn percentiles(rt: &tokio::runtime::Runtime, s: &Store, phones: u64, label: &str) {
    let mut times: Vec<Duration> = (0..20_000u64)
        .map(|i| {
            let p = phone((i * 104_729) % phones);
            let t = Instant::now();
            rt.block_on(s.lookup(&p, NOW)).expect("lookup");
            t.elapsed()
        })
        .collect();
    times.sort();
    let pct = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "lookup {label}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs (20,000 random callers)",
        pct(0.50).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        times[times.len() - 1].as_secs_f64() * 1e6
    );
}

fn lookup(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let mut sizes = vec![10_000u64, 1_000_000];
    if std::env::var("ACD_BENCH_10M").is_ok() {
        sizes.push(10_000_000);
    }
    let mut targets: Vec<(String, String, u64)> = sizes
        .iter()
        .map(|n| {
            (
                format!("sqlite/{n}"),
                format!("sqlite://{}/lookup-{n}.db", dir.display()),
                *n,
            )
        })
        .collect();
    if let Ok(pg) = std::env::var("ACD_TEST_POSTGRES_URL") {
        for n in &sizes {
            let name = format!("acd_bench_lookup_{n}");
            let _ = rt.block_on(Store::create_database(&pg, &name)); // kept between runs
            let url = format!("{}/{name}", pg.rsplit_once('/').unwrap().0);
            targets.push((format!("postgres/{n}"), url, *n));
        }
    }
    let mut g = c.benchmark_group("lookup");
    for (label, url, n) in targets {
        let t = Instant::now();
        let s = rt.block_on(build(&url, n));
        eprintln!(
            "{label}: database ready in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let phones = (n / 5).max(1);
        percentiles(&rt, &s, phones, &label);
        let mut i = 0u64;
        g.bench_with_input(BenchmarkId::from_parameter(&label), &n, |b, _| {
            b.iter(|| {
                i += 1;
                rt.block_on(s.lookup(&phone((i * 104_729) % phones), NOW))
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
