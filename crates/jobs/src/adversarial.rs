//! Adversarial jobs: the hard cases, each with the verdict it must get.
//!
//! `hotwasm generate --adversarial` (or `--kinds a,b,c`) writes these so
//! anyone can point `verify --check` or a server at them: BIP-340 over
//! messages of 0 to 1000 bytes with random and zero aux, edge secret keys,
//! tampering, r and s at and beyond p and n, the low-S boundary, every
//! non-strict DER form, every key prefix SEC1 does not allow (`05` and the
//! hybrid `06`/`07` included), raw and hex-text keys. Signatures come from
//! k256; the broken encodings are built by hand, so each `expect` is right
//! by construction (the test suite checks every kind against libsecp256k1).
//!
//! Jobs cycle through the chosen kinds in order, so any count of at least
//! the number of kinds covers each one.

mod der;
mod kinds;
mod sign;

use hotwasm_abi::Scheme;

pub use kinds::{KINDS, Kind};

use crate::{Job, SchemeChoice};

/// A `--kinds` list that names a kind that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown adversarial kind {name:?}; the kinds are: {}", known.join(", "))]
pub struct UnknownKind {
    /// The name given.
    pub name: String,
    /// Every kind's name.
    pub known: Vec<&'static str>,
}

/// The kinds of `scheme` (every kind for [`SchemeChoice::Mixed`]).
pub fn kinds_of(scheme: SchemeChoice) -> Vec<&'static Kind> {
    KINDS
        .iter()
        .filter(|kind| match scheme {
            SchemeChoice::Mixed => true,
            SchemeChoice::Schnorr => kind.scheme == Scheme::Schnorr,
            SchemeChoice::Ecdsa => kind.scheme == Scheme::Ecdsa,
        })
        .collect()
}

/// The kinds named in a comma-separated list.
///
/// # Errors
///
/// [`UnknownKind`] for the first name that is no kind.
pub fn parse_kinds(list: &str) -> Result<Vec<&'static Kind>, UnknownKind> {
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            KINDS
                .iter()
                .find(|kind| kind.name == name)
                .ok_or_else(|| UnknownKind {
                    name: name.to_string(),
                    known: KINDS.iter().map(|kind| kind.name).collect(),
                })
        })
        .collect()
}

/// Makes adversarial jobs from a seed: the same seed and kinds give the
/// same jobs, byte for byte.
pub struct Adversarial {
    signer: sign::Signer,
    kinds: Vec<&'static Kind>,
    next: u64,
}

impl Adversarial {
    /// A generator cycling through `kinds` (all kinds when empty).
    pub fn new(seed: u64, kinds: Vec<&'static Kind>) -> Adversarial {
        let kinds = if kinds.is_empty() {
            KINDS.iter().collect()
        } else {
            kinds
        };
        Adversarial {
            signer: sign::Signer::new(seed),
            kinds,
            next: 0,
        }
    }

    /// The next job; its id names its kind, its `expect` the verdict.
    pub fn job(&mut self) -> Job {
        let index = self.next;
        self.next += 1;
        let kind = self.kinds[(index % self.kinds.len() as u64) as usize];
        let (public_key, signature, message) = (kind.build)(&mut self.signer);
        Job {
            id: format!("{index:07}-{}", kind.name),
            scheme: kind.scheme,
            public_key,
            signature,
            message,
            expect: Some(kind.expect),
        }
    }
}

impl Iterator for Adversarial {
    type Item = Job;

    fn next(&mut self) -> Option<Job> {
        Some(self.job())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_appears_once_per_cycle_and_names_are_unique() {
        let jobs: Vec<Job> = Adversarial::new(1, Vec::new()).take(KINDS.len()).collect();
        for (job, kind) in jobs.iter().zip(KINDS) {
            assert!(job.id.ends_with(kind.name), "{}", job.id);
            assert_eq!(job.expect, Some(kind.expect));
        }
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len());
        assert!(names.contains(&"ecdsa-key-prefix-05-even-y"));
    }

    #[test]
    fn same_seed_same_jobs() {
        let a: Vec<Job> = Adversarial::new(9, Vec::new()).take(100).collect();
        let b: Vec<Job> = Adversarial::new(9, Vec::new()).take(100).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn kinds_parse_and_unknown_ones_are_named() {
        let kinds = parse_kinds("schnorr-valid, ecdsa-high-s").expect("known kinds");
        assert_eq!(kinds.len(), 2);
        let error = parse_kinds("schnorr-valid,nope").expect_err("unknown");
        assert_eq!(error.name, "nope");
        assert!(error.to_string().contains("ecdsa-high-s"));
        assert!(
            kinds_of(SchemeChoice::Schnorr)
                .iter()
                .all(|k| k.scheme == Scheme::Schnorr)
        );
    }
}
