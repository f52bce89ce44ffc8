//! Section 6, end to end: the whole pipeline (client → queue → server →
//! verdicts back) next to in-process throughput of the same runtime and
//! thread count, measured in the same run.
//!
//! The pipeline lives in the server and client crates; this crate does not
//! depend on them. The caller injects a [`PipelineRunner`] through
//! [`BenchOptions::pipeline`](crate::BenchOptions::pipeline); without one
//! the pipeline rows say "not run".

use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hotwasm_jobs::{Job, SchemeChoice, Verdict};
use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{ModuleSet, Worker};
use serde::Serialize;

use crate::measure::{check, jobs, millis, percentiles, spread, warm_up};
use crate::options::BenchOptions;
use crate::report::{Cell, Percentiles, Spread};
use crate::{BenchError, Progress};

/// One pipeline configuration to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    /// The runtime the servers verify on.
    pub runtime: RuntimeKind,
    /// The module variant.
    pub variant: String,
    /// Worker threads.
    pub workers: usize,
    /// How jobs travel to the servers.
    pub transport: Transport,
    /// How verdicts travel back.
    pub results: ResultsVia,
}

/// How jobs travel from client to server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The in-process queue (one process, no Redis).
    Embedded,
    /// A Redis Stream at this URL.
    Redis(String),
}

/// How verdicts travel back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultsVia {
    /// The shared-memory verdict ring.
    Shm,
    /// A Redis results stream.
    Redis,
}

/// What one pipeline run produced.
#[derive(Debug, Clone, Default)]
pub struct PipelineRun {
    /// Verdicts received.
    pub verdicts: u64,
    /// Verdicts that differ from their job's `expect`.
    pub mismatches: u64,
    /// Jobs without a verdict.
    pub missing: u64,
    /// From the first submit to the last verdict.
    pub elapsed: Duration,
    /// Per job, submit to verdict at the client, in microseconds.
    pub latencies_micros: Vec<f64>,
}

/// Runs `jobs` through the full pipeline configured by the first argument.
/// Errors are messages (the runner's own error types stay in its crate).
pub type PipelineRunner =
    dyn Fn(&PipelineConfig, &[Job]) -> Result<PipelineRun, String> + Send + Sync;

/// End-to-end figures.
#[derive(Debug, Clone, Serialize)]
pub struct EndToEndSection {
    /// Runtime of every row.
    pub runtime: String,
    /// Variant of every row.
    pub variant: String,
    /// Worker threads of every row.
    pub workers: usize,
    /// The same jobs verified in-process by `workers` threads.
    pub in_process: Cell<InProcess>,
    /// The pipeline rows.
    pub pipelines: Vec<PipelineRow>,
}

/// In-process throughput: N jobs shared by the worker threads (each takes
/// the next job), one [`Worker`] each over one shared module set.
#[derive(Debug, Clone, Serialize)]
pub struct InProcess {
    /// Jobs per run.
    pub messages: usize,
    /// Runs.
    pub reps: usize,
    /// Wall time per run, milliseconds.
    pub run_ms: Spread,
    /// `messages / (run_ms.median / 1000)`.
    pub jobs_per_second: f64,
}

/// One pipeline configuration's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineRow {
    /// `embedded` or `redis`.
    pub transport: String,
    /// `shm` or `redis`.
    pub results: String,
    /// The figures.
    pub result: Cell<PipelineFigures>,
}

/// Throughput and latency through the pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineFigures {
    /// Jobs per run.
    pub messages: usize,
    /// Runs.
    pub reps: usize,
    /// Wall time per run, milliseconds.
    pub run_ms: Spread,
    /// `messages / (run_ms.median / 1000)`.
    pub jobs_per_second: f64,
    /// Submit-to-verdict latency over all runs.
    pub latency: Percentiles,
    /// `jobs_per_second` over in-process `jobs_per_second` (target ≥ 0.8).
    pub ratio_to_in_process: Option<f64>,
}

/// Measures the end-to-end section.
///
/// # Errors
///
/// [`BenchError::WrongVerdict`] on a wrong in-process verdict,
/// [`BenchError::Pipeline`] when the pipeline fails, loses verdicts or
/// returns wrong ones.
pub fn measure(
    options: &BenchOptions,
    progress: &dyn Progress,
) -> Result<EndToEndSection, BenchError> {
    let kind = options.end_to_end_kind();
    let variant = kind.preferred_variant();
    let workers = options.workers;
    let size = options.budget.end_to_end;
    let jobs = jobs(
        options.seed + 30,
        SchemeChoice::Mixed,
        options.invalid_ratio,
        size.messages,
    );
    let configs = configs(options, kind, variant);
    // Runs are interleaved: round r makes the in-process run and one run of
    // every pipeline in turn, so the ratios compare runs made side by side.
    let active: Vec<bool> = configs
        .iter()
        .map(|(_, blank)| blank.is_none() && options.pipeline.is_some())
        .collect();
    let per_round = 1 + active.iter().filter(|a| **a).count();
    progress.start("end to end", (size.reps * per_round) as u64);
    let set = ModuleSet::built(kind, variant).map_err(|source| BenchError::Worker {
        context: format!("end to end {kind}/{variant}"),
        source,
    })?;
    let mut in_process_ms = Vec::with_capacity(size.reps);
    let mut runs: Vec<Vec<PipelineRun>> = configs.iter().map(|_| Vec::new()).collect();
    for round in 0..size.reps {
        progress.step(&format!(
            "in-process {kind}/{variant}, {workers} workers, run {}/{}",
            round + 1,
            size.reps
        ));
        in_process_ms.push(in_process_run(options, &set, kind, variant, &jobs)?);
        for (((config, _), runs), active) in configs.iter().zip(&mut runs).zip(&active) {
            let Some(runner) = options.pipeline.as_ref().filter(|_| *active) else {
                continue;
            };
            progress.step(&format!(
                "pipeline {} + {}, run {}/{}",
                transport_name(&config.transport),
                results_name(config.results),
                round + 1,
                size.reps
            ));
            runs.push(pipeline_run(runner.as_ref(), config, &jobs)?);
        }
    }
    let run_ms = spread(&in_process_ms);
    let in_process = InProcess {
        messages: jobs.len(),
        reps: size.reps,
        run_ms,
        jobs_per_second: jobs.len() as f64 / (run_ms.median / 1000.0),
    };
    let mut pipelines = Vec::new();
    for ((config, blank), runs) in configs.into_iter().zip(runs) {
        let result = match (blank, &options.pipeline) {
            (Some(reason), _) => Cell::NotRun { reason },
            (None, None) => Cell::NotRun {
                reason: "no pipeline runner in this build of the bench".into(),
            },
            (None, Some(_)) => Cell::Measured(pipeline_figures(
                runs,
                jobs.len(),
                in_process.jobs_per_second,
            )),
        };
        pipelines.push(PipelineRow {
            transport: transport_name(&config.transport).to_string(),
            results: results_name(config.results).to_string(),
            result,
        });
    }
    progress.finish();
    Ok(EndToEndSection {
        runtime: kind.name().to_string(),
        variant: crate::throughput::shown_variant(kind, variant).to_string(),
        workers,
        in_process: Cell::Measured(in_process),
        pipelines,
    })
}

/// The pipeline rows: embedded + shm always, the Redis ones when a URL is
/// given (otherwise with the reason they are not run).
fn configs(
    options: &BenchOptions,
    kind: RuntimeKind,
    variant: &str,
) -> Vec<(PipelineConfig, Option<String>)> {
    let config = |transport, results| PipelineConfig {
        runtime: kind,
        variant: variant.to_string(),
        workers: options.workers,
        transport,
        results,
    };
    let redis = options.redis.clone();
    let no_redis = redis.is_none().then(|| "no --redis URL given".to_string());
    let url = redis.unwrap_or_default();
    vec![
        (config(Transport::Embedded, ResultsVia::Shm), None),
        (
            config(Transport::Redis(url.clone()), ResultsVia::Shm),
            no_redis.clone(),
        ),
        (config(Transport::Redis(url), ResultsVia::Redis), no_redis),
    ]
}

fn transport_name(transport: &Transport) -> &'static str {
    match transport {
        Transport::Embedded => "embedded",
        Transport::Redis(_) => "redis",
    }
}

fn results_name(results: ResultsVia) -> &'static str {
    match results {
        ResultsVia::Shm => "shm",
        ResultsVia::Redis => "redis",
    }
}

/// One in-process run: `options.workers` threads, one warm worker each,
/// taking the next job from a shared counter (so no thread idles while
/// another still has work, as in the pipeline's pool), timed from a
/// common start to the last verdict.
fn in_process_run(
    options: &BenchOptions,
    set: &std::sync::Arc<ModuleSet>,
    kind: RuntimeKind,
    variant: &str,
    jobs: &[Job],
) -> Result<f64, BenchError> {
    let context = format!("end to end in-process {kind}/{variant}");
    let threads = options.workers.min(jobs.len()).max(1);
    let barrier = Barrier::new(threads + 1);
    let next = AtomicUsize::new(0);
    // Instances cannot move between threads (wasm3): each thread makes
    // and warms its worker before the clock starts.
    let (elapsed, outcomes) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (barrier, context, next) = (&barrier, &context, &next);
                scope.spawn(move || {
                    let mut worker = Worker::new(set);
                    let warmed = warm_up(&mut worker, jobs, context);
                    let mut verdicts: Vec<(usize, Verdict)> = Vec::with_capacity(jobs.len());
                    barrier.wait();
                    if warmed.is_ok() {
                        loop {
                            let index = next.fetch_add(1, Ordering::Relaxed);
                            let Some(job) = jobs.get(index) else { break };
                            verdicts.push((index, worker.verify(job)));
                        }
                    }
                    warmed.map(|()| verdicts)
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let outcomes: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        (started.elapsed(), outcomes)
    });
    let mut indexed = Vec::with_capacity(jobs.len());
    for outcome in outcomes {
        let part = outcome.map_err(|_| BenchError::Panicked(context.clone()))??;
        indexed.extend(part);
    }
    indexed.sort_by_key(|(index, _)| *index);
    let verdicts: Vec<Verdict> = indexed.into_iter().map(|(_, verdict)| verdict).collect();
    check(&context, jobs, &verdicts)?;
    Ok(millis(elapsed))
}

/// One pipeline run, its verdicts checked.
fn pipeline_run(
    runner: &PipelineRunner,
    config: &PipelineConfig,
    jobs: &[Job],
) -> Result<PipelineRun, BenchError> {
    let describe = || {
        format!(
            "{} + {}, {}/{}, {} workers",
            transport_name(&config.transport),
            results_name(config.results),
            config.runtime,
            config.variant,
            config.workers
        )
    };
    let run = runner(config, jobs).map_err(|message| BenchError::Pipeline {
        config: describe(),
        message,
    })?;
    if run.mismatches > 0 || run.missing > 0 || run.verdicts != jobs.len() as u64 {
        return Err(BenchError::Pipeline {
            config: describe(),
            message: format!(
                "{} jobs: {} verdicts, {} wrong, {} missing",
                jobs.len(),
                run.verdicts,
                run.mismatches,
                run.missing
            ),
        });
    }
    Ok(run)
}

fn pipeline_figures(
    runs: Vec<PipelineRun>,
    messages: usize,
    in_process_jobs_per_second: f64,
) -> PipelineFigures {
    let reps = runs.len();
    let mut run_ms = Vec::with_capacity(reps);
    let mut latencies = Vec::new();
    for run in runs {
        run_ms.push(millis(run.elapsed));
        latencies.extend(run.latencies_micros);
    }
    let run_ms = spread(&run_ms);
    let jobs_per_second = messages as f64 / (run_ms.median / 1000.0);
    PipelineFigures {
        messages,
        reps,
        run_ms,
        jobs_per_second,
        latency: percentiles(&latencies),
        ratio_to_in_process: Some(jobs_per_second / in_process_jobs_per_second),
    }
}
