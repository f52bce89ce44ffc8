//! Section 3, single-message latency: each verify timed on its own (warm
//! instance, mixed schemes), p50/p99/max per runtime on its preferred
//! variant.

use std::time::Instant;

use hotwasm_jobs::{SchemeChoice, Verdict};
use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{ModuleSet, Worker};
use serde::Serialize;

use crate::measure::{check, jobs, micros, percentiles, warm_up};
use crate::options::BenchOptions;
use crate::report::{Cell, Percentiles};
use crate::{BenchError, Progress};

/// Latency per runtime.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySection {
    /// One row per runtime.
    pub rows: Vec<LatencyRow>,
}

/// One runtime's latency.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRow {
    /// Runtime name.
    pub runtime: String,
    /// Variant (the runtime's preferred one).
    pub variant: String,
    /// The figures.
    pub result: Cell<LatencyFigures>,
}

/// Percentiles of single verifies and the median's ratio to native.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyFigures {
    /// Percentiles in microseconds.
    pub latency: Percentiles,
    /// `latency.p50_us` over native's.
    pub p50_ratio_to_native: Option<f64>,
}

impl LatencySection {
    /// The measured figures of `runtime`.
    pub fn find(&self, runtime: &str) -> Option<&LatencyFigures> {
        self.rows
            .iter()
            .find(|r| r.runtime == runtime)
            .and_then(|r| r.result.measured())
    }
}

/// Measures single-message latency.
///
/// # Errors
///
/// [`BenchError::WrongVerdict`] on any wrong verdict; [`BenchError::Worker`]
/// when a runtime cannot load its preferred variant.
pub fn measure(
    options: &BenchOptions,
    progress: &dyn Progress,
) -> Result<LatencySection, BenchError> {
    let kinds = options.with_native();
    progress.start("latency", kinds.len() as u64 + 1);
    // Every runtime is prepared first; then samples are taken in turn (one
    // verify of each runtime, then the next), so load from elsewhere falls
    // on all runtimes alike.
    let mut prepared = Vec::new();
    for kind in kinds {
        let variant = kind.preferred_variant();
        progress.step(&format!("{kind}/{variant}"));
        let context = format!("latency {kind}/{variant}");
        let set =
            ModuleSet::built_with(kind, variant, crate::measure::limits()).map_err(|source| {
                BenchError::Worker {
                    context: context.clone(),
                    source,
                }
            })?;
        let jobs = jobs(
            options.seed + 10,
            SchemeChoice::Mixed,
            options.invalid_ratio,
            options.budget.latency(kind).max(1),
        );
        let mut worker = Worker::new(&set);
        warm_up(&mut worker, &jobs, &context)?;
        let samples = Vec::with_capacity(jobs.len());
        let verdicts: Vec<Verdict> = Vec::with_capacity(jobs.len());
        prepared.push((kind, variant, context, worker, jobs, samples, verdicts));
    }
    progress.step("sampling, runtimes in turn");
    let longest = prepared.iter().map(|p| p.4.len()).max().unwrap_or(0);
    for index in 0..longest {
        for (_, _, _, worker, jobs, samples, verdicts) in &mut prepared {
            let Some(job) = jobs.get(index) else {
                continue;
            };
            let started = Instant::now();
            let verdict = worker.verify(job);
            samples.push(micros(started.elapsed()));
            verdicts.push(verdict);
        }
    }
    let mut rows = Vec::new();
    for (kind, variant, context, _, jobs, samples, verdicts) in prepared {
        check(&context, &jobs, &verdicts)?;
        rows.push(LatencyRow {
            runtime: kind.name().to_string(),
            variant: crate::throughput::shown_variant(kind, variant).to_string(),
            result: Cell::Measured(LatencyFigures {
                latency: percentiles(&samples),
                p50_ratio_to_native: None,
            }),
        });
    }
    let native = rows
        .iter()
        .find(|r| r.runtime == RuntimeKind::Native.name())
        .and_then(|r| r.result.measured())
        .map(|f| f.latency.p50_us);
    for row in &mut rows {
        if let Cell::Measured(figures) = &mut row.result {
            figures.p50_ratio_to_native = native.map(|n| figures.latency.p50_us / n);
        }
    }
    progress.finish();
    Ok(LatencySection { rows })
}
