//! secp256k1 ECDSA verification: SHA-256, SEC1 key, strict DER, low-S.

use k256::ecdsa::signature::Verifier;
use k256::ecdsa::{Signature, VerifyingKey};

use crate::{Rejection, hex_text_hint};

/// Verifies a DER-encoded ECDSA signature over SHA-256 of `message`.
///
/// Only low-S signatures are accepted (Bitcoin's policy, BIP-62): a high-S
/// signature is the malleated twin of a valid one.
///
/// # Errors
///
/// A human-readable reason when the key or signature is malformed, `s` is
/// high, or the signature does not verify. A refused key's reason starts
/// with "public key".
pub fn verify(public_key: &[u8], signature: &[u8], message: &[u8]) -> Result<(), Rejection> {
    let key = parse_key(public_key)?;
    let signature = Signature::from_der(signature).map_err(|_| {
        let compact = if signature.len() == 64 {
            " (64 bytes: a compact r || s signature? ECDSA signatures here are DER)"
        } else {
            ""
        };
        format!(
            "signature is not strict DER with r, s in [1, n-1]{compact}{}",
            hex_text_hint(signature, |len| (8..=72).contains(&len))
        )
    })?;
    if signature.normalize_s() != signature {
        return Err("signature has a high S value (only low-S is accepted)".to_string());
    }
    key.verify(message, &signature)
        .map_err(|_| "signature does not verify".to_string())
}

/// Parses a SEC1 public key strictly: 33 bytes starting `02`/`03`, or 65
/// bytes starting `04`.
///
/// k256 also decodes `05 || x` (its "compact" form, y chosen for x), which
/// SEC1 and Bitcoin's strict encoding do not allow, so the prefix is
/// checked here before k256 sees the key. Hybrid keys (`06`/`07`, which
/// libsecp256k1 accepts) are refused on purpose, with their own reason.
fn parse_key(public_key: &[u8]) -> Result<VerifyingKey, Rejection> {
    let len = public_key.len();
    match (len, public_key.first()) {
        (33, Some(0x02 | 0x03)) | (65, Some(0x04)) => {}
        (65, Some(0x06 | 0x07)) => {
            return Err(
                "public key is in the hybrid form (prefix 06/07), which SEC1 and Bitcoin's strict \
                 encoding do not allow; send it uncompressed (04) or compressed (02/03)"
                    .to_string(),
            );
        }
        (33 | 65, Some(prefix)) => {
            let expected = if len == 33 { "02 or 03" } else { "04" };
            return Err(format!(
                "public key has prefix {prefix:02x}: a {len}-byte SEC1 key starts with {expected}"
            ));
        }
        _ => {
            return Err(format!(
                "public key is {len} bytes, a SEC1 key is 33 (compressed) or 65 (uncompressed){}",
                hex_text_hint(public_key, |len| matches!(len, 33 | 65))
            ));
        }
    }
    VerifyingKey::from_sec1_bytes(public_key).map_err(|_| {
        "public key is not a curve point (a coordinate is not below p, or the point is not on \
         the curve)"
            .to_string()
    })
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
}
