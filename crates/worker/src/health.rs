//! How a module version's calls are going: calls, failures, the current
//! run of failures in a row. A version whose calls keep failing (a module
//! that traps or runs past its deadline on every job) is reported once
//! per run, in the log and in the server's `Stats` and `ListModules`.
//!
//! A failure is a call that gave no answer — trap, deadline, memory cap,
//! malformed or oversized response, an instance that could not be made —
//! not a signature the module judged invalid.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::histogram::Histogram;

/// Failed calls in a row after which a version counts as failing.
pub const FAILING_AFTER: u64 = 16;

/// The kinds of failure counted apart: `instantiate` (no instance could
/// be made) and the kinds of `hotwasm_runtime::CallError::kind`.
pub const FAILURE_KINDS: [&str; 7] = [
    "instantiate",
    "trap",
    "guest",
    "protocol",
    "too_large",
    "deadline",
    "malformed",
];

/// Upper bounds, in seconds, of the call-duration histogram's buckets:
/// from a native verify (tens of µs) to past the default call deadline.
pub const DURATION_BUCKETS: [f64; 14] = [
    25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3,
    1.0,
];

/// The counters of one module version, shared by the workers that run it.
#[derive(Debug)]
pub struct CallHealth {
    calls: AtomicU64,
    valid: AtomicU64,
    failures: AtomicU64,
    by_kind: [AtomicU64; FAILURE_KINDS.len()],
    in_a_row: AtomicU64,
    last_failure: Mutex<Option<String>>,
    /// How long each guest call took, answered or not (instantiation
    /// failures excluded: no call ran).
    duration: Histogram,
}

impl Default for CallHealth {
    fn default() -> Self {
        CallHealth {
            calls: AtomicU64::new(0),
            valid: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            by_kind: Default::default(),
            in_a_row: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            duration: Histogram::new(DURATION_BUCKETS),
        }
    }
}

/// A snapshot of [`CallHealth`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthReport {
    /// Calls since the version started serving.
    pub calls: u64,
    /// Of those, calls that answered that the signature is valid.
    pub valid: u64,
    /// Of those, calls that failed.
    pub failures: u64,
    /// Failures since the last call that answered.
    pub failures_in_a_row: u64,
    /// The most recent failure's reason.
    pub last_failure: Option<String>,
    /// Failures by kind, in the order of [`FAILURE_KINDS`].
    pub failures_by_kind: [u64; FAILURE_KINDS.len()],
}

impl HealthReport {
    /// At least [`FAILING_AFTER`] calls in a row failed.
    pub fn failing(&self) -> bool {
        self.failures_in_a_row >= FAILING_AFTER
    }
}

impl CallHealth {
    /// Counts a call that answered `valid`.
    pub fn answered(&self, valid: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.valid.fetch_add(u64::from(valid), Ordering::Relaxed);
        self.in_a_row.store(0, Ordering::Relaxed);
    }

    /// Records how long a guest call took.
    pub fn timed(&self, seconds: f64) {
        self.duration.observe(seconds);
    }

    /// The call durations so far.
    pub fn durations(&self) -> &Histogram {
        &self.duration
    }

    /// Counts a failed call of version `id`, of `kind` (one of
    /// [`FAILURE_KINDS`]; another counts as `trap`); the failure that makes
    /// the run reach [`FAILING_AFTER`] is logged as a warning.
    pub fn failed(&self, id: &str, kind: &str, reason: &str) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        let slot = FAILURE_KINDS.iter().position(|k| *k == kind).unwrap_or(1);
        self.by_kind[slot].fetch_add(1, Ordering::Relaxed);
        let in_a_row = self.in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        *self
            .last_failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(reason.to_string());
        if in_a_row == FAILING_AFTER {
            tracing::warn!(
                module = %id,
                failures_in_a_row = in_a_row,
                last = %reason,
                "module is failing: its last {in_a_row} calls gave no answer; activate another version or roll back"
            );
        }
    }

    /// The counters now.
    pub fn report(&self) -> HealthReport {
        HealthReport {
            calls: self.calls.load(Ordering::Relaxed),
            valid: self.valid.load(Ordering::Relaxed),
            failures_by_kind: std::array::from_fn(|i| self.by_kind[i].load(Ordering::Relaxed)),
            failures: self.failures.load(Ordering::Relaxed),
            failures_in_a_row: self.in_a_row.load(Ordering::Relaxed),
            last_failure: self
                .last_failure
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_failures_makes_a_version_failing_and_an_answer_ends_it() {
        let health = CallHealth::default();
        health.answered(true);
        for _ in 0..FAILING_AFTER - 1 {
            health.failed("m@1", "deadline", "deadline");
        }
        assert!(!health.report().failing());
        health.failed("m@1", "trap", "trap");
        let report = health.report();
        assert!(report.failing());
        assert_eq!(report.calls, FAILING_AFTER + 1);
        assert_eq!(report.failures, FAILING_AFTER);
        assert_eq!(report.last_failure.as_deref(), Some("trap"));
        assert_eq!(report.failures_by_kind[5], FAILING_AFTER - 1, "deadlines");
        assert_eq!(report.failures_by_kind[1], 1, "traps");
        assert_eq!(report.valid, 1);
        health.answered(false);
        let report = health.report();
        assert!(!report.failing());
        assert_eq!(report.failures, FAILING_AFTER, "failures stay counted");
    }
}
