//! BIP-340 Schnorr verification over the raw message bytes.

use k256::schnorr::{Signature, VerifyingKey};

use crate::{Rejection, hex_text_hint};

/// Length of an x-only public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of a BIP-340 signature.
pub const SIGNATURE_LEN: usize = 64;

/// The field prime p, big-endian.
const P: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xfc, 0x2f,
];
/// The group order n, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// Whether the big-endian number `value` is below `bound`.
fn below(value: &[u8], bound: &[u8; 32]) -> bool {
    value < &bound[..]
}

/// Verifies a BIP-340 signature over `message` exactly as given, with k256.
///
/// k256's `Verifier::verify` would hash the message with SHA-256 first,
/// which is not BIP-340 and fails the official vectors; `verify_raw` is.
///
/// # Errors
///
/// A human-readable reason when the key or signature is malformed or the
/// signature does not verify (see [`verify_with`]).
pub fn verify(public_key: &[u8], signature: &[u8], message: &[u8]) -> Result<(), Rejection> {
    verify_with(
        public_key,
        signature,
        message,
        |x| VerifyingKey::from_slice(x).ok(),
        |key, signature, message| {
            Signature::try_from(&signature[..])
                .is_ok_and(|signature| key.verify_raw(message, &signature).is_ok())
        },
    )
}

/// Verifies a BIP-340 signature with libsecp256k1 (`secp256k1_schnorrsig_verify`),
/// under the same checks and reasons as [`verify`].
///
/// # Errors
///
/// As [`verify`].
#[cfg(feature = "libsecp256k1")]
pub fn verify_libsecp256k1(
    public_key: &[u8],
    signature: &[u8],
    message: &[u8],
) -> Result<(), Rejection> {
    verify_with(
        public_key,
        signature,
        message,
        |x| secp256k1::XOnlyPublicKey::from_byte_array(*x).ok(),
        |key, signature, message| {
            secp256k1::schnorr::Signature::from_byte_array(*signature)
                .verify(message, key)
                .is_ok()
        },
    )
}

/// The BIP-340 checks and their reasons, around a library's arithmetic:
/// `decode_key` lifts an x coordinate below p to a curve point (`None`
/// when there is none), `verifies` checks a signature whose r is below p
/// and s below n.
///
/// The range checks BIP-340 asks for (key x < p, r < p, s < n) are made
/// here first, so each failure says which field is out of range, and both
/// libraries refuse the same input with the same reason.
///
/// # Errors
///
/// A human-readable reason when the key or signature is malformed or the
/// signature does not verify. A refused key's reason starts with
/// "public key".
pub fn verify_with<K>(
    public_key: &[u8],
    signature: &[u8],
    message: &[u8],
    decode_key: impl FnOnce(&[u8; PUBLIC_KEY_LEN]) -> Option<K>,
    verifies: impl FnOnce(&K, &[u8; SIGNATURE_LEN], &[u8]) -> bool,
) -> Result<(), Rejection> {
    let Ok(public_key) = <&[u8; PUBLIC_KEY_LEN]>::try_from(public_key) else {
        return Err(format!(
            "public key is {} bytes, a BIP-340 key is {PUBLIC_KEY_LEN}{}",
            public_key.len(),
            hex_text_hint(public_key, |len| len == PUBLIC_KEY_LEN)
        ));
    };
    let Ok(signature) = <&[u8; SIGNATURE_LEN]>::try_from(signature) else {
        return Err(format!(
            "signature is {} bytes, a BIP-340 signature is {SIGNATURE_LEN}{}",
            signature.len(),
            hex_text_hint(signature, |len| len == SIGNATURE_LEN)
        ));
    };
    if !below(public_key, &P) {
        return Err("public key x is not below the field prime p".to_string());
    }
    let key = decode_key(public_key)
        .ok_or_else(|| "public key is not the x coordinate of a curve point".to_string())?;
    if !below(&signature[..32], &P) {
        return Err("signature r is not below the field prime p".to_string());
    }
    if !below(&signature[32..], &N) {
        return Err("signature s is not below the group order n".to_string());
    }
    if verifies(&key, signature, message) {
        Ok(())
    } else {
        Err("signature does not verify".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x of the generator point: a valid x-only key.
    const G_X: [u8; 32] = [
        0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87, 0x0b,
        0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16, 0xf8,
        0x17, 0x98,
    ];

    fn signature(r: &[u8; 32], s: &[u8; 32]) -> Vec<u8> {
        [&r[..], &s[..]].concat()
    }

    #[test]
    fn out_of_range_fields_say_which() {
        let ok = [1u8; 32];
        let reason = verify(&P, &signature(&ok, &ok), b"").expect_err("key = p");
        assert!(reason.contains("public key x is not below"), "{reason}");
        let reason = verify(&G_X, &signature(&P, &ok), b"").expect_err("r = p");
        assert!(reason.contains("r is not below"), "{reason}");
        let reason = verify(&G_X, &signature(&ok, &N), b"").expect_err("s = n");
        assert!(reason.contains("s is not below"), "{reason}");
        let reason = verify(&G_X, &signature(&ok, &ok), b"").expect_err("wrong");
        assert_eq!(reason, "signature does not verify");
    }

    #[test]
    fn hex_text_where_bytes_belong_gets_a_hint() {
        let text = hex::encode(G_X).into_bytes();
        let reason = verify(&text, &[0; 64], b"").expect_err("hex key");
        assert!(reason.contains("hex text"), "{reason}");
        let reason = verify(&G_X, &hex::encode([1u8; 64]).into_bytes(), b"").expect_err("hex sig");
        assert!(reason.contains("hex text"), "{reason}");
        let reason = verify(&[0xee; 64], &[0; 64], b"").expect_err("64 raw bytes");
        assert!(!reason.contains("hex"), "{reason}");
    }
}
