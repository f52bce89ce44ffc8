//! The module registry: validation, activation, rollback, cache.

use hotwasm_abi::Scheme;
use hotwasm_auth::MacKey;
use hotwasm_registry::cache::CacheOutcome;
use hotwasm_registry::{ArtifactCache, ModuleRegistry, RegistryError, VersionState};
use hotwasm_runtime::RuntimeKind;
use hotwasm_tests::signing;
use hotwasm_tests::{always_valid_module, init_trapping_module, not_wapc_module, trapping_module};
use hotwasm_trust::Trust;
use sha2::Digest as _;

fn schnorr(variant: &str) -> &'static [u8] {
    hotwasm_modules::find("schnorr", variant)
        .expect("built")
        .bytes
}

#[test]
fn load_activate_rollback() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = RuntimeKind::Wasmtime
        .create_with(crate::unhurried())
        .expect("wasmtime");
    let mut registry = ModuleRegistry::open(dir.path()).expect("registry");
    let v1 = registry
        .load(
            "schnorr",
            schnorr("fast"),
            None,
            runtime.as_ref(),
            &Trust::default(),
        )
        .expect("v1");
    assert_eq!(
        v1.state,
        VersionState::Active,
        "the first version becomes active"
    );
    let v2 = registry
        .load(
            "schnorr",
            schnorr("default"),
            None,
            runtime.as_ref(),
            &Trust::default(),
        )
        .expect("v2");
    assert_eq!(v2.state, VersionState::Available);
    let activated = registry
        .activate(&format!("schnorr@{}", &v2.hash[..8]))
        .expect("activate");
    assert_eq!(activated.hash, v2.hash);
    // The state survives reopening.
    let mut registry = ModuleRegistry::open(dir.path()).expect("reopen");
    assert_eq!(
        registry.active("schnorr").map(|v| v.hash),
        Some(v2.hash.clone())
    );
    assert_eq!(
        registry.previous("schnorr").map(|v| v.hash),
        Some(v1.hash.clone())
    );
    let rolled = registry.rollback("schnorr").expect("rollback");
    assert_eq!(rolled.hash, v1.hash);
    assert!(matches!(
        registry.rollback("schnorr"),
        Err(RegistryError::NoHistory(_))
    ));
    assert!(matches!(
        registry.activate("schnorr@ffff"),
        Err(RegistryError::NotFound(_))
    ));
    assert!(matches!(
        registry.activate("schnorr@1"),
        Err(RegistryError::Ambiguous(_))
    ));
    assert!(matches!(
        registry.load(
            "../evil",
            schnorr("fast"),
            None,
            runtime.as_ref(),
            &Trust::default()
        ),
        Err(RegistryError::BadName(_))
    ));
    assert_eq!(registry.list().len(), 2);
    // Re-activating a version that is in the history keeps the others.
    registry
        .activate(&format!("schnorr@{}", &v2.hash[..8]))
        .expect("v2");
    registry
        .activate(&format!("schnorr@{}", &v1.hash[..8]))
        .expect("v1");
    assert_eq!(
        registry.previous("schnorr").map(|v| v.hash),
        Some(v2.hash.clone())
    );
    registry
        .activate(&format!("schnorr@{}", &v2.hash[..8]))
        .expect("v2 again");
    assert_eq!(
        registry.previous("schnorr").map(|v| v.hash),
        Some(v1.hash.clone())
    );
    assert_eq!(
        registry.rollback("schnorr").map(|v| v.hash).ok(),
        Some(v1.hash.clone())
    );
    assert!(matches!(
        registry.rollback("schnorr"),
        Err(RegistryError::NoHistory(_))
    ));
    // A state file with a hand-edited bad hash is reported, not a panic.
    let state = dir.path().join("registry.json");
    let text = std::fs::read_to_string(&state).expect("state");
    std::fs::write(&state, text.replace(&v1.hash, "é-not-a-hash")).expect("write");
    assert!(matches!(
        ModuleRegistry::open(dir.path()),
        Err(RegistryError::Corrupt { .. })
    ));
}

#[test]
fn broken_modules_are_refused_and_the_active_version_stays() {
    let dir = tempfile::tempdir().expect("temp dir");
    for kind in [
        RuntimeKind::Wasmtime,
        RuntimeKind::Wasmi,
        RuntimeKind::Wasm3,
    ] {
        let runtime = kind.create_with(crate::unhurried()).expect("runtime");
        let mut registry = ModuleRegistry::open(dir.path().join(kind.name())).expect("registry");
        let good = registry
            .load(
                "schnorr",
                schnorr("compat"),
                None,
                runtime.as_ref(),
                &Trust::default(),
            )
            .expect("good");
        for (what, wasm) in [
            ("garbage", b"\0asm\x01\0\0\0garbage".to_vec()),
            ("no __guest_call", not_wapc_module()),
            ("wrong answers", always_valid_module()),
            ("traps in wapc_init", init_trapping_module()),
            ("traps on every call", trapping_module()),
            (
                "an ECDSA module named schnorr",
                hotwasm_modules::find("ecdsa", "compat")
                    .expect("built")
                    .bytes
                    .to_vec(),
            ),
        ] {
            // Signed by a trusted key, so refused for what it is, not for
            // who made it; garbage cannot be signed, and is refused before
            // anything reads more than its signature.
            let (wasm, refused_as_garbage) = match signing::key().sign(&wasm) {
                Ok(signed) => (signed, false),
                Err(_) => (wasm, true),
            };
            let refused =
                registry.load("schnorr", &wasm, None, runtime.as_ref(), &signing::trust());
            if refused_as_garbage {
                assert!(
                    matches!(refused, Err(RegistryError::Untrusted { .. })),
                    "{kind}: {what} was not refused: {refused:?}"
                );
            } else {
                assert!(
                    matches!(refused, Err(RegistryError::Refused { .. })),
                    "{kind}: {what} was not refused: {refused:?}"
                );
            }
            assert_eq!(
                registry.active("schnorr").map(|v| v.hash),
                Some(good.hash.clone()),
                "{kind}: {what}"
            );
        }
        assert_eq!(
            registry.list().len(),
            1,
            "{kind}: refused modules are not stored"
        );
    }
}

#[test]
fn corrupt_cache_entries_are_detected_and_rebuilt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = RuntimeKind::Wasmtime
        .create_with(crate::unhurried())
        .expect("wasmtime");
    let cache = ArtifactCache::new(dir.path(), MacKey::generate());
    let wasm = schnorr("fast");
    let compile = || {
        cache
            .compile(runtime.as_ref(), wasm)
            .map(|(_, outcome)| outcome)
            .expect("compiles")
    };
    assert_eq!(compile(), CacheOutcome::Miss);
    assert_eq!(compile(), CacheOutcome::Hit);
    let fingerprint = runtime.artifact_fingerprint().expect("wasmtime caches");
    let entry = cache.entry_path(&fingerprint, wasm);
    let original = std::fs::read(&entry).expect("entry");

    // Truncated.
    std::fs::write(&entry, &original[..original.len() / 2]).expect("write");
    assert!(matches!(compile(), CacheOutcome::Rebuilt(_)));
    assert_eq!(compile(), CacheOutcome::Hit);
    // One flipped byte in the machine code.
    let mut tampered = original.clone();
    let at = tampered.len() - 100;
    tampered[at] ^= 0x40;
    std::fs::write(&entry, &tampered).expect("write");
    assert!(matches!(compile(), CacheOutcome::Rebuilt(why) if why.contains("tag")));
    // Another module's (intact) entry put in this one's place.
    let other = schnorr("default");
    cache.compile(runtime.as_ref(), other).expect("compiles");
    let substitute = std::fs::read(cache.entry_path(&fingerprint, other)).expect("entry");
    std::fs::write(&entry, &substitute).expect("write");
    assert!(matches!(compile(), CacheOutcome::Rebuilt(why) if why.contains("tag")));
    assert_eq!(compile(), CacheOutcome::Hit);
    // An attacker who can write the cache but has not its key: the other
    // module's artifact, well-formed, tagged for this module's hash with
    // their own key, is never loaded.
    let forger = ArtifactCache::new(dir.path().join("forger"), MacKey::generate());
    forger.compile(runtime.as_ref(), other).expect("compiles");
    let forged_other = std::fs::read(forger.entry_path(&fingerprint, other)).expect("entry");
    let artifact = &forged_other[8 + 32..];
    let wasm_digest = sha2::Sha256::digest(wasm);
    let attacker_key = MacKey::generate();
    let mut forged = b"HWASMAC2".to_vec();
    forged.extend_from_slice(&attacker_key.tag(&[fingerprint.as_bytes(), &wasm_digest, artifact]));
    forged.extend_from_slice(artifact);
    std::fs::write(&entry, &forged).expect("write");
    assert!(matches!(compile(), CacheOutcome::Rebuilt(why) if why.contains("tag")));
    assert_eq!(compile(), CacheOutcome::Hit);
    // The same entry, had it been tagged with the cache's key, would be
    // accepted: the check is the key, not the layout.
    let trusted_key_cache = ArtifactCache::new(dir.path().join("k"), attacker_key);
    let trusted_entry = trusted_key_cache.entry_path(&fingerprint, wasm);
    std::fs::create_dir_all(trusted_entry.parent().expect("parent")).expect("mkdir");
    std::fs::write(&trusted_entry, &forged).expect("write");
    assert_eq!(
        trusted_key_cache
            .compile(runtime.as_ref(), wasm)
            .expect("compiles")
            .1,
        CacheOutcome::Hit
    );
    // The module from the rebuilt entry still verifies.
    let (module, _) = cache.compile(runtime.as_ref(), wasm).expect("compiles");
    hotwasm_registry::selftest::run(module.as_ref(), Scheme::Schnorr).expect("self-test");
    // Runtimes without artifacts are compiled every time.
    let wasmi = RuntimeKind::Wasmi
        .create_with(crate::unhurried())
        .expect("wasmi");
    assert_eq!(
        cache.compile(wasmi.as_ref(), wasm).expect("compiles").1,
        CacheOutcome::Uncacheable
    );
}

/// The registry is its owner's alone: directories 0700, the cache key
/// 0600, and a key file someone else could have written is refused.
#[test]
fn the_registry_and_its_cache_key_are_owner_only() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("registry");
    let registry = ModuleRegistry::open(&root).expect("opens");
    let runtime = RuntimeKind::Wasmtime
        .create_with(crate::unhurried())
        .expect("wasmtime");
    registry
        .cache()
        .compile(runtime.as_ref(), schnorr("fast"))
        .expect("compiles");
    let mode = |path: &std::path::Path| std::fs::metadata(path).expect("exists").mode() & 0o777;
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("modules")), 0o700);
    assert_eq!(mode(&root.join("cache")), 0o700);
    assert_eq!(mode(&root.join("cache.key")), 0o600);
    drop(registry);

    std::fs::set_permissions(
        root.join("cache.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let Err(error) = ModuleRegistry::open(&root) else {
        panic!("an exposed key is refused");
    };
    assert!(error.to_string().contains("chmod 600"), "{error}");
}

/// The instance that passed the self-test is handed on warm, once (a
/// worker serves with it instead of making and warming another), on every
/// runtime whose instances can move between threads; wasm3's stay behind.
#[test]
fn the_self_tested_instance_is_handed_on_once_and_serves() {
    use hotwasm_jobs::{Generator, SchemeChoice};
    for (kind, variant) in [
        (RuntimeKind::Wasmtime, "fast"),
        (RuntimeKind::Wasmi, "fast"),
        (RuntimeKind::Wasm3, "compat"),
    ] {
        let runtime = kind.create_with(crate::unhurried()).expect("runtime");
        let validated = hotwasm_registry::validate(
            None,
            "schnorr",
            schnorr(variant).to_vec(),
            runtime.as_ref(),
            &Trust::default(),
        )
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let tested = validated.take_tested_instance();
        if kind == RuntimeKind::Wasm3 {
            assert!(tested.is_none(), "wasm3's instances stay on their thread");
            continue;
        }
        let mut instance = tested.unwrap_or_else(|| panic!("{kind}: no tested instance"));
        assert!(
            validated.take_tested_instance().is_none(),
            "{kind}: handed on twice"
        );
        for job in Generator::new(3, SchemeChoice::Schnorr, 0.3).take(4) {
            let verdict = hotwasm_runtime::verify(instance.as_mut(), &job.request())
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(Some(verdict.valid), job.expect, "{kind}: job {}", job.id);
        }
    }
}

/// Storing a version as active is storing it then activating it, in one
/// write of the state: the version it replaces is the one a rollback
/// returns to, and a reopened registry agrees.
#[test]
fn store_active_is_store_then_activate_in_one_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = RuntimeKind::Native.create().expect("native");
    let validated = |variant: &str| {
        hotwasm_registry::validate(
            None,
            "schnorr",
            schnorr(variant).to_vec(),
            runtime.as_ref(),
            &Trust::default(),
        )
        .expect("built-in modules validate")
    };
    let (v1, v2) = (validated("fast"), validated("default"));
    let mut registry = ModuleRegistry::open(dir.path()).expect("registry");
    assert_eq!(
        registry.store_active(&v1, Some("test")).expect("v1").state,
        VersionState::Active
    );
    let stored = registry.store_active(&v2, Some("test")).expect("v2");
    assert_eq!(stored.state, VersionState::Active);
    assert_eq!(stored.hash, v2.hash());
    let mut registry = ModuleRegistry::open(dir.path()).expect("reopen");
    assert_eq!(
        registry.active("schnorr").map(|v| v.hash),
        Some(v2.hash().to_string())
    );
    let back = registry.rollback("schnorr").expect("rollback");
    assert_eq!(back.hash, v1.hash());
    assert!(matches!(
        registry.rollback("schnorr"),
        Err(RegistryError::NoHistory(_))
    ));
}
