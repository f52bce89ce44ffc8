//! A JSON Lines stream of jobs in, one verdict line out per job.
//!
//! Every non-blank input line yields exactly one verdict line, in order:
//! a line that is not a usable job gets an error verdict whose reason names
//! the line, and the stream goes on. Lines are read with a length bound, so
//! a runaway line costs neither unbounded memory nor the rest of the batch.

use std::io::{self, BufRead, Write};

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
    let max_line = limits
        .max_message_bytes
        .saturating_add(limits.max_key_or_signature_bytes.saturating_mul(2))
        .saturating_mul(2)
        .saturating_add(64 * 1024);
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

struct LineRead {
    /// Bytes consumed from the input, newline included.
    bytes: u64,
    /// The line exceeded the bound; `buffer` holds only its start.
    truncated: bool,
}

/// Reads one line into `buffer` (without the newline), keeping at most
/// `max` bytes and discarding the rest of a longer line. `None` at EOF.
fn read_bounded_line<R: BufRead>(
    input: &mut R,
    buffer: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<LineRead>> {
    buffer.clear();
    let mut bytes = 0u64;
    let mut truncated = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok((bytes > 0).then_some(LineRead { bytes, truncated }));
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..at], Some(at + 1)),
            None => (available, None),
        };
        let room = max.saturating_sub(buffer.len());
        if chunk.len() > room {
            truncated = true;
        }
        buffer.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(available.len());
        input.consume(used);
        bytes += used as u64;
        if done.is_some() {
            return Ok(Some(LineRead { bytes, truncated }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines_are_cut_and_the_rest_skipped() {
        let mut input = io::Cursor::new(b"short\nthis line is long\n\nlast".to_vec());
        let mut buffer = Vec::new();
        let read = read_bounded_line(&mut input, &mut buffer, 8)
            .expect("memory")
            .expect("a line");
        assert_eq!(
            (buffer.as_slice(), read.truncated, read.bytes),
            (&b"short"[..], false, 6)
        );
        let read = read_bounded_line(&mut input, &mut buffer, 8)
            .expect("memory")
            .expect("a line");
        assert_eq!(
            (buffer.as_slice(), read.truncated),
            (&b"this lin"[..], true)
        );
        let read = read_bounded_line(&mut input, &mut buffer, 8)
            .expect("memory")
            .expect("a line");
        assert_eq!((buffer.as_slice(), read.truncated), (&b""[..], false));
        let read = read_bounded_line(&mut input, &mut buffer, 8)
            .expect("memory")
            .expect("a line");
        assert_eq!((buffer.as_slice(), read.bytes), (&b"last"[..], 4));
        assert!(
            read_bounded_line(&mut input, &mut buffer, 8)
                .expect("memory")
                .is_none()
        );
    }
}
