//! Section 6, end to end: the whole pipeline (client → queue → server →
//! verdicts back) next to in-process throughput of the same runtime and
//! thread count, measured in the same run.
//!
//! The pipeline is `hotwasm-pipeline`'s: an in-process server and the real
//! client, on the in-process queue or a Redis stream of the run's own. With
//! [`BenchOptions::pipelines`](crate::BenchOptions::pipelines) off the
//! pipeline rows say "not run".

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use hotwasm_client::{Outgoing, ResultsVia, SubmitOptions, Summary};
use hotwasm_jobs::{Job, SchemeChoice, Verdict};
use hotwasm_pipeline::PipelineOptions;
use hotwasm_queue::{MemoryQueue, RedisOptions, RedisQueue};
use hotwasm_runtime::RuntimeKind;
use hotwasm_server::ServerConfig;
use hotwasm_server::consume::ConsumeOptions;
use hotwasm_worker::{ModuleSet, Worker};
use serde::Serialize;

use crate::measure::{check, jobs, millis, percentiles, spread, warm_up};
use crate::options::BenchOptions;
use crate::report::{Cell, Percentiles, Spread};
use crate::{BenchError, Progress};

/// One pipeline configuration to run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PipelineConfig {
    runtime: RuntimeKind,
    variant: String,
    workers: usize,
    transport: Transport,
    results: ResultsVia,
}

/// How jobs travel from client to server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Transport {
    /// The in-process queue (one process, no Redis).
    Embedded,
    /// A Redis Stream at this URL.
    Redis(String),
}

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
        .map(|(_, blank)| blank.is_none() && options.pipelines)
        .collect();
    let per_round = 1 + active.iter().filter(|a| **a).count();
    progress.start("end to end", (size.reps * per_round) as u64);
    let set = ModuleSet::built_with(kind, variant, crate::measure::limits()).map_err(|source| {
        BenchError::Worker {
            context: format!("end to end {kind}/{variant}"),
            source,
        }
    })?;
    let mut in_process_ms = Vec::with_capacity(size.reps);
    let mut runs: Vec<Vec<Summary>> = configs.iter().map(|_| Vec::new()).collect();
    for round in 0..size.reps {
        progress.step(&format!(
            "in-process {kind}/{variant}, {workers} workers, run {}/{}",
            round + 1,
            size.reps
        ));
        in_process_ms.push(in_process_run(workers, &set, kind, variant, &jobs)?);
        for (((config, _), runs), active) in configs.iter().zip(&mut runs).zip(&active) {
            if !active {
                continue;
            }
            progress.step(&format!(
                "pipeline {} + {}, run {}/{}",
                transport_name(&config.transport),
                results_name(config.results),
                round + 1,
                size.reps
            ));
            runs.push(pipeline_run(config, &jobs)?);
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
        let result = match (blank, options.pipelines) {
            (Some(reason), _) => Cell::NotRun { reason },
            (None, false) => Cell::NotRun {
                reason: "pipelines not asked for in this run".into(),
            },
            (None, true) => Cell::Measured(pipeline_figures(
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
        (config(Transport::Embedded, RING), None),
        (
            config(Transport::Redis(url.clone()), RING),
            no_redis.clone(),
        ),
        (config(Transport::Redis(url), ResultsVia::Stream), no_redis),
    ]
}

fn transport_name(transport: &Transport) -> &'static str {
    match transport {
        Transport::Embedded => "embedded",
        Transport::Redis(_) => "redis",
    }
}

/// Verdicts through a shared-memory ring of this many slots.
const RING: ResultsVia = ResultsVia::Shm { slots: 4096 };

fn results_name(results: ResultsVia) -> &'static str {
    match results {
        ResultsVia::Shm { .. } => "shm",
        ResultsVia::Stream => "redis",
    }
}

/// One in-process run: `workers` threads, one warm worker each, taking
/// the next job from a shared counter (so no thread idles while another
/// still has work, as in the pipeline's pool), timed from a common start
/// to the last verdict; milliseconds.
pub(crate) fn in_process_run(
    workers: usize,
    set: &std::sync::Arc<ModuleSet>,
    kind: RuntimeKind,
    variant: &str,
    jobs: &[Job],
) -> Result<f64, BenchError> {
    let context = format!("in-process {kind}/{variant}, {workers} workers");
    let threads = workers.min(jobs.len()).max(1);
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
fn pipeline_run(config: &PipelineConfig, jobs: &[Job]) -> Result<Summary, BenchError> {
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
    let summary = run_pipeline(config, jobs).map_err(|message| BenchError::Pipeline {
        config: describe(),
        message,
    })?;
    check_run(jobs.len(), &summary).map_err(|message| BenchError::Pipeline {
        config: describe(),
        message,
    })?;
    Ok(summary)
}

/// Every job got exactly one verdict, and the right one.
pub(crate) fn check_run(jobs: usize, summary: &Summary) -> Result<(), String> {
    if summary.mismatch_count > 0 || summary.missing > 0 || summary.verdicts != jobs as u64 {
        return Err(format!(
            "{jobs} jobs: {} verdicts, {} wrong, {} missing",
            summary.verdicts, summary.mismatch_count, summary.missing
        ));
    }
    Ok(())
}

/// Runs `jobs` through an in-process server and the real client.
fn run_pipeline(config: &PipelineConfig, jobs: &[Job]) -> Result<Summary, String> {
    let jobs: Vec<Outgoing> = jobs.iter().map(Outgoing::from).collect();
    let mut server = ServerConfig::new(config.runtime);
    server.modules.variant = Some(config.variant.clone());
    server.modules.limits = crate::measure::limits();
    server.workers = config.workers.max(1);
    let options = PipelineOptions {
        server,
        consume: ConsumeOptions::default(),
        submit: SubmitOptions {
            results: config.results,
            ..SubmitOptions::new()
        },
    }
    .with_fresh_reply_key();
    let runtime =
        hotwasm_server::async_runtime().map_err(|e| format!("starting the async runtime: {e}"))?;
    runtime.block_on(async {
        match &config.transport {
            Transport::Embedded => {
                hotwasm_pipeline::run(Arc::new(MemoryQueue::new()), &jobs, options, &|_| {})
                    .await
                    .map_err(|e| e.to_string())
            }
            Transport::Redis(url) => {
                let stream = BenchStream::connect(url, &options.submit.client).await?;
                let summary =
                    hotwasm_pipeline::run(Arc::clone(&stream.queue), &jobs, options, &|_| {}).await;
                stream.remove().await;
                summary.map_err(|e| e.to_string())
            }
        }
    })
}

/// A job stream, consumer group and dead-letter stream of the run's own
/// on a Redis, so servers of a real deployment on the same Redis are not
/// disturbed; [`BenchStream::remove`] deletes them.
pub(crate) struct BenchStream {
    /// The queue on them.
    pub(crate) queue: Arc<RedisQueue>,
    options: RedisOptions,
}

impl BenchStream {
    /// Connects to `url` with streams named after `name`.
    pub(crate) async fn connect(url: &str, name: &str) -> Result<BenchStream, String> {
        let mut options = RedisOptions::new(url);
        options.stream = format!("hotwasm:bench:{name}");
        options.group = format!("hotwasm-bench-{name}");
        options.dead_letters = format!("{}:dead", options.stream);
        let queue = RedisQueue::connect(options.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(BenchStream {
            queue: Arc::new(queue),
            options,
        })
    }

    /// Deletes the streams (best effort: a bench run's leftovers only).
    pub(crate) async fn remove(&self) {
        for key in [&self.options.stream, &self.options.dead_letters] {
            let _ = self.queue.delete_stream(key).await;
        }
    }
}

fn pipeline_figures(
    runs: Vec<Summary>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_with_a_wrong_or_missing_verdict_is_refused() {
        let good = Summary {
            verdicts: 8,
            ..Summary::default()
        };
        assert_eq!(check_run(8, &good), Ok(()));
        let wrong = Summary {
            mismatch_count: 1,
            ..good.clone()
        };
        assert!(check_run(8, &wrong).is_err_and(|e| e.contains("1 wrong")));
        let missing = Summary {
            verdicts: 7,
            missing: 1,
            ..Summary::default()
        };
        assert!(check_run(8, &missing).is_err_and(|e| e.contains("1 missing")));
    }
}
