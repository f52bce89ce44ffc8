//! The same jobs give the same verdicts on every runtime.

use hotwasm_jobs::{Generator, Job, SchemeChoice};
use hotwasm_runtime::RuntimeKind;

use crate::worker;

#[test]
fn generated_jobs_get_identical_verdicts_on_every_runtime() {
    let jobs: Vec<Job> = Generator::new(2024, SchemeChoice::Mixed, 0.4)
        .take(2000)
        .collect();
    let mut native = worker(RuntimeKind::Native, "compat");
    let expected: Vec<(bool, Option<String>)> = jobs
        .iter()
        .map(|job| {
            let verdict = native.verify(job);
            assert_eq!(
                Some(verdict.valid),
                job.expect,
                "native on {}: {:?}",
                job.id,
                verdict.reason
            );
            (verdict.valid, verdict.reason)
        })
        .collect();
    for (kind, variant) in [
        (RuntimeKind::Wasmtime, "fast"),
        (RuntimeKind::Wasmtime, "default"),
        (RuntimeKind::Wasmi, "fast"),
        (RuntimeKind::Wasm3, "compat"),
        (RuntimeKind::Wasmtime, "libsecp256k1"),
        (RuntimeKind::Wasm3, "libsecp256k1-compat"),
    ] {
        let mut worker = worker(kind, variant);
        for (job, expected) in jobs.iter().zip(&expected) {
            let verdict = worker.verify(job);
            assert_eq!(
                (&verdict.valid, &verdict.reason),
                (&expected.0, &expected.1),
                "{kind}/{variant} differs from native on {}",
                job.id
            );
        }
    }
}

/// The hard cases (every adversarial kind: out-of-range fields, the low-S
/// boundary, non-strict DER, forbidden key prefixes, hex text) get the
/// same verdict and the same reason from the libsecp256k1 modules as from
/// native k256: one contract, two libraries.
#[test]
fn the_libsecp256k1_family_refuses_hard_cases_as_k256_does() {
    let kinds = hotwasm_jobs::adversarial::kinds_of(SchemeChoice::Mixed);
    let count = kinds.len() * 6;
    let mut adversarial = hotwasm_jobs::Adversarial::new(77, kinds);
    let jobs: Vec<Job> = (0..count).map(|_| adversarial.job()).collect();
    let mut native = worker(RuntimeKind::Native, "compat");
    let mut refused = 0;
    for (kind, variant) in [
        (RuntimeKind::Wasmtime, "libsecp256k1"),
        (RuntimeKind::Wasmi, "libsecp256k1"),
        (RuntimeKind::Wasm3, "libsecp256k1-compat"),
    ] {
        let mut libsecp = worker(kind, variant);
        for job in &jobs {
            let expected = native.verify(job);
            assert_eq!(Some(expected.valid), job.expect, "native on {}", job.id);
            let verdict = libsecp.verify(job);
            assert_eq!(
                (&verdict.valid, &verdict.reason),
                (&expected.valid, &expected.reason),
                "{kind}/{variant} differs from native k256 on {}",
                job.id
            );
            refused += usize::from(!verdict.valid);
        }
    }
    assert!(
        refused > count,
        "the hard cases are mostly refusals: {refused}"
    );
}
