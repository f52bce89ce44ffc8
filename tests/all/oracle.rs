//! An independent oracle: jobs signed and judged by libsecp256k1 (Bitcoin
//! Core's library, through the `secp256k1` crate and its bundled C code),
//! never by k256, run on every runtime and module variant that loads.
//!
//! Each class builds several instances of one kind of input, valid or
//! deliberately broken (BIP-340 over every message length, edge secret
//! keys, tampering, out-of-range fields, every non-strict DER form, every
//! key prefix SEC1 does not allow, `05` included). libsecp256k1 decides the
//! expected verdict of every job, and whether a refusal is about the key;
//! where hotwasm's policy differs (hybrid `06`/`07` keys) the difference is
//! written in `oracle/judge.rs`.
//!
//! The normal suite runs a few thousand jobs; a larger run is one variable
//! away: `HOTWASM_ORACLE_JOBS=100000 HOTWASM_ORACLE_SEED=7 cargo test -p
//! hotwasm-tests --test all oracle`.

mod cases;
mod der;
mod ecdsa;
mod encoding;
mod judge;
mod schnorr;

use std::collections::BTreeMap;

use hotwasm_jobs::{Adversarial, Job};
use hotwasm_worker::Worker;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::loadable_combinations;
use cases::Class;
use judge::{Judgement, judge};

/// Jobs in the normal suite, spread evenly over the classes.
const DEFAULT_JOBS: usize = 2500;
/// Seed of the normal suite.
const DEFAULT_SEED: u64 = 0x5ec9_256b;

/// A job with libsecp256k1's judgement of it.
struct Judged {
    class: usize,
    job: Job,
    judgement: Judgement,
}

/// Every class, BIP-340 first.
fn all_classes() -> Vec<Class> {
    let mut classes = schnorr::classes();
    classes.extend(ecdsa::classes());
    classes.extend(der::classes());
    classes
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|e| panic!("{name}={text:?} is not a number: {e}")),
        Err(_) => default,
    }
}

/// `jobs` jobs (at least three per class) from `seed`, each judged by
/// libsecp256k1; panics when a class builds something other than it says.
fn corpus(classes: &[Class], jobs: usize, seed: u64) -> Vec<Judged> {
    let mut rng = StdRng::seed_from_u64(seed);
    let per_class = (jobs / classes.len()).max(3);
    let mut corpus = Vec::with_capacity(per_class * classes.len());
    for instance in 0..per_class {
        for (index, class) in classes.iter().enumerate() {
            let built = (class.build)(&mut rng);
            let judgement = judge(
                class.scheme,
                &built.public_key,
                &built.signature,
                &built.message,
            );
            assert!(
                built.intent.admits(judgement),
                "class {} built a case libsecp256k1 judges {judgement:?}, not {:?}: key {} signature {}",
                class.name,
                built.intent,
                hex::encode(&built.public_key),
                hex::encode(&built.signature),
            );
            corpus.push(Judged {
                class: index,
                job: Job {
                    id: format!("{}-{instance}", class.name),
                    scheme: class.scheme,
                    public_key: built.public_key,
                    signature: built.signature,
                    message: built.message,
                    expect: Some(judgement.valid()),
                },
                judgement,
            });
        }
    }
    corpus
}

/// Why a verdict disagrees with the judgement, if it does: a different
/// verdict, or a refusal that blames the wrong part (a key libsecp256k1
/// cannot parse must be refused for the key; a key it parses must not be).
fn disagreement(judged: &Judged, valid: bool, reason: Option<&str>) -> Option<String> {
    if valid != judged.judgement.valid() {
        return Some(format!(
            "verdict valid={valid} ({reason:?}), libsecp256k1 says {:?}",
            judged.judgement
        ));
    }
    let blames_key = reason.is_some_and(|r| r.starts_with("public key"));
    match judged.judgement {
        Judgement::BadKey if !blames_key => Some(format!(
            "libsecp256k1 refuses the key, the reason does not: {reason:?}"
        )),
        Judgement::BadSignature if blames_key => Some(format!(
            "libsecp256k1 accepts the key, the reason blames it: {reason:?}"
        )),
        _ => None,
    }
}

#[test]
fn libsecp256k1_and_every_runtime_agree_on_every_class() {
    let jobs = usize::try_from(env_number("HOTWASM_ORACLE_JOBS", DEFAULT_JOBS as u64))
        .unwrap_or(usize::MAX);
    let seed = env_number("HOTWASM_ORACLE_SEED", DEFAULT_SEED);
    let classes = all_classes();
    let corpus = corpus(&classes, jobs, seed);
    assert!(
        classes.iter().any(|c| c.name.contains("prefix-05")),
        "the 0x05 key cases must be in the oracle"
    );
    let valid = corpus.iter().filter(|j| j.judgement.valid()).count();
    eprintln!(
        "oracle: {} jobs in {} classes (seed {seed}), {valid} valid per libsecp256k1",
        corpus.len(),
        classes.len()
    );

    let (loaded, refused) = loadable_combinations();
    for reason in &refused {
        eprintln!(
            "does not load (expected: wasm3 runs MVP only, Winch lacks wide-arithmetic): {reason}"
        );
    }
    assert!(loaded.len() >= 8, "too few runtimes load: {refused:?}");
    // (runtime/variant, class) -> (count, first example)
    let mut wrong: BTreeMap<(String, &str), (usize, String)> = BTreeMap::new();
    for (kind, variant, set) in &loaded {
        let mut worker = Worker::new(set);
        for judged in &corpus {
            let verdict = worker.verify(&judged.job);
            if let Some(why) = disagreement(judged, verdict.valid, verdict.reason.as_deref()) {
                let entry = wrong
                    .entry((format!("{kind}/{variant}"), &classes[judged.class].name))
                    .or_insert_with(|| (0, format!("{}: {why}", judged.job.id)));
                entry.0 += 1;
            }
        }
        eprintln!("oracle: {kind}/{variant} done");
    }
    let total: usize = wrong.values().map(|(count, _)| count).sum();
    let report: Vec<String> = wrong
        .iter()
        .map(|((runtime, class), (count, example))| {
            format!("{runtime} {class}: {count} (e.g. {example})")
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{total} disagreements with libsecp256k1 over {} runtimes/variants:\n{}",
        loaded.len(),
        report.join("\n")
    );
}

#[test]
fn adversarial_generator_expectations_agree_with_libsecp256k1() {
    // `hotwasm generate --adversarial` signs with k256 and writes its own
    // `expect`; libsecp256k1 must agree with every one of them.
    let kinds = hotwasm_jobs::adversarial::KINDS;
    let seed = env_number("HOTWASM_ORACLE_SEED", DEFAULT_SEED);
    let mut wrong = Vec::new();
    for job in Adversarial::new(seed, Vec::new()).take(kinds.len() * 12) {
        let judgement = judge(job.scheme, &job.public_key, &job.signature, &job.message);
        if Some(judgement.valid()) != job.expect {
            wrong.push(format!(
                "{}: expect {:?}, libsecp256k1 {judgement:?}",
                job.id, job.expect
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
