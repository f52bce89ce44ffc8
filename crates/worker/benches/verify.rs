//! `verify`: 256 mixed Schnorr/ECDSA jobs per iteration, on every runtime
//! and every built variant that loads there.
//!
//! Run with `cargo bench -p hotwasm-worker --bench verify`; ratios to
//! native are computed from the same run's medians. Build with
//! `HOTWASM_ALL_VARIANTS=1` to include the size and codegen-unit variants.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotwasm_jobs::{Generator, Job, SchemeChoice};
use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{ModuleSet, Worker};

const JOBS: usize = 256;

fn verify(c: &mut Criterion) {
    let jobs: Vec<Job> = Generator::new(42, SchemeChoice::Mixed, 0.0)
        .take(JOBS)
        .collect();
    let variants = hotwasm_modules::built_variants();

    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(JOBS as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for kind in RuntimeKind::ALL {
        let variants = if kind == RuntimeKind::Native {
            &variants[..1]
        } else {
            &variants[..]
        };
        for variant in variants {
            let set = match ModuleSet::built(kind, variant) {
                Ok(set) => set,
                Err(e) => {
                    eprintln!("skipping {kind}/{variant}: {e}");
                    continue;
                }
            };
            let mut worker = Worker::new(&set);
            // Instantiate both modules and check the verdicts once.
            for job in &jobs {
                let verdict = worker.verify(job);
                assert_eq!(
                    Some(verdict.valid),
                    job.expect,
                    "{kind}/{variant} {}",
                    job.id
                );
            }
            let name = if kind == RuntimeKind::Native {
                "native".to_string()
            } else {
                format!("{kind}/{variant}")
            };
            group.bench_function(name, |b| {
                b.iter(|| {
                    for job in &jobs {
                        black_box(worker.verify(black_box(job)));
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = verify
}
criterion_main!(benches);
