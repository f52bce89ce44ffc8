//! Hostile and broken modules: refused at load, or error verdicts at run
//! time; the worker keeps serving.

use std::sync::Arc;

use hotwasm_abi::Scheme;
use hotwasm_jobs::{Generator, Job, SchemeChoice};
use hotwasm_runtime::RuntimeKind;
use hotwasm_tests::{
    always_valid_module, init_trapping_module, not_wapc_module, out_of_bounds_module,
    trapping_module,
};
use hotwasm_worker::{FAILING_AFTER, ModuleSet, Worker};

const WASM_RUNTIMES: [RuntimeKind; 3] = [
    RuntimeKind::Wasmtime,
    RuntimeKind::Wasmi,
    RuntimeKind::Wasm3,
];

fn jobs(scheme: SchemeChoice, n: usize) -> Vec<Job> {
    Generator::new(5, scheme, 0.0).take(n).collect()
}

/// The built ECDSA module plus `schnorr` replaced by `wasm`.
fn set_with_schnorr(kind: RuntimeKind, wasm: &[u8]) -> Arc<ModuleSet> {
    let set = ModuleSet::built_with(kind, "compat", crate::unhurried())
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
    set.load(Scheme::Schnorr, "schnorr", wasm)
        .unwrap_or_else(|e| panic!("{kind}: test module refused: {e}"));
    set
}

#[test]
fn trapping_module_gives_error_verdicts_and_the_worker_goes_on() {
    for kind in WASM_RUNTIMES {
        let mut worker = Worker::new(&set_with_schnorr(kind, &trapping_module()));
        let schnorr = jobs(SchemeChoice::Schnorr, 3);
        let ecdsa = jobs(SchemeChoice::Ecdsa, 3);
        for (s, e) in schnorr.iter().zip(&ecdsa) {
            let trapped = worker.verify(s);
            assert!(!trapped.valid, "{kind}");
            let reason = trapped.reason.unwrap_or_default();
            assert!(reason.contains("trap"), "{kind}: {reason}");
            assert!(trapped.module.is_some());
            let fine = worker.verify(e);
            assert!(fine.valid, "{kind}: {:?}", fine.reason);
        }
    }
}

/// A version whose calls keep failing is reported (the server shows it in
/// `Stats` and `ListModules`); one that answers, even "invalid", is not.
#[test]
fn a_module_whose_calls_keep_failing_is_reported_failing() {
    for kind in WASM_RUNTIMES {
        let set = set_with_schnorr(kind, &trapping_module());
        let mut worker = Worker::new(&set);
        let n = usize::try_from(FAILING_AFTER).unwrap();
        for job in jobs(SchemeChoice::Schnorr, n - 1) {
            assert!(!worker.verify(&job).valid);
        }
        let schnorr = set.get(Scheme::Schnorr).unwrap();
        assert!(!schnorr.health.report().failing(), "{kind}");
        let last = jobs(SchemeChoice::Schnorr, 1);
        worker.verify(&last[0]);
        let report = schnorr.health.report();
        assert!(report.failing(), "{kind}: {report:?}");
        assert_eq!(
            (report.calls, report.failures),
            (FAILING_AFTER, FAILING_AFTER)
        );
        assert!(report.last_failure.is_some_and(|r| r.contains("trap")));

        // The built ECDSA module answers, invalid signatures included.
        let mut generator = Generator::new(9, SchemeChoice::Ecdsa, 0.5);
        for job in generator.by_ref().take(2 * n) {
            worker.verify(&job);
        }
        let ecdsa = set.get(Scheme::Ecdsa).unwrap().health.report();
        assert_eq!(
            (ecdsa.calls, ecdsa.failures),
            (2 * FAILING_AFTER, 0),
            "{kind}"
        );
        assert!(!ecdsa.failing());
    }
}

#[test]
fn module_trapping_in_init_gives_error_verdicts() {
    for kind in WASM_RUNTIMES {
        let mut worker = Worker::new(&set_with_schnorr(kind, &init_trapping_module()));
        for job in jobs(SchemeChoice::Mixed, 10) {
            let verdict = worker.verify(&job);
            match job.scheme {
                Scheme::Schnorr => {
                    assert!(!verdict.valid);
                    let reason = verdict.reason.unwrap_or_default();
                    assert!(reason.contains("instantiate"), "{kind}: {reason}");
                }
                Scheme::Ecdsa => assert!(verdict.valid, "{kind}: {:?}", verdict.reason),
            }
        }
    }
}

#[test]
fn out_of_bounds_response_is_caught_not_read() {
    for kind in WASM_RUNTIMES {
        let mut worker = Worker::new(&set_with_schnorr(kind, &out_of_bounds_module()));
        for job in jobs(SchemeChoice::Schnorr, 2) {
            let verdict = worker.verify(&job);
            assert!(!verdict.valid);
            let reason = verdict.reason.unwrap_or_default();
            assert!(
                reason.contains("out-of-bounds") || reason.contains("out of bounds"),
                "{kind}: {reason}"
            );
        }
    }
}

#[test]
fn module_that_answers_wrongly_is_run_as_it_is() {
    // The worker reports what the module says; refusing such a module
    // before activation is the registry's self-test.
    for kind in WASM_RUNTIMES {
        let mut worker = Worker::new(&set_with_schnorr(kind, &always_valid_module()));
        let mut job = jobs(SchemeChoice::Schnorr, 1).remove(0);
        job.signature[0] ^= 1;
        assert!(worker.verify(&job).valid, "{kind}");
    }
}

#[test]
fn broken_modules_are_refused_at_load() {
    for kind in WASM_RUNTIMES {
        let set = ModuleSet::built(kind, "compat").unwrap_or_else(|e| panic!("{kind}: {e}"));
        let garbage = set
            .load(Scheme::Schnorr, "garbage", b"\0asm\x01\0\0\0garbage")
            .err();
        assert!(garbage.is_some(), "{kind} accepted garbage");
        let not_wasm = set.load(Scheme::Schnorr, "text", b"hello world").err();
        assert!(not_wasm.is_some(), "{kind} accepted text");
        let not_wapc = set.load(Scheme::Schnorr, "hello", &not_wapc_module()).err();
        let message = not_wapc.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("__guest_call"), "{kind}: {message}");
        // The set still serves with its previous modules.
        let mut worker = Worker::new(&set);
        for job in jobs(SchemeChoice::Mixed, 4) {
            assert!(worker.verify(&job).valid, "{kind}");
        }
    }
}
