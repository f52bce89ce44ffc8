//! `health`: what the per-call counters and the call-duration histogram
//! (read by `hotwasm serve --metrics`) cost a verify, beside a native
//! verify of one job measured in the same run.
//!
//! Run with `cargo bench -p hotwasm-worker --bench health`.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hotwasm_jobs::{Generator, Job, SchemeChoice};
use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{CallHealth, ModuleSet, Worker};

fn health(c: &mut Criterion) {
    let mut group = c.benchmark_group("health");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));

    // Shared by two threads, as the workers of a 2-worker server share a
    // serving version's counters.
    let shared = Arc::new(CallHealth::default());
    let other = Arc::clone(&shared);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let contender = std::thread::spawn(move || {
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            other.timed(black_box(90e-6));
            other.answered(true);
        }
    });
    group.bench_function("answered+timed (contended by a second thread)", |b| {
        b.iter(|| {
            shared.timed(black_box(90e-6));
            shared.answered(black_box(true));
        })
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = contender.join();

    let alone = CallHealth::default();
    group.bench_function("answered+timed", |b| {
        b.iter(|| {
            alone.timed(black_box(90e-6));
            alone.answered(black_box(true));
        })
    });

    let jobs: Vec<Job> = Generator::new(7, SchemeChoice::Mixed, 0.0)
        .take(64)
        .collect();
    let set = ModuleSet::built(RuntimeKind::Native, "fast").expect("native");
    let mut worker = Worker::new(&set);
    let mut next = jobs.iter().cycle();
    group.bench_function("native verify, one job", |b| {
        b.iter(|| black_box(worker.verify(black_box(next.next().expect("cycle")))))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = health
}
criterion_main!(benches);
