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

/// Failed calls in a row after which a version counts as failing.
pub const FAILING_AFTER: u64 = 16;

/// The counters of one module version, shared by the workers that run it.
#[derive(Debug, Default)]
pub struct CallHealth {
    calls: AtomicU64,
    failures: AtomicU64,
    in_a_row: AtomicU64,
    last_failure: Mutex<Option<String>>,
}

/// A snapshot of [`CallHealth`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthReport {
    /// Calls since the version started serving.
    pub calls: u64,
    /// Of those, calls that failed.
    pub failures: u64,
    /// Failures since the last call that answered.
    pub failures_in_a_row: u64,
    /// The most recent failure's reason.
    pub last_failure: Option<String>,
}

impl HealthReport {
    /// At least [`FAILING_AFTER`] calls in a row failed.
    pub fn failing(&self) -> bool {
        self.failures_in_a_row >= FAILING_AFTER
    }
}

impl CallHealth {
    /// Counts a call that answered.
    pub fn answered(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.in_a_row.store(0, Ordering::Relaxed);
    }

    /// Counts a failed call of version `id`; the failure that makes the
    /// run reach [`FAILING_AFTER`] is logged as a warning.
    pub fn failed(&self, id: &str, reason: &str) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
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
        health.answered();
        for _ in 0..FAILING_AFTER - 1 {
            health.failed("m@1", "deadline");
        }
        assert!(!health.report().failing());
        health.failed("m@1", "trap");
        let report = health.report();
        assert!(report.failing());
        assert_eq!(report.calls, FAILING_AFTER + 1);
        assert_eq!(report.failures, FAILING_AFTER);
        assert_eq!(report.last_failure.as_deref(), Some("trap"));
        health.answered();
        let report = health.report();
        assert!(!report.failing());
        assert_eq!(report.failures, FAILING_AFTER, "failures stay counted");
    }
}
