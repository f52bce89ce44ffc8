//! What a shadow costs the delivered verdicts: the worker pool with and
//! without a candidate shadowing every job (sample 1.0), side by side in
//! one run, interleaved.
//!
//! - **Open loop** at a fixed rate (a share of the capacity measured
//!   without shadow first): latency of each delivered verdict from its
//!   job's *scheduled* send time (no coordinated omission), p50 and p99.
//! - **CPU per job**: the process's user + system time over the jobs.
//! - **Saturated**: delivered verdicts per second with every job handed
//!   over at once (the shadow threads, at idle priority, then get little
//!   CPU and skip most jobs).
//!
//! `cargo bench -p hotwasm-server --bench shadow` (wasmtime, fast variant,
//! two workers). Environment: `HOTWASM_SHADOW_ROUNDS` (default 5),
//! `HOTWASM_SHADOW_LOAD` (share of capacity, default 0.3).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotwasm_abi::Scheme;
use hotwasm_jobs::{Generator, Job};
use hotwasm_runtime::RuntimeKind;
use hotwasm_server::pool::WorkerPool;
use hotwasm_worker::{ModuleSet, Trial, TrialMode};

const WORKERS: usize = 2;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn jobs(count: usize) -> Vec<Job> {
    let mut generator = Generator::new(7, Scheme::Schnorr.into(), 0.3);
    (0..count).map(|_| generator.job()).collect()
}

/// CPU time of this process so far (user + system).
fn cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a rusage into the pointer it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Every job handed over at once; verdicts per second.
fn saturated(pool: &WorkerPool, jobs: &[Job]) -> f64 {
    let (sender, receiver) = crossbeam_channel::unbounded();
    let started = Instant::now();
    for job in jobs {
        let sender = sender.clone();
        pool.submit(job.clone(), move |_| {
            let _ = sender.send(());
        });
    }
    for _ in jobs {
        receiver.recv().expect("every job answered");
    }
    jobs.len() as f64 / started.elapsed().as_secs_f64()
}

struct OpenLoop {
    p50_us: f64,
    p99_us: f64,
    cpu_per_job_us: f64,
}

/// Jobs sent at `rate` per second on schedule; latency from the schedule.
fn open_loop(pool: &WorkerPool, jobs: &[Job], rate: f64) -> OpenLoop {
    let (sender, receiver) = crossbeam_channel::unbounded();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let cpu_before = cpu();
    let start = Instant::now();
    for (i, job) in jobs.iter().enumerate() {
        let scheduled = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
        let now = Instant::now();
        if scheduled > now {
            std::thread::sleep(scheduled - now);
        }
        let sender = sender.clone();
        pool.submit(job.clone(), move |_| {
            let _ = sender.send(scheduled.elapsed());
        });
    }
    let mut latencies: Vec<Duration> = jobs
        .iter()
        .map(|_| receiver.recv().expect("every job answered"))
        .collect();
    // Let the shadow calls of the last jobs finish before CPU is read.
    std::thread::sleep(Duration::from_millis(50));
    let cpu_used = cpu().saturating_sub(cpu_before);
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    OpenLoop {
        p50_us: at(0.50).as_secs_f64() * 1e6,
        p99_us: at(0.99).as_secs_f64() * 1e6,
        cpu_per_job_us: cpu_used.as_secs_f64() * 1e6 / jobs.len() as f64,
    }
}

fn median(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds: usize = env_or("HOTWASM_SHADOW_ROUNDS", 5);
    let load: f64 = env_or("HOTWASM_SHADOW_LOAD", 0.3);
    let set = ModuleSet::built(RuntimeKind::Wasmtime, "fast").expect("wasmtime/fast is built");
    let honest = hotwasm_modules::find("schnorr", "fast")
        .expect("built")
        .bytes;
    let candidate = set
        .compile(
            "schnorr",
            &hotwasm_tests::second_version(honest, "candidate"),
        )
        .expect("the candidate compiles");
    let pool = WorkerPool::start(&set, WORKERS).expect("workers start");
    let trial = Arc::new(Trial::new(
        "bench",
        TrialMode::Shadow { sample: 1.0 },
        candidate,
        false,
    ));
    let batch = jobs(2000);
    // Warm both versions in every worker.
    set.set_trial(Scheme::Schnorr, Some(Arc::clone(&trial)));
    saturated(&pool, &batch[..200]);
    set.set_trial(Scheme::Schnorr, None);
    let capacity = saturated(&pool, &batch);
    let rate = capacity * load;
    let open_jobs = &batch[..(rate * 3.0).clamp(200.0, 2000.0) as usize];
    println!(
        "shadow bench: wasmtime/fast, {WORKERS} workers, capacity {capacity:.0} jobs/s without shadow; open loop at {rate:.0} jobs/s ({:.0}% of it), {} jobs per run, {rounds} interleaved rounds",
        load * 100.0,
        open_jobs.len()
    );
    let mut rows: [Vec<(f64, OpenLoop)>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (index, shadow) in [false, true].into_iter().enumerate() {
            set.set_trial(Scheme::Schnorr, shadow.then(|| Arc::clone(&trial)));
            let throughput = saturated(&pool, &batch);
            let open = open_loop(&pool, open_jobs, rate);
            println!(
                "  round {round} {:<9} saturated {throughput:>7.0} jobs/s; open loop p50 {:>7.0} µs p99 {:>7.0} µs; CPU {:>6.0} µs/job",
                if shadow { "shadow" } else { "no shadow" },
                open.p50_us,
                open.p99_us,
                open.cpu_per_job_us
            );
            rows[index].push((throughput, open));
        }
    }
    set.set_trial(Scheme::Schnorr, None);
    let compared = trial.snapshot();
    let summary = |rows: &Vec<(f64, OpenLoop)>| {
        (
            median(rows.iter().map(|r| r.0).collect()),
            median(rows.iter().map(|r| r.1.p50_us).collect()),
            median(rows.iter().map(|r| r.1.p99_us).collect()),
            median(rows.iter().map(|r| r.1.cpu_per_job_us).collect()),
        )
    };
    let (off, on) = (summary(&rows[0]), summary(&rows[1]));
    println!("medians (min–max) over {rounds} rounds:");
    for (name, s) in [("no shadow", off), ("shadow 1.0", on)] {
        println!(
            "  {name:<10} saturated {:.0} ({:.0}–{:.0}) jobs/s; p50 {:.0} µs; p99 {:.0} ({:.0}–{:.0}) µs; CPU {:.0} ({:.0}–{:.0}) µs/job",
            s.0.0, s.0.1, s.0.2, s.1.0, s.2.0, s.2.1, s.2.2, s.3.0, s.3.1, s.3.2
        );
    }
    println!(
        "ratios shadow / none: p99 {:.2}x, CPU per job {:.2}x, saturated throughput {:.2}x; the candidate agreed on {} jobs, disagreed on {}, skipped {} (shadow threads behind, mostly while saturated)",
        on.2.0 / off.2.0,
        on.3.0 / off.3.0,
        on.0.0 / off.0.0,
        compared.agreed,
        compared.disagreed,
        compared.skipped
    );
}
