//! Deterministic signed jobs, valid and deliberately invalid.
//!
//! Every job carries `expect`, so a run over generated jobs checks itself.
//! The same seed gives the same jobs, byte for byte.

use hotwasm_abi::Scheme;
use k256::ecdsa::signature::Signer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::Job;

/// Which schemes to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeChoice {
    /// Only BIP-340 Schnorr jobs.
    Schnorr,
    /// Only ECDSA jobs.
    Ecdsa,
    /// Each job picks a scheme at random.
    Mixed,
}

impl From<Scheme> for SchemeChoice {
    fn from(scheme: Scheme) -> SchemeChoice {
        match scheme {
            Scheme::Schnorr => SchemeChoice::Schnorr,
            Scheme::Ecdsa => SchemeChoice::Ecdsa,
        }
    }
}

impl std::str::FromStr for SchemeChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "schnorr" => Ok(SchemeChoice::Schnorr),
            "ecdsa" => Ok(SchemeChoice::Ecdsa),
            "mixed" => Ok(SchemeChoice::Mixed),
            other => Err(format!(
                "unknown scheme {other:?} (expected schnorr, ecdsa or mixed)"
            )),
        }
    }
}

/// How an invalid job is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// A bit of the message flipped after signing.
    TamperedMessage,
    /// A bit of the signature flipped.
    TamperedSignature,
    /// Signed by one key, checked against another.
    WrongKey,
    /// A public key of the wrong length or not on the curve.
    MalformedKey,
    /// A signature of the wrong length or broken DER.
    MalformedSignature,
    /// ECDSA only: the high-S twin of a valid signature.
    HighS,
}

impl InvalidKind {
    /// Every kind, in a fixed order.
    pub const ALL: [InvalidKind; 6] = [
        InvalidKind::TamperedMessage,
        InvalidKind::TamperedSignature,
        InvalidKind::WrongKey,
        InvalidKind::MalformedKey,
        InvalidKind::MalformedSignature,
        InvalidKind::HighS,
    ];

    /// Short name used in job ids.
    pub fn name(self) -> &'static str {
        match self {
            InvalidKind::TamperedMessage => "tampered-message",
            InvalidKind::TamperedSignature => "tampered-signature",
            InvalidKind::WrongKey => "wrong-key",
            InvalidKind::MalformedKey => "malformed-key",
            InvalidKind::MalformedSignature => "malformed-signature",
            InvalidKind::HighS => "high-s",
        }
    }
}

/// Number of signing keys per scheme the generator rotates through.
const KEYS: usize = 16;

/// Makes jobs from a seed.
pub struct Generator {
    rng: StdRng,
    scheme: SchemeChoice,
    invalid_ratio: f64,
    schnorr_keys: Vec<k256::schnorr::SigningKey>,
    ecdsa_keys: Vec<k256::ecdsa::SigningKey>,
    next: u64,
}

impl Generator {
    /// A generator of `scheme` jobs, a fraction `invalid_ratio` (clamped to
    /// [0, 1]) of them deliberately invalid.
    pub fn new(seed: u64, scheme: SchemeChoice, invalid_ratio: f64) -> Generator {
        let mut rng = StdRng::seed_from_u64(seed);
        let schnorr_keys = (0..KEYS)
            .map(|_| {
                loop {
                    if let Ok(key) =
                        k256::schnorr::SigningKey::from_slice(&rng.random::<[u8; 32]>())
                    {
                        break key;
                    }
                }
            })
            .collect();
        let ecdsa_keys = (0..KEYS)
            .map(|_| {
                loop {
                    if let Ok(key) = k256::ecdsa::SigningKey::from_slice(&rng.random::<[u8; 32]>())
                    {
                        break key;
                    }
                }
            })
            .collect();
        Generator {
            rng,
            scheme,
            invalid_ratio: invalid_ratio.clamp(0.0, 1.0),
            schnorr_keys,
            ecdsa_keys,
            next: 0,
        }
    }

    /// The next job.
    pub fn job(&mut self) -> Job {
        let index = self.next;
        self.next += 1;
        let scheme = match self.scheme {
            SchemeChoice::Schnorr => Scheme::Schnorr,
            SchemeChoice::Ecdsa => Scheme::Ecdsa,
            SchemeChoice::Mixed if self.rng.random_bool(0.5) => Scheme::Schnorr,
            SchemeChoice::Mixed => Scheme::Ecdsa,
        };
        let invalid = if self.rng.random_bool(self.invalid_ratio) {
            let kinds: &[InvalidKind] = match scheme {
                Scheme::Ecdsa => &InvalidKind::ALL,
                Scheme::Schnorr => &InvalidKind::ALL[..5],
            };
            Some(kinds[self.rng.random_range(0..kinds.len())])
        } else {
            None
        };
        let mut message = vec![0u8; self.rng.random_range(0..=256)];
        self.rng.fill(&mut message[..]);
        let key_index = self.rng.random_range(0..KEYS);
        let (mut public_key, mut signature) = match scheme {
            Scheme::Schnorr => self.sign_schnorr(key_index, &message),
            Scheme::Ecdsa => {
                self.sign_ecdsa(key_index, &message, invalid == Some(InvalidKind::HighS))
            }
        };
        if let Some(kind) = invalid {
            match kind {
                InvalidKind::TamperedMessage => {
                    if message.is_empty() {
                        message.push(0);
                    } else {
                        let at = self.rng.random_range(0..message.len());
                        message[at] ^= 1 << self.rng.random_range(0..8);
                    }
                }
                InvalidKind::TamperedSignature => {
                    // Flip a bit inside r or s, not in DER framing, so the
                    // signature stays well-formed and fails on the maths.
                    let at = match scheme {
                        Scheme::Schnorr => self.rng.random_range(0..signature.len()),
                        Scheme::Ecdsa => signature.len() - 1 - self.rng.random_range(0..16),
                    };
                    signature[at] ^= 1 << self.rng.random_range(0..8);
                }
                InvalidKind::WrongKey => {
                    let other = (key_index + 1 + self.rng.random_range(0..KEYS - 1)) % KEYS;
                    public_key = match scheme {
                        Scheme::Schnorr => self.sign_schnorr(other, &message).0,
                        Scheme::Ecdsa => self.sign_ecdsa(other, &message, false).0,
                    };
                }
                InvalidKind::MalformedKey => {
                    if self.rng.random_bool(0.5) {
                        public_key.pop();
                    } else {
                        // x = 2^256 - 1 is not a field element (it exceeds p),
                        // so no point has it as x coordinate.
                        let x_start = if scheme == Scheme::Schnorr { 0 } else { 1 };
                        public_key[x_start..x_start + 32].fill(0xff);
                    }
                }
                InvalidKind::MalformedSignature => match scheme {
                    Scheme::Schnorr => {
                        signature.truncate(self.rng.random_range(0..signature.len()));
                    }
                    Scheme::Ecdsa => {
                        // Break the outer DER length.
                        signature[1] = signature[1].wrapping_add(1);
                    }
                },
                InvalidKind::HighS => {}
            }
        }
        let id = match invalid {
            None => format!("{index:07}-{scheme}-valid"),
            Some(kind) => format!("{index:07}-{scheme}-{}", kind.name()),
        };
        Job {
            id,
            scheme,
            public_key,
            signature,
            message,
            expect: Some(invalid.is_none()),
        }
    }

    fn sign_schnorr(&mut self, key: usize, message: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let key = &self.schnorr_keys[key];
        let aux: [u8; 32] = self.rng.random();
        let signature = key
            .sign_raw(message, &aux)
            .map(|s| s.to_bytes().to_vec())
            // BIP-340 signing fails only for a zero nonce, probability 2^-256.
            .unwrap_or_default();
        (key.verifying_key().to_bytes().to_vec(), signature)
    }

    fn sign_ecdsa(&mut self, key: usize, message: &[u8], high_s: bool) -> (Vec<u8>, Vec<u8>) {
        let key = &self.ecdsa_keys[key];
        let compressed = self.rng.random_bool(0.5);
        let public_key = key
            .verifying_key()
            .to_sec1_point(compressed)
            .as_bytes()
            .to_vec();
        let signature: k256::ecdsa::Signature = key.sign(message);
        let signature = if high_s {
            let (r, s) = signature.split_scalars();
            let high = -*s.as_ref();
            k256::ecdsa::Signature::from_scalars(r.to_bytes(), high.to_bytes()).unwrap_or(signature)
        } else {
            signature
        };
        (public_key, signature.to_der().as_bytes().to_vec())
    }
}

impl Iterator for Generator {
    type Item = Job;

    fn next(&mut self) -> Option<Job> {
        Some(self.job())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_jobs() {
        let a: Vec<Job> = Generator::new(7, SchemeChoice::Mixed, 0.3)
            .take(50)
            .collect();
        let b: Vec<Job> = Generator::new(7, SchemeChoice::Mixed, 0.3)
            .take(50)
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn ratio_and_schemes_are_respected() {
        let jobs: Vec<Job> = Generator::new(1, SchemeChoice::Ecdsa, 0.0)
            .take(40)
            .collect();
        assert!(
            jobs.iter()
                .all(|j| j.scheme == Scheme::Ecdsa && j.expect == Some(true))
        );
        let jobs: Vec<Job> = Generator::new(1, SchemeChoice::Schnorr, 1.0)
            .take(40)
            .collect();
        assert!(
            jobs.iter()
                .all(|j| j.scheme == Scheme::Schnorr && j.expect == Some(false))
        );
        assert!(jobs.iter().all(|j| !j.id.ends_with("high-s")));
    }

    #[test]
    fn every_invalid_kind_appears() {
        let jobs: Vec<Job> = Generator::new(3, SchemeChoice::Mixed, 1.0)
            .take(400)
            .collect();
        for kind in InvalidKind::ALL {
            assert!(
                jobs.iter().any(|j| j.id.ends_with(kind.name())),
                "{} never generated",
                kind.name()
            );
        }
    }
}
