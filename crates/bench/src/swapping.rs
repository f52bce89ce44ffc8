//! Section 5, module swapping: the draft's random mode (each job picks a
//! scheme) with per-job routing against the same jobs grouped by scheme;
//! the draft's swap-by-recompile side by side; and what activating a new
//! version costs during a run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hotwasm_abi::Scheme;
use hotwasm_host::ModuleHost;
use hotwasm_jobs::{Job, SchemeChoice, Verdict};
use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{ModuleSet, SchemeModule, Worker};
use serde::Serialize;

use crate::measure::{
    built_bytes, check, check_one, jobs, median, micros, millis, percentiles, spread,
    tagged_version, timed_run, warm_up,
};
use crate::options::BenchOptions;
use crate::report::{Cell, Percentiles, Spread};
use crate::{BenchError, Progress};

/// Interval between activations in the swap-latency run.
pub const SWAP_INTERVAL: Duration = Duration::from_millis(10);

/// Versions the swap-latency run rotates through (each activation is of a
/// version the worker does not hold, prewarmed just before).
pub const ROTATED_VERSIONS: usize = 4;

/// Swapping figures per runtime.
#[derive(Debug, Clone, Serialize)]
pub struct SwappingSection {
    /// One row per runtime.
    pub rows: Vec<SwappingRow>,
}

/// One runtime, on its preferred variant.
#[derive(Debug, Clone, Serialize)]
pub struct SwappingRow {
    /// Runtime name.
    pub runtime: String,
    /// Variant.
    pub variant: String,
    /// Mixed stream against the same jobs grouped by scheme.
    pub routing: Cell<Routing>,
    /// The draft's way: recompile + instantiate + verify per message.
    pub recompile: Cell<Recompile>,
    /// `activate` of a fresh version to its first verdict.
    pub activation: Cell<Activation>,
    /// Job latency in steady state against a new version every 10 ms.
    pub under_swaps: Cell<UnderSwaps>,
}

/// Mixed-scheme stream vs the same jobs grouped by scheme.
#[derive(Debug, Clone, Serialize)]
pub struct Routing {
    /// Jobs per stream.
    pub messages: usize,
    /// Timed pairs (mixed, grouped), the order alternating.
    pub reps: usize,
    /// The mixed stream, milliseconds.
    pub mixed_ms: Spread,
    /// The same jobs grouped by scheme, milliseconds.
    pub grouped_ms: Spread,
    /// mixed / grouped of each pair.
    pub ratios: Vec<f64>,
    /// Median of `ratios`.
    pub ratio: f64,
}

/// The draft's swap: compile the module again for every message.
#[derive(Debug, Clone, Serialize)]
pub struct Recompile {
    /// Messages timed.
    pub samples: usize,
    /// Compile + instantiate + verify of one message, milliseconds.
    pub per_message_ms: Spread,
    /// A verify in the mixed stream of [`Routing`], microseconds
    /// (`mixed_ms.median * 1000 / messages`).
    pub steady_us: f64,
    /// `per_message_ms.median * 1000 / steady_us`.
    pub ratio_to_steady: f64,
}

/// From `activate` of a version the worker never ran to its first verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Activation {
    /// Activations timed.
    pub samples: usize,
    /// Whether an instance was made and warmed before `activate`
    /// (impossible on wasm3, whose instances are bound to their thread).
    pub prewarmed: bool,
    /// Microseconds.
    pub first_verdict_us: Spread,
}

/// Job latency while versions change under the worker.
#[derive(Debug, Clone, Serialize)]
pub struct UnderSwaps {
    /// Jobs per run.
    pub jobs: usize,
    /// Milliseconds between activations.
    pub interval_ms: f64,
    /// Activations during the swapping run.
    pub swaps: usize,
    /// Without swaps.
    pub steady: Percentiles,
    /// With swaps.
    pub swapping: Percentiles,
    /// `swapping.p99_us / steady.p99_us`.
    pub p99_ratio: f64,
}

/// Measures swapping on each runtime's preferred variant.
///
/// # Errors
///
/// [`BenchError::WrongVerdict`] on any wrong verdict; [`BenchError::Worker`]
/// or [`BenchError::Runtime`] when a module does not load.
pub fn measure(
    options: &BenchOptions,
    progress: &dyn Progress,
) -> Result<SwappingSection, BenchError> {
    let kinds = options.with_native();
    progress.start("swapping", (kinds.len() * 4) as u64);
    let mut rows = Vec::new();
    for kind in kinds {
        let variant = kind.preferred_variant();
        let context = format!("swapping {kind}/{variant}");
        let host =
            ModuleHost::built(kind, variant, crate::measure::limits()).map_err(|source| {
                BenchError::Host {
                    context: context.clone(),
                    source,
                }
            })?;
        let set = host.modules();
        progress.step(&format!("{kind}/{variant} mixed vs grouped"));
        let routing = routing(options, set, kind, &context)?;
        progress.step(&format!("{kind}/{variant} recompile per message"));
        let recompile = if kind == RuntimeKind::Native {
            Cell::NotApplicable {
                reason: "native runs built-in code; there is nothing to compile".into(),
            }
        } else {
            Cell::Measured(recompile(options, set, variant, &routing, &context)?)
        };
        progress.step(&format!("{kind}/{variant} activation"));
        let activation = Cell::Measured(activation(options, &host, variant, &context)?);
        progress.step(&format!("{kind}/{variant} latency under swaps"));
        let under_swaps = Cell::Measured(under_swaps(options, &host, kind, variant, &context)?);
        rows.push(SwappingRow {
            runtime: kind.name().to_string(),
            variant: crate::throughput::shown_variant(kind, variant).to_string(),
            routing: Cell::Measured(routing),
            recompile,
            activation,
            under_swaps,
        });
    }
    progress.finish();
    Ok(SwappingSection { rows })
}

fn routing(
    options: &BenchOptions,
    set: &Arc<ModuleSet>,
    kind: RuntimeKind,
    context: &str,
) -> Result<Routing, BenchError> {
    let size = options.budget.routing(kind);
    let mixed = jobs(
        options.seed + 20,
        SchemeChoice::Mixed,
        options.invalid_ratio,
        size.messages,
    );
    let mut grouped = mixed.clone();
    grouped.sort_by_key(|job| job.scheme);
    let mut worker = Worker::new(set);
    warm_up(&mut worker, &mixed, context)?;
    let (mut mixed_ms, mut grouped_ms, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..size.reps {
        let mut time = |jobs: &[Job]| -> Result<f64, BenchError> {
            let (elapsed, verdicts) = timed_run(&mut worker, jobs);
            check(context, jobs, &verdicts)?;
            Ok(millis(elapsed))
        };
        let (m, g) = if rep % 2 == 0 {
            let m = time(&mixed)?;
            (m, time(&grouped)?)
        } else {
            let g = time(&grouped)?;
            (time(&mixed)?, g)
        };
        mixed_ms.push(m);
        grouped_ms.push(g);
        ratios.push(m / g);
    }
    Ok(Routing {
        messages: size.messages,
        reps: size.reps,
        mixed_ms: spread(&mixed_ms),
        grouped_ms: spread(&grouped_ms),
        ratio: median(&ratios),
        ratios,
    })
}

fn recompile(
    options: &BenchOptions,
    set: &ModuleSet,
    variant: &str,
    routing: &Routing,
    context: &str,
) -> Result<Recompile, BenchError> {
    let runtime = set.runtime_handle();
    let samples = options.budget.recompiles.max(1);
    let jobs = jobs(
        options.seed + 21,
        SchemeChoice::Mixed,
        options.invalid_ratio,
        samples,
    );
    let mut times = Vec::with_capacity(samples);
    for job in &jobs {
        let bytes = built_bytes(job.scheme.as_str(), variant, context)?;
        let request = job.request();
        let started = Instant::now();
        let compiled = runtime
            .compile(bytes)
            .map_err(|source| BenchError::Runtime {
                context: context.to_string(),
                source,
            })?;
        let mut instance = compiled
            .instantiate()
            .map_err(|source| BenchError::Runtime {
                context: context.to_string(),
                source,
            })?;
        let outcome = hotwasm_runtime::verify(instance.as_mut(), &request);
        times.push(millis(started.elapsed()));
        let verdict = match outcome.map_err(|e| e.to_string()) {
            Ok(response) => response.valid,
            Err(message) => {
                return Err(BenchError::Call {
                    context: context.to_string(),
                    message,
                });
            }
        };
        check_one(
            context,
            job,
            &Verdict {
                valid: verdict,
                ..Verdict::error(Some(job.id.clone()), runtime.kind().name(), "-")
            },
        )?;
    }
    let per_message_ms = spread(&times);
    let steady_us = routing.mixed_ms.median * 1000.0 / routing.messages as f64;
    Ok(Recompile {
        samples,
        per_message_ms,
        steady_us,
        ratio_to_steady: per_message_ms.median * 1000.0 / steady_us,
    })
}

fn activation(
    options: &BenchOptions,
    host: &ModuleHost,
    variant: &str,
    context: &str,
) -> Result<Activation, BenchError> {
    let set = host.modules();
    let count = options.budget.activations.max(1);
    let mut staged = Vec::with_capacity(count);
    for i in 0..count {
        let version = tagged_version(set, "schnorr", variant, &format!("activation{i}"), context)?;
        staged.push(host.stage(Scheme::Schnorr, version));
    }
    let prewarmed = staged.iter().all(|s| s.prewarmed() >= 1);
    let job = jobs(options.seed + 22, SchemeChoice::Schnorr, 0.0, 1);
    let job = job.first().ok_or_else(|| BenchError::Call {
        context: context.to_string(),
        message: "no job generated".into(),
    })?;
    let mut worker = Worker::new(set);
    warm_up(&mut worker, std::slice::from_ref(job), context)?;
    let mut times = Vec::with_capacity(count);
    for staged in staged {
        let version = Arc::clone(staged.module());
        let started = Instant::now();
        host.commit(staged);
        let verdict = worker.verify(job);
        times.push(micros(started.elapsed()));
        check_one(context, job, &verdict)?;
        if verdict.module.as_deref() != Some(version.id.as_str()) {
            return Err(BenchError::Call {
                context: context.to_string(),
                message: format!(
                    "the first verdict after activating {} came from {:?}",
                    version.id, verdict.module
                ),
            });
        }
    }
    Ok(Activation {
        samples: count,
        prewarmed,
        first_verdict_us: spread(&times),
    })
}

fn under_swaps(
    options: &BenchOptions,
    host: &Arc<ModuleHost>,
    kind: RuntimeKind,
    variant: &str,
    context: &str,
) -> Result<UnderSwaps, BenchError> {
    let jobs = jobs(
        options.seed + 23,
        SchemeChoice::Mixed,
        options.invalid_ratio,
        options.budget.swap_run(kind).max(1),
    );
    let versions = (0..ROTATED_VERSIONS)
        .map(|i| {
            tagged_version(
                host.modules(),
                "schnorr",
                variant,
                &format!("rotation{i}"),
                context,
            )
        })
        .collect::<Result<Vec<Arc<SchemeModule>>, BenchError>>()?;
    let steady = latencies(host, &jobs, None, context)?;
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapping = latencies(host, &jobs, Some((versions, Arc::clone(&swaps))), context)?;
    let (steady, swapping) = (percentiles(&steady), percentiles(&swapping));
    Ok(UnderSwaps {
        jobs: jobs.len(),
        interval_ms: millis(SWAP_INTERVAL),
        swaps: swaps.load(Ordering::Relaxed),
        steady,
        swapping,
        p99_ratio: swapping.p99_us / steady.p99_us,
    })
}

/// Times every job on its own, with a thread activating the next of
/// `versions` (prewarmed just before) every [`SWAP_INTERVAL`] when given.
fn latencies(
    host: &Arc<ModuleHost>,
    jobs: &[Job],
    swap: Option<(Vec<Arc<SchemeModule>>, Arc<AtomicUsize>)>,
    context: &str,
) -> Result<Vec<f64>, BenchError> {
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = swap.map(|(versions, swaps)| {
        let (host, stop) = (Arc::clone(host), Arc::clone(&stop));
        std::thread::spawn(move || {
            for next in versions.iter().cycle() {
                std::thread::sleep(SWAP_INTERVAL);
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                host.swap_in(Scheme::Schnorr, Arc::clone(next));
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    let mut worker = Worker::new(host.modules());
    let warmed = warm_up(&mut worker, jobs, context);
    let mut samples = Vec::with_capacity(jobs.len());
    let mut verdicts = Vec::with_capacity(jobs.len());
    if warmed.is_ok() {
        for job in jobs {
            let started = Instant::now();
            let verdict = worker.verify(job);
            samples.push(micros(started.elapsed()));
            verdicts.push(verdict);
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(swapper) = swapper
        && swapper.join().is_err()
    {
        return Err(BenchError::Panicked(context.to_string()));
    }
    warmed?;
    check(context, jobs, &verdicts)?;
    Ok(samples)
}
