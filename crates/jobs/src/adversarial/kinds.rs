//! The adversarial kinds: one builder per kind, its scheme, and the verdict
//! it must get, right by construction (a signature made by k256 and left
//! alone is valid; every kind that breaks one is invalid, for the reason
//! its name says).

use hotwasm_abi::Scheme;
use rand::Rng;

use super::der::{self, add, from_parts, int_content, integer, sequence};
use super::sign::{Ecdsa, Signer, negate};

/// Key, signature and message of one job.
pub(crate) type Parts = (Vec<u8>, Vec<u8>, Vec<u8>);

/// One kind of adversarial job.
#[derive(Debug)]
pub struct Kind {
    /// Its name, used in job ids and `--kinds`.
    pub name: &'static str,
    /// The scheme of its jobs.
    pub scheme: Scheme,
    /// The verdict its jobs must get.
    pub expect: bool,
    pub(crate) build: fn(&mut Signer) -> Parts,
}

/// The group order n.
const N: [u8; 32] = hex32(b"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
/// n - 1, the largest secret key.
const N_MINUS_1: [u8; 32] =
    hex32(b"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140");
/// The field prime p.
const P: [u8; 32] = hex32(b"fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f");
/// (n - 1) / 2, the largest low S.
const HALF_N: [u8; 32] = hex32(b"7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0");
/// (n + 1) / 2, the smallest high S.
const HALF_N_PLUS_1: [u8; 32] =
    hex32(b"7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1");
/// The secret key 1.
const ONE: [u8; 32] = {
    let mut one = [0u8; 32];
    one[31] = 1;
    one
};

const fn hex32(text: &[u8; 64]) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        if c >= b'a' { c - b'a' + 10 } else { c - b'0' }
    }
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(text[2 * i]) << 4) | nibble(text[2 * i + 1]);
        i += 1;
    }
    out
}

/// A random x that is no curve point's x coordinate (by k256).
fn off_curve_x(g: &mut Signer) -> [u8; 32] {
    loop {
        let x = g.bytes32();
        if k256::schnorr::VerifyingKey::from_slice(&x).is_err() {
            return x;
        }
    }
}

fn hex_text(bytes: &[u8]) -> Vec<u8> {
    hex::encode(bytes).into_bytes()
}

fn flip(g: &mut Signer, bytes: &mut [u8], from: usize, to: usize) {
    let at = g.rng.random_range(from..to);
    bytes[at] ^= 1 << g.rng.random_range(0..8);
}

fn schnorr_with(g: &mut Signer, edit: impl FnOnce(&mut Signer, &mut Parts)) -> Parts {
    let job = g.schnorr(None, false);
    let mut parts = (job.public_key, job.signature, job.message);
    edit(g, &mut parts);
    parts
}

fn ecdsa_parts(job: Ecdsa) -> Parts {
    let der = job.der();
    (job.public_key, der, job.message)
}

/// A valid ECDSA job whose DER is rebuilt from the content octets of r and
/// s by `rewrite`.
fn der_rewritten(g: &mut Signer, rewrite: fn(&[u8], &[u8]) -> Vec<u8>) -> Parts {
    let job = g.ecdsa_any();
    let signature = rewrite(&int_content(&job.r), &int_content(&job.s));
    (job.public_key, signature, job.message)
}

/// A valid ECDSA job by a key whose y has the given parity, its key
/// re-prefixed.
fn reprefixed(g: &mut Signer, odd: bool, compressed: bool, prefix: u8) -> Parts {
    let job = loop {
        let job = g.ecdsa(None, true);
        if (job.public_key[0] == 0x03) == odd {
            break job;
        }
    };
    let mut key = job.sec1(compressed);
    key[0] = prefix;
    (key, job.der(), job.message)
}

fn with_key(g: &mut Signer, key: impl FnOnce(&Ecdsa) -> Vec<u8>) -> Parts {
    let job = g.ecdsa_any();
    let key = key(&job);
    (key, job.der(), job.message)
}

macro_rules! kind {
    ($name:literal, $scheme:ident, $expect:literal, $build:expr) => {
        Kind {
            name: $name,
            scheme: Scheme::$scheme,
            expect: $expect,
            build: $build,
        }
    };
}

/// Every kind, BIP-340 first.
pub static KINDS: &[Kind] = &[
    kind!("schnorr-valid", Schnorr, true, |g| {
        let j = g.schnorr(None, false);
        (j.public_key, j.signature, j.message)
    }),
    kind!("schnorr-valid-aux-zero", Schnorr, true, |g| {
        let j = g.schnorr(None, true);
        (j.public_key, j.signature, j.message)
    }),
    kind!("schnorr-valid-seckey-1", Schnorr, true, |g| {
        let j = g.schnorr(Some(ONE), false);
        (j.public_key, j.signature, j.message)
    }),
    kind!("schnorr-valid-seckey-n-1", Schnorr, true, |g| {
        let j = g.schnorr(Some(N_MINUS_1), false);
        (j.public_key, j.signature, j.message)
    }),
    kind!("schnorr-tampered-message", Schnorr, false, |g| {
        schnorr_with(g, |g, (_, _, m)| match m.len() {
            0 => m.push(1),
            len => flip(g, m, 0, len),
        })
    }),
    kind!("schnorr-tampered-r", Schnorr, false, |g| {
        schnorr_with(g, |g, (_, s, _)| flip(g, s, 0, 32))
    }),
    kind!("schnorr-tampered-s", Schnorr, false, |g| {
        schnorr_with(g, |g, (_, s, _)| flip(g, s, 32, 64))
    }),
    kind!("schnorr-wrong-key", Schnorr, false, |g| {
        let other = g.schnorr(None, false).public_key;
        schnorr_with(g, |_, (k, _, _)| *k = other)
    }),
    kind!("schnorr-s-eq-n", Schnorr, false, |g| {
        schnorr_with(g, |_, (_, s, _)| s[32..].copy_from_slice(&N))
    }),
    kind!("schnorr-s-max", Schnorr, false, |g| {
        schnorr_with(g, |_, (_, s, _)| s[32..].fill(0xff))
    }),
    kind!("schnorr-r-eq-p", Schnorr, false, |g| {
        schnorr_with(g, |_, (_, s, _)| s[..32].copy_from_slice(&P))
    }),
    kind!("schnorr-r-max", Schnorr, false, |g| {
        schnorr_with(g, |_, (_, s, _)| s[..32].fill(0xff))
    }),
    kind!("schnorr-r-not-on-curve", Schnorr, false, |g| {
        let x = off_curve_x(g);
        schnorr_with(g, |_, (_, s, _)| s[..32].copy_from_slice(&x))
    }),
    kind!("schnorr-key-eq-p", Schnorr, false, |g| {
        schnorr_with(g, |_, (k, _, _)| *k = P.to_vec())
    }),
    kind!("schnorr-key-max", Schnorr, false, |g| {
        schnorr_with(g, |_, (k, _, _)| *k = vec![0xff; 32])
    }),
    kind!("schnorr-key-off-curve", Schnorr, false, |g| {
        let x = off_curve_x(g);
        schnorr_with(g, |_, (k, _, _)| *k = x.to_vec())
    }),
    kind!("schnorr-key-all-zero", Schnorr, false, |g| {
        schnorr_with(g, |_, (k, _, _)| *k = vec![0; 32])
    }),
    kind!("schnorr-key-31-bytes", Schnorr, false, |g| {
        schnorr_with(g, |_, (k, _, _)| {
            k.pop();
        })
    }),
    kind!("schnorr-key-hex-text", Schnorr, false, |g| {
        schnorr_with(g, |_, (k, _, _)| *k = hex_text(k))
    }),
    kind!("schnorr-signature-63-bytes", Schnorr, false, |g| {
        schnorr_with(g, |_, (_, s, _)| {
            s.pop();
        })
    }),
    kind!("schnorr-signature-hex-text", Schnorr, false, |g| {
        schnorr_with(g, |_, (_, s, _)| *s = hex_text(s))
    }),
    kind!("ecdsa-valid-compressed", Ecdsa, true, |g| ecdsa_parts(
        g.ecdsa(None, true)
    )),
    kind!("ecdsa-valid-uncompressed", Ecdsa, true, |g| {
        ecdsa_parts(g.ecdsa(None, false))
    }),
    kind!("ecdsa-valid-seckey-1", Ecdsa, true, |g| ecdsa_parts(
        g.ecdsa(Some(ONE), true)
    )),
    kind!("ecdsa-valid-seckey-n-1", Ecdsa, true, |g| {
        ecdsa_parts(g.ecdsa(Some(N_MINUS_1), false))
    }),
    kind!("ecdsa-s-eq-half-n-low", Ecdsa, true, |g| ecdsa_parts(
        g.ecdsa_with_s(HALF_N)
    )),
    kind!("ecdsa-s-eq-half-n-plus-1-high", Ecdsa, false, |g| {
        let job = g.ecdsa_with_s(HALF_N);
        let signature = der::strict(&job.r, &HALF_N_PLUS_1);
        (job.public_key, signature, job.message)
    }),
    kind!("ecdsa-high-s", Ecdsa, false, |g| {
        let job = g.ecdsa_any();
        let signature = der::strict(&job.r, &negate(job.s));
        (job.public_key, signature, job.message)
    }),
    kind!("ecdsa-tampered-message", Ecdsa, false, |g| {
        let (k, s, mut m) = ecdsa_parts(g.ecdsa_any());
        match m.len() {
            0 => m.push(1),
            len => flip(g, &mut m, 0, len),
        }
        (k, s, m)
    }),
    kind!("ecdsa-tampered-r", Ecdsa, false, |g| {
        let mut job = g.ecdsa_any();
        flip(g, &mut job.r, 0, 32);
        ecdsa_parts(job)
    }),
    kind!("ecdsa-tampered-s", Ecdsa, false, |g| {
        let mut job = g.ecdsa_any();
        flip(g, &mut job.s, 0, 32);
        ecdsa_parts(job)
    }),
    kind!("ecdsa-wrong-key", Ecdsa, false, |g| {
        let other = g.ecdsa_any().public_key;
        with_key(g, |_| other)
    }),
    kind!("ecdsa-r-zero", Ecdsa, false, |g| {
        let job = g.ecdsa_any();
        (
            job.public_key.clone(),
            der::strict(&[0], &job.s),
            job.message,
        )
    }),
    kind!("ecdsa-s-zero", Ecdsa, false, |g| {
        let job = g.ecdsa_any();
        (
            job.public_key.clone(),
            der::strict(&job.r, &[0]),
            job.message,
        )
    }),
    kind!("ecdsa-r-eq-n", Ecdsa, false, |g| {
        let job = g.ecdsa_any();
        (job.public_key.clone(), der::strict(&N, &job.s), job.message)
    }),
    kind!("ecdsa-s-eq-n", Ecdsa, false, |g| {
        let job = g.ecdsa_any();
        (job.public_key.clone(), der::strict(&job.r, &N), job.message)
    }),
    kind!("ecdsa-r-plus-n", Ecdsa, false, |g| {
        let job = g.ecdsa_any();
        let r = add(&job.r, &N);
        (job.public_key.clone(), der::strict(&r, &job.s), job.message)
    }),
    kind!("ecdsa-s-plus-n", Ecdsa, false, |g| {
        let job = g.ecdsa_any();
        let s = add(&job.s, &N);
        (job.public_key.clone(), der::strict(&job.r, &s), job.message)
    }),
    kind!("ecdsa-signature-compact-64", Ecdsa, false, |g| {
        let job = g.ecdsa_any();
        (job.public_key, [job.r, job.s].concat(), job.message)
    }),
    kind!("ecdsa-signature-hex-text", Ecdsa, false, |g| {
        let (k, s, m) = ecdsa_parts(g.ecdsa_any());
        (k, hex_text(&s), m)
    }),
    kind!("ecdsa-der-leading-zero-r", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| from_parts(&[&[0][..], r].concat(), s))
    }),
    kind!("ecdsa-der-leading-zero-s", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| from_parts(r, &[&[0][..], s].concat()))
    }),
    kind!("ecdsa-der-ber-long-form-outer-length", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| {
            let body = [integer(r), integer(s)].concat();
            [&[0x30, 0x81, body.len() as u8][..], &body].concat()
        })
    }),
    kind!("ecdsa-der-ber-long-form-r-length", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| {
            sequence(&[&[0x02, 0x81, r.len() as u8][..], r, &integer(s)].concat())
        })
    }),
    kind!("ecdsa-der-indefinite-length", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| {
            [&[0x30, 0x80][..], &integer(r), &integer(s), &[0, 0]].concat()
        })
    }),
    kind!("ecdsa-der-wrong-outer-tag", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| [&[0x31][..], &from_parts(r, s)[1..]].concat())
    }),
    kind!("ecdsa-der-wrong-integer-tag", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| {
            let mut der = from_parts(r, s);
            der[2] = 0x03;
            der
        })
    }),
    kind!("ecdsa-der-negative-s", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| from_parts(r, &[&[0xff][..], s].concat()))
    }),
    kind!("ecdsa-der-trailing-byte", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| [from_parts(r, s), vec![0]].concat())
    }),
    kind!("ecdsa-der-trailing-byte-inside", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| {
            sequence(&[integer(r), integer(s), vec![0]].concat())
        })
    }),
    kind!("ecdsa-der-outer-length-plus-1", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| {
            let mut der = from_parts(r, s);
            der[1] += 1;
            der
        })
    }),
    kind!("ecdsa-der-outer-length-minus-1", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| {
            let mut der = from_parts(r, s);
            der[1] -= 1;
            der
        })
    }),
    kind!("ecdsa-der-r-length-plus-1", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| {
            let mut der = from_parts(r, s);
            der[3] += 1;
            der
        })
    }),
    kind!("ecdsa-der-s-length-minus-1", Ecdsa, false, |g| {
        der_rewritten(g, |r, s| {
            let mut der = from_parts(r, s);
            der[5 + r.len()] -= 1;
            der
        })
    }),
    kind!("ecdsa-der-empty", Ecdsa, false, |g| der_rewritten(
        g,
        |_, _| Vec::new()
    )),
    kind!("ecdsa-key-prefix-00", Ecdsa, false, |g| reprefixed(
        g, false, true, 0x00
    )),
    kind!("ecdsa-key-prefix-01", Ecdsa, false, |g| reprefixed(
        g, true, true, 0x01
    )),
    kind!("ecdsa-key-prefix-05-even-y", Ecdsa, false, |g| {
        reprefixed(g, false, true, 0x05)
    }),
    kind!("ecdsa-key-prefix-05-odd-y", Ecdsa, false, |g| reprefixed(
        g, true, true, 0x05
    )),
    kind!("ecdsa-key-hybrid-06-even-y", Ecdsa, false, |g| {
        reprefixed(g, false, false, 0x06)
    }),
    kind!("ecdsa-key-hybrid-07-odd-y", Ecdsa, false, |g| {
        reprefixed(g, true, false, 0x07)
    }),
    kind!("ecdsa-key-swapped-parity", Ecdsa, false, |g| {
        with_key(g, |job| {
            let mut key = job.sec1(true);
            key[0] ^= 0x01;
            key
        })
    }),
    kind!("ecdsa-key-x-eq-p", Ecdsa, false, |g| {
        with_key(g, |_| [&[0x02][..], &P].concat())
    }),
    kind!("ecdsa-key-off-curve", Ecdsa, false, |g| {
        let x = off_curve_x(g);
        with_key(g, |_| [&[0x02][..], &x].concat())
    }),
    kind!("ecdsa-key-all-zero", Ecdsa, false, |g| with_key(g, |_| {
        vec![0; 33]
    })),
    kind!("ecdsa-key-raw-64", Ecdsa, false, |g| {
        with_key(g, |job| job.sec1(false)[1..].to_vec())
    }),
    kind!("ecdsa-key-hex-text", Ecdsa, false, |g| {
        with_key(g, |job| hex_text(&job.public_key))
    }),
];
