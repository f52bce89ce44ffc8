//! The official vectors on every runtime and every variant that loads.

use hotwasm_runtime::RuntimeKind;
use hotwasm_tests::{Vector, WYCHEPROOF_BITCOIN, WYCHEPROOF_PLAIN, bip340, wycheproof};
use hotwasm_worker::Worker;

use crate::loadable_combinations;

/// Vectors whose verdict differs from the vector's result.
fn mismatches<'a>(worker: &mut Worker, vectors: &'a [Vector]) -> Vec<(&'a Vector, Option<String>)> {
    vectors
        .iter()
        .filter_map(|v| {
            let verdict = worker.verify(&v.job);
            (Some(verdict.valid) != v.job.expect).then_some((v, verdict.reason))
        })
        .collect()
}

#[test]
fn every_runtime_and_variant_matches_the_official_vectors() {
    let bip340 = bip340();
    assert_eq!(bip340.len(), 19);
    let bitcoin = wycheproof(WYCHEPROOF_BITCOIN);
    assert_eq!(bitcoin.len(), 463);
    let plain = wycheproof(WYCHEPROOF_PLAIN);
    let plain_high_s_valid = plain.len();

    let (loaded, refused) = loadable_combinations();
    for (kind, variant, _) in &loaded {
        eprintln!("testing {kind}/{variant}");
    }
    for reason in &refused {
        eprintln!(
            "does not load (expected: wasm3 runs MVP only, Winch lacks wide-arithmetic): {reason}"
        );
    }
    // The variants made for each runtime must load on it.
    for required in [
        (RuntimeKind::Native, "compat"),
        (RuntimeKind::Wasmtime, "compat"),
        (RuntimeKind::Wasmtime, "default"),
        (RuntimeKind::Wasmtime, "fast"),
        (RuntimeKind::WasmtimeWinch, "compat"),
        (RuntimeKind::WasmtimeWinch, "default"),
        (RuntimeKind::WasmtimePulley, "compat"),
        (RuntimeKind::WasmtimePulley, "default"),
        (RuntimeKind::WasmtimePulley, "fast"),
        (RuntimeKind::Wasmi, "compat"),
        (RuntimeKind::Wasmi, "default"),
        (RuntimeKind::Wasmi, "fast"),
        (RuntimeKind::Wasm3, "compat"),
    ] {
        assert!(
            loaded.iter().any(|(k, v, _)| (*k, *v) == required),
            "{}/{} must load; refused: {refused:?}",
            required.0,
            required.1
        );
    }

    for (kind, variant, set) in &loaded {
        let mut worker = Worker::new(set);
        let wrong = mismatches(&mut worker, &bip340);
        assert!(wrong.is_empty(), "{kind}/{variant} BIP-340: {wrong:#?}");
        let wrong = mismatches(&mut worker, &bitcoin);
        assert!(
            wrong.is_empty(),
            "{kind}/{variant} Wycheproof bitcoin: {wrong:#?}"
        );
        // Without the low-S rule the plain file calls high-S signatures
        // valid; a low-S verifier must differ on exactly those.
        let wrong = mismatches(&mut worker, &plain);
        assert_eq!(
            wrong.len(),
            72,
            "{kind}/{variant} plain Wycheproof: {wrong:#?}"
        );
        for (vector, reason) in &wrong {
            assert_eq!(vector.job.expect, Some(true), "{}", vector.comment);
            let reason = reason.as_deref().unwrap_or_default();
            assert!(reason.contains("high S"), "{}: {reason}", vector.job.id);
        }
    }
    assert!(plain_high_s_valid > 463);
}
