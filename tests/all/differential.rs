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
