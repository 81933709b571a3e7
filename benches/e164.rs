//! Caller numbers to E.164 with libphonenumber's rules (`phonenumber`): done once per call
//! (the context lookup) and per callback, so its cost is part of every call's.

use acd::context::e164::{normalize, Country};
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let us = Country::by_iso("US").unwrap();
    let ru = Country::by_iso("RU").unwrap();
    let mut g = c.benchmark_group("e164");
    g.bench_function("with +", |b| b.iter(|| normalize("+15551234567", &us)));
    g.bench_function("national (US)", |b| {
        b.iter(|| normalize("(555) 123-4567", &us))
    });
    g.bench_function("Russian 8 …", |b| {
        b.iter(|| normalize("8 903 123-45-67", &ru))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
