//! Job lines from outside: the bounded line reader and `JobLine` parsing
//! and validation. Nothing may panic; a line is read whole or cut at the
//! bound exactly as the input says; a job that validates survives its own
//! wire form unchanged and within the limits.

#![no_main]

use std::io::BufReader;

use hotwasm_jobs::lines::read_bounded_line;
use hotwasm_jobs::{Job, JobLimits, JobLine};
use libfuzzer_sys::fuzz_target;

/// Small limits, so the fuzzer reaches the size checks with short inputs.
const LIMITS: JobLimits = JobLimits {
    max_message_bytes: 512,
    max_key_or_signature_bytes: 96,
};
/// The reader's bound on a line.
const MAX_LINE: usize = 1024;

fuzz_target!(|data: &[u8]| {
    // A buffer size that varies with the input splits lines across
    // `fill_buf` calls at every offset.
    let mut input = BufReader::with_capacity(1 + data.len() % 61, data);
    let mut expected = data.split(|&b| b == b'\n').peekable();
    let mut buffer = Vec::new();
    let mut consumed = 0u64;
    while let Some(read) =
        read_bounded_line(&mut input, &mut buffer, MAX_LINE).expect("reading memory cannot fail")
    {
        let line = expected
            .next()
            .expect("the reader found no more lines than the input has");
        assert_eq!(buffer, line[..line.len().min(MAX_LINE)]);
        assert_eq!(read.truncated, line.len() > MAX_LINE);
        consumed += read.bytes;
        if let Ok(text) = std::str::from_utf8(&buffer) {
            check_line(text);
        }
    }
    assert_eq!(consumed, data.len() as u64, "every byte is consumed");
    // What is left is at most one empty segment after a final newline.
    assert!(expected.all(<[u8]>::is_empty));
});

fn check_line(text: &str) {
    let Ok(line) = JobLine::parse(text) else {
        return;
    };
    let Ok(job) = line.validate(&LIMITS) else {
        return;
    };
    assert!(!job.id.is_empty());
    assert!(job.public_key.len() <= LIMITS.max_key_or_signature_bytes);
    assert!(job.signature.len() <= LIMITS.max_key_or_signature_bytes);
    assert!(job.message.len() <= LIMITS.max_message_bytes);
    // The constructor every other front door uses agrees.
    let rebuilt = Job::new(
        job.id.clone(),
        job.scheme.as_str(),
        job.public_key.clone(),
        job.signature.clone(),
        job.message.clone(),
        job.expect,
        &LIMITS,
    );
    assert_eq!(rebuilt.as_ref(), Ok(&job));
    // The wire form of a job parses back to the same job.
    let wire = serde_json::to_string(&job.to_line()).expect("a job line serialises");
    let again = JobLine::parse(&wire).and_then(|line| line.validate(&LIMITS));
    assert_eq!(again, Ok(job));
}
