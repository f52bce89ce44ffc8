//! secp256k1 ECDSA verification: SHA-256, SEC1 key, strict DER, low-S.

use k256::ecdsa::signature::Verifier;
use k256::ecdsa::{Signature, VerifyingKey};

use crate::Rejection;

/// Verifies a DER-encoded ECDSA signature over SHA-256 of `message`.
///
/// Only low-S signatures are accepted (Bitcoin's policy, BIP-62): a high-S
/// signature is the malleated twin of a valid one.
///
/// # Errors
///
/// A human-readable reason when the key or signature is malformed, `s` is
/// high, or the signature does not verify.
pub fn verify(public_key: &[u8], signature: &[u8], message: &[u8]) -> Result<(), Rejection> {
    if !matches!(public_key.len(), 33 | 65) {
        return Err(format!(
            "public key is {} bytes, a SEC1 key is 33 (compressed) or 65 (uncompressed)",
            public_key.len()
        ));
    }
    let key = VerifyingKey::from_sec1_bytes(public_key)
        .map_err(|_| "public key is not a valid SEC1 curve point".to_string())?;
    let signature = Signature::from_der(signature)
        .map_err(|_| "signature is not strict DER with r, s in [1, n-1]".to_string())?;
    if signature.normalize_s() != signature {
        return Err("signature has a high S value (only low-S is accepted)".to_string());
    }
    key.verify(message, &signature)
        .map_err(|_| "signature does not verify".to_string())
}
