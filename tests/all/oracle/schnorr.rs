//! BIP-340 classes: valid signatures over every message length the issue
//! names, edge secret keys, tampering, and every out-of-range or off-curve
//! key and signature field.

use rand::Rng;
use rand::rngs::StdRng;
use secp256k1::XOnlyPublicKey;

use hotwasm_abi::Scheme;

use super::cases::{
    BAD_KEY, BAD_SIGNATURE, Built, Class, Intent, MESSAGE_LENGTHS, VALID, built, flip_bit,
    hex_text, message, message_of, schnorr_sign, secret_key, secret_key_of,
};
use super::encoding::{HALF_N, N, N_MINUS_1, P, add_small, plus_p, small};

/// A valid signature over a random message, random aux.
fn valid(rng: &mut StdRng) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let key = secret_key(rng);
    let message = message(rng);
    let (public_key, signature) = schnorr_sign(&key, &message, &rng.random());
    (public_key, signature, message)
}

/// A 32-byte x that is no point's x coordinate (per libsecp256k1).
fn off_curve_x(rng: &mut StdRng) -> [u8; 32] {
    loop {
        let x: [u8; 32] = rng.random();
        if XOnlyPublicKey::from_byte_array(x).is_err() {
            return x;
        }
    }
}

/// The smallest x on the curve with x + p below 2^256: a field element
/// with a second, out-of-range encoding.
fn small_x_on_curve() -> [u8; 32] {
    (1..10_000u64)
        .map(small)
        .find(|x| XOnlyPublicKey::from_byte_array(*x).is_ok())
        .expect("a small x on the curve")
}

/// A valid signature whose `r` (first 32 bytes) is replaced.
fn with_r(rng: &mut StdRng, r: [u8; 32]) -> Built {
    let (public_key, mut signature, message) = valid(rng);
    signature[..32].copy_from_slice(&r);
    built(public_key, signature, message, BAD_SIGNATURE)
}

/// A valid signature whose `s` (last 32 bytes) is replaced.
fn with_s(rng: &mut StdRng, s: [u8; 32]) -> Built {
    let (public_key, mut signature, message) = valid(rng);
    signature[32..].copy_from_slice(&s);
    built(public_key, signature, message, BAD_SIGNATURE)
}

/// A valid signature checked against `key` instead.
fn with_key(rng: &mut StdRng, key: Vec<u8>) -> Built {
    let (_, signature, message) = valid(rng);
    built(key, signature, message, BAD_KEY)
}

/// Every BIP-340 class.
pub fn classes() -> Vec<Class> {
    let s = Scheme::Schnorr;
    let mut classes = Vec::new();
    for len in MESSAGE_LENGTHS {
        classes.push(Class::new(
            format!("schnorr-valid-msg{len}-aux-random"),
            s,
            move |rng| {
                let key = secret_key(rng);
                let message = message_of(rng, len);
                let (public_key, signature) = schnorr_sign(&key, &message, &rng.random());
                built(public_key, signature, message, VALID)
            },
        ));
        classes.push(Class::new(
            format!("schnorr-valid-msg{len}-aux-zero"),
            s,
            move |rng| {
                let key = secret_key(rng);
                let message = message_of(rng, len);
                let (public_key, signature) = schnorr_sign(&key, &message, &[0; 32]);
                built(public_key, signature, message, VALID)
            },
        ));
    }
    let edge_keys = [
        ("1", small(1)),
        ("2", small(2)),
        ("n-1", N_MINUS_1),
        ("half-n", HALF_N),
    ];
    for (name, secret) in edge_keys {
        classes.push(Class::new(
            format!("schnorr-valid-seckey-{name}"),
            s,
            move |rng| {
                let message = message(rng);
                let (public_key, signature) =
                    schnorr_sign(&secret_key_of(secret), &message, &rng.random());
                built(public_key, signature, message, VALID)
            },
        ));
    }

    classes.push(Class::new("schnorr-tampered-message", s, |rng| {
        let (public_key, signature, mut message) = valid(rng);
        if message.is_empty() {
            message.push(rng.random());
        } else {
            let len = message.len();
            flip_bit(rng, &mut message, 0..len);
        }
        built(public_key, signature, message, BAD_SIGNATURE)
    }));
    classes.push(Class::new("schnorr-tampered-r", s, |rng| {
        let (public_key, mut signature, message) = valid(rng);
        flip_bit(rng, &mut signature, 0..32);
        built(public_key, signature, message, BAD_SIGNATURE)
    }));
    classes.push(Class::new("schnorr-tampered-s", s, |rng| {
        let (public_key, mut signature, message) = valid(rng);
        flip_bit(rng, &mut signature, 32..64);
        built(public_key, signature, message, BAD_SIGNATURE)
    }));
    classes.push(Class::new("schnorr-tampered-key", s, |rng| {
        let (mut public_key, signature, message) = valid(rng);
        flip_bit(rng, &mut public_key, 0..32);
        built(public_key, signature, message, Intent::Invalid)
    }));
    classes.push(Class::new("schnorr-wrong-key", s, |rng| {
        let (_, signature, message) = valid(rng);
        let (other, _, _) = valid(rng);
        built(other, signature, message, BAD_SIGNATURE)
    }));

    // s out of range: s = n, n + k, 2^256 - 1; and s = 0 (in range, wrong).
    classes.push(Class::new("schnorr-s-eq-n", s, |rng| with_s(rng, N)));
    classes.push(Class::new("schnorr-s-n-plus-k", s, |rng| {
        let k = rng.random_range(1..=255);
        with_s(rng, add_small(&N, k))
    }));
    classes.push(Class::new("schnorr-s-max", s, |rng| {
        with_s(rng, [0xff; 32])
    }));
    classes.push(Class::new("schnorr-s-zero", s, |rng| with_s(rng, [0; 32])));
    // r not the x of a point, r = p, r > p, r = 0.
    classes.push(Class::new("schnorr-r-not-on-curve", s, |rng| {
        let r = off_curve_x(rng);
        with_r(rng, r)
    }));
    classes.push(Class::new("schnorr-r-eq-p", s, |rng| with_r(rng, P)));
    classes.push(Class::new("schnorr-r-p-plus-k", s, |rng| {
        let k = rng.random_range(1..=255);
        with_r(rng, add_small(&P, k))
    }));
    classes.push(Class::new("schnorr-r-max", s, |rng| {
        with_r(rng, [0xff; 32])
    }));
    classes.push(Class::new("schnorr-r-zero", s, |rng| with_r(rng, [0; 32])));

    // Keys: x = p, x > p, x + p for an x on the curve, off the curve, zero.
    classes.push(Class::new("schnorr-key-eq-p", s, |rng| {
        with_key(rng, P.to_vec())
    }));
    classes.push(Class::new("schnorr-key-p-plus-k", s, |rng| {
        let k = rng.random_range(1..=255);
        with_key(rng, add_small(&P, k).to_vec())
    }));
    let aliased = plus_p(&small_x_on_curve()).expect("x + p fits");
    classes.push(Class::new("schnorr-key-x-plus-p", s, move |rng| {
        with_key(rng, aliased.to_vec())
    }));
    classes.push(Class::new("schnorr-key-max", s, |rng| {
        with_key(rng, vec![0xff; 32])
    }));
    classes.push(Class::new("schnorr-key-off-curve", s, |rng| {
        let x = off_curve_x(rng);
        with_key(rng, x.to_vec())
    }));
    classes.push(Class::new("schnorr-key-all-zero", s, |rng| {
        with_key(rng, vec![0; 32])
    }));
    // Wrong lengths, and hex text sent where raw bytes belong.
    classes.push(Class::new("schnorr-key-31-bytes", s, |rng| {
        let (mut public_key, signature, message) = valid(rng);
        public_key.pop();
        built(public_key, signature, message, BAD_KEY)
    }));
    classes.push(Class::new("schnorr-key-33-bytes-sec1", s, |rng| {
        let (public_key, signature, message) = valid(rng);
        let mut sec1 = vec![0x02];
        sec1.extend(public_key);
        built(sec1, signature, message, BAD_KEY)
    }));
    classes.push(Class::new("schnorr-key-hex-text", s, |rng| {
        let (public_key, signature, message) = valid(rng);
        built(hex_text(&public_key), signature, message, BAD_KEY)
    }));
    classes.push(Class::new("schnorr-signature-63-bytes", s, |rng| {
        let (public_key, mut signature, message) = valid(rng);
        signature.pop();
        built(public_key, signature, message, BAD_SIGNATURE)
    }));
    classes.push(Class::new("schnorr-signature-65-bytes", s, |rng| {
        let (public_key, mut signature, message) = valid(rng);
        signature.push(0);
        built(public_key, signature, message, BAD_SIGNATURE)
    }));
    classes.push(Class::new("schnorr-signature-empty", s, |rng| {
        let (public_key, _, message) = valid(rng);
        built(public_key, Vec::new(), message, BAD_SIGNATURE)
    }));
    classes.push(Class::new("schnorr-signature-hex-text", s, |rng| {
        let (public_key, signature, message) = valid(rng);
        built(public_key, hex_text(&signature), message, BAD_SIGNATURE)
    }));
    classes
}
