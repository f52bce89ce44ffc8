//! The oracle's verdict: libsecp256k1 (through the `secp256k1` crate, with
//! its bundled C library) decides every job; k256 is never consulted.
//!
//! Where hotwasm's documented policy differs from libsecp256k1, the
//! difference is written here and nowhere else:
//!
//! - **Hybrid keys** (65 bytes, prefix `06` or `07`, the prefix carrying the
//!   parity of y): libsecp256k1's `ec_pubkey_parse` accepts them (OpenSSL's
//!   old "hybrid" form). SEC1 knows only `02`/`03`/`04`, and Bitcoin's
//!   strict-encoding policy (`IsCompressedOrUncompressedPubKey`) refuses
//!   them; hotwasm refuses them too, as a key-encoding error.
//! - **High S**: no difference. libsecp256k1's `ecdsa_verify` accepts only
//!   normalized (low-S) signatures, which is hotwasm's policy as well.
//! - **DER**: libsecp256k1's `ecdsa_signature_parse_der` is strict DER
//!   (no BER lengths, no padding, no trailing bytes); an `r` or `s` of `n`
//!   or more parses but never verifies. hotwasm refuses those at parsing;
//!   both say "invalid", only the reason differs.

use secp256k1::{Message, PublicKey, XOnlyPublicKey, ecdsa, schnorr};
use sha2::{Digest, Sha256};

use hotwasm_abi::Scheme;

/// What libsecp256k1 (plus the policy above) says about a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// The signature verifies.
    Valid,
    /// The public key does not parse (or is refused by policy): the
    /// verdict's reason must be about the key.
    BadKey,
    /// The key parses; the signature does not parse or does not verify.
    BadSignature,
}

impl Judgement {
    /// The verdict this judgement asks for.
    pub fn valid(self) -> bool {
        self == Judgement::Valid
    }
}

/// Judges one job with libsecp256k1.
pub fn judge(scheme: Scheme, public_key: &[u8], signature: &[u8], message: &[u8]) -> Judgement {
    match scheme {
        Scheme::Schnorr => judge_schnorr(public_key, signature, message),
        Scheme::Ecdsa => judge_ecdsa(public_key, signature, message),
    }
}

fn judge_schnorr(public_key: &[u8], signature: &[u8], message: &[u8]) -> Judgement {
    let Some(key) = <[u8; 32]>::try_from(public_key)
        .ok()
        .and_then(|bytes| XOnlyPublicKey::from_byte_array(bytes).ok())
    else {
        return Judgement::BadKey;
    };
    let Ok(signature) = <[u8; 64]>::try_from(signature) else {
        return Judgement::BadSignature;
    };
    // libsecp256k1 checks r < p and s < n inside verify.
    match schnorr::verify(
        &schnorr::Signature::from_byte_array(signature),
        message,
        &key,
    ) {
        Ok(()) => Judgement::Valid,
        Err(_) => Judgement::BadSignature,
    }
}

fn judge_ecdsa(public_key: &[u8], signature: &[u8], message: &[u8]) -> Judgement {
    let Ok(key) = PublicKey::from_slice(public_key) else {
        return Judgement::BadKey;
    };
    // Policy: hybrid keys are refused (see the module comment).
    if matches!(public_key.first(), Some(0x06 | 0x07)) {
        return Judgement::BadKey;
    }
    let Ok(signature) = ecdsa::Signature::from_der(signature) else {
        return Judgement::BadSignature;
    };
    let digest: [u8; 32] = Sha256::digest(message).into();
    match ecdsa::verify(&signature, Message::from_digest(digest), &key) {
        Ok(()) => Judgement::Valid,
        Err(_) => Judgement::BadSignature,
    }
}

/// Whether libsecp256k1 accepts `public_key` as it stands, hybrid forms
/// included: tells the hybrid cases apart from merely broken keys.
pub fn libsecp256k1_parses_key(public_key: &[u8]) -> bool {
    PublicKey::from_slice(public_key).is_ok()
}
