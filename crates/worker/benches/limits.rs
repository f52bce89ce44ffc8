//! `limits`: what the guest limits cost and how well they hold, on every
//! wasm runtime, in one run:
//!
//! 1. deadline precision: a guest that loops for ever, stopped at a 10 ms
//!    call deadline, N times; how long past the deadline the call returned
//!    (p50, p99, max);
//! 2. the memory cap: process RSS while a guest grows its memory until
//!    refused, against the cap, and after its instance is dropped;
//! 3. the cost on honest work: mixed verifies with the deadline checks on
//!    and off (`Limits::metered`), repetitions interleaved, median µs per
//!    verify and the ratio.
//!
//! Run with `cargo bench -p hotwasm-worker --bench limits`;
//! `HOTWASM_BENCH_RUNS` sets N (default 1000), `HOTWASM_BENCH_REPS` the
//! repetitions of section 3 (default 7).

use std::time::{Duration, Instant};

use hotwasm_abi::Scheme;
use hotwasm_jobs::{Generator, Job, SchemeChoice};
use hotwasm_runtime::{Limits, RuntimeKind};
use hotwasm_tests::hostile;
use hotwasm_worker::{ModuleSet, Worker};

const WASM_RUNTIMES: [RuntimeKind; 3] = [
    RuntimeKind::Wasmtime,
    RuntimeKind::Wasmi,
    RuntimeKind::Wasm3,
];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // Only run under `cargo bench` (cargo test runs bench targets with
    // `--bench` absent only when asked; keep `cargo test --benches` quick).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!("# Guest limits, {cpu}\n");
    deadlines(env("HOTWASM_BENCH_RUNS", 1000));
    memory();
    cost(env("HOTWASM_BENCH_REPS", 7));
}

/// Nearest-rank percentile of sorted values (NaN, printed as such, for none).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    hotwasm_jobs::stats::percentile(sorted, q).unwrap_or(f64::NAN)
}

fn deadlines(runs: usize) {
    let timeout = Duration::from_millis(10);
    let limits = Limits {
        call_timeout: timeout,
        ..Limits::default()
    };
    println!("## Deadline: a looping call stopped at {timeout:?}, {runs} runs\n");
    println!("| runtime | past the deadline p50 | p99 | max |\n|---|---|---|---|");
    let looping = hostile::looping_module();
    let payload = hotwasm_abi::encode(&job(Scheme::Schnorr).request());
    for kind in WASM_RUNTIMES {
        let set = ModuleSet::new(kind.create_with(limits).expect("runtime"));
        let module = set.compile("looping", &looping).expect("compiles");
        let mut over = Vec::with_capacity(runs);
        for _ in 0..runs {
            let mut instance = module.compiled.instantiate().expect("starts");
            let started = Instant::now();
            let outcome = instance.call("verify", &payload);
            let elapsed = started.elapsed();
            assert!(
                matches!(outcome, Err(hotwasm_runtime::CallError::Deadline(_))),
                "{kind}: {outcome:?}"
            );
            over.push(elapsed.saturating_sub(timeout).as_secs_f64() * 1e3);
        }
        over.sort_by(f64::total_cmp);
        println!(
            "| {kind} | {:.2} ms | {:.2} ms | {:.2} ms |",
            percentile(&over, 0.5),
            percentile(&over, 0.99),
            over[over.len() - 1]
        );
    }
    println!();
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn memory() {
    let limits = Limits::default();
    let cap = limits.max_memory_bytes as f64 / (1 << 20) as f64;
    println!("## Memory: a guest growing until refused, cap {cap:.0} MiB\n");
    println!(
        "| runtime | RSS before | RSS with the grown instance | growth | after it is dropped |\n\
         |---|---|---|---|---|"
    );
    let bomb = hostile::memory_bomb_module();
    let payload = hotwasm_abi::encode(&job(Scheme::Schnorr).request());
    for kind in WASM_RUNTIMES {
        let set = ModuleSet::new(kind.create_with(limits).expect("runtime"));
        let module = set.compile("bomb", &bomb).expect("compiles");
        let before = rss_mib();
        let mut instance = module.compiled.instantiate().expect("starts");
        instance.call("verify", &payload).expect("answers");
        let grown = rss_mib();
        drop(instance);
        let after = rss_mib();
        println!(
            "| {kind} | {before:.1} MiB | {grown:.1} MiB | {:.1} MiB | {after:.1} MiB |",
            grown - before
        );
    }
    println!();
}

fn job(scheme: Scheme) -> Job {
    let choice = match scheme {
        Scheme::Schnorr => SchemeChoice::Schnorr,
        Scheme::Ecdsa => SchemeChoice::Ecdsa,
    };
    Generator::new(1, choice, 0.0)
        .next()
        .expect("the generator is endless")
}

fn cost(reps: usize) {
    println!("## Cost on honest work: deadline checks on vs off, {reps} interleaved repetitions\n");
    println!(
        "| runtime / variant | jobs | off µs/verify (min–max) | on µs/verify (min–max) | on ÷ off |\n\
         |---|---|---|---|---|"
    );
    for kind in WASM_RUNTIMES {
        let variant = kind.preferred_variant();
        let count = if kind == RuntimeKind::Wasmtime {
            512
        } else {
            96
        };
        let jobs: Vec<Job> = Generator::new(3, SchemeChoice::Mixed, 0.0)
            .take(count)
            .collect();
        let mut workers: Vec<Worker> = [false, true]
            .into_iter()
            .map(|metered| {
                let limits = Limits {
                    metered,
                    ..Limits::default()
                };
                let set = ModuleSet::built_with(kind, variant, limits).expect("built");
                let mut worker = Worker::new(&set);
                for job in &jobs {
                    assert!(worker.verify(job).valid, "{kind} warm-up");
                }
                worker
            })
            .collect();
        let mut samples = [Vec::new(), Vec::new()];
        for _ in 0..reps {
            for (worker, samples) in workers.iter_mut().zip(samples.iter_mut()) {
                let started = Instant::now();
                for job in &jobs {
                    std::hint::black_box(worker.verify(job));
                }
                samples.push(started.elapsed().as_secs_f64() * 1e6 / jobs.len() as f64);
            }
        }
        for s in &mut samples {
            s.sort_by(f64::total_cmp);
        }
        let [off, on] = &samples;
        let median = |s: &[f64]| percentile(s, 0.5);
        println!(
            "| {kind} / {variant} | {count} | {:.1} ({:.1}–{:.1}) | {:.1} ({:.1}–{:.1}) | {:.3} |",
            median(off),
            off[0],
            off[off.len() - 1],
            median(on),
            on[0],
            on[on.len() - 1],
            median(on) / median(off)
        );
    }
}
