//! Hot-swap costs, measured side by side in one run.
//!
//! `cargo bench -p hotwasm-host --bench swap` prints, per runtime:
//! instantiation of a compiled module, activation latency (from
//! `activate` to the first verdict of the new version), the draft's
//! approach (recompile on every swap), job latency p50/p99 in steady state
//! against swapping every 10 ms, a mixed-scheme stream against the same jobs
//! grouped by scheme, and RSS across 10,000 swaps. Medians with p10/p90;
//! nothing but the measured operation is inside a timed region.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hotwasm_abi::Scheme;
use hotwasm_jobs::{Generator, Job, SchemeChoice};
use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{ModuleSet, SchemeModule, Worker};

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects runtimes.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let quick = std::env::var_os("HOTWASM_BENCH_QUICK").is_some();
    for (kind, variant) in [
        (RuntimeKind::Wasmtime, "fast"),
        (RuntimeKind::Wasmi, "fast"),
        (RuntimeKind::Wasm3, "compat"),
    ] {
        if !filter.is_empty() && !filter.iter().any(|f| kind.name().contains(f.as_str())) {
            continue;
        }
        run(kind, variant, quick);
    }
}

fn run(kind: RuntimeKind, variant: &str, quick: bool) {
    let scale = if quick { 10 } else { 1 };
    println!("\n## {kind} ({variant})\n");
    let set = ModuleSet::built(kind, variant).expect("built modules load");
    let (first, second) = (
        set.get(Scheme::Schnorr).expect("active"),
        tagged(&set, variant, "v2"),
    );
    let third = tagged(&set, variant, "v3");
    let jobs: Vec<Job> = Generator::new(77, SchemeChoice::Schnorr, 0.0)
        .take(64)
        .collect();

    // Instantiation of an already compiled module.
    let samples = measure(
        if kind == RuntimeKind::Wasm3 {
            200
        } else {
            2000
        } / scale,
        || {
            let started = Instant::now();
            let instance = first.compiled.instantiate().expect("instantiates");
            let elapsed = started.elapsed();
            drop(instance);
            elapsed
        },
    );
    row("instantiate (compiled module)", &samples);

    // A plain verify on a warm instance, for reference.
    let mut worker = Worker::new(&set);
    worker.verify(&jobs[0]);
    let samples = measure(500 / scale, || {
        let started = Instant::now();
        worker.verify(&jobs[1]);
        started.elapsed()
    });
    row("verify, warm instance", &samples);

    // Activation latency: activate, then the first job on the new version.
    // A version this worker never ran needs a new instance (and k256's
    // lazily built tables on its first call); swapping back to the version
    // it just left reuses the instance it kept.
    let fresh: Vec<Arc<SchemeModule>> = (0..(if kind == RuntimeKind::Wasmtime {
        40
    } else {
        100
    } / scale))
        .map(|i| tagged(&set, variant, &format!("fresh{i}")))
        .collect();
    let samples = activations(&set, &mut worker, &fresh, &jobs[2]);
    row("activate new version -> its first verdict", &samples);
    drop(fresh);
    // The same, with one instance made and warmed before `activate` (off
    // the worker's path, as the directory watcher does).
    let prepared: Vec<Arc<SchemeModule>> = (0..(if kind == RuntimeKind::Wasmtime {
        40
    } else {
        100
    } / scale))
        .map(|i| {
            let module = tagged(&set, variant, &format!("prepared{i}"));
            set.prewarm(Scheme::Schnorr, &module, 1);
            module
        })
        .collect();
    let samples = activations(&set, &mut worker, &prepared, &jobs[2]);
    row(
        "activate prewarmed new version -> its first verdict",
        &samples,
    );
    drop(prepared);
    let back_and_forth: Vec<Arc<SchemeModule>> = (0..300 / scale)
        .map(|i| Arc::clone(if i % 2 == 0 { &second } else { &first }))
        .collect();
    let samples = activations(&set, &mut worker, &back_and_forth, &jobs[2]);
    row(
        "swap back to the previous version -> first verdict",
        &samples,
    );

    // The draft's approach: compile the module again for every message.
    let bytes = hotwasm_modules::find("schnorr", variant)
        .expect("built")
        .bytes;
    let runtime = kind.create().expect("runtime");
    let samples = measure(
        if kind == RuntimeKind::Wasmtime {
            20
        } else {
            60
        } / scale.min(4),
        || {
            let started = Instant::now();
            let compiled = runtime.compile(bytes).expect("compiles");
            let mut instance = compiled.instantiate().expect("instantiates");
            let payload = hotwasm_abi::encode(&jobs[3].request());
            instance.call("verify", &payload).expect("verifies");
            started.elapsed()
        },
    );
    row("recompile + instantiate + verify (draft)", &samples);

    // Latency distribution, steady state vs a swap every 10 ms.
    let mixed: Vec<Job> = Generator::new(78, SchemeChoice::Mixed, 0.1)
        .take(
            if kind == RuntimeKind::Wasmtime {
                3000
            } else {
                600
            } / scale,
        )
        .collect();
    let steady = latencies(&set, &mixed, None);
    // Enough fresh versions (compiled now) for a swap every 10 ms.
    let expected_swaps = (percentile(&steady, 50.0) * mixed.len() as f64 / 10_000.0) as usize + 20;
    let versions: Vec<Arc<SchemeModule>> = (0..expected_swaps)
        .map(|i| tagged(&set, variant, &format!("latency{i}")))
        .collect();
    let swapping = latencies(&set, &mixed, Some(versions));
    println!(
        "| job latency p50 / p99, steady | {:.1} / {:.1} µs | |",
        percentile(&steady, 50.0),
        percentile(&steady, 99.0)
    );
    println!(
        "| job latency p50 / p99, a fresh prewarmed version every 10 ms | {:.1} / {:.1} µs | p99 ratio {:.3} |",
        percentile(&swapping, 50.0),
        percentile(&swapping, 99.0),
        percentile(&swapping, 99.0) / percentile(&steady, 99.0)
    );

    // Mixed stream vs the same jobs grouped by scheme (same work, no switching).
    let mut grouped = mixed.clone();
    grouped.sort_by_key(|job| job.scheme);
    let mut ratios = Vec::new();
    let mut worker = Worker::new(&set);
    for job in mixed.iter().take(8) {
        worker.verify(job);
    }
    for _ in 0..(if quick { 3 } else { 9 }) {
        let a = time_stream(&mut worker, &mixed);
        let b = time_stream(&mut worker, &grouped);
        ratios.push(a.as_secs_f64() / b.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "| mixed / grouped-by-scheme stream, {} jobs | median {:.4} | min {:.4} max {:.4} |",
        mixed.len(),
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );

    // Memory across 10,000 swaps through three versions in turn (so every
    // swap makes a new instance and drops one), each followed by a verify.
    let swaps = if kind == RuntimeKind::Wasmtime {
        10_000
    } else {
        2_000
    } / scale;
    let mut worker = Worker::new(&set);
    worker.verify(&jobs[0]);
    let before = rss_kib();
    let mut peak = before;
    for i in 0..swaps {
        let next = [&second, &third, &first][i % 3];
        set.activate(Scheme::Schnorr, Arc::clone(next));
        worker.verify(&jobs[i % jobs.len()]);
        if i % 500 == 0 {
            peak = peak.max(rss_kib());
        }
    }
    let after = rss_kib();
    println!(
        "| RSS across {swaps} swaps | {before} KiB -> {after} KiB (peak {peak} KiB) | live instances {} |",
        set.live_instances()
    );
}

/// A second version of the built Schnorr module: the same code with a
/// custom section `tag`, so another content hash; compiled in `set`.
fn tagged(set: &ModuleSet, variant: &str, tag: &str) -> Arc<SchemeModule> {
    let bytes = hotwasm_modules::find("schnorr", variant)
        .expect("built")
        .bytes;
    set.compile("schnorr", &hotwasm_modules::tagged(bytes, tag))
        .expect("compiles")
}

fn latencies(set: &Arc<ModuleSet>, jobs: &[Job], swap: Option<Vec<Arc<SchemeModule>>>) -> Vec<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = swap.map(|versions| {
        let (set, stop) = (Arc::clone(set), Arc::clone(&stop));
        std::thread::spawn(move || {
            // A fresh version each time, warmed here, off the worker's path
            // (a no-op on wasm3, whose instances cannot change threads).
            for next in versions {
                std::thread::sleep(Duration::from_millis(10));
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                set.prewarm(Scheme::Schnorr, &next, 1);
                set.activate(Scheme::Schnorr, next);
            }
        })
    });
    let mut worker = Worker::new(set);
    for job in jobs.iter().take(8) {
        worker.verify(job);
    }
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let started = Instant::now();
        let verdict = worker.verify(job);
        out.push(started.elapsed().as_secs_f64() * 1e6);
        assert_eq!(Some(verdict.valid), job.expect, "{}", job.id);
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(swapper) = swapper {
        swapper.join().expect("swapper");
    }
    out
}

/// For each version in turn: activate it, verify `job`, and time the two.
fn activations(
    set: &ModuleSet,
    worker: &mut Worker,
    versions: &[Arc<SchemeModule>],
    job: &Job,
) -> Vec<f64> {
    let mut next = versions.iter();
    measure(versions.len(), || {
        let version = next.next().expect("one version per sample");
        let started = Instant::now();
        set.activate(Scheme::Schnorr, Arc::clone(version));
        let verdict = worker.verify(job);
        let elapsed = started.elapsed();
        assert_eq!(verdict.module.as_deref(), Some(version.id.as_str()));
        elapsed
    })
}

fn time_stream(worker: &mut Worker, jobs: &[Job]) -> Duration {
    let started = Instant::now();
    for job in jobs {
        std::hint::black_box(worker.verify(job));
    }
    started.elapsed()
}

fn measure(n: usize, mut f: impl FnMut() -> Duration) -> Vec<f64> {
    let mut samples: Vec<f64> = (0..n.max(1)).map(|_| f().as_secs_f64() * 1e6).collect();
    samples.sort_by(f64::total_cmp);
    samples
}

fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn row(what: &str, samples: &[f64]) {
    println!(
        "| {what} | median {:.1} µs | p10 {:.1} p90 {:.1} (n={}) |",
        percentile(samples, 50.0),
        percentile(samples, 10.0),
        percentile(samples, 90.0),
        samples.len()
    );
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4)
        .unwrap_or(0)
}
