//! What every class of oracle case is made of, and the signing helpers
//! both schemes share. All signing is libsecp256k1's.

use rand::Rng;
use rand::rngs::StdRng;
use secp256k1::{Keypair, Message, PublicKey, SecretKey, ecdsa, schnorr};
use sha2::{Digest, Sha256};

use hotwasm_abi::Scheme;

use super::judge::Judgement;

/// The message lengths the issue asks BIP-340 to be exercised over.
pub const MESSAGE_LENGTHS: [usize; 7] = [0, 1, 17, 32, 64, 100, 1000];

/// What a class means to produce. The oracle still decides each job; the
/// intent only catches a class that builds something else than it says
/// (a DER "mutation" that happens to be strict DER, say), so no class can
/// pass without testing what its name promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Exactly this judgement.
    Exactly(Judgement),
    /// Any invalid judgement (a flipped key bit may leave the curve or not).
    Invalid,
}

impl Intent {
    /// Whether `judgement` is what the class meant.
    pub fn admits(self, judgement: Judgement) -> bool {
        match self {
            Intent::Exactly(expected) => judgement == expected,
            Intent::Invalid => judgement != Judgement::Valid,
        }
    }
}

/// One built case.
#[derive(Debug, Clone)]
pub struct Built {
    /// Public key bytes as sent.
    pub public_key: Vec<u8>,
    /// Signature bytes as sent.
    pub signature: Vec<u8>,
    /// Message bytes.
    pub message: Vec<u8>,
    /// What the class means it to be.
    pub intent: Intent,
}

/// A class of cases: a name and a builder, several instances each.
pub struct Class {
    /// Stable name, used in job ids and failure reports.
    pub name: String,
    /// The scheme of its jobs.
    pub scheme: Scheme,
    /// Builds one instance.
    pub build: Box<dyn Fn(&mut StdRng) -> Built>,
}

impl Class {
    /// A class from a name and a builder.
    pub fn new(
        name: impl Into<String>,
        scheme: Scheme,
        build: impl Fn(&mut StdRng) -> Built + 'static,
    ) -> Class {
        Class {
            name: name.into(),
            scheme,
            build: Box::new(build),
        }
    }
}

/// Shorthand for a case.
pub fn built(public_key: Vec<u8>, signature: Vec<u8>, message: Vec<u8>, intent: Intent) -> Built {
    Built {
        public_key,
        signature,
        message,
        intent,
    }
}

/// The valid judgement.
pub const VALID: Intent = Intent::Exactly(Judgement::Valid);
/// A key-encoding refusal.
pub const BAD_KEY: Intent = Intent::Exactly(Judgement::BadKey);
/// A good key with a signature that does not parse or verify.
pub const BAD_SIGNATURE: Intent = Intent::Exactly(Judgement::BadSignature);

/// A random secret key.
pub fn secret_key(rng: &mut StdRng) -> SecretKey {
    loop {
        if let Ok(key) = SecretKey::from_secret_bytes(rng.random()) {
            return key;
        }
    }
}

/// A secret key with the given value (must be in [1, n-1]).
pub fn secret_key_of(bytes: [u8; 32]) -> SecretKey {
    SecretKey::from_secret_bytes(bytes).expect("an edge secret key in range")
}

/// A random message of one of [`MESSAGE_LENGTHS`].
pub fn message(rng: &mut StdRng) -> Vec<u8> {
    let len = MESSAGE_LENGTHS[rng.random_range(0..MESSAGE_LENGTHS.len())];
    message_of(rng, len)
}

/// A random message of `len` bytes.
pub fn message_of(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut message = vec![0u8; len];
    rng.fill(&mut message[..]);
    message
}

/// A BIP-340 signature by `key` over `message`: (x-only key, signature).
pub fn schnorr_sign(key: &SecretKey, message: &[u8], aux: &[u8; 32]) -> (Vec<u8>, Vec<u8>) {
    let keypair = Keypair::from_secret_key(key);
    let signature = schnorr::sign_with_aux_rand(message, &keypair, aux);
    let (x_only, _) = keypair.x_only_public_key();
    (
        x_only.to_byte_array().to_vec(),
        signature.to_byte_array().to_vec(),
    )
}

/// SHA-256 of `message` as libsecp256k1's message.
pub fn digest(message: &[u8]) -> Message {
    Message::from_digest(Sha256::digest(message).into())
}

/// An ECDSA signature by `key` over SHA-256 of `message` with extra nonce
/// data: (r, s), low-S as libsecp256k1 makes them.
pub fn ecdsa_sign(key: &SecretKey, message: &[u8], nonce: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let signature = ecdsa::sign_with_noncedata(digest(message), key, nonce);
    let compact = signature.serialize_compact();
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&compact[..32]);
    s.copy_from_slice(&compact[32..]);
    (r, s)
}

/// The SEC1 encoding of `key`'s public key.
pub fn sec1(key: &SecretKey, compressed: bool) -> Vec<u8> {
    let public = PublicKey::from_secret_key(key);
    if compressed {
        public.serialize().to_vec()
    } else {
        public.serialize_uncompressed().to_vec()
    }
}

/// Flips one random bit of `bytes[range]`.
pub fn flip_bit(rng: &mut StdRng, bytes: &mut [u8], range: std::ops::Range<usize>) {
    let at = rng.random_range(range);
    bytes[at] ^= 1 << rng.random_range(0..8);
}

/// Lower-case hex text of `bytes`, as bytes: what a client sends when it
/// forgets to decode.
pub fn hex_text(bytes: &[u8]) -> Vec<u8> {
    hex::encode(bytes).into_bytes()
}
