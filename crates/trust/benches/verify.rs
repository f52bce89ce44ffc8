//! Time to verify a module signature: [`Trust::check`] of the built-in
//! Schnorr module signed with a trusted key (SHA-256 over the module, one
//! Ed25519 verification, the built-in lookup), beside the check of the
//! unsigned built-in bytes (trusted by hash) for comparison.
//!
//! Run with `cargo bench -p hotwasm-trust --bench verify`.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotwasm_trust::{Provenance, SecretKey, Trust};

fn verify(c: &mut Criterion) {
    let Some(built) = hotwasm_modules::built().first() else {
        return;
    };
    let key = SecretKey::generate();
    let Ok(signed) = key.sign(built.bytes) else {
        return;
    };
    // A realistic configuration: the signing key among three trusted keys.
    let trust = Trust::new(vec![
        SecretKey::generate().public_key(),
        key.public_key(),
        SecretKey::generate().public_key(),
    ]);
    assert!(matches!(
        trust.check(&signed),
        Ok(Provenance::Signed { .. })
    ));

    let mut group = c.benchmark_group("module signature");
    group.throughput(Throughput::Bytes(signed.len() as u64));
    group.bench_function(
        format!("signed {} ({} bytes)", built.id(), signed.len()),
        |b| b.iter(|| black_box(trust.check(black_box(&signed)))),
    );
    group.bench_function(
        format!("built-in by hash ({} bytes)", built.bytes.len()),
        |b| b.iter(|| black_box(trust.check(black_box(built.bytes)))),
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = verify
}
criterion_main!(benches);
