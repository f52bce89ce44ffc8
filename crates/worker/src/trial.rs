//! A candidate version on trial beside the one serving a scheme.
//!
//! - **Shadow**: after a sampled job's verdict has been handed over, the
//!   worker runs the candidate on the same job and compares the two; the
//!   delivered verdict is always the serving version's.
//! - **Canary**: a selected job is served by the candidate; if the
//!   candidate's call fails (trap, deadline, malformed answer), the serving
//!   version answers the job instead, so the client still gets a verdict
//!   from working code, and the failure is counted.
//!
//! Jobs are selected by a hash of their id and the trial's id, so a job
//! retried after a crash (or taken over by another server of the fleet)
//! goes the same way. The counters are cumulative; whoever reports them
//! (the fleet agent) takes differences.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hotwasm_jobs::{Job, Verdict};
use sha2::{Digest, Sha256};

use crate::SchemeModule;

/// Disagreements kept in memory until the reporter takes them; more are
/// counted, not kept.
pub const KEPT_DISAGREEMENTS: usize = 64;

/// How the candidate takes part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrialMode {
    /// Runs after the serving version on this fraction of jobs (0..=1),
    /// off the delivered verdict's path.
    Shadow {
        /// Fraction of jobs compared.
        sample: f64,
    },
    /// Serves this fraction of jobs (0..=1) itself.
    Canary {
        /// Fraction of jobs served by the candidate.
        fraction: f64,
    },
}

/// A candidate on trial for one scheme.
pub struct Trial {
    /// The rollout this trial belongs to (the same on every server).
    pub id: String,
    /// Shadow or canary, with its fraction.
    pub mode: TrialMode,
    /// The candidate version.
    pub candidate: Arc<SchemeModule>,
    /// Whether a different `reason` (both invalid) counts as a
    /// disagreement, besides a different `valid`.
    pub compare_reason: bool,
    /// What happened so far.
    pub counts: TrialCounts,
    /// Candidate call durations.
    pub latency: LatencyHistogram,
    disagreements: Mutex<VecDeque<Disagreement>>,
}

/// Cumulative counters of a trial.
#[derive(Debug, Default)]
pub struct TrialCounts {
    /// Shadow: jobs on which both versions gave the same verdict.
    pub agreed: AtomicU64,
    /// Shadow: jobs on which they did not.
    pub disagreed: AtomicU64,
    /// Calls of the candidate that gave no answer (trap, deadline,
    /// malformed or oversized answer, no instance).
    pub errors: AtomicU64,
    /// Canary: jobs whose delivered verdict came from the candidate.
    pub served: AtomicU64,
    /// Canary: jobs selected for the candidate that the serving version
    /// answered because the candidate failed.
    pub fell_back: AtomicU64,
    /// Shadow: sampled jobs not compared because the shadow threads were
    /// behind (the serving workers keep the CPU first).
    pub skipped: AtomicU64,
}

/// A snapshot of [`TrialCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrialSnapshot {
    /// See [`TrialCounts::agreed`].
    pub agreed: u64,
    /// See [`TrialCounts::disagreed`].
    pub disagreed: u64,
    /// See [`TrialCounts::errors`].
    pub errors: u64,
    /// See [`TrialCounts::served`].
    pub served: u64,
    /// See [`TrialCounts::fell_back`].
    pub fell_back: u64,
    /// See [`TrialCounts::skipped`].
    pub skipped: u64,
}

/// One job on which the two versions gave different verdicts (or the
/// candidate gave none).
#[derive(Debug, Clone)]
pub struct Disagreement {
    /// The job.
    pub job: Job,
    /// The serving version's verdict (the one delivered).
    pub serving: Verdict,
    /// The candidate's.
    pub candidate: Verdict,
}

impl Trial {
    /// A trial of `candidate` with nothing counted.
    pub fn new(
        id: impl Into<String>,
        mode: TrialMode,
        candidate: Arc<SchemeModule>,
        compare_reason: bool,
    ) -> Trial {
        Trial {
            id: id.into(),
            mode,
            candidate,
            compare_reason,
            counts: TrialCounts::default(),
            latency: LatencyHistogram::default(),
            disagreements: Mutex::new(VecDeque::new()),
        }
    }

    /// Whether the job with `job_id` takes part: the first 8 bytes of
    /// SHA-256(trial id, job id) as a fraction of 2^64, below the mode's
    /// fraction. The same on every server and every delivery of the job.
    pub fn selects(&self, job_id: &str) -> bool {
        let fraction = match self.mode {
            TrialMode::Shadow { sample } => sample,
            TrialMode::Canary { fraction } => fraction,
        };
        if fraction >= 1.0 {
            return true;
        }
        if fraction <= 0.0 {
            return false;
        }
        let digest = Sha256::new()
            .chain_update(self.id.as_bytes())
            .chain_update([0])
            .chain_update(job_id.as_bytes())
            .finalize();
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        // Precision loss past 2^53 does not matter for a sampling rate.
        #[allow(clippy::cast_precision_loss)]
        let point = u64::from_be_bytes(head) as f64 / 18_446_744_073_709_551_616.0;
        point < fraction
    }

    /// Whether this is a shadow trial.
    pub fn is_shadow(&self) -> bool {
        matches!(self.mode, TrialMode::Shadow { .. })
    }

    /// The counters now.
    pub fn snapshot(&self) -> TrialSnapshot {
        let c = &self.counts;
        TrialSnapshot {
            agreed: c.agreed.load(Ordering::Relaxed),
            disagreed: c.disagreed.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            served: c.served.load(Ordering::Relaxed),
            fell_back: c.fell_back.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
        }
    }

    /// Compares the candidate's verdict with the serving one's, and counts
    /// (and keeps, up to [`KEPT_DISAGREEMENTS`]) the outcome.
    pub fn compare(&self, job: &Job, serving: &Verdict, candidate: Verdict) {
        let agree = serving.valid == candidate.valid
            && (!self.compare_reason || serving.reason == candidate.reason);
        if agree {
            self.counts.agreed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.counts.disagreed.fetch_add(1, Ordering::Relaxed);
        let mut kept = self
            .disagreements
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.len() < KEPT_DISAGREEMENTS {
            kept.push_back(Disagreement {
                job: job.clone(),
                serving: serving.clone(),
                candidate,
            });
        }
    }

    /// The disagreements kept since the last call.
    pub fn take_disagreements(&self) -> Vec<Disagreement> {
        self.disagreements
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .drain(..)
            .collect()
    }
}

/// Call durations in buckets a factor √2 apart, from 1 µs to about 17 min
/// (hand-written: a percentile of a trial's own calls is all it needs).
#[derive(Debug)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LatencyHistogram::BUCKETS],
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl LatencyHistogram {
    const BUCKETS: usize = 60;

    /// Counts one call of `micros`.
    pub fn record(&self, micros: f64) {
        let index = if micros <= 1.0 {
            0
        } else {
            // ceil(2 log2(µs)): bucket i holds (2^((i-1)/2), 2^(i/2)] µs.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = (2.0 * micros.log2()).ceil() as usize;
            i.min(Self::BUCKETS - 1)
        };
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Calls counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The upper bound, in µs, of the bucket holding the `quantile`
    /// (0..=1) of the calls counted (at most √2 above the true value);
    /// `None` before any call.
    pub fn quantile_micros(&self, quantile: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((quantile.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                #[allow(clippy::cast_precision_loss)]
                return Some(2f64.powf(index as f64 / 2.0));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_bounds_above_the_value() {
        let histogram = LatencyHistogram::default();
        assert_eq!(histogram.quantile_micros(0.99), None);
        for _ in 0..99 {
            histogram.record(100.0);
        }
        histogram.record(10_000.0);
        let p50 = histogram.quantile_micros(0.5).expect("counted");
        assert!((100.0..=100.0 * 2f64.sqrt()).contains(&p50), "{p50}");
        let p99 = histogram.quantile_micros(0.99).expect("counted");
        assert!((100.0..=100.0 * 2f64.sqrt()).contains(&p99), "{p99}");
        let max = histogram.quantile_micros(1.0).expect("counted");
        assert!((10_000.0..=10_000.0 * 2f64.sqrt()).contains(&max), "{max}");
        assert_eq!(histogram.count(), 100);
    }
}
