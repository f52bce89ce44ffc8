//! ECDSA classes: valid signatures with compressed and uncompressed keys,
//! edge secret keys, tampering, the low-S boundary, r and s out of range,
//! and every key encoding SEC1 does not allow. DER forms are in `der.rs`.

use rand::Rng;
use rand::rngs::StdRng;
use secp256k1::{PublicKey, Scalar, SecretKey, XOnlyPublicKey};
use sha2::{Digest, Sha256};

use hotwasm_abi::Scheme;

use super::cases::{
    BAD_KEY, BAD_SIGNATURE, Built, Class, Intent, VALID, built, ecdsa_sign, flip_bit, hex_text,
    message, sec1, secret_key, secret_key_of,
};
use super::encoding::{HALF_N, HALF_N_PLUS_1, N, N_MINUS_1, P, add, add_small, der, plus_p, small};
use super::judge::libsecp256k1_parses_key;

/// A valid ECDSA job.
pub struct Signed {
    /// The signer.
    pub key: SecretKey,
    /// SEC1 public key as sent.
    pub public_key: Vec<u8>,
    /// r, big-endian.
    pub r: [u8; 32],
    /// s, big-endian, low.
    pub s: [u8; 32],
    /// The message.
    pub message: Vec<u8>,
}

impl Signed {
    /// The strict DER signature.
    pub fn der(&self) -> Vec<u8> {
        der(&self.r, &self.s)
    }
}

/// A valid signature by a random key over a random message.
pub fn signed(rng: &mut StdRng) -> Signed {
    let key = secret_key(rng);
    let compressed = rng.random_bool(0.5);
    signed_by(rng, key, compressed)
}

/// A valid signature by `key`.
pub fn signed_by(rng: &mut StdRng, key: SecretKey, compressed: bool) -> Signed {
    let message = message(rng);
    let (r, s) = ecdsa_sign(&key, &message, &rng.random());
    Signed {
        public_key: sec1(&key, compressed),
        key,
        r,
        s,
        message,
    }
}

/// `value` as a scalar (must be below n).
fn scalar(value: [u8; 32]) -> Scalar {
    Scalar::from_be_bytes(value).expect("below n")
}

/// a^-1 mod n by Fermat (a^(n-2)), with libsecp256k1's scalar products.
fn inverse(a: &SecretKey) -> SecretKey {
    let exponent = {
        let mut e = N;
        e[31] -= 2;
        e
    };
    let mut result: Option<SecretKey> = None;
    for bit in (0..256).rev() {
        if let Some(r) = result {
            result = Some(
                r.mul_tweak(&scalar(r.to_secret_bytes()))
                    .expect("nonzero square"),
            );
        }
        if exponent[31 - bit / 8] >> (bit % 8) & 1 == 1 {
            result = Some(match result {
                None => *a,
                Some(r) => r
                    .mul_tweak(&scalar(a.to_secret_bytes()))
                    .expect("nonzero product"),
            });
        }
    }
    result.expect("a nonzero exponent")
}

/// A valid signature whose s is exactly `target`: pick the nonce k, then
/// the key d = (s k - z) / r, so that (r, s) verifies under d's key.
fn signed_with_s(rng: &mut StdRng, target: [u8; 32]) -> Signed {
    loop {
        let nonce = secret_key(rng);
        let big_r = PublicKey::from_secret_key(&nonce);
        let (x, _) = big_r.x_only_public_key();
        let r = x.to_byte_array();
        let message = message(rng);
        let z: [u8; 32] = Sha256::digest(&message).into();
        let (Ok(r_key), Ok(z_key)) = (
            SecretKey::from_secret_bytes(r),
            SecretKey::from_secret_bytes(z),
        ) else {
            continue; // r or z not in [1, n-1]: vanishingly rare, try again.
        };
        let Ok(sk_minus_z) = secret_key_of(target)
            .mul_tweak(&scalar(nonce.to_secret_bytes()))
            .and_then(|sk| sk.add_tweak(&scalar(z_key.negate().to_secret_bytes())))
        else {
            continue;
        };
        let Ok(key) = sk_minus_z.mul_tweak(&scalar(inverse(&r_key).to_secret_bytes())) else {
            continue;
        };
        return Signed {
            public_key: sec1(&key, rng.random_bool(0.5)),
            key,
            r,
            s: target,
            message,
        };
    }
}

/// A valid signature with DER `signature` in its place.
fn with_signature(rng: &mut StdRng, signature: impl Fn(&Signed) -> Vec<u8>) -> Built {
    let signed = signed(rng);
    built(
        signed.public_key.clone(),
        signature(&signed),
        signed.message,
        BAD_SIGNATURE,
    )
}

/// A valid signature checked against the key `key(public_key)` instead.
fn with_key(rng: &mut StdRng, intent: Intent, key: impl Fn(&Signed) -> Vec<u8>) -> Built {
    let signed = signed(rng);
    built(key(&signed), signed.der(), signed.message, intent)
}

/// A valid signature by a key whose y has the given parity.
fn signed_with_parity(rng: &mut StdRng, odd: bool) -> Signed {
    loop {
        let key = secret_key(rng);
        let signed = signed_by(rng, key, true);
        if (signed.public_key[0] == 0x03) == odd {
            return signed;
        }
    }
}

/// `prefix || rest of the key`, the signature left valid.
fn reprefixed(rng: &mut StdRng, odd: bool, compressed: bool, prefix: u8) -> Built {
    let signed = signed_with_parity(rng, odd);
    let mut key = sec1(&signed.key, compressed);
    key[0] = prefix;
    // Of these, libsecp256k1 parses only the hybrid forms with the right
    // parity, which policy refuses: a key refusal either way.
    let hybrid_right_parity = (prefix == 0x06 && !odd) || (prefix == 0x07 && odd);
    assert_eq!(
        libsecp256k1_parses_key(&key),
        hybrid_right_parity && !compressed,
        "{prefix:02x}"
    );
    built(key, signed.der(), signed.message, BAD_KEY)
}

fn off_curve_x(rng: &mut StdRng) -> [u8; 32] {
    loop {
        let x: [u8; 32] = rng.random();
        if XOnlyPublicKey::from_byte_array(x).is_err() {
            return x;
        }
    }
}

/// `prefix || x` as a compressed key.
fn compressed(prefix: u8, x: &[u8]) -> Vec<u8> {
    let mut key = vec![prefix];
    key.extend_from_slice(x);
    key
}

/// Every ECDSA class except the DER forms.
pub fn classes() -> Vec<Class> {
    let e = Scheme::Ecdsa;
    let mut classes = vec![
        Class::new("ecdsa-valid-compressed", e, |rng| {
            let key = secret_key(rng);
            let signed = signed_by(rng, key, true);
            built(
                signed.public_key.clone(),
                signed.der(),
                signed.message,
                VALID,
            )
        }),
        Class::new("ecdsa-valid-uncompressed", e, |rng| {
            let key = secret_key(rng);
            let signed = signed_by(rng, key, false);
            built(
                signed.public_key.clone(),
                signed.der(),
                signed.message,
                VALID,
            )
        }),
    ];
    for (name, secret) in [
        ("1", small(1)),
        ("2", small(2)),
        ("n-1", N_MINUS_1),
        ("half-n", HALF_N),
    ] {
        classes.push(Class::new(
            format!("ecdsa-valid-seckey-{name}"),
            e,
            move |rng| {
                let compressed = rng.random_bool(0.5);
                let signed = signed_by(rng, secret_key_of(secret), compressed);
                built(
                    signed.public_key.clone(),
                    signed.der(),
                    signed.message,
                    VALID,
                )
            },
        ));
    }
    classes.extend([
        // The low-S boundary: (n-1)/2 is the largest low S, (n+1)/2 its
        // high twin; n - s of any signature is high.
        Class::new("ecdsa-s-eq-half-n-low", e, |rng| {
            let signed = signed_with_s(rng, HALF_N);
            built(
                signed.public_key.clone(),
                signed.der(),
                signed.message,
                VALID,
            )
        }),
        Class::new("ecdsa-s-eq-half-n-plus-1-high", e, |rng| {
            let signed = signed_with_s(rng, HALF_N);
            let signature = der(&signed.r, &HALF_N_PLUS_1);
            built(signed.public_key, signature, signed.message, BAD_SIGNATURE)
        }),
        Class::new("ecdsa-high-s", e, |rng| {
            with_signature(rng, |signed| {
                let high = secret_key_of(signed.s).negate().to_secret_bytes();
                der(&signed.r, &high)
            })
        }),
        Class::new("ecdsa-tampered-message", e, |rng| {
            let mut signed = signed(rng);
            if signed.message.is_empty() {
                signed.message.push(rng.random());
            } else {
                let len = signed.message.len();
                flip_bit(rng, &mut signed.message, 0..len);
            }
            built(
                signed.public_key.clone(),
                signed.der(),
                signed.message,
                BAD_SIGNATURE,
            )
        }),
        Class::new("ecdsa-tampered-r", e, |rng| {
            let mut signed = signed(rng);
            flip_bit(rng, &mut signed.r, 0..32);
            built(
                signed.public_key.clone(),
                signed.der(),
                signed.message,
                BAD_SIGNATURE,
            )
        }),
        Class::new("ecdsa-tampered-s", e, |rng| {
            let mut signed = signed(rng);
            flip_bit(rng, &mut signed.s, 0..32);
            built(
                signed.public_key.clone(),
                signed.der(),
                signed.message,
                BAD_SIGNATURE,
            )
        }),
        Class::new("ecdsa-tampered-key", e, |rng| {
            with_key(rng, Intent::Invalid, |signed| {
                let mut key = signed.public_key.clone();
                // A bit of x; the prefix stays.
                let at = 1 + (key[5] as usize % 32);
                key[at] ^= 1 << (key[6] % 8);
                key
            })
        }),
        Class::new("ecdsa-wrong-key", e, |rng| {
            let other = sec1(&secret_key(rng), rng.random_bool(0.5));
            with_key(rng, BAD_SIGNATURE, move |_| other.clone())
        }),
        // r and s = 0, = n, + n: each encoded as a positive DER INTEGER.
        Class::new("ecdsa-r-zero", e, |rng| {
            with_signature(rng, |signed| der(&[0], &signed.s))
        }),
        Class::new("ecdsa-s-zero", e, |rng| {
            with_signature(rng, |signed| der(&signed.r, &[0]))
        }),
        Class::new("ecdsa-r-eq-n", e, |rng| {
            with_signature(rng, |signed| der(&N, &signed.s))
        }),
        Class::new("ecdsa-s-eq-n", e, |rng| {
            with_signature(rng, |signed| der(&signed.r, &N))
        }),
        Class::new("ecdsa-r-plus-n", e, |rng| {
            with_signature(rng, |signed| der(&add(&signed.r, &N), &signed.s))
        }),
        Class::new("ecdsa-s-plus-n", e, |rng| {
            with_signature(rng, |signed| der(&signed.r, &add(&signed.s, &N)))
        }),
        Class::new("ecdsa-r-eq-p", e, |rng| {
            with_signature(rng, |signed| der(&P, &signed.s))
        }),
        Class::new("ecdsa-r-max", e, |rng| {
            with_signature(rng, |signed| der(&[0xff; 32], &signed.s))
        }),
        Class::new("ecdsa-signature-hex-text", e, |rng| {
            with_signature(rng, |signed| hex_text(&signed.der()))
        }),
        Class::new("ecdsa-signature-compact-64", e, |rng| {
            with_signature(rng, |signed| [signed.r, signed.s].concat())
        }),
    ]);
    classes.extend(key_classes());
    classes
}

/// Key encodings: every prefix SEC1 does not allow (05 included), hybrid
/// forms, swapped parity, x out of range or off the curve, zero, raw,
/// wrong lengths, hex text.
fn key_classes() -> Vec<Class> {
    let e = Scheme::Ecdsa;
    let mut classes = Vec::new();
    for (name, prefix, compressed) in [
        ("00", 0x00, true),
        ("01", 0x01, true),
        ("05", 0x05, true),
        ("04-33-bytes", 0x04, true),
        ("02-65-bytes", 0x02, false),
        ("03-65-bytes", 0x03, false),
        ("05-65-bytes", 0x05, false),
    ] {
        for (parity, odd) in [("even-y", false), ("odd-y", true)] {
            classes.push(Class::new(
                format!("ecdsa-key-prefix-{name}-{parity}"),
                e,
                move |rng| reprefixed(rng, odd, compressed, prefix),
            ));
        }
    }
    // Hybrid: 06 for even y, 07 for odd; libsecp256k1 parses these (policy
    // refuses them), the wrong parity it refuses itself.
    for (name, odd, prefix) in [
        ("06-even-y", false, 0x06),
        ("07-odd-y", true, 0x07),
        ("06-odd-y", true, 0x06),
        ("07-even-y", false, 0x07),
    ] {
        classes.push(Class::new(
            format!("ecdsa-key-hybrid-{name}"),
            e,
            move |rng| reprefixed(rng, odd, false, prefix),
        ));
    }
    classes.extend([
        Class::new("ecdsa-key-swapped-parity", e, |rng| {
            with_key(rng, BAD_SIGNATURE, |signed| {
                let mut key = sec1(&signed.key, true);
                key[0] ^= 0x01; // 02 <-> 03: the negated point
                key
            })
        }),
        Class::new("ecdsa-key-x-eq-p", e, |rng| {
            with_key(rng, BAD_KEY, |_| compressed(0x02, &P))
        }),
        Class::new("ecdsa-key-x-p-plus-k", e, |rng| {
            let k = rng.random_range(1..=255);
            with_key(rng, BAD_KEY, move |_| compressed(0x03, &add_small(&P, k)))
        }),
        Class::new("ecdsa-key-x-plus-p", e, |rng| {
            let x = (1..10_000u64)
                .map(small)
                .find(|x| XOnlyPublicKey::from_byte_array(*x).is_ok())
                .expect("a small x on the curve");
            let aliased = plus_p(&x).expect("fits");
            with_key(rng, BAD_KEY, move |_| compressed(0x02, &aliased))
        }),
        Class::new("ecdsa-key-off-curve-compressed", e, |rng| {
            let x = off_curve_x(rng);
            with_key(rng, BAD_KEY, move |_| compressed(0x02, &x))
        }),
        Class::new("ecdsa-key-off-curve-uncompressed", e, |rng| {
            with_key(rng, BAD_KEY, |signed| {
                let mut key = sec1(&signed.key, false);
                key[64] ^= 0x01; // y + 1 or y - 1: not on the curve
                key
            })
        }),
        Class::new("ecdsa-key-all-zero-33", e, |rng| {
            with_key(rng, BAD_KEY, |_| vec![0; 33])
        }),
        Class::new("ecdsa-key-all-zero-65", e, |rng| {
            with_key(rng, BAD_KEY, |_| vec![0; 65])
        }),
        Class::new("ecdsa-key-raw-64", e, |rng| {
            with_key(rng, BAD_KEY, |signed| {
                sec1(&signed.key, false)[1..].to_vec()
            })
        }),
        Class::new("ecdsa-key-x-only-32", e, |rng| {
            with_key(rng, BAD_KEY, |signed| sec1(&signed.key, true)[1..].to_vec())
        }),
        Class::new("ecdsa-key-hex-text-compressed", e, |rng| {
            with_key(rng, BAD_KEY, |signed| hex_text(&sec1(&signed.key, true)))
        }),
        Class::new("ecdsa-key-hex-text-uncompressed", e, |rng| {
            with_key(rng, BAD_KEY, |signed| hex_text(&sec1(&signed.key, false)))
        }),
        Class::new("ecdsa-key-empty", e, |rng| {
            with_key(rng, BAD_KEY, |_| Vec::new())
        }),
    ]);
    classes
}
