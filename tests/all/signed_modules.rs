//! Only trusted modules load: signed by a trusted key, or built in. An
//! unsigned, tampered (one flipped byte) or wrong-key module is refused on
//! every path through the host — load, the watched directory, a stored
//! version at start — unless unsigned modules are allowed, and then each
//! such load is logged.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotwasm_host::watch::{WatchEvent, watch};
use hotwasm_host::{HostConfig, HostError, ModuleHost};
use hotwasm_registry::RegistryError;
use hotwasm_runtime::RuntimeKind;
use hotwasm_tests::second_version;
use hotwasm_tests::signing::{self, signed};
use hotwasm_trust::{SecretKey, Trust, Untrusted};

fn fast_schnorr() -> &'static hotwasm_modules::BuiltModule {
    hotwasm_modules::find("schnorr", "fast").expect("built")
}

fn host(dir: &std::path::Path, trust: Trust) -> Result<Arc<ModuleHost>, HostError> {
    ModuleHost::start(HostConfig {
        variant: Some("fast".into()),
        registry: Some(dir.to_path_buf()),
        trust,
        limits: crate::unhurried(),
        ..HostConfig::new(RuntimeKind::Wasmtime)
    })
}

/// What a module is, its bytes, and whether a refusal's reason fits it.
type Case = (&'static str, Vec<u8>, fn(&Untrusted) -> bool);

/// The three modules no trusted key vouches for, each with the reason it
/// must be refused for.
fn untrusted_modules() -> Vec<Case> {
    let v2 = second_version(fast_schnorr().bytes, "v2");
    let mut tampered = signed(&v2);
    // One flipped byte the signature covers: the last, in the version
    // tag, so the module still compiles when unsigned ones are allowed.
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let by_other = SecretKey::generate().sign(&v2).expect("sign");
    vec![
        ("unsigned", v2, |r| matches!(r, Untrusted::Unsigned)),
        ("tampered", tampered, |r| {
            matches!(r, Untrusted::Tampered { .. })
        }),
        ("wrong key", by_other, |r| {
            matches!(r, Untrusted::UntrustedKey { .. })
        }),
    ]
}

#[test]
fn unsigned_tampered_and_wrong_key_modules_are_refused_by_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = host(dir.path(), signing::trust()).expect("host");
    let before = host.serving();
    for (what, wasm, expected) in untrusted_modules() {
        match host.load("schnorr", wasm, "test", true) {
            Err(HostError::Registry(RegistryError::Untrusted { reason, module })) => {
                assert!(expected(&reason), "{what}: {reason}");
                assert!(module.starts_with("schnorr@"), "{what}: {module}");
            }
            other => panic!("{what} was not refused as untrusted: {other:?}"),
        }
    }
    assert_eq!(host.serving(), before);
    assert_eq!(host.swaps(), 0);
    assert!(host.list().expect("list").is_empty(), "nothing stored");

    let v2 = signed(&second_version(fast_schnorr().bytes, "v2"));
    let loaded = host
        .load("schnorr", v2.clone(), "test", true)
        .expect("signed by the trusted key");
    assert_eq!(host.serving()["schnorr"], loaded.id);
}

#[test]
fn with_no_trusted_key_only_built_in_modules_load_and_activate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = host(dir.path(), Trust::default()).expect("host starts on built-ins");
    let refused = host.load(
        "schnorr",
        signed(&second_version(fast_schnorr().bytes, "v2")),
        "test",
        true,
    );
    assert!(
        matches!(
            &refused,
            Err(HostError::Registry(RegistryError::Untrusted {
                reason: Untrusted::UntrustedKey { trusted: 0, .. },
                ..
            }))
        ),
        "{refused:?}"
    );
    // Built-in modules are trusted by hash: loaded as bytes, or activated
    // by id (then stored, and recognised again from the registry).
    let default = hotwasm_modules::find("schnorr", "default").expect("built");
    let active = host
        .activate(&default.id())
        .expect("a built-in id activates");
    assert_eq!(active.id, default.id());
    let loaded = host
        .load("schnorr", fast_schnorr().bytes.to_vec(), "test", true)
        .expect("built-in bytes load");
    assert_eq!(loaded.id, fast_schnorr().id());
    let back = host
        .rollback("schnorr")
        .expect("a stored built-in validates again");
    assert_eq!(back.id, default.id());
}

#[test]
fn unsigned_tampered_and_wrong_key_files_are_refused_by_the_watched_directory() {
    let registry = tempfile::tempdir().expect("temp dir");
    let modules = tempfile::tempdir().expect("temp dir");
    let host = host(registry.path(), signing::trust()).expect("host");
    let before = host.serving()["schnorr"].clone();
    let (sender, events) = std::sync::mpsc::channel();
    let _watcher = watch(modules.path(), Arc::clone(&host), Some(sender)).expect("watch");
    let path = modules.path().join("schnorr.wasm");
    let next = || {
        events
            .recv_timeout(Duration::from_secs(60))
            .expect("the watcher reports within a minute")
    };
    for (what, wasm, _) in untrusted_modules() {
        std::fs::write(&path, &wasm).expect("write");
        match next() {
            WatchEvent::Refused { reason, .. } => {
                assert!(reason.contains("refused"), "{what}: {reason}")
            }
            other => panic!("{what} was not refused: {other:?}"),
        }
        assert_eq!(host.serving()["schnorr"], before, "{what}");
    }
    let v2 = signed(&second_version(fast_schnorr().bytes, "watched"));
    std::fs::write(&path, &v2).expect("write");
    let event = next();
    assert!(matches!(event, WatchEvent::Activated { .. }), "{event:?}");
    assert_eq!(
        host.serving()["schnorr"],
        hotwasm_modules::module_id("schnorr", &v2)
    );
}

#[test]
fn a_version_stored_while_unsigned_modules_were_allowed_is_refused_at_the_next_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let v2 = second_version(fast_schnorr().bytes, "v2");
    let id = {
        let host = host(dir.path(), Trust::default().allow_unsigned(true)).expect("host");
        host.load("schnorr", v2, "test", true).expect("allowed").id
    };
    // The registry's active version is checked again, as anything in a
    // directory someone else may write must be.
    let refused = host(dir.path(), signing::trust()).err();
    assert!(
        matches!(
            &refused,
            Some(HostError::Registry(RegistryError::Untrusted { module, reason: Untrusted::Unsigned }))
                if *module == id
        ),
        "{refused:?}"
    );
}

/// Collects log lines.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn allowing_unsigned_modules_loads_them_with_a_warning_each_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let ids = tracing::subscriber::with_default(subscriber, || {
        let host = host(dir.path(), Trust::default().allow_unsigned(true)).expect("host");
        untrusted_modules()
            .into_iter()
            .map(|(what, wasm, _)| {
                host.load("schnorr", wasm, "test", true)
                    .unwrap_or_else(|e| panic!("{what} loads when allowed: {e}"))
                    .id
            })
            .collect::<Vec<_>>()
    });
    let text =
        String::from_utf8_lossy(&log.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    for id in &ids {
        let line = text
            .lines()
            .find(|line| line.contains(id.as_str()))
            .unwrap_or_else(|| panic!("no warning names {id}:\n{text}"));
        assert!(
            line.contains("WARN") && line.contains("NOT TRUSTED"),
            "{line}"
        );
    }
}
