//! What signing and checking replies costs end to end, measured side by
//! side in one run.
//!
//! `cargo bench -p hotwasm-pipeline --bench reply_auth` runs the whole
//! in-process pipeline (client, in-process queue, server on wasmtime/fast
//! with one worker per core, verdicts through a shared-memory ring) over
//! the same mixed jobs, alternating runs with a reply key (every reply
//! signed by the server, checked by the client) and without, and prints
//! the median throughput of each, its spread, and the ratio.
//! `HOTWASM_BENCH_RUNS` sets the runs per side (default 9),
//! `HOTWASM_BENCH_JOBS` the jobs per run (default 4096).

use std::sync::Arc;

use hotwasm_client::{Outgoing, ResultsVia, SubmitOptions, jobs};
use hotwasm_jobs::SchemeChoice;
use hotwasm_pipeline::PipelineOptions;
use hotwasm_queue::MemoryQueue;
use hotwasm_runtime::RuntimeKind;
use hotwasm_server::ServerConfig;
use hotwasm_server::consume::ConsumeOptions;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runs = env("HOTWASM_BENCH_RUNS", 9).max(1);
    let count = env("HOTWASM_BENCH_JOBS", 4096).max(1);
    let jobs: Vec<Outgoing> = jobs::generate(count as u64, SchemeChoice::Mixed, 0.1, 3, &|_| {});
    let runtime = hotwasm_server::async_runtime().expect("async runtime");
    let mut server = ServerConfig::new(RuntimeKind::Wasmtime);
    server.modules.variant = Some("fast".into());
    let options = PipelineOptions {
        server,
        consume: ConsumeOptions::default(),
        submit: SubmitOptions {
            results: ResultsVia::Shm { slots: 4096 },
            ..SubmitOptions::new()
        },
    };
    let started = runtime
        .block_on(hotwasm_pipeline::start(options.server.clone()))
        .expect("server starts");
    let mut signed = Vec::new();
    let mut unsigned = Vec::new();
    // One warm-up run each, then alternate.
    for round in 0..=runs {
        for sign in [true, false] {
            let mut options = options.clone();
            options.submit.client = format!("bench-{round}-{sign}-{}", std::process::id());
            if sign {
                options = options.with_fresh_reply_key();
            }
            let summary = runtime
                .block_on(hotwasm_pipeline::run_on(
                    Arc::clone(&started),
                    Arc::new(MemoryQueue::new()),
                    &jobs,
                    &options,
                    &|_| {},
                ))
                .expect("run");
            assert!(summary.passed() && summary.forged == 0, "{summary}");
            if round > 0 {
                if sign { &mut signed } else { &mut unsigned }.push(summary.throughput);
            }
        }
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let (s, s_min, s_max) = stats(&mut signed);
    let (u, u_min, u_max) = stats(&mut unsigned);
    println!(
        "{runs} runs each of {count} mixed jobs, wasmtime/fast, in-process queue, shm verdicts"
    );
    println!("  replies signed and checked: median {s:.0} jobs/s (min {s_min:.0}, max {s_max:.0})");
    println!("  replies unsigned:           median {u:.0} jobs/s (min {u_min:.0}, max {u_max:.0})");
    println!("  signed / unsigned throughput: {:.3}", s / u);
}
