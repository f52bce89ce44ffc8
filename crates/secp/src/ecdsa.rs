//! secp256k1 ECDSA verification: SHA-256, SEC1 key, strict DER, low-S.

use k256::ecdsa::signature::Verifier;
use k256::ecdsa::{Signature, VerifyingKey};

use crate::{Rejection, hex_text_hint};

/// Verifies a DER-encoded ECDSA signature over SHA-256 of `message`, with
/// k256.
///
/// # Errors
///
/// A human-readable reason when the key or signature is malformed, `s` is
/// high, or the signature does not verify (see [`verify_with`]).
pub fn verify(public_key: &[u8], signature: &[u8], message: &[u8]) -> Result<(), Rejection> {
    verify_with(
        public_key,
        signature,
        message,
        |key| VerifyingKey::from_sec1_bytes(key).ok(),
        |der| Signature::from_der(der).ok(),
        |signature| signature.normalize_s() == *signature,
        |key, signature, message| key.verify(message, signature).is_ok(),
    )
}

/// Verifies a DER-encoded ECDSA signature over SHA-256 of `message` with
/// libsecp256k1 (`secp256k1_ecdsa_verify`), under the same checks and
/// reasons as [`verify`].
///
/// libsecp256k1's DER parser reads an `r` or `s` of zero, or not below n,
/// as a signature of zeros that then fails to verify; k256 refuses it as
/// not strict DER. Both are refused here with the DER reason.
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
    use secp256k1::{Message, PublicKey, ecdsa::Signature};
    use sha2::{Digest, Sha256};
    verify_with(
        public_key,
        signature,
        message,
        |key| PublicKey::from_slice(key).ok(),
        |der| {
            let signature = Signature::from_der(der).ok()?;
            let compact = signature.serialize_compact();
            let (r, s) = compact.split_at(32);
            let zero = |half: &[u8]| half.iter().all(|&b| b == 0);
            (!zero(r) && !zero(s)).then_some(signature)
        },
        |signature| {
            let mut low = *signature;
            low.normalize_s();
            low == *signature
        },
        |key, signature, message| {
            let digest: [u8; 32] = Sha256::digest(message).into();
            signature.verify(Message::from_digest(digest), key).is_ok()
        },
    )
}

/// The checks and reasons of hotwasm's ECDSA policy, around a library's
/// arithmetic: `decode_key` reads a SEC1 key whose prefix has been checked
/// (`None` when it is no curve point), `parse_der` a strict DER signature
/// with r, s in [1, n-1], `is_low_s` says whether s ≤ n/2, and `verifies`
/// checks the signature over SHA-256 of the message.
///
/// Only low-S signatures are accepted (Bitcoin's policy, BIP-62): a high-S
/// signature is the malleated twin of a valid one.
///
/// # Errors
///
/// A human-readable reason when the key or signature is malformed, `s` is
/// high, or the signature does not verify. A refused key's reason starts
/// with "public key".
pub fn verify_with<K, S>(
    public_key: &[u8],
    signature: &[u8],
    message: &[u8],
    decode_key: impl FnOnce(&[u8]) -> Option<K>,
    parse_der: impl FnOnce(&[u8]) -> Option<S>,
    is_low_s: impl FnOnce(&S) -> bool,
    verifies: impl FnOnce(&K, &S, &[u8]) -> bool,
) -> Result<(), Rejection> {
    check_key_prefix(public_key)?;
    let key = decode_key(public_key).ok_or_else(|| {
        "public key is not a curve point (a coordinate is not below p, or the point is not on \
         the curve)"
            .to_string()
    })?;
    let der = signature;
    let signature = parse_der(der).ok_or_else(|| {
        let compact = if der.len() == 64 {
            " (64 bytes: a compact r || s signature? ECDSA signatures here are DER)"
        } else {
            ""
        };
        format!(
            "signature is not strict DER with r, s in [1, n-1]{compact}{}",
            hex_text_hint(der, |len| (8..=72).contains(&len))
        )
    })?;
    if !is_low_s(&signature) {
        return Err("signature has a high S value (only low-S is accepted)".to_string());
    }
    if verifies(&key, &signature, message) {
        Ok(())
    } else {
        Err("signature does not verify".to_string())
    }
}

/// Checks a SEC1 public key's length and prefix strictly: 33 bytes
/// starting `02`/`03`, or 65 bytes starting `04`.
///
/// k256 also decodes `05 || x` (its "compact" form, y chosen for x), which
/// SEC1 and Bitcoin's strict encoding do not allow, so the prefix is
/// checked here before a library sees the key. Hybrid keys (`06`/`07`,
/// which libsecp256k1 accepts) are refused on purpose, with their own
/// reason.
fn check_key_prefix(public_key: &[u8]) -> Result<(), Rejection> {
    let len = public_key.len();
    match (len, public_key.first()) {
        (33, Some(0x02 | 0x03)) | (65, Some(0x04)) => Ok(()),
        (65, Some(0x06 | 0x07)) => Err(
            "public key is in the hybrid form (prefix 06/07), which SEC1 and Bitcoin's strict \
             encoding do not allow; send it uncompressed (04) or compressed (02/03)"
                .to_string(),
        ),
        (33 | 65, Some(prefix)) => {
            let expected = if len == 33 { "02 or 03" } else { "04" };
            Err(format!(
                "public key has prefix {prefix:02x}: a {len}-byte SEC1 key starts with {expected}"
            ))
        }
        _ => Err(format!(
            "public key is {len} bytes, a SEC1 key is 33 (compressed) or 65 (uncompressed){}",
            hex_text_hint(public_key, |len| matches!(len, 33 | 65))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator point G, compressed: prefix 02, even y.
    const G_X: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    fn key(prefix: &str, x: &str) -> Vec<u8> {
        hex::decode(format!("{prefix}{x}")).expect("hex")
    }

    #[test]
    fn prefix_05_is_refused_although_k256_decodes_it() {
        // The bug: k256 0.14 reads 05 || x as its "compact" point.
        assert!(VerifyingKey::from_sec1_bytes(&key("05", G_X)).is_ok());
        let reason = verify(&key("05", G_X), &[0x30], b"").expect_err("refused");
        assert!(reason.starts_with("public key has prefix 05"), "{reason}");
    }

    #[test]
    fn only_02_03_and_04_prefixes_are_sec1() {
        for prefix in ["00", "01", "04", "06", "07", "ff"] {
            let reason = verify(&key(prefix, G_X), &[0x30], b"").expect_err(prefix);
            assert!(reason.starts_with("public key"), "{prefix}: {reason}");
        }
        // The key itself passes; the signature is what fails then.
        let reason = verify(&key("02", G_X), &[0x30], b"").expect_err("bad DER");
        assert!(reason.starts_with("signature"), "{reason}");
    }

    #[test]
    fn hex_text_where_bytes_belong_gets_a_hint() {
        let text = hex::encode(key("02", G_X)).into_bytes();
        let reason = verify(&text, &[0x30], b"").expect_err("hex text");
        assert!(reason.contains("hex text"), "{reason}");
        let reason = verify(&[0xee; 66], &[0x30], b"").expect_err("66 bytes");
        assert!(!reason.contains("hex"), "{reason}");
    }

    /// DER signatures with r or s of zero or not below n: k256 refuses
    /// them while parsing, libsecp256k1 parses them as zeros; both must give
    /// the DER reason.
    #[cfg(feature = "libsecp256k1")]
    #[test]
    fn both_libraries_refuse_out_of_range_der_alike() {
        const N: &str = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
        let key = key("02", G_X);
        let der = |r: &str, s: &str| {
            let int = |hex_digits: &str| {
                let mut bytes = hex::decode(hex_digits).expect("hex");
                if bytes[0] & 0x80 != 0 {
                    bytes.insert(0, 0);
                }
                [vec![0x02, bytes.len() as u8], bytes].concat()
            };
            let body = [int(r), int(s)].concat();
            [vec![0x30, body.len() as u8], body].concat()
        };
        for (what, signature) in [
            ("r = 0", der("00", "01")),
            ("s = 0", der("01", "00")),
            ("r = n", der(N, "01")),
            ("s = n", der("01", N)),
        ] {
            let k256 = verify(&key, &signature, b"m").expect_err(what);
            let libsecp = verify_libsecp256k1(&key, &signature, b"m").expect_err(what);
            assert!(
                k256.starts_with("signature is not strict DER"),
                "{what}: {k256}"
            );
            assert_eq!(k256, libsecp, "{what}");
        }
        // An in-range signature parses in both and fails to verify alike.
        let k256 = verify(&key, &der("01", "01"), b"m").expect_err("wrong");
        assert_eq!(k256, "signature does not verify");
        assert_eq!(verify_libsecp256k1(&key, &der("01", "01"), b"m"), Err(k256));
    }
}
