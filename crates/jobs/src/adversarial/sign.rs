//! k256 signing for the adversarial kinds: valid signatures to break, and a
//! valid ECDSA signature with a chosen `s` (the low-S boundary).

use k256::ecdsa::signature::Signer as _;
use k256::elliptic_curve::ff::PrimeField as _;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::point::AffineCoordinates as _;
use k256::{FieldBytes, ProjectivePoint, Scalar};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// The message lengths valid kinds cycle through.
pub(crate) const MESSAGE_LENGTHS: [usize; 7] = [0, 1, 17, 32, 64, 100, 1000];

/// A valid BIP-340 job: x-only key, signature, message.
pub(crate) struct Schnorr {
    pub(crate) public_key: Vec<u8>,
    pub(crate) signature: Vec<u8>,
    pub(crate) message: Vec<u8>,
}

/// A valid ECDSA job, with r and s apart for re-encoding.
pub(crate) struct Ecdsa {
    pub(crate) key: k256::ecdsa::SigningKey,
    pub(crate) public_key: Vec<u8>,
    pub(crate) r: [u8; 32],
    pub(crate) s: [u8; 32],
    pub(crate) message: Vec<u8>,
}

impl Ecdsa {
    /// The SEC1 key, compressed or not.
    pub(crate) fn sec1(&self, compressed: bool) -> Vec<u8> {
        self.key
            .verifying_key()
            .to_sec1_point(compressed)
            .as_bytes()
            .to_vec()
    }

    /// Strict DER of (r, s).
    pub(crate) fn der(&self) -> Vec<u8> {
        super::der::strict(&self.r, &self.s)
    }
}

/// The randomness and keys behind every kind.
pub(crate) struct Signer {
    pub(crate) rng: StdRng,
}

impl Signer {
    pub(crate) fn new(seed: u64) -> Signer {
        Signer {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A random message of one of [`MESSAGE_LENGTHS`].
    pub(crate) fn message(&mut self) -> Vec<u8> {
        let len = MESSAGE_LENGTHS[self.rng.random_range(0..MESSAGE_LENGTHS.len())];
        let mut message = vec![0u8; len];
        self.rng.fill(&mut message[..]);
        message
    }

    /// 32 random bytes.
    pub(crate) fn bytes32(&mut self) -> [u8; 32] {
        self.rng.random()
    }

    /// A valid BIP-340 signature by `secret` (random when `None`), with
    /// random or all-zero aux.
    pub(crate) fn schnorr(&mut self, secret: Option<[u8; 32]>, zero_aux: bool) -> Schnorr {
        let key = loop {
            let bytes = secret.unwrap_or_else(|| self.bytes32());
            if let Ok(key) = k256::schnorr::SigningKey::from_slice(&bytes) {
                break key;
            }
        };
        let message = self.message();
        let aux = if zero_aux { [0; 32] } else { self.bytes32() };
        let signature = key
            .sign_raw(&message, &aux)
            .map(|s| s.to_bytes().to_vec())
            // Fails only for a zero nonce, probability 2^-256.
            .unwrap_or_default();
        Schnorr {
            public_key: key.verifying_key().to_bytes().to_vec(),
            signature,
            message,
        }
    }

    /// A valid ECDSA signature by `secret` (random when `None`).
    pub(crate) fn ecdsa(&mut self, secret: Option<[u8; 32]>, compressed: bool) -> Ecdsa {
        let key = loop {
            let bytes = secret.unwrap_or_else(|| self.bytes32());
            if let Ok(key) = k256::ecdsa::SigningKey::from_slice(&bytes) {
                break key;
            }
        };
        let message = self.message();
        let signature: k256::ecdsa::Signature = key.sign(&message);
        let (r, s) = signature.split_bytes();
        let mut job = Ecdsa {
            public_key: Vec::new(),
            key,
            r: r.into(),
            s: s.into(),
            message,
        };
        job.public_key = job.sec1(compressed);
        job
    }

    /// A valid ECDSA signature with random compression.
    pub(crate) fn ecdsa_any(&mut self) -> Ecdsa {
        let compressed = self.rng.random_bool(0.5);
        self.ecdsa(None, compressed)
    }

    /// A valid ECDSA signature whose s is exactly `s` (below n): pick the
    /// nonce k, then the key d = (s k - z) / r, so (r, s) verifies.
    pub(crate) fn ecdsa_with_s(&mut self, s: [u8; 32]) -> Ecdsa {
        let compressed = self.rng.random_bool(0.5);
        loop {
            let s_scalar = Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(s)));
            let Some(nonce) =
                Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(self.bytes32())))
            else {
                continue;
            };
            let point = (ProjectivePoint::GENERATOR * nonce).to_affine();
            let r = <Scalar as Reduce<FieldBytes>>::reduce(&point.x());
            let message = self.message();
            let digest: [u8; 32] = Sha256::digest(&message).into();
            let z = <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(digest));
            let (Some(s_scalar), Some(r_inverse)) = (s_scalar, Option::<Scalar>::from(r.invert()))
            else {
                continue;
            };
            let d: Scalar = (s_scalar * nonce - z) * r_inverse;
            let Ok(key) = k256::ecdsa::SigningKey::from_slice(&d.to_bytes()) else {
                continue;
            };
            let mut job = Ecdsa {
                public_key: Vec::new(),
                key,
                r: r.to_bytes().into(),
                s,
                message,
            };
            job.public_key = job.sec1(compressed);
            return job;
        }
    }
}

/// n - s for a nonzero s below n: the high-S twin of a low s.
pub(crate) fn negate(s: [u8; 32]) -> [u8; 32] {
    Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(s)))
        .map(|s| (-s).to_bytes().into())
        .unwrap_or(s)
}
