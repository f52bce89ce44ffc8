//! A JSON Lines stream of jobs in, one verdict line out per job.
//!
//! Every non-blank input line yields exactly one verdict line, in order:
//! a line that is not a usable job gets an error verdict whose reason names
//! the line, and the stream goes on. Lines are read with a length bound, so
//! a runaway line costs neither unbounded memory nor the rest of the batch.

use std::io::{self, BufRead, Write};

use hotwasm_jobs::lines::read_bounded_line;
use hotwasm_jobs::{JobLimits, JobLine, Verdict};

use crate::Worker;

/// What a stream run saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Verdicts written (one per non-blank line).
    pub verdicts: u64,
    /// Verdicts with `valid: true`.
    pub valid: u64,
    /// Lines that were not usable jobs (bad JSON, bad hex, ...).
    pub malformed: u64,
    /// Jobs that carried `expect`.
    pub checked: u64,
    /// Jobs whose verdict differs from `expect`, and unreadable lines (which
    /// cannot be checked), up to [`Summary::MAX_LISTED`] of them.
    pub failures: Vec<Failure>,
    /// All failures, listed or not.
    pub failure_count: u64,
}

impl Summary {
    /// How many failures are kept in [`Summary::failures`].
    pub const MAX_LISTED: usize = 20;

    fn fail(&mut self, failure: Failure) {
        self.failure_count += 1;
        if self.failures.len() < Self::MAX_LISTED {
            self.failures.push(failure);
        }
    }
}

/// One line that did not get the verdict it expected.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// 1-based input line.
    pub line: u64,
    /// The job id, when the line had one.
    pub id: Option<String>,
    /// What the job expected (`None`: the line was unreadable).
    pub expected: Option<bool>,
    /// What it got.
    pub verdict: Verdict,
}

/// Reads jobs from `input` until EOF, writes one verdict line per job to
/// `output`, and calls `progress` with the number of input bytes consumed
/// after each line.
///
/// # Errors
///
/// Only I/O errors of `input` or `output`; bad jobs are verdicts.
pub fn run<R: BufRead, W: Write>(
    mut input: R,
    mut output: W,
    worker: &mut Worker,
    limits: &JobLimits,
    mut progress: impl FnMut(u64),
) -> io::Result<Summary> {
    let max_line = limits.max_line_bytes();
    let mut summary = Summary::default();
    let mut buffer = Vec::new();
    let mut line_number = 0u64;
    let mut consumed = 0u64;
    while let Some(read) = read_bounded_line(&mut input, &mut buffer, max_line)? {
        line_number += 1;
        consumed += read.bytes;
        let text = String::from_utf8_lossy(&buffer);
        let text = text.trim();
        if text.is_empty() && !read.truncated {
            continue;
        }
        let (verdict, expected, readable) = if read.truncated {
            let reason = format!(
                "line {line_number}: {} bytes, longer than any job within the limits \
                 (messages up to {} bytes, --max-message-bytes)",
                read.bytes, limits.max_message_bytes
            );
            (Verdict::error(None, worker.runtime(), reason), None, false)
        } else {
            match JobLine::parse(text) {
                Err(e) => (
                    Verdict::error(None, worker.runtime(), format!("line {line_number}: {e}")),
                    None,
                    false,
                ),
                Ok(job_line) => match job_line.validate(limits) {
                    Err(e) => {
                        summary.malformed += 1;
                        let id = (!job_line.id.is_empty()).then(|| job_line.id.clone());
                        let reason = format!("line {line_number}: malformed job: {e}");
                        (
                            Verdict::error(id, worker.runtime(), reason),
                            job_line.expect,
                            true,
                        )
                    }
                    Ok(job) => (worker.verify(&job), job.expect, true),
                },
            }
        };
        if !readable {
            summary.malformed += 1;
        }
        summary.verdicts += 1;
        summary.valid += u64::from(verdict.valid);
        summary.checked += u64::from(expected.is_some());
        if !readable || expected.is_some_and(|e| e != verdict.valid) {
            summary.fail(Failure {
                line: line_number,
                id: verdict.id.clone(),
                expected,
                verdict: verdict.clone(),
            });
        }
        serde_json::to_writer(&mut output, &verdict)?;
        output.write_all(b"\n")?;
        progress(consumed);
    }
    output.flush()?;
    Ok(summary)
}
