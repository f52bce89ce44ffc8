//! The same job on every runtime gets the same verdict: `valid` and the
//! reason, native (the guests' code linked into the host) against
//! wasmtime, wasmi and wasm3 running the built guest modules. An input
//! starting with `{` is a JSON job line (the seeds are real jobs, so
//! mutations stay near valid signatures); any other input is turned into
//! a job field by field.

#![no_main]

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use hotwasm_jobs::{Job, JobLimits, JobLine};
use hotwasm_runtime::{Limits, RuntimeKind};
use hotwasm_worker::{ModuleSet, Worker};
use libfuzzer_sys::fuzz_target;

const LIMITS: JobLimits = JobLimits {
    max_message_bytes: 4096,
    max_key_or_signature_bytes: 256,
};

/// The runtime and module variant pairs the test suite compares
/// (`tests/all/differential.rs`); native first, the reference.
const RUNTIMES: [(RuntimeKind, &str); 5] = [
    (RuntimeKind::Native, "compat"),
    (RuntimeKind::Wasmtime, "fast"),
    (RuntimeKind::Wasmtime, "default"),
    (RuntimeKind::Wasmi, "fast"),
    (RuntimeKind::Wasm3, "compat"),
];

/// wasmi 2 dispatches by tail calls, which LLVM turns into jumps only
/// without debug assertions (see the root Cargo.toml) and, it seems,
/// without AddressSanitizer: in `cargo fuzz`'s default build one honest
/// verify overflows the native stack. wasmi takes part only in a build
/// without debug assertions (`cargo fuzz run -O -s none differential`).
const WASMI_OVERFLOWS: bool = cfg!(debug_assertions);

#[derive(Debug, Arbitrary)]
struct Fields {
    ecdsa: bool,
    public_key: Vec<u8>,
    signature: Vec<u8>,
    message: Vec<u8>,
}

thread_local! {
    static WORKERS: std::cell::RefCell<Vec<(String, Worker)>> = std::cell::RefCell::new(workers());
}

fn workers() -> Vec<(String, Worker)> {
    // Verdicts must not depend on how loaded the machine is: deadlines
    // far beyond any honest verify (the defaults bind hostile guests).
    let limits = Limits {
        call_timeout: Duration::from_secs(30),
        init_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    RUNTIMES
        .iter()
        .filter(|&&(kind, _)| kind != RuntimeKind::Wasmi || !WASMI_OVERFLOWS)
        .map(|&(kind, variant)| {
            let set = ModuleSet::built_with(kind, variant, limits)
                .unwrap_or_else(|e| panic!("{kind}/{variant}: {e}"));
            (format!("{kind}/{variant}"), Worker::new(&set))
        })
        .collect()
}

fuzz_target!(
    init: {
        // Compiling the guests takes seconds under the sanitizer: before
        // the first input, so that it does not count as a slow one.
        WORKERS.with(|_| {});
    },
    |data: &[u8]| {
    let Some(job) = job(data) else {
        return;
    };
    WORKERS.with_borrow_mut(|workers| {
        let mut verdicts = workers.iter_mut().map(|(name, worker)| {
            let verdict = worker.verify(&job);
            (name.as_str(), verdict.valid, verdict.reason)
        });
        let (_, valid, reason) = verdicts.next().expect("native is first");
        for (name, other_valid, other_reason) in verdicts {
            assert_eq!(
                (other_valid, &other_reason),
                (valid, &reason),
                "{name} differs from native on {job:?}"
            );
        }
    });
});

fn job(data: &[u8]) -> Option<Job> {
    if data.first() == Some(&b'{') {
        let line = std::str::from_utf8(data).ok()?;
        return JobLine::parse(line).ok()?.validate(&LIMITS).ok();
    }
    let fields = Fields::arbitrary_take_rest(Unstructured::new(data)).ok()?;
    let scheme = if fields.ecdsa { "ecdsa" } else { "schnorr" };
    Job::new(
        "fuzz".into(),
        scheme,
        fields.public_key,
        fields.signature,
        fields.message,
        None,
        &LIMITS,
    )
    .ok()
}
