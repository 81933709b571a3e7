//! The campaign report over 1 M interactions and 10 M campaign sends in SQLite (and
//! PostgreSQL with ACD_TEST_POSTGRES_URL). ACD_BENCH_SMALL=1 uses 10 k / 100 k for a quick look.
//! Databases are built once and kept under target/bench-data.

use acd::context::attribution::Attribution;
use acd::context::{CallRecord, Campaign, SendRow, Store};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::{Duration, Instant};

const NOW: i64 = 1_795_428_000;
const CAMPAIGNS: [&str; 5] = [
    "spring-ac-offer",
    "winter-promo",
    "loyalty",
    "reminder",
    "survey",
];

fn phone(i: u64) -> String {
    format!("+1555{:07}", i % 10_000_000)
}

async fn build(url: &str, sends: u64, calls: u64) -> Store {
    let s = Store::open(url).await.expect("store opens");
    let last = format!("bench-{}", calls - 1);
    if s.interaction(&last).await.ok().flatten().is_some() {
        return s; // built by an earlier run
    }
    for (i, name) in CAMPAIGNS.iter().enumerate() {
        s.upsert_campaign(&Campaign {
            name: name.to_string(),
            offer: format!("{name} offer"),
            queue: Some("sales".into()),
            skills: String::new(),
            window_minutes: 60 * 24 * (i as i64 + 1),
        })
        .await
        .expect("campaign");
    }
    // Five sends per phone over the last 30 days: sends/5 distinct numbers.
    let phones = (sends / 5).max(1);
    let mut batch = Vec::with_capacity(30_000);
    for n in 0..sends {
        batch.push(SendRow {
            campaign: CAMPAIGNS[(n % 5) as usize].into(),
            phone: phone(n % phones),
            sent_at: NOW - ((n * 7919) % (30 * 86_400)) as i64,
        });
        if batch.len() == batch.capacity() {
            s.add_campaign_sends(&batch).await.expect("sends");
            batch.clear();
        }
    }
    s.add_campaign_sends(&batch).await.expect("sends");
    // Calls from recipients (and a tenth from numbers that got nothing) over the same 30 days.
    let mut rows = Vec::with_capacity(5_000);
    for k in 0..calls {
        let p = if k % 10 == 9 {
            format!("+1666{:07}", k)
        } else {
            phone((k * 104_729) % phones)
        };
        rows.push(CallRecord {
            id: format!("bench-{k}"),
            phone: p,
            started_at: NOW - ((k * 6_151) % (30 * 86_400)) as i64,
            dialed: "100".into(),
            queue: Some("sales".into()),
            agent_id: (k % 3 != 0).then(|| "1001".into()),
            outcome: Some(if k % 3 != 0 { "answered" } else { "abandoned" }.into()),
            wait_ms: Some((k % 60_000) as i64),
            talk_ms: (k % 3 != 0).then_some((k % 600_000) as i64),
            ..Default::default()
        });
        if rows.len() == rows.capacity() {
            s.write_calls(&rows, &[]).await.expect("calls");
            rows.clear();
        }
    }
    s.write_calls(&rows, &[]).await.expect("calls");
    s
}

fn report(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let (sends, calls) = if std::env::var("ACD_BENCH_SMALL").is_ok() {
        (100_000u64, 10_000u64)
    } else {
        (10_000_000, 1_000_000)
    };
    let label = format!("{}k-calls-{}k-sends", calls / 1000, sends / 1000);
    let mut targets = vec![(
        format!("sqlite/{label}"),
        format!("sqlite://{}/report-{label}.db", dir.display()),
    )];
    if let Ok(pg) = std::env::var("ACD_TEST_POSTGRES_URL") {
        let name = format!("acd_bench_report_{}", label.replace('-', "_"));
        let _ = rt.block_on(Store::create_database(&pg, &name));
        targets.push((
            format!("postgres/{label}"),
            format!("{}/{name}", pg.rsplit_once('/').unwrap().0),
        ));
    }
    let mut g = c.benchmark_group("campaign_report");
    g.sample_size(10).measurement_time(Duration::from_secs(1));
    for (label, url) in targets {
        let t = Instant::now();
        let s = rt.block_on(build(&url, sends, calls));
        eprintln!(
            "{label}: database ready in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let r = rt
            .block_on(acd::report::campaigns::report(
                &s,
                NOW - 31 * 86_400,
                NOW + 1,
                Attribution::Latest,
            ))
            .unwrap();
        let credited: u64 = r.campaigns.iter().map(|c| c.calls).sum();
        eprintln!("{label}: {credited} of {calls} calls credited to a campaign");
        g.bench_with_input(BenchmarkId::from_parameter(&label), &(), |b, _| {
            b.iter(|| {
                rt.block_on(acd::report::campaigns::report(
                    &s,
                    NOW - 31 * 86_400,
                    NOW + 1,
                    Attribution::Latest,
                ))
                .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, report);
criterion_main!(benches);
