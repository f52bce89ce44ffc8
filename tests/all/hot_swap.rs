//! Replacing modules while jobs run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hotwasm_abi::Scheme;
use hotwasm_jobs::{Generator, Job, SchemeChoice};
use hotwasm_runtime::RuntimeKind;
use hotwasm_tests::second_version;
use hotwasm_worker::{ModuleSet, SchemeModule, Worker};

/// A scheme with two compiled versions of its module.
type Versions = (Scheme, Arc<SchemeModule>, Arc<SchemeModule>);

/// Two versions of each built module (same code, different hash) compiled
/// on `kind`.
fn two_versions(kind: RuntimeKind, variant: &str) -> (Arc<ModuleSet>, Vec<Versions>) {
    let set = ModuleSet::built_with(kind, variant, crate::unhurried())
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
    let versions = Scheme::ALL
        .into_iter()
        .map(|scheme| {
            let first = set.get(scheme).expect("active");
            let bytes = hotwasm_modules::find(scheme.as_str(), variant)
                .expect("built")
                .bytes;
            let second = set
                .compile(scheme.as_str(), &second_version(bytes, "2"))
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            (scheme, first, second)
        })
        .collect();
    (set, versions)
}

#[test]
fn swap_during_a_batch_changes_version_exactly_at_activation() {
    for (kind, variant) in [
        (RuntimeKind::Wasmtime, "fast"),
        (RuntimeKind::Wasmi, "fast"),
        (RuntimeKind::Wasm3, "compat"),
    ] {
        let (set, versions) = two_versions(kind, variant);
        let jobs: Vec<Job> = Generator::new(9, SchemeChoice::Mixed, 0.3)
            .take(120)
            .collect();
        let mut worker = Worker::new(&set);
        for (i, job) in jobs.iter().enumerate() {
            if i == 60 {
                for (scheme, _, second) in &versions {
                    set.activate(*scheme, Arc::clone(second));
                }
            }
            let verdict = worker.verify(job);
            assert_eq!(
                Some(verdict.valid),
                job.expect,
                "{kind} job {i}: {:?}",
                verdict.reason
            );
            let (_, first, second) = versions
                .iter()
                .find(|(s, _, _)| *s == job.scheme)
                .expect("every scheme has versions");
            let expected = if i < 60 { &first.id } else { &second.id };
            assert_eq!(verdict.module.as_ref(), Some(expected), "{kind} job {i}");
        }
    }
}

#[test]
fn concurrent_calls_survive_thousands_of_swaps_without_leaks() {
    let (set, versions) = two_versions(RuntimeKind::Wasmtime, "fast");
    let jobs: Vec<Job> = Generator::new(10, SchemeChoice::Mixed, 0.3)
        .take(64)
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    // Verdicts so far, all workers: each swap waits for one more, so the
    // swaps really interleave with calls in flight.
    let verdicts = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let set = Arc::clone(&set);
            let jobs = jobs.clone();
            let stop = Arc::clone(&stop);
            let verdicts = Arc::clone(&verdicts);
            std::thread::spawn(move || {
                let mut worker = Worker::new(&set);
                let mut seen = std::collections::BTreeSet::new();
                let mut done = 0u64;
                while !stop.load(Ordering::Relaxed) || done < 64 {
                    for job in &jobs {
                        let verdict = worker.verify(job);
                        assert_eq!(
                            Some(verdict.valid),
                            job.expect,
                            "worker {w} {}: {:?}",
                            job.id,
                            verdict.reason
                        );
                        seen.insert(verdict.module.unwrap_or_default());
                        done += 1;
                        verdicts.fetch_add(1, Ordering::Relaxed);
                    }
                }
                (done, seen)
            })
        })
        .collect();
    let swaps = 3000;
    for i in 0..swaps {
        for (scheme, first, second) in &versions {
            set.activate(*scheme, Arc::clone(if i % 2 == 0 { second } else { first }));
        }
        let after = verdicts.load(Ordering::Relaxed) + 1;
        while verdicts.load(Ordering::Relaxed) < after {
            std::thread::yield_now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen_by_all = std::collections::BTreeSet::new();
    for worker in workers {
        let (done, seen) = worker.join().expect("worker thread");
        assert!(done >= 64);
        seen_by_all.extend(seen);
    }
    assert!(verdicts.load(Ordering::Relaxed) >= swaps);
    // Both versions of both schemes answered while the swaps went on.
    for (_, first, second) in &versions {
        for version in [first, second] {
            assert!(
                seen_by_all.contains(&version.id),
                "{} never answered",
                version.id
            );
        }
    }
    // Every worker is gone: no instance may survive, and the two versions
    // are referenced only by the set and this test.
    assert_eq!(set.live_instances(), 0);
    for (scheme, first, second) in &versions {
        let active = set.get(*scheme).expect("active");
        for version in [first, second] {
            // This test, plus the set and `active` for the active one.
            let expected = if Arc::ptr_eq(&active, version) { 3 } else { 1 };
            assert_eq!(Arc::strong_count(version), expected, "{scheme}");
        }
    }
}

#[test]
fn a_worker_keeps_only_the_instance_it_may_swap_back_to() {
    let (set, versions) = two_versions(RuntimeKind::Wasmtime, "fast");
    let (_, first, second) = versions
        .into_iter()
        .find(|(scheme, _, _)| *scheme == Scheme::Schnorr)
        .expect("schnorr versions");
    let bytes = hotwasm_modules::find("schnorr", "fast")
        .expect("built")
        .bytes;
    let third = set
        .compile("schnorr", &second_version(bytes, "3"))
        .expect("compiles");
    let job = Generator::new(12, SchemeChoice::Schnorr, 0.0).job();
    let mut worker = Worker::new(&set);
    let run = |worker: &mut Worker, module: &Arc<SchemeModule>| {
        set.activate(Scheme::Schnorr, Arc::clone(module));
        let verdict = worker.verify(&job);
        assert!(verdict.valid);
        assert_eq!(verdict.module.as_ref(), Some(&module.id));
        set.live_instances()
    };
    assert_eq!(run(&mut worker, &first), 1);
    assert_eq!(
        run(&mut worker, &second),
        2,
        "the replaced instance is kept"
    );
    assert_eq!(run(&mut worker, &first), 2, "swapping back reuses it");
    assert_eq!(
        run(&mut worker, &third),
        2,
        "a third version drops the oldest"
    );
    drop(worker);
    assert_eq!(set.live_instances(), 0);
    // Only the set (third is active) and this test hold the versions now.
    assert_eq!(Arc::strong_count(&second), 1);
}

#[test]
fn prewarmed_instances_are_taken_by_workers_at_the_swap() {
    for (kind, variant, warms) in [
        (RuntimeKind::Wasmtime, "fast", true),
        (RuntimeKind::Wasmi, "fast", true),
        (RuntimeKind::Native, "fast", true),
        // wasm3 instances cannot move between threads: nothing to prewarm.
        (RuntimeKind::Wasm3, "compat", false),
    ] {
        let (set, versions) = two_versions(kind, variant);
        let (scheme, _, second) = &versions[0];
        let jobs: Vec<Job> = Generator::new(13, SchemeChoice::Schnorr, 0.0)
            .take(2)
            .collect();
        let mut workers: Vec<Worker> = (0..2).map(|_| Worker::new(&set)).collect();
        for worker in &mut workers {
            assert!(worker.verify(&jobs[0]).valid);
        }
        assert_eq!(set.workers(), 2);
        let made = set.prewarm(*scheme, second, set.workers());
        assert_eq!(made, if warms { 2 } else { 0 }, "{kind}");
        assert_eq!(second.warm_instances(), made);
        set.activate(*scheme, Arc::clone(second));
        for worker in &mut workers {
            let verdict = worker.verify(&jobs[1]);
            assert!(verdict.valid, "{kind}: {:?}", verdict.reason);
            assert_eq!(verdict.module.as_ref(), Some(&second.id));
        }
        assert_eq!(second.warm_instances(), 0, "{kind}: both workers took one");
        drop(workers);
        assert_eq!(set.workers(), 0);
        assert_eq!(set.live_instances(), 0);
    }
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("procfs")
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// Every wasm3 instance a swap, a trap or a grown memory drops used to
/// leak its environment's code pages (about 80 KiB for the Schnorr
/// module: 164 MB over 2,000 instances); instances now share their
/// thread's environment, which reuses them.
#[test]
fn dropped_wasm3_instances_give_their_memory_back() {
    let wasm = hotwasm_modules::find("schnorr", "compat")
        .expect("built")
        .bytes;
    let grown = std::thread::Builder::new()
        .stack_size(hotwasm_runtime::GUEST_THREAD_STACK_BYTES)
        .spawn(move || {
            let runtime = RuntimeKind::Wasm3
                .create_with(crate::unhurried())
                .expect("wasm3");
            let module = runtime.compile(wasm).expect("compiles");
            for _ in 0..50 {
                drop(module.instantiate().expect("instantiates"));
            }
            let before = rss_kib();
            for _ in 0..2_000 {
                drop(module.instantiate().expect("instantiates"));
            }
            rss_kib().saturating_sub(before)
        })
        .expect("thread")
        .join()
        .expect("no panic");
    assert!(
        grown < 16 * 1024,
        "RSS grew {grown} KiB over 2,000 instances"
    );
}
