//! BIP-340 Schnorr verification over the raw message bytes.

use k256::schnorr::{Signature, VerifyingKey};

use crate::Rejection;

/// Length of an x-only public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of a BIP-340 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Verifies a BIP-340 signature over `message` exactly as given.
///
/// k256's `Verifier::verify` would hash the message with SHA-256 first,
/// which is not BIP-340 and fails the official vectors; `verify_raw` is.
///
/// # Errors
///
/// A human-readable reason when the key or signature is malformed or the
/// signature does not verify.
pub fn verify(public_key: &[u8], signature: &[u8], message: &[u8]) -> Result<(), Rejection> {
    if public_key.len() != PUBLIC_KEY_LEN {
        return Err(format!(
            "public key is {} bytes, a BIP-340 key is {PUBLIC_KEY_LEN}",
            public_key.len()
        ));
    }
    if signature.len() != SIGNATURE_LEN {
        return Err(format!(
            "signature is {} bytes, a BIP-340 signature is {SIGNATURE_LEN}",
            signature.len()
        ));
    }
    let key = VerifyingKey::from_slice(public_key)
        .map_err(|_| "public key is not the x coordinate of a curve point".to_string())?;
    let signature = Signature::try_from(signature).map_err(|_| {
        "signature is malformed (r not a field element or s not below n)".to_string()
    })?;
    key.verify_raw(message, &signature)
        .map_err(|_| "signature does not verify".to_string())
}
