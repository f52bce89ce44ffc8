//! Section 6c, scale: throughput and cost per job against worker threads
//! in one process (in-process, the shared-counter runs of section 6), and
//! against servers in one consumer group through Redis (in-process servers
//! of one worker each, the real client, a stream of the run's own). The
//! sweep is [`crate::BenchOptions::scale`] (`--scale-workers`,
//! `--scale-servers`); on two cores the curve is short, the method is the
//! same on a bigger machine.
//!
//! Cost per job is the process's CPU time (every thread: workers, the
//! async runtime, the client; not redis-server's) over the jobs; memory
//! is the process's resident set after each run, and per server the
//! growth of the resident set as servers start.

use std::sync::Arc;

use hotwasm_client::{Outgoing, SubmitOptions};
use hotwasm_jobs::{Job, SchemeChoice};
use hotwasm_pipeline::PipelineOptions;
use hotwasm_runtime::RuntimeKind;
use hotwasm_server::consume::ConsumeOptions;
use hotwasm_server::{Server, ServerConfig};
use hotwasm_worker::ModuleSet;
use serde::Serialize;

use crate::end_to_end::{BenchStream, check_run, in_process_run};
use crate::measure::{jobs, spread};
use crate::options::BenchOptions;
use crate::report::{Cell, Spread};
use crate::{BenchError, Progress};

/// Efficiency below which the curve has turned: the knee.
pub const KNEE_EFFICIENCY: f64 = 0.8;

/// The section.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleSection {
    /// Runtime and variant of every row.
    pub runtime: String,
    /// Logical CPUs of the machine.
    pub cores: usize,
    /// Linear memory of one fresh instance of each scheme's module, KiB:
    /// what each worker adds per scheme besides its thread.
    pub instance_memory_kib: Vec<(String, f64)>,
    /// One row per worker count, in-process.
    pub workers: Cell<Sweep>,
    /// One row per server count, through Redis (one worker each).
    pub servers: Cell<Sweep>,
}

/// The points of one sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    /// One row per point, in sweep order.
    pub rows: Vec<ScaleRow>,
}

/// One point of a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleRow {
    /// Worker threads, or servers.
    pub count: usize,
    /// Jobs per run.
    pub messages: usize,
    /// Runs.
    pub reps: usize,
    /// Jobs per second over the runs (median, min, max).
    pub jobs_per_second: Spread,
    /// Median jobs/s over the first row's median.
    pub speedup: f64,
    /// `speedup` over `count / first row's count`: 1.0 is linear.
    pub efficiency: f64,
    /// Process CPU time per job, µs (median of the runs).
    pub cpu_us_per_job: f64,
    /// Resident set of the process after the sweep's rounds, MiB (every
    /// server of the servers sweep still running).
    pub rss_mib: f64,
    /// Servers only: growth of the resident set per server started, MiB.
    pub rss_per_server_mib: Option<f64>,
}

/// Measures the section.
///
/// # Errors
///
/// [`BenchError::WrongVerdict`] on a wrong verdict; [`BenchError::Pipeline`]
/// when a run through Redis fails or loses verdicts.
pub fn measure(
    options: &BenchOptions,
    progress: &dyn Progress,
) -> Result<ScaleSection, BenchError> {
    let kind = options.end_to_end_kind();
    let variant = kind.preferred_variant();
    let size = options.budget.scale;
    let jobs = jobs(
        options.seed + 60,
        SchemeChoice::Mixed,
        options.invalid_ratio,
        size.messages,
    );
    let sweep = &options.scale;
    let with_redis = options.redis.is_some() && options.pipelines;
    let steps = sweep.workers.len() * size.reps
        + if with_redis {
            sweep.servers.len() * size.reps
        } else {
            0
        };
    progress.start("scale", steps as u64);
    let set = ModuleSet::built_with(kind, variant, crate::measure::limits()).map_err(|source| {
        BenchError::Worker {
            context: format!("scale {kind}/{variant}"),
            source,
        }
    })?;
    let instance_memory_kib = instance_memory(&set);

    // Rounds are interleaved: round r times every point once, so load from
    // elsewhere on a shared machine falls on all points alike.
    let mut per_second = vec![Vec::new(); sweep.workers.len()];
    let mut cpu = vec![Vec::new(); sweep.workers.len()];
    for rep in 0..size.reps {
        for (index, &count) in sweep.workers.iter().enumerate() {
            progress.step(&format!("{count} workers, round {}/{}", rep + 1, size.reps));
            let before = process_cpu_seconds();
            let ms = in_process_run(count, &set, kind, variant, &jobs)?;
            cpu[index].push((process_cpu_seconds() - before) * 1e6 / jobs.len() as f64);
            per_second[index].push(jobs.len() as f64 / (ms / 1000.0));
        }
    }
    let mut rows: Vec<ScaleRow> = sweep
        .workers
        .iter()
        .enumerate()
        .map(|(index, &count)| {
            row(
                count,
                &jobs,
                size.reps,
                &per_second[index],
                &cpu[index],
                None,
            )
        })
        .collect();
    relate(&mut rows);
    let workers = Cell::Measured(Sweep { rows });

    let servers = match (&options.redis, options.pipelines) {
        (None, _) => Cell::NotRun {
            reason: "no --redis URL given".into(),
        },
        (Some(_), false) => Cell::NotRun {
            reason: "pipelines not asked for in this run".into(),
        },
        (Some(url), true) => {
            let mut rows = servers_rows(
                url,
                kind,
                variant,
                &sweep.servers,
                &jobs,
                size.reps,
                progress,
            )?;
            relate(&mut rows);
            Cell::Measured(Sweep { rows })
        }
    };
    progress.finish();
    Ok(ScaleSection {
        runtime: format!("{kind}/{}", crate::throughput::shown_variant(kind, variant)),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        instance_memory_kib,
        workers,
        servers,
    })
}

fn row(
    count: usize,
    jobs: &[Job],
    reps: usize,
    per_second: &[f64],
    cpu: &[f64],
    rss_per_server_mib: Option<f64>,
) -> ScaleRow {
    ScaleRow {
        count,
        messages: jobs.len(),
        reps,
        jobs_per_second: spread(per_second),
        speedup: 1.0,
        efficiency: 1.0,
        cpu_us_per_job: spread(cpu).median,
        rss_mib: rss_mib().unwrap_or(f64::NAN),
        rss_per_server_mib,
    }
}

/// Speed-up and efficiency against the first row.
fn relate(rows: &mut [ScaleRow]) {
    let Some(first) = rows.first().cloned() else {
        return;
    };
    for row in rows {
        row.speedup = row.jobs_per_second.median / first.jobs_per_second.median;
        row.efficiency = row.speedup / (row.count as f64 / first.count as f64);
    }
}

/// The first count whose efficiency falls below [`KNEE_EFFICIENCY`].
pub fn knee(rows: &[ScaleRow]) -> Option<usize> {
    rows.iter()
        .find(|row| row.efficiency < KNEE_EFFICIENCY)
        .map(|row| row.count)
}

/// For each count, that many servers of one worker each in one group on a
/// stream of the run's own, all started first; then `reps` rounds, each
/// running `jobs` through every group in turn with the real client.
fn servers_rows(
    url: &str,
    kind: RuntimeKind,
    variant: &str,
    counts: &[usize],
    jobs: &[Job],
    reps: usize,
    progress: &dyn Progress,
) -> Result<Vec<ScaleRow>, BenchError> {
    let failed = |count: usize, message: String| BenchError::Pipeline {
        config: format!("scale, {count} servers through Redis"),
        message,
    };
    let runtime = hotwasm_server::async_runtime()
        .map_err(|e| failed(0, format!("starting the async runtime: {e}")))?;
    let outgoing: Vec<Outgoing> = jobs.iter().map(Outgoing::from).collect();
    let options = PipelineOptions {
        server: ServerConfig::new(kind),
        consume: ConsumeOptions::default(),
        submit: SubmitOptions::new(),
    }
    .with_fresh_reply_key();
    let base = options.submit.client.clone();
    runtime.block_on(async {
        // Every group, its servers started (and the resident set's growth
        // per server measured) before anything is timed.
        let mut groups = Vec::with_capacity(counts.len());
        for (group, &count) in counts.iter().enumerate() {
            let rss_before = rss_mib();
            let mut servers: Vec<Arc<Server>> = Vec::with_capacity(count);
            for index in 0..count {
                let mut config = ServerConfig::new(kind);
                config.name = format!("{base}-group-{group}-server-{index}");
                config.workers = 1;
                config.modules.variant = Some(variant.to_string());
                config.modules.limits = crate::measure::limits();
                servers.push(
                    hotwasm_pipeline::start(config)
                        .await
                        .map_err(|e| failed(count, e.to_string()))?,
                );
            }
            let rss_per_server = match (rss_before, rss_mib()) {
                (Some(before), Some(after)) => Some((after - before) / count as f64),
                _ => None,
            };
            let stream = BenchStream::connect(url, &format!("{base}:scale-{group}"))
                .await
                .map_err(|e| failed(count, e))?;
            groups.push((count, servers, rss_per_server, stream));
        }
        let mut per_second = vec![Vec::new(); groups.len()];
        let mut cpu = vec![Vec::new(); groups.len()];
        let mut outcome = Ok(());
        'rounds: for rep in 0..reps {
            for (index, (count, servers, _, stream)) in groups.iter().enumerate() {
                progress.step(&format!("{count} servers, round {}/{reps}", rep + 1));
                let before = process_cpu_seconds();
                let summary = hotwasm_pipeline::run_group(
                    servers.clone(),
                    Arc::clone(&stream.queue),
                    &outgoing,
                    &options,
                    &|_| {},
                )
                .await;
                let summary = match summary {
                    Ok(summary) => summary,
                    Err(e) => {
                        outcome = Err(failed(*count, e.to_string()));
                        break 'rounds;
                    }
                };
                if let Err(message) = check_run(jobs.len(), &summary) {
                    outcome = Err(failed(*count, message));
                    break 'rounds;
                }
                cpu[index].push((process_cpu_seconds() - before) * 1e6 / jobs.len() as f64);
                per_second[index].push(jobs.len() as f64 / summary.elapsed.as_secs_f64());
            }
        }
        for (_, _, _, stream) in &groups {
            stream.remove().await;
        }
        outcome?;
        Ok(groups
            .iter()
            .enumerate()
            .map(|(index, (count, _, rss_per_server, _))| {
                row(
                    *count,
                    jobs,
                    reps,
                    &per_second[index],
                    &cpu[index],
                    *rss_per_server,
                )
            })
            .collect())
    })
}

/// Linear memory of a fresh instance of each scheme's active module, KiB.
fn instance_memory(set: &ModuleSet) -> Vec<(String, f64)> {
    hotwasm_abi::Scheme::ALL
        .into_iter()
        .filter_map(|scheme| {
            let module = set.get(scheme)?;
            let instance = module.compiled.instantiate().ok()?;
            Some((scheme.to_string(), instance.memory_bytes() as f64 / 1024.0))
        })
        .collect()
}

/// CPU time of the whole process so far, seconds.
fn process_cpu_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &raw mut now) };
    if read != 0 {
        return f64::NAN;
    }
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

/// The process's resident set, MiB (`/proc/self/status`).
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(count: usize, per_second: f64) -> ScaleRow {
        ScaleRow {
            count,
            messages: 1,
            reps: 1,
            jobs_per_second: Spread {
                median: per_second,
                min: per_second,
                max: per_second,
            },
            speedup: 1.0,
            efficiency: 1.0,
            cpu_us_per_job: 1.0,
            rss_mib: 1.0,
            rss_per_server_mib: None,
        }
    }

    #[test]
    fn efficiency_is_against_linear_from_the_first_row_and_the_knee_is_where_it_falls() {
        let mut rows = vec![at(1, 100.0), at(2, 190.0), at(4, 240.0)];
        relate(&mut rows);
        assert!((rows[1].speedup - 1.9).abs() < 1e-12);
        assert!((rows[1].efficiency - 0.95).abs() < 1e-12);
        assert!((rows[2].efficiency - 0.6).abs() < 1e-12);
        assert_eq!(knee(&rows), Some(4));
        assert_eq!(knee(&rows[..2]), None);
    }
}
