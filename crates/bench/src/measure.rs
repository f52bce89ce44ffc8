//! Timing, statistics and verdict checks shared by the sections.
//!
//! A timed region holds the verify calls and nothing else: verdicts are
//! moved into a vector allocated before the clock starts and checked after
//! it stops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotwasm_jobs::{Generator, Job, SchemeChoice, Verdict};
use hotwasm_worker::{ModuleSet, SchemeModule, Worker};

use crate::BenchError;
use crate::report::{Percentiles, Spread};

/// The guest limits of every runtime the bench makes: the defaults with
/// deadlines of 10 s instead of 100 ms. Calls stay metered — the same
/// generated code and checks — but a verdict is never decided by a loaded
/// machine descheduling a worker past a server's deadline (a wrong
/// verdict fails the run).
pub(crate) fn limits() -> hotwasm_runtime::Limits {
    hotwasm_runtime::Limits {
        call_timeout: Duration::from_secs(10),
        init_timeout: Duration::from_secs(10),
        ..hotwasm_runtime::Limits::default()
    }
}

/// Jobs that warm a worker before its first timed run (instances made,
/// k256's lazily built tables filled).
pub(crate) const WARM_UP_JOBS: usize = 16;

/// `n` deterministic jobs of `choice`, `invalid_ratio` of them invalid.
pub(crate) fn jobs(seed: u64, choice: SchemeChoice, invalid_ratio: f64, n: usize) -> Vec<Job> {
    Generator::new(seed, choice, invalid_ratio)
        .take(n)
        .collect()
}

/// Runs `jobs` through `worker` once; returns the time of the loop and the
/// verdicts (unchecked).
pub(crate) fn timed_run(worker: &mut Worker, jobs: &[Job]) -> (Duration, Vec<Verdict>) {
    let mut verdicts = Vec::with_capacity(jobs.len());
    let started = Instant::now();
    for job in jobs {
        verdicts.push(worker.verify(job));
    }
    (started.elapsed(), verdicts)
}

/// Verifies the first [`WARM_UP_JOBS`] jobs untimed, checking them.
pub(crate) fn warm_up(worker: &mut Worker, jobs: &[Job], context: &str) -> Result<(), BenchError> {
    let jobs = &jobs[..jobs.len().min(WARM_UP_JOBS)];
    let verdicts: Vec<Verdict> = jobs.iter().map(|job| worker.verify(job)).collect();
    check(context, jobs, &verdicts)
}

/// Checks every verdict against its job's `expect`.
///
/// # Errors
///
/// [`BenchError::WrongVerdict`] at the first difference,
/// [`BenchError::VerdictCount`] when the counts differ.
pub(crate) fn check(context: &str, jobs: &[Job], verdicts: &[Verdict]) -> Result<(), BenchError> {
    if jobs.len() != verdicts.len() {
        return Err(BenchError::VerdictCount {
            context: context.to_string(),
            expected: jobs.len(),
            got: verdicts.len(),
        });
    }
    for (job, verdict) in jobs.iter().zip(verdicts) {
        if let Some(expected) = job.expect
            && expected != verdict.valid
        {
            return Err(BenchError::WrongVerdict {
                context: context.to_string(),
                id: job.id.clone(),
                expected,
                got: verdict.valid,
                reason: verdict.reason.clone().unwrap_or_else(|| "-".into()),
            });
        }
    }
    Ok(())
}

/// Checks one verdict.
pub(crate) fn check_one(context: &str, job: &Job, verdict: &Verdict) -> Result<(), BenchError> {
    check(
        context,
        std::slice::from_ref(job),
        std::slice::from_ref(verdict),
    )
}

/// Median, min and max of `samples` (any unit).
pub(crate) fn spread(samples: &[f64]) -> Spread {
    let sorted = sorted(samples);
    Spread {
        median: median_of_sorted(&sorted),
        min: sorted.first().copied().unwrap_or(f64::NAN),
        max: sorted.last().copied().unwrap_or(f64::NAN),
    }
}

/// p50, p99 and max of `samples` in microseconds.
pub(crate) fn percentiles(samples: &[f64]) -> Percentiles {
    let sorted = sorted(samples);
    Percentiles {
        samples: sorted.len(),
        p50_us: percentile_of_sorted(&sorted, 50.0),
        p99_us: percentile_of_sorted(&sorted, 99.0),
        max_us: sorted.last().copied().unwrap_or(f64::NAN),
    }
}

/// The median (mean of the middle two for an even count).
pub(crate) fn median(samples: &[f64]) -> f64 {
    median_of_sorted(&sorted(samples))
}

/// Nearest-rank percentile `p` (0–100) of `samples`.
#[cfg(test)]
fn percentile(samples: &[f64], p: f64) -> f64 {
    percentile_of_sorted(&sorted(samples), p)
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Nearest-rank percentile `p` (0–100) of sorted samples; NaN (a blank
/// cell in the report) when there are none.
fn percentile_of_sorted(sorted: &[f64], p: f64) -> f64 {
    hotwasm_jobs::stats::percentile(sorted, p / 100.0).unwrap_or(f64::NAN)
}

/// Microseconds of a duration.
pub(crate) fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Milliseconds of a duration.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Another version of the built module `name` in `variant`: the same code
/// with a custom section naming `tag`, so another content hash; compiled
/// in `set`, not activated.
pub(crate) fn tagged_version(
    set: &ModuleSet,
    name: &str,
    variant: &str,
    tag: &str,
    context: &str,
) -> Result<Arc<SchemeModule>, BenchError> {
    let bytes = built_bytes(name, variant, context)?;
    let tagged = hotwasm_modules::tagged(bytes, tag);
    set.compile(name, &tagged)
        .map_err(|source| BenchError::Worker {
            context: context.to_string(),
            source,
        })
}

/// The bytes of a built module.
pub(crate) fn built_bytes(
    name: &str,
    variant: &str,
    context: &str,
) -> Result<&'static [u8], BenchError> {
    hotwasm_modules::find(name, variant)
        .map(|m| m.bytes)
        .ok_or_else(|| BenchError::Call {
            context: context.to_string(),
            message: format!("this build carries no {name} module in variant {variant}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles_of_known_samples() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 50.0), 50.0);
        assert_eq!(percentile(&hundred, 99.0), 99.0);
        assert_eq!(percentile(&hundred, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }
}
