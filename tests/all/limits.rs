//! Guests that attack the host's limits — time, memory, response size,
//! module size — on every wasm runtime: each gets a defined outcome (an
//! error verdict or a refusal naming the limit), and the worker serves the
//! next job. Nothing here measures time: a loop that never ends reaches
//! any deadline.

use std::sync::Arc;
use std::time::Duration;

use hotwasm_abi::Scheme;
use hotwasm_jobs::{Generator, Job, SchemeChoice};
use hotwasm_runtime::{GUEST_THREAD_STACK_BYTES, Limits, RuntimeError, RuntimeKind};
use hotwasm_tests::hostile;
use hotwasm_worker::{ModuleSet, Worker};

const WASM_RUNTIMES: [RuntimeKind; 5] = [
    RuntimeKind::Wasmtime,
    RuntimeKind::WasmtimeWinch,
    RuntimeKind::WasmtimePulley,
    RuntimeKind::Wasmi,
    RuntimeKind::Wasm3,
];

/// Tight bounds, so hostile modules are stopped quickly — yet deadlines
/// far above an honest call (a few ms; some tens in a debug build of wasm3
/// on a loaded machine), so no honest job here depends on timing.
fn limits() -> Limits {
    Limits {
        call_timeout: Duration::from_millis(500),
        init_timeout: Duration::from_millis(1000),
        max_memory_bytes: 4 << 20,
        max_module_bytes: 1 << 20,
        keep_instance_bytes: 2 << 20,
        ..Limits::default()
    }
}

fn jobs(scheme: SchemeChoice, n: usize) -> Vec<Job> {
    Generator::new(9, scheme, 0.0).take(n).collect()
}

/// The built-in `compat` modules under [`limits`], `schnorr` then replaced
/// by `wasm`.
fn set_with_schnorr(kind: RuntimeKind, wasm: &[u8]) -> Arc<ModuleSet> {
    let set =
        ModuleSet::built_with(kind, "compat", limits()).unwrap_or_else(|e| panic!("{kind}: {e}"));
    set.load(Scheme::Schnorr, "schnorr", wasm)
        .unwrap_or_else(|e| panic!("{kind}: test module refused: {e}"));
    set
}

fn reason(verdict: &hotwasm_jobs::Verdict) -> String {
    verdict.reason.clone().unwrap_or_default()
}

#[test]
fn looping_call_is_stopped_at_its_deadline_and_the_worker_goes_on() {
    for kind in WASM_RUNTIMES {
        let set = set_with_schnorr(kind, &hostile::looping_module());
        let mut worker = Worker::new(&set);
        let schnorr = jobs(SchemeChoice::Schnorr, 2);
        for (job, ecdsa) in schnorr.iter().zip(jobs(SchemeChoice::Ecdsa, 2)) {
            let stopped = worker.verify(job);
            assert!(!stopped.valid, "{kind}");
            assert!(
                reason(&stopped).contains("500 ms deadline"),
                "{kind}: {stopped:?}"
            );
            let fine = worker.verify(&ecdsa);
            assert!(fine.valid, "{kind}: {fine:?}");
        }
        // A clean module activated afterwards serves on the same worker.
        let clean = set
            .compile_built(Scheme::Schnorr, "compat")
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        set.activate(Scheme::Schnorr, clean);
        let verdict = worker.verify(&schnorr[0]);
        assert!(verdict.valid, "{kind}: {verdict:?}");
    }
}

#[test]
fn trojan_is_stopped_on_its_trigger_only() {
    for kind in WASM_RUNTIMES {
        let mut worker = Worker::new(&set_with_schnorr(kind, &hostile::trojan_module()));
        let mut trigger = jobs(SchemeChoice::Schnorr, 1).remove(0);
        trigger.message = vec![7; 8000];
        let innocent = jobs(SchemeChoice::Schnorr, 3);
        for job in &innocent {
            assert!(worker.verify(job).valid, "{kind}");
            let stopped = worker.verify(&trigger);
            assert!(reason(&stopped).contains("deadline"), "{kind}: {stopped:?}");
        }
    }
}

#[test]
fn looping_init_is_stopped_at_the_start_deadline() {
    for kind in WASM_RUNTIMES {
        let set = set_with_schnorr(kind, &hostile::looping_init_module());
        let module = set.get(Scheme::Schnorr).expect("active");
        match module.compiled.instantiate() {
            Err(RuntimeError::InitDeadline { limit, .. }) => {
                assert_eq!(limit, limits().init_timeout, "{kind}");
            }
            Err(other) => panic!("{kind}: wrong refusal: {other}"),
            Ok(_) => panic!("{kind}: a looping wapc_init started"),
        }
        let mut worker = Worker::new(&set);
        let verdict = worker.verify(&jobs(SchemeChoice::Schnorr, 1)[0]);
        assert!(
            reason(&verdict).contains("1000 ms deadline"),
            "{kind}: {verdict:?}"
        );
        let fine = worker.verify(&jobs(SchemeChoice::Ecdsa, 1)[0]);
        assert!(fine.valid, "{kind}: {fine:?}");
    }
}

#[test]
fn looping_start_function_never_finishes_instantiating() {
    // wasm3 runs a start function while loading, before any deadline can
    // be linked: it refuses modules that have one (this one crashed it).
    let set = ModuleSet::built_with(RuntimeKind::Wasm3, "compat", limits()).expect("built");
    let Err(refused) = set.load(Scheme::Schnorr, "schnorr", &hostile::looping_start_module())
    else {
        panic!("wasm3 loaded a module with a start function");
    };
    assert!(refused.to_string().contains("start function"), "{refused}");
    // wasmtime (every tier) stops it at the start deadline, wasmi when its
    // start fuel runs out.
    for kind in [
        RuntimeKind::Wasmtime,
        RuntimeKind::WasmtimeWinch,
        RuntimeKind::WasmtimePulley,
        RuntimeKind::Wasmi,
    ] {
        let set = set_with_schnorr(kind, &hostile::looping_start_module());
        let module = set.get(Scheme::Schnorr).expect("active");
        match module.compiled.instantiate() {
            Err(RuntimeError::InitDeadline { .. }) if kind.is_wasmtime() => {}
            Err(RuntimeError::Instantiate { message, .. }) if kind == RuntimeKind::Wasmi => {
                assert!(message.contains("fuel"), "{message}");
            }
            Err(other) => panic!("{kind}: wrong refusal: {other}"),
            Ok(_) => panic!("{kind}: a looping start function finished"),
        }
        let mut worker = Worker::new(&set);
        let verdict = worker.verify(&jobs(SchemeChoice::Schnorr, 1)[0]);
        assert!(!verdict.valid, "{kind}");
        assert!(
            worker.verify(&jobs(SchemeChoice::Ecdsa, 1)[0]).valid,
            "{kind}"
        );
    }
}

#[test]
fn memory_bomb_stops_at_the_cap_and_its_instance_is_dropped() {
    for kind in WASM_RUNTIMES {
        let set = set_with_schnorr(kind, &hostile::memory_bomb_module());
        let module = set.get(Scheme::Schnorr).expect("active");
        let mut instance = module.compiled.instantiate().expect("starts");
        let payload = hotwasm_abi::encode(&jobs(SchemeChoice::Schnorr, 1)[0].request());
        instance
            .call("verify", &payload)
            .expect("answers once the grow fails");
        let grown = instance.memory_bytes();
        assert!(
            grown <= limits().max_memory_bytes,
            "{kind}: grew to {grown} bytes"
        );
        assert!(
            grown > limits().keep_instance_bytes,
            "{kind}: grew only to {grown}"
        );
        drop(instance);

        // In a worker, the grown instance is not kept for the next job.
        let mut worker = Worker::new(&set);
        for job in jobs(SchemeChoice::Schnorr, 2) {
            assert!(worker.verify(&job).valid, "{kind}");
            assert_eq!(set.live_instances(), 0, "{kind}: a grown instance was kept");
        }
    }
}

#[test]
fn memory_bomb_in_init_stops_at_the_cap() {
    for kind in WASM_RUNTIMES {
        let set = set_with_schnorr(kind, &hostile::memory_bomb_init_module());
        let module = set.get(Scheme::Schnorr).expect("active");
        let instance = module.compiled.instantiate().expect("starts");
        let grown = instance.memory_bytes();
        assert!(
            grown <= limits().max_memory_bytes,
            "{kind}: grew to {grown} bytes"
        );
    }
}

#[test]
fn module_starting_above_the_memory_cap_never_runs() {
    let over = (limits().max_memory_bytes >> 16) as u32 + 1;
    for kind in WASM_RUNTIMES {
        let set = ModuleSet::built_with(kind, "compat", limits()).expect("built");
        let wasm = hostile::large_memory_module(over);
        match set.load(Scheme::Schnorr, "schnorr", &wasm) {
            // wasm3 sees the memory when the module is instrumented.
            Err(e) => assert!(e.to_string().contains("memory"), "{kind}: {e}"),
            // wasmtime and wasmi refuse to instantiate it.
            Ok(_) => {
                let verdict = Worker::new(&set).verify(&jobs(SchemeChoice::Schnorr, 1)[0]);
                assert!(!verdict.valid, "{kind}");
                assert!(
                    reason(&verdict).contains("instantiate"),
                    "{kind}: {verdict:?}"
                );
            }
        }
    }
}

#[test]
fn huge_response_is_refused_before_it_is_copied() {
    for kind in WASM_RUNTIMES {
        let mut worker = Worker::new(&set_with_schnorr(kind, &hostile::huge_response_module()));
        let verdict = worker.verify(&jobs(SchemeChoice::Schnorr, 1)[0]);
        assert!(!verdict.valid, "{kind}");
        assert!(
            reason(&verdict).contains("104857600 bytes as its response, over the limit"),
            "{kind}: {verdict:?}"
        );
        assert!(
            reason(&verdict).len() < 512,
            "{kind}: the reason itself is bounded"
        );
        assert!(
            worker.verify(&jobs(SchemeChoice::Ecdsa, 1)[0]).valid,
            "{kind}"
        );
    }
}

#[test]
fn deep_recursion_traps_and_the_worker_goes_on() {
    for kind in WASM_RUNTIMES {
        // wasm3 recurses on the native stack: guests run on threads with
        // `GUEST_THREAD_STACK_BYTES`, as the server's workers do (the
        // test harness's threads have 2 MiB, on which wasm3 overflows).
        let on_guest_thread = std::thread::Builder::new()
            .stack_size(GUEST_THREAD_STACK_BYTES)
            .spawn(move || {
                let mut worker = Worker::new(&set_with_schnorr(kind, &hostile::recursing_module()));
                let verdict = worker.verify(&jobs(SchemeChoice::Schnorr, 1)[0]);
                assert!(!verdict.valid, "{kind}");
                assert!(reason(&verdict).contains("stack"), "{kind}: {verdict:?}");
                assert!(
                    worker.verify(&jobs(SchemeChoice::Ecdsa, 1)[0]).valid,
                    "{kind}"
                );
            })
            .expect("thread starts");
        on_guest_thread
            .join()
            .expect("no overflow of the native stack");
    }
}

#[test]
fn oversized_module_is_refused_before_it_is_compiled() {
    for kind in WASM_RUNTIMES {
        let set = ModuleSet::built_with(kind, "compat", limits()).expect("built");
        let padded = hostile::padded_module(2 << 20);
        let Err(refused) = set.load(Scheme::Schnorr, "schnorr", &padded) else {
            panic!("{kind}: a module over the limit loaded");
        };
        let message = refused.to_string();
        assert!(
            message.contains("over the limit of 1048576 bytes"),
            "{kind}: {message}"
        );
        // Under the limit, the same module loads.
        set.load(Scheme::Schnorr, "schnorr", &hostile::padded_module(1 << 10))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

#[test]
fn foreign_import_is_refused_at_load() {
    for kind in WASM_RUNTIMES {
        let set = ModuleSet::built_with(kind, "compat", limits()).expect("built");
        let Err(refused) = set.load(
            Scheme::Schnorr,
            "schnorr",
            &hostile::foreign_import_module(),
        ) else {
            panic!("{kind}: a foreign import loaded");
        };
        assert!(refused.to_string().contains("env"), "{kind}: {refused}");
    }
}

#[test]
fn unmetered_runtimes_verify_the_same() {
    // The bench's "limits off" rows must measure working runtimes.
    let unmetered = Limits {
        metered: false,
        ..Limits::default()
    };
    for kind in WASM_RUNTIMES {
        let set = ModuleSet::built_with(kind, kind.preferred_variant(), unmetered)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let mut worker = Worker::new(&set);
        for job in Generator::new(4, SchemeChoice::Mixed, 0.3).take(12) {
            let verdict = worker.verify(&job);
            assert_eq!(Some(verdict.valid), job.expect, "{kind}: {verdict:?}");
        }
    }
}
