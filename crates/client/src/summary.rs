//! What a submission saw: counts, mismatches, latency, per-server work.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hotwasm_jobs::Verdict;
use serde::Serialize;

/// A job whose verdict differs from its `expect`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// The job's position in the submission.
    pub index: u64,
    /// What it expected.
    pub expected: bool,
    /// What it got.
    pub verdict: Verdict,
}

/// The outcome of one submission.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Jobs submitted.
    pub jobs: u64,
    /// Jobs with a verdict (the first one, when a job was answered twice).
    pub verdicts: u64,
    /// Verdicts with `valid: true`.
    pub valid: u64,
    /// Verdicts of jobs that never reached a module (malformed jobs).
    pub malformed: u64,
    /// Jobs that carried `expect`.
    pub checked: u64,
    /// Verdicts that differ from `expect`, the first [`Summary::MAX_LISTED`].
    pub mismatches: Vec<Mismatch>,
    /// All of them.
    pub mismatch_count: u64,
    /// Jobs without a verdict when the client gave up waiting.
    pub missing: u64,
    /// Second verdicts for a job (a redelivery after a server died).
    pub duplicates: u64,
    /// Messages in the results channel that were not verdicts of this run.
    pub unreadable: u64,
    /// Replies not signed with the reply key: dropped, never counted as
    /// verdicts.
    pub forged: u64,
    /// Replies that answer another job than the one sent under their
    /// sequence number (their job digest differs): dropped.
    pub misdirected: u64,
    /// Ring records that failed their checks, and ring states no writer
    /// following the protocol produces (see [`Summary::ring_corrupted`]).
    pub corrupt: u64,
    /// Why the results ring was found corrupted (the first time), naming
    /// the ring: someone wrote into it who does not follow the protocol.
    /// The run fails; verdicts it kept from arriving are counted missing.
    pub ring_corrupted: Option<String>,
    /// Verdicts per server.
    pub per_server: BTreeMap<String, u64>,
    /// Verdicts per module version.
    pub per_module: BTreeMap<String, u64>,
    /// From the first submission to the last verdict.
    #[serde(rename = "elapsed_seconds", serialize_with = "seconds")]
    pub elapsed: Duration,
    /// Per job, from its submission to its verdict at the client, sorted.
    #[serde(skip)]
    pub latencies_micros: Vec<f64>,
    /// Jobs per second over [`Summary::elapsed`].
    pub throughput: f64,
    /// Median latency, microseconds.
    pub latency_p50_micros: f64,
    /// 99th percentile latency, microseconds.
    pub latency_p99_micros: f64,
    /// Highest latency, microseconds.
    pub latency_max_micros: f64,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Summary {
    /// How many mismatches are listed.
    pub const MAX_LISTED: usize = 20;

    pub(crate) fn new(jobs: u64) -> Summary {
        Summary {
            jobs,
            ..Summary::default()
        }
    }

    pub(crate) fn mismatch(&mut self, mismatch: Mismatch) {
        self.mismatch_count += 1;
        if self.mismatches.len() < Self::MAX_LISTED {
            self.mismatches.push(mismatch);
        }
    }

    /// Sorts the latencies and derives throughput and percentiles.
    pub(crate) fn finish(&mut self) {
        self.latencies_micros.sort_by(f64::total_cmp);
        self.throughput = match self.elapsed.as_secs_f64() {
            s if s > 0.0 => self.verdicts as f64 / s,
            _ => 0.0,
        };
        self.latency_p50_micros = percentile(&self.latencies_micros, 0.50);
        self.latency_p99_micros = percentile(&self.latencies_micros, 0.99);
        self.latency_max_micros = self.latencies_micros.last().copied().unwrap_or(0.0);
    }

    /// Every job has a verdict, none contradicts its `expect`, and the
    /// results ring was not corrupted.
    pub fn passed(&self) -> bool {
        self.missing == 0 && self.mismatch_count == 0 && self.ring_corrupted.is_none()
    }
}

/// The `q` quantile (nearest rank) of sorted values; 0 when empty, as the
/// summary shows a run without verdicts.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    hotwasm_jobs::stats::percentile(sorted, q).unwrap_or(0.0)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} verdicts for {} jobs, {} mismatches, {} missing ({} valid, {} malformed, {} duplicates dropped)",
            self.verdicts,
            self.jobs,
            self.mismatch_count,
            self.missing,
            self.valid,
            self.malformed,
            self.duplicates
        )?;
        writeln!(
            f,
            "throughput {:.0} jobs/s over {:.2} s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.throughput,
            self.elapsed.as_secs_f64(),
            self.latency_p50_micros / 1e3,
            self.latency_p99_micros / 1e3,
            self.latency_max_micros / 1e3
        )?;
        if let Some(reason) = &self.ring_corrupted {
            writeln!(
                f,
                "  RING CORRUPTED: {reason} ({} corrupt records; the {} missing verdicts are its doing, not the servers')",
                self.corrupt, self.missing
            )?;
        }
        if self.forged > 0 || self.misdirected > 0 {
            writeln!(
                f,
                "  DROPPED: {} forged replies (not signed with the reply key), {} misdirected (answering another job)",
                self.forged, self.misdirected
            )?;
        }
        for (server, count) in &self.per_server {
            writeln!(f, "  server {server}: {count} verdicts")?;
        }
        for (module, count) in &self.per_module {
            writeln!(f, "  module {module}: {count} verdicts")?;
        }
        for mismatch in &self.mismatches {
            writeln!(
                f,
                "  job #{} id {}: expected valid={}, got valid={} ({})",
                mismatch.index,
                mismatch.verdict.id.as_deref().unwrap_or("-"),
                mismatch.expected,
                mismatch.verdict.valid,
                mismatch.verdict.reason.as_deref().unwrap_or("no reason")
            )?;
        }
        if self.mismatch_count > self.mismatches.len() as u64 {
            writeln!(
                f,
                "  ... and {} more mismatches",
                self.mismatch_count - self.mismatches.len() as u64
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
    }
}
