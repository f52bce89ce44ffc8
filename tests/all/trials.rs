//! A candidate on trial beside the serving version, in a worker: canary
//! jobs served by it (and by the serving version when its call fails),
//! shadow verdicts compared after delivery, selection by job id.

use std::sync::Arc;

use hotwasm_abi::Scheme;
use hotwasm_jobs::{Generator, Job};
use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{ModuleSet, Trial, TrialMode, Worker};

/// A job whose request is over 4096 bytes (a 5,000-byte message) and whose
/// signature is wrong.
fn long_job() -> Job {
    Job::new(
        "long".into(),
        "schnorr",
        vec![0x11; 32],
        vec![0x22; 64],
        vec![0x33; 5000],
        Some(false),
        &hotwasm_jobs::JobLimits::default(),
    )
    .expect("a well-formed job")
}

fn set_and_honest(kind: RuntimeKind) -> (Arc<ModuleSet>, &'static [u8]) {
    let variant = kind.preferred_variant();
    let set = ModuleSet::built_with(kind, variant, crate::unhurried())
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
    let honest = hotwasm_modules::find("schnorr", variant)
        .expect("built")
        .bytes;
    (set, honest)
}

fn wasm_runtimes() -> Vec<RuntimeKind> {
    RuntimeKind::built()
        .into_iter()
        .filter(|kind| *kind != RuntimeKind::Native)
        .collect()
}

#[test]
fn a_canary_serves_its_jobs_and_a_failed_call_is_answered_by_the_serving_version() {
    for kind in wasm_runtimes() {
        let (set, honest) = set_and_honest(kind);
        let serving = set.get(Scheme::Schnorr).expect("serving").id.clone();
        let candidate = set
            .compile("schnorr", &hotwasm_tests::hostile::trapping_of(honest))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let candidate_id = candidate.id.clone();
        let trial = Arc::new(Trial::new(
            "t",
            TrialMode::Canary { fraction: 1.0 },
            candidate,
            false,
        ));
        set.set_trial(Scheme::Schnorr, Some(Arc::clone(&trial)));
        let mut worker = Worker::new(&set);
        let mut generator = Generator::new(3, Scheme::Schnorr.into(), 0.5);
        for _ in 0..10 {
            let job = generator.job();
            let verdict = worker.verify(&job);
            assert_eq!(Some(verdict.valid), job.expect, "{kind}: {verdict:?}");
            assert_eq!(verdict.module.as_deref(), Some(candidate_id.as_str()));
        }
        let verdict = worker.verify(&long_job());
        assert!(!verdict.valid, "{kind}: {verdict:?}");
        assert_eq!(verdict.module.as_deref(), Some(serving.as_str()), "{kind}");
        let counts = trial.snapshot();
        assert_eq!(
            (counts.served, counts.errors, counts.fell_back),
            (10, 1, 1),
            "{kind}"
        );
        // The trial ends: the serving version answers everything again.
        set.set_trial(Scheme::Schnorr, None);
        let verdict = worker.verify(&generator.job());
        assert_eq!(verdict.module.as_deref(), Some(serving.as_str()), "{kind}");
    }
}

#[test]
fn a_shadow_compares_after_delivery_and_keeps_what_it_disagreed_on() {
    for kind in wasm_runtimes() {
        let (set, honest) = set_and_honest(kind);
        let serving = set.get(Scheme::Schnorr).expect("serving").id.clone();
        let liar = set
            .compile("schnorr", &hotwasm_tests::hostile::liar_of(honest))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let trial = Arc::new(Trial::new(
            "t",
            TrialMode::Shadow { sample: 1.0 },
            liar,
            false,
        ));
        set.set_trial(Scheme::Schnorr, Some(Arc::clone(&trial)));
        let mut worker = Worker::new(&set);
        let mut generator = Generator::new(4, Scheme::Schnorr.into(), 0.5);
        for _ in 0..10 {
            let job = generator.job();
            let verdict = worker.verify(&job);
            assert_eq!(verdict.module.as_deref(), Some(serving.as_str()), "{kind}");
            worker.shadow(&job, &verdict);
        }
        let long = long_job();
        let delivered = worker.verify(&long);
        assert!(
            !delivered.valid,
            "{kind}: the delivered verdict is the serving one's"
        );
        worker.shadow(&long, &delivered);
        let counts = trial.snapshot();
        assert_eq!(
            (counts.agreed, counts.disagreed, counts.errors),
            (10, 1, 0),
            "{kind}"
        );
        let kept = trial.take_disagreements();
        assert_eq!(kept.len(), 1, "{kind}");
        assert_eq!(kept[0].job.id, "long");
        assert!(
            !kept[0].serving.valid && kept[0].candidate.valid,
            "{kind}: {kept:?}"
        );
        assert!(trial.take_disagreements().is_empty());
    }
}

#[test]
fn jobs_are_selected_by_id_near_the_fraction_and_the_same_way_every_time() {
    let set = ModuleSet::built(RuntimeKind::Native, "fast").expect("native");
    let module = set.get(Scheme::Schnorr).expect("serving");
    let trial = |id: &str| {
        Trial::new(
            id,
            TrialMode::Canary { fraction: 0.25 },
            Arc::clone(&module),
            false,
        )
    };
    let (one, other) = (trial("schnorr-1"), trial("schnorr-2"));
    let ids: Vec<String> = (0..10_000).map(|i| format!("job-{i}")).collect();
    let chosen: Vec<bool> = ids.iter().map(|id| one.selects(id)).collect();
    let share = chosen.iter().filter(|c| **c).count();
    assert!((2_200..=2_800).contains(&share), "{share} of 10,000");
    assert!(ids.iter().zip(&chosen).all(|(id, c)| one.selects(id) == *c));
    let differ = ids
        .iter()
        .filter(|id| one.selects(id) != other.selects(id))
        .count();
    assert!(differ > 1_000, "another rollout picks other jobs: {differ}");
}
