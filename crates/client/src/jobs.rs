//! Jobs to submit: generated (signed, on every core) or read from a JSON
//! Lines file.

use std::io::BufRead;

use hotwasm_jobs::lines::read_bounded_line;
use hotwasm_jobs::{Generator, JobLimits, JobLine, SchemeChoice};

use crate::submit::Outgoing;

/// Jobs per generator: each chunk has a seed of its own, so the jobs are
/// the same whatever the number of threads.
const CHUNK: u64 = 1024;

/// `count` signed jobs, a fraction `invalid_ratio` of them deliberately
/// invalid, generated on all cores; `progress` gets jobs made so far (from
/// any thread). Ids are the jobs' positions, so they are unique.
pub fn generate(
    count: u64,
    scheme: SchemeChoice,
    invalid_ratio: f64,
    seed: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<Outgoing> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let chunks = count.div_ceil(CHUNK);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(usize::try_from(chunks).unwrap_or(1).max(1));
    let next = AtomicU64::new(0);
    let made = AtomicU64::new(0);
    let mut parts: Vec<(u64, Vec<Outgoing>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut parts = Vec::new();
                    loop {
                        let chunk = next.fetch_add(1, Ordering::Relaxed);
                        if chunk >= chunks {
                            break parts;
                        }
                        let first = chunk * CHUNK;
                        let size = CHUNK.min(count - first);
                        let seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(chunk);
                        let mut generator = Generator::new(seed, scheme, invalid_ratio);
                        let jobs = (0..size)
                            .map(|i| {
                                let mut job = generator.job();
                                job.id = (first + i).to_string();
                                Outgoing::from(&job)
                            })
                            .collect();
                        parts.push((chunk, jobs));
                        progress(made.fetch_add(size, Ordering::Relaxed) + size);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    parts.sort_by_key(|(chunk, _)| *chunk);
    parts.into_iter().flat_map(|(_, jobs)| jobs).collect()
}

/// Every non-blank line of `input` as a job, sent as it is: a line that
/// is not a job (bad JSON, invalid UTF-8, longer than any job within
/// `limits` can be) still gets a verdict (an error verdict from the
/// server). Lines are read with a bound: a longer line is sent cut to it,
/// so it costs bounded memory and is refused. `expect` is read from lines
/// that parse.
///
/// # Errors
///
/// Only I/O errors of `input`.
pub fn read(mut input: impl BufRead, limits: &JobLimits) -> std::io::Result<Vec<Outgoing>> {
    let max_line = limits.max_line_bytes();
    let mut jobs = Vec::new();
    let mut buffer = Vec::new();
    while let Some(read) = read_bounded_line(&mut input, &mut buffer, max_line)? {
        let text = String::from_utf8_lossy(&buffer);
        let text = text.trim();
        if text.is_empty() && !read.truncated {
            continue;
        }
        let expect = match read.truncated {
            true => None,
            false => JobLine::parse(text).ok().and_then(|job| job.expect),
        };
        jobs.push(Outgoing {
            line: text.as_bytes().to_vec(),
            expect,
        });
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_jobs_do_not_depend_on_threads_and_have_unique_ids() {
        let jobs = generate(2500, SchemeChoice::Mixed, 0.2, 9, &|_| {});
        assert_eq!(jobs.len(), 2500);
        let again = generate(2500, SchemeChoice::Mixed, 0.2, 9, &|_| {});
        assert!(jobs.iter().zip(&again).all(|(a, b)| a.line == b.line));
        let ids: std::collections::HashSet<String> = jobs
            .iter()
            .map(|job| {
                JobLine::parse(std::str::from_utf8(&job.line).expect("utf-8"))
                    .expect("a job")
                    .id
            })
            .collect();
        assert_eq!(ids.len(), 2500);
        assert!(jobs.iter().all(|job| job.expect.is_some()));
    }

    #[test]
    fn read_keeps_malformed_lines_and_skips_blank_ones() {
        let input = "{\"id\":\"a\",\"scheme\":\"schnorr\",\"public_key\":\"\",\"signature\":\"\",\"message\":\"\",\"expect\":false}\n\nnot json\n";
        let jobs = read(input.as_bytes(), &JobLimits::default()).expect("reads");
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].expect, Some(false));
        assert_eq!(
            (jobs[1].line.as_slice(), jobs[1].expect),
            (&b"not json"[..], None)
        );
    }

    #[test]
    fn read_survives_invalid_utf8_and_runaway_lines() {
        // One invalid byte no longer aborts the run, and a line longer than
        // any job is sent cut to the bound (and refused by the server).
        let limits = JobLimits {
            max_message_bytes: 16,
            max_key_or_signature_bytes: 16,
        };
        let max = limits.max_line_bytes();
        let mut input = b"bad \xff byte\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', max * 3));
        input.extend_from_slice(b"\nlast\n");
        let jobs = read(input.as_slice(), &limits).expect("reads");
        assert_eq!(jobs.len(), 3);
        assert_eq!(jobs[0].line, "bad \u{fffd} byte".as_bytes());
        assert_eq!(jobs[1].line.len(), max);
        assert_eq!(jobs[2].line, b"last");
    }
}
