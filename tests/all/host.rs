//! The module host: the one place a version becomes the one serving —
//! events, counting, the directory watch, and validation that holds no
//! lock administration needs.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use hotwasm_abi::Scheme;
use hotwasm_host::watch::{WatchEvent, watch};
use hotwasm_host::{Activation, Cause, HostConfig, HostError, ModuleHost};
use hotwasm_registry::RegistryError;
use hotwasm_runtime::{Limits, RuntimeKind};
use hotwasm_tests::signing::{self, signed};
use hotwasm_tests::{hostile, not_wapc_module, second_version};

fn schnorr(variant: &str) -> &'static [u8] {
    hotwasm_modules::find("schnorr", variant)
        .expect("built")
        .bytes
}

/// A wasmtime host with a registry in `dir`, trusting the tests' key.
fn host_with_registry(dir: &std::path::Path, limits: Limits) -> Arc<ModuleHost> {
    ModuleHost::start(HostConfig {
        limits,
        variant: Some("fast".into()),
        registry: Some(dir.to_path_buf()),
        trust: signing::trust(),
        ..HostConfig::new(RuntimeKind::Wasmtime)
    })
    .expect("host starts")
}

fn next_event(events: &crossbeam_channel::Receiver<Activation>) -> Activation {
    events
        .recv_timeout(Duration::from_secs(60))
        .expect("an activation event")
}

#[test]
fn every_change_of_the_serving_module_is_one_counted_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = host_with_registry(dir.path(), crate::unhurried());
    let events = host.subscribe();
    let first = host.serving()["schnorr"].clone();
    assert_eq!(host.swaps(), 0, "start-up is not a swap");

    // The built-in bytes, stored: the same version, recorded.
    let v1 = host
        .load("schnorr", schnorr("fast").to_vec(), "test", true)
        .expect("load v1");
    assert_eq!(v1.id, first);
    assert_eq!(next_event(&events).to, first);

    let v2 = signed(&second_version(schnorr("fast"), "v2"));
    let loaded = host
        .load("schnorr", v2.clone(), "test", true)
        .expect("load");
    let event = next_event(&events);
    assert_eq!(event.scheme, Scheme::Schnorr);
    assert_eq!(event.from.as_deref(), Some(first.as_str()));
    assert_eq!(event.to, loaded.id);
    assert_eq!(
        event.cause,
        Cause::Load {
            source: "test".into()
        }
    );
    assert_eq!(host.serving()["schnorr"], loaded.id);

    // Storing without activating changes nothing that serves: no event.
    let v3 = signed(&second_version(schnorr("fast"), "v3"));
    host.load("schnorr", v3, "test", false).expect("store");
    assert!(events.try_recv().is_err());

    let back = host.rollback("schnorr").expect("rollback");
    assert_eq!(back.id, v1.id);
    let event = next_event(&events);
    assert_eq!((event.cause, event.to.clone()), (Cause::Rollback, back.id));
    assert_eq!(event.from.as_deref(), Some(loaded.id.as_str()));

    let again = host.activate(&loaded.id).expect("activate");
    let event = next_event(&events);
    assert_eq!((event.cause, event.to), (Cause::Activate, again.id));

    let module = host
        .alternate(Scheme::Schnorr)
        .expect("alternate validates")
        .expect("a previous version");
    let previous = host
        .swap_in(Scheme::Schnorr, Arc::clone(&module))
        .expect("replaced a module");
    assert_eq!(previous.id, loaded.id);
    let event = next_event(&events);
    assert_eq!((event.cause, event.to), (Cause::Swap, module.id.clone()));

    assert_eq!(host.swaps(), 5, "two loads, rollback, activate, swap");
    assert!(events.try_recv().is_err(), "one event per change");
}

#[test]
fn a_refused_module_changes_nothing_and_publishes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = host_with_registry(dir.path(), crate::unhurried());
    let events = host.subscribe();
    let before = host.serving();
    let refused = host.load("schnorr", signed(&not_wapc_module()), "test", true);
    assert!(
        matches!(
            refused,
            Err(HostError::Registry(RegistryError::Refused { .. }))
        ),
        "{refused:?}"
    );
    assert_eq!(host.serving(), before);
    assert_eq!(host.swaps(), 0);
    assert!(events.try_recv().is_err());
    assert!(host.list().expect("list").is_empty(), "nothing stored");
}

#[test]
fn without_a_registry_only_built_in_modules_activate() {
    let host = ModuleHost::built(RuntimeKind::Wasmtime, "fast", crate::unhurried()).expect("host");
    let events = host.subscribe();
    let default = hotwasm_modules::find("schnorr", "default").expect("built");
    let version = host.activate(&default.id()).expect("a built-in module");
    assert_eq!(version.id, default.id());
    assert_eq!(host.serving()["schnorr"], default.id());
    assert_eq!(next_event(&events).cause, Cause::Activate);
    assert!(matches!(
        host.activate("schnorr@ffffffffffff"),
        Err(HostError::NoRegistry)
    ));
    assert!(matches!(
        host.rollback("schnorr"),
        Err(HostError::NoRegistry)
    ));
    assert!(matches!(
        host.load("schnorr", schnorr("fast").to_vec(), "test", true),
        Err(HostError::NoRegistry)
    ));
}

#[test]
fn swapping_back_and_forth_piles_up_no_warm_instances() {
    let host = ModuleHost::built(RuntimeKind::Wasmtime, "fast", crate::unhurried()).expect("host");
    let job = hotwasm_jobs::Generator::new(21, hotwasm_jobs::SchemeChoice::Schnorr, 0.0).job();
    let mut worker = hotwasm_worker::Worker::new(host.modules());
    let mut other = host
        .alternate(Scheme::Schnorr)
        .expect("alternate")
        .expect("another built-in variant");
    for _ in 0..10 {
        other = host
            .swap_in(Scheme::Schnorr, Arc::clone(&other))
            .expect("replaced a module");
        assert!(worker.verify(&job).valid);
    }
    // The worker keeps the instance of the version it left, so each version
    // needs one warm instance at most, whatever the number of swaps.
    let serving = host.modules().get(Scheme::Schnorr).expect("serving");
    for module in [&serving, &other] {
        assert!(
            module.warm_instances() <= 1,
            "{}: {}",
            module.id,
            module.warm_instances()
        );
    }
    assert_eq!(host.swaps(), 10);
}

/// Tells a channel when a log line mentions `looping`: the hostile guest
/// is running its self-test.
struct Signal(crossbeam_channel::Sender<()>);

impl Write for Signal {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if String::from_utf8_lossy(line).contains("looping") {
            let _ = self.0.send(());
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_module_stuck_in_validation_blocks_no_administration() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The stuck self-test ends at this deadline; the checks below must all
    // finish well inside it (they take milliseconds when nothing blocks).
    let limits = Limits {
        call_timeout: Duration::from_secs(20),
        ..Limits::default()
    };
    let host = host_with_registry(dir.path(), limits);
    let v2 = signed(&second_version(schnorr("fast"), "v2"));
    let v3 = signed(&second_version(schnorr("fast"), "v3"));
    let v2_id = host
        .load("schnorr", v2, "test", true)
        .expect("a first version")
        .id;
    host.load("schnorr", v3.clone(), "test", false)
        .expect("a second version");

    let (running, guest_runs) = crossbeam_channel::unbounded();
    let stuck = {
        let host = Arc::clone(&host);
        std::thread::Builder::new()
            .stack_size(hotwasm_runtime::GUEST_THREAD_STACK_BYTES)
            .spawn(move || {
                let subscriber = tracing_subscriber::fmt()
                    .with_max_level(tracing::Level::DEBUG)
                    .with_writer(move || Signal(running.clone()))
                    .finish();
                tracing::subscriber::with_default(subscriber, || {
                    let looping = signed(&hostile::announced_looping_module());
                    host.load("ecdsa", looping, "test", true)
                })
            })
            .expect("thread")
    };
    guest_runs
        .recv_timeout(Duration::from_secs(60))
        .expect("the hostile self-test starts");

    // Administration on another thread, while the guest loops.
    let (done, administered) = crossbeam_channel::bounded(1);
    {
        let host = Arc::clone(&host);
        let v3_id = hotwasm_modules::module_id("schnorr", &v3);
        std::thread::Builder::new()
            .stack_size(hotwasm_runtime::GUEST_THREAD_STACK_BYTES)
            .spawn(move || {
                let listed = host.list().map(|l| l.len());
                let activated = host.activate(&v3_id).map(|v| v.id);
                let rolled = host.rollback("schnorr").map(|v| v.id);
                let _ = done.send((listed, activated, rolled, v3_id));
            })
            .expect("thread");
    }
    let (listed, activated, rolled, v3_id) = administered
        .recv_timeout(Duration::from_secs(10))
        .expect("administration finishes while a module is stuck in validation");
    assert!(
        !stuck.is_finished(),
        "the hostile module was still validating"
    );
    assert_eq!(listed.expect("list"), 2);
    assert_eq!(activated.expect("activate"), v3_id);
    assert_eq!(rolled.expect("rollback"), v2_id);

    let refused = stuck.join().expect("thread");
    assert!(
        matches!(&refused, Err(HostError::Registry(RegistryError::Refused { reason, .. })) if reason.contains("deadline")),
        "{refused:?}"
    );
}

#[test]
fn watched_directory_activates_good_modules_and_refuses_broken_ones() {
    let registry_dir = tempfile::tempdir().expect("temp dir");
    let modules_dir = tempfile::tempdir().expect("temp dir");
    let host = host_with_registry(registry_dir.path(), crate::unhurried());
    let activations = host.subscribe();
    let before = host.serving()["schnorr"].clone();
    let (sender, events) = std::sync::mpsc::channel();
    let _watcher = watch(modules_dir.path(), Arc::clone(&host), Some(sender)).expect("watch");
    let next = || {
        events
            .recv_timeout(Duration::from_secs(60))
            .expect("the watcher reports within a minute")
    };

    std::fs::write(
        modules_dir.path().join("schnorr.wasm"),
        signed(&not_wapc_module()),
    )
    .expect("write");
    assert!(
        matches!(next(), WatchEvent::Refused { reason, .. } if reason.contains("__guest_call"))
    );
    assert_eq!(
        host.serving()["schnorr"],
        before,
        "a broken file changes nothing"
    );

    let v2 = signed(&second_version(schnorr("fast"), "watched"));
    let path = modules_dir.path().join("schnorr.wasm");
    std::fs::write(&path, &v2).expect("write");
    let id = match next() {
        WatchEvent::Activated { id, .. } => id,
        other => panic!("expected activation, got {other:?}"),
    };
    assert_eq!(id, hotwasm_modules::module_id("schnorr", &v2));
    assert_eq!(host.serving()["schnorr"], id);
    // A watch activation is counted and published like any other.
    assert_eq!(host.swaps(), 1);
    let event = next_event(&activations);
    assert_eq!(event.to, id);
    assert_eq!(
        event.cause,
        Cause::Load {
            source: path.display().to_string()
        }
    );
}

/// Reading a watched file raises events of its own: the watcher must not
/// take them for a change. Two more files are dropped in after the first
/// is activated; the events that follow are theirs alone, never the first
/// file's again (before the fix it was re-read every ~100 ms).
#[test]
fn a_watched_file_is_handled_once_per_change() {
    let registry_dir = tempfile::tempdir().expect("temp dir");
    let modules_dir = tempfile::tempdir().expect("temp dir");
    let host = host_with_registry(registry_dir.path(), crate::unhurried());
    let (sender, events) = std::sync::mpsc::channel();
    let _watcher = watch(modules_dir.path(), Arc::clone(&host), Some(sender)).expect("watch");
    let next = || {
        events
            .recv_timeout(Duration::from_secs(60))
            .expect("the watcher reports within a minute")
    };
    let name_of = |event: &WatchEvent| match event {
        WatchEvent::Activated { path, .. } | WatchEvent::Refused { path, .. } => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    std::fs::write(
        modules_dir.path().join("schnorr.wasm"),
        signed(&second_version(schnorr("fast"), "once")),
    )
    .expect("write");
    assert_eq!(name_of(&next()), "schnorr.wasm");
    for (file, tag) in [("first.wasm", "first"), ("second.wasm", "second")] {
        std::fs::write(
            modules_dir.path().join(file),
            signed(&second_version(schnorr("fast"), tag)),
        )
        .expect("write");
        assert_eq!(name_of(&next()), file, "no event for an unchanged file");
    }
    // A real change is handled again.
    std::fs::write(
        modules_dir.path().join("schnorr.wasm"),
        signed(&second_version(schnorr("fast"), "changed")),
    )
    .expect("write");
    assert_eq!(name_of(&next()), "schnorr.wasm");
    assert_eq!(
        host.swaps(),
        2,
        "schnorr twice; first and second are not schemes"
    );
}

#[test]
fn a_watched_file_over_the_module_limit_is_refused_unread() {
    let registry_dir = tempfile::tempdir().expect("temp dir");
    let modules_dir = tempfile::tempdir().expect("temp dir");
    // Above the built-in modules (about 210 KiB), below the file.
    let limits = Limits {
        max_module_bytes: 512 << 10,
        ..Limits::default()
    };
    let host = host_with_registry(registry_dir.path(), limits);
    let (sender, events) = std::sync::mpsc::channel();
    let _watcher = watch(modules_dir.path(), Arc::clone(&host), Some(sender)).expect("watch");
    std::fs::write(
        modules_dir.path().join("schnorr.wasm"),
        hostile::padded_module(2 << 20),
    )
    .expect("write");
    let event = events
        .recv_timeout(Duration::from_secs(60))
        .expect("the watcher reports");
    assert!(
        matches!(&event, WatchEvent::Refused { reason, .. } if reason.contains("module limit")),
        "{event:?}"
    );
    assert_eq!(host.swaps(), 0);
}

/// A wasmtime host with a registry in `dir` and tiered activation from
/// Winch.
fn tiered_host(dir: &std::path::Path) -> Arc<ModuleHost> {
    ModuleHost::start(HostConfig {
        limits: crate::unhurried(),
        variant: Some("fast".into()),
        registry: Some(dir.to_path_buf()),
        trust: signing::trust(),
        first_tier: Some(RuntimeKind::WasmtimeWinch),
        ..HostConfig::new(RuntimeKind::Wasmtime)
    })
    .expect("host starts")
}

/// Waits (at most a minute: compiling, never a race) for the tier-ups.
fn tier_ups_done(host: &ModuleHost) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while host.tier_ups_pending() > 0 {
        assert!(std::time::Instant::now() < deadline, "tier-up never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn tiered_activation_serves_from_winch_then_from_cranelift() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = tiered_host(dir.path());
    let events = host.subscribe();
    let mut worker = hotwasm_worker::Worker::new(host.modules());
    let jobs: Vec<hotwasm_jobs::Job> =
        hotwasm_jobs::Generator::new(31, hotwasm_jobs::SchemeChoice::Schnorr, 0.5)
            .take(40)
            .collect();
    let check = |worker: &mut hotwasm_worker::Worker| -> Vec<String> {
        jobs.iter()
            .map(|job| {
                let verdict = worker.verify(job);
                assert_eq!(Some(verdict.valid), job.expect, "{verdict:?}");
                verdict.runtime
            })
            .collect()
    };

    // `default` has no wide-arithmetic: Winch compiles it and it serves
    // at once; the Cranelift build replaces it, same version.
    let v2 = signed(&second_version(schnorr("default"), "tiered"));
    let loaded = host
        .load("schnorr", v2.clone(), "test", true)
        .expect("load");
    let runtimes = check(&mut worker);
    assert!(
        runtimes
            .iter()
            .all(|r| r == "wasmtime-winch" || r == "wasmtime"),
        "{runtimes:?}"
    );
    let event = next_event(&events);
    assert_eq!(
        (event.to.as_str(), &event.cause),
        (
            loaded.id.as_str(),
            &Cause::Load {
                source: "test".into()
            }
        )
    );
    let event = next_event(&events);
    assert_eq!(event.to, loaded.id);
    assert_eq!(event.from.as_deref(), Some(loaded.id.as_str()));
    assert_eq!(
        event.cause,
        Cause::TierUp {
            from_runtime: "wasmtime-winch"
        }
    );
    tier_ups_done(&host);
    assert!(check(&mut worker).iter().all(|r| r == "wasmtime"));
    assert_eq!(host.serving()["schnorr"], loaded.id);
    assert_eq!(host.swaps(), 2, "the load and the tier-up");

    // Cranelift has it cached now: activated again, it is compiled by
    // Cranelift before it serves, with no tier-up.
    let fast = host.activate(
        &hotwasm_modules::find("schnorr", "fast")
            .expect("built")
            .id(),
    );
    fast.expect("back to the built-in version");
    host.activate(&loaded.id).expect("again");
    assert_eq!(host.tier_ups_pending(), 0);
    assert!(check(&mut worker).iter().all(|r| r == "wasmtime"));

    // `fast` uses wide-arithmetic, which Winch refuses: compiled by
    // Cranelift before it serves, as without tiering.
    let v3 = signed(&second_version(schnorr("fast"), "no-winch"));
    host.load("schnorr", v3, "test", true).expect("load");
    assert_eq!(host.tier_ups_pending(), 0);
    assert!(check(&mut worker).iter().all(|r| r == "wasmtime"));
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event.cause, Cause::TierUp { .. }), "{event:?}");
    }
}

#[test]
fn a_tier_up_never_replaces_a_newer_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = tiered_host(dir.path());
    let mut worker = hotwasm_worker::Worker::new(host.modules());
    let job = hotwasm_jobs::Generator::new(32, hotwasm_jobs::SchemeChoice::Schnorr, 0.0).job();
    // Two versions back to back: the first one's tier-up ends before or
    // after the second load, and must not bring the first one back.
    let a = host
        .load(
            "schnorr",
            signed(&second_version(schnorr("default"), "a")),
            "test",
            true,
        )
        .expect("load a");
    let b = host
        .load(
            "schnorr",
            signed(&second_version(schnorr("default"), "b")),
            "test",
            true,
        )
        .expect("load b");
    assert_ne!(a.id, b.id);
    tier_ups_done(&host);
    assert_eq!(host.serving()["schnorr"], b.id);
    let verdict = worker.verify(&job);
    assert!(verdict.valid, "{verdict:?}");
    assert_eq!(verdict.module.as_deref(), Some(b.id.as_str()));
    assert_eq!(verdict.runtime, "wasmtime");
}

#[test]
fn tiered_activation_from_wasmi_and_never_from_native() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = ModuleHost::start(HostConfig {
        limits: crate::unhurried(),
        registry: Some(dir.path().to_path_buf()),
        trust: signing::trust(),
        first_tier: Some(RuntimeKind::Wasmi),
        ..HostConfig::new(RuntimeKind::Wasmtime)
    })
    .expect("host starts");
    let events = host.subscribe();
    // wasmi runs wide-arithmetic: `fast` itself starts on it.
    let loaded = host
        .load(
            "schnorr",
            signed(&second_version(schnorr("fast"), "wasmi-first")),
            "test",
            true,
        )
        .expect("load");
    assert!(matches!(next_event(&events).cause, Cause::Load { .. }));
    let event = next_event(&events);
    assert_eq!(
        (event.to.as_str(), event.cause),
        (
            loaded.id.as_str(),
            Cause::TierUp {
                from_runtime: "wasmi"
            }
        )
    );
    tier_ups_done(&host);
    let mut worker = hotwasm_worker::Worker::new(host.modules());
    let job = hotwasm_jobs::Generator::new(33, hotwasm_jobs::SchemeChoice::Schnorr, 0.0).job();
    assert_eq!(worker.verify(&job).runtime, "wasmtime");

    // native would serve its built-in code, not the version loaded.
    let refused = ModuleHost::start(HostConfig {
        first_tier: Some(RuntimeKind::Native),
        ..HostConfig::new(RuntimeKind::Wasmtime)
    });
    assert!(
        matches!(refused, Err(HostError::Runtime(_))),
        "{:?}",
        refused.err()
    );
}

/// A staged version keeps the instance its self-test ran as a warm one:
/// with one instance to prewarm, staging makes none more.
#[test]
fn the_self_tested_instance_is_kept_warm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = host_with_registry(dir.path(), Limits::default());
    let staged = host
        .candidate(
            Scheme::Schnorr,
            signed(&second_version(schnorr("fast"), "warm")),
        )
        .expect("candidate");
    assert_eq!(staged.module().warm_instances(), 1);
    assert_eq!(staged.prewarmed(), 0, "the self-test's instance was kept");
}

/// The second module family is one more version to the registry: loaded
/// over the k256 modules while a worker serves, every verdict right and
/// carrying the new module's id (libsecp256k1's reasons are k256's), then
/// rolled back to k256.
#[test]
fn a_libsecp256k1_version_replaces_k256_and_rolls_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = host_with_registry(dir.path(), crate::unhurried());
    let mut worker = hotwasm_worker::Worker::new(host.modules());
    let jobs: Vec<hotwasm_jobs::Job> =
        hotwasm_jobs::Generator::new(47, hotwasm_jobs::SchemeChoice::Mixed, 0.5)
            .take(60)
            .collect();
    let k256 = host.serving();
    // The built-in k256 versions, stored, so there is one to roll back to.
    for scheme in Scheme::ALL {
        let module = hotwasm_modules::find(scheme.as_str(), "fast").expect("built");
        let stored = host
            .load(scheme.as_str(), module.bytes.to_vec(), "test", true)
            .expect("store the built-in version");
        assert_eq!(stored.id, k256[scheme.as_str()]);
    }
    let serve = |worker: &mut hotwasm_worker::Worker| -> Vec<(String, Option<String>)> {
        jobs.iter()
            .map(|job| {
                let verdict = worker.verify(job);
                assert_eq!(Some(verdict.valid), job.expect, "{verdict:?}");
                (verdict.module.expect("a module id"), verdict.reason)
            })
            .collect()
    };
    let before = serve(&mut worker);

    let mut libsecp = std::collections::BTreeMap::new();
    for scheme in Scheme::ALL {
        let module = hotwasm_modules::find(scheme.as_str(), "libsecp256k1").expect("built");
        assert_eq!(module.variant.family, hotwasm_modules::Family::Libsecp256k1);
        let loaded = host
            .load(scheme.as_str(), signed(module.bytes), "test", true)
            .expect("the libsecp256k1 module loads");
        assert_ne!(loaded.id, k256[scheme.as_str()]);
        libsecp.insert(scheme.as_str().to_string(), loaded.id);
    }
    assert_eq!(host.serving(), libsecp);
    let after = serve(&mut worker);
    for ((old_module, old_reason), (new_module, new_reason)) in before.iter().zip(&after) {
        assert!(k256.values().any(|id| id == old_module), "{old_module}");
        assert!(libsecp.values().any(|id| id == new_module), "{new_module}");
        assert_eq!(
            old_reason, new_reason,
            "the same contract, the same reasons"
        );
    }

    for scheme in Scheme::ALL {
        host.rollback(scheme.as_str()).expect("rollback");
    }
    assert_eq!(host.serving(), k256);
    assert!(
        serve(&mut worker)
            .iter()
            .all(|(module, _)| k256.values().any(|id| id == module))
    );
}
