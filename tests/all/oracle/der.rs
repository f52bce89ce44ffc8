//! Every non-strict DER form of an otherwise valid ECDSA signature:
//! padding, BER lengths, indefinite length, wrong tags, negative integers,
//! trailing bytes, lengths off by one, missing and extra parts.

use rand::rngs::StdRng;

use hotwasm_abi::Scheme;

use super::cases::{BAD_SIGNATURE, Built, Class, built};
use super::ecdsa::{Signed, signed};
use super::encoding::{der_from_parts, der_int_content, tlv};

/// A valid signature whose DER is rewritten from its parts by `rewrite`
/// (given the content octets of r and s).
fn rewritten(rng: &mut StdRng, rewrite: impl Fn(&[u8], &[u8]) -> Vec<u8>) -> Built {
    let signed = signed(rng);
    let (r, s) = parts(&signed);
    let signature = rewrite(&r, &s);
    assert_ne!(signature, signed.der(), "the rewrite changed nothing");
    built(signed.public_key, signature, signed.message, BAD_SIGNATURE)
}

/// A valid signature whose r has its top bit set (so strict DER pads it).
fn signed_with_high_r(rng: &mut StdRng) -> Signed {
    loop {
        let signed = signed(rng);
        if signed.r[0] & 0x80 != 0 {
            return signed;
        }
    }
}

fn parts(signed: &Signed) -> (Vec<u8>, Vec<u8>) {
    (der_int_content(&signed.r), der_int_content(&signed.s))
}

fn integer(content: &[u8]) -> Vec<u8> {
    tlv(0x02, content)
}

/// `30 len body` with the body as given.
fn sequence(body: &[u8]) -> Vec<u8> {
    tlv(0x30, body)
}

/// Adds `delta` to the length byte at `at`.
fn bump(mut der: Vec<u8>, at: usize, delta: i8) -> Vec<u8> {
    der[at] = der[at].wrapping_add_signed(delta);
    der
}

/// Every DER class.
pub fn classes() -> Vec<Class> {
    let e = Scheme::Ecdsa;
    let mut classes = vec![
        Class::new("ecdsa-der-leading-zero-r", e, |rng| {
            rewritten(rng, |r, s| der_from_parts(&[&[0][..], r].concat(), s))
        }),
        Class::new("ecdsa-der-leading-zero-s", e, |rng| {
            rewritten(rng, |r, s| der_from_parts(r, &[&[0][..], s].concat()))
        }),
        Class::new("ecdsa-der-ber-long-form-outer-length", e, |rng| {
            rewritten(rng, |r, s| {
                let body = [integer(r), integer(s)].concat();
                [&[0x30, 0x81, body.len() as u8][..], &body].concat()
            })
        }),
        Class::new("ecdsa-der-ber-long-form-r-length", e, |rng| {
            rewritten(rng, |r, s| {
                let body = [&[0x02, 0x81, r.len() as u8][..], r, &integer(s)].concat();
                sequence(&body)
            })
        }),
        Class::new("ecdsa-der-ber-long-form-s-length", e, |rng| {
            rewritten(rng, |r, s| {
                let body = [&integer(r)[..], &[0x02, 0x81, s.len() as u8], s].concat();
                sequence(&body)
            })
        }),
        Class::new("ecdsa-der-ber-padded-long-form-length", e, |rng| {
            rewritten(rng, |r, s| {
                let body = [integer(r), integer(s)].concat();
                [&[0x30, 0x82, 0x00, body.len() as u8][..], &body].concat()
            })
        }),
        Class::new("ecdsa-der-indefinite-length", e, |rng| {
            rewritten(rng, |r, s| {
                [&[0x30, 0x80][..], &integer(r), &integer(s), &[0, 0]].concat()
            })
        }),
        Class::new("ecdsa-der-wrong-outer-tag-set", e, |rng| {
            rewritten(rng, |r, s| {
                let mut der = der_from_parts(r, s);
                der[0] = 0x31;
                der
            })
        }),
        Class::new("ecdsa-der-wrong-outer-tag-primitive", e, |rng| {
            rewritten(rng, |r, s| {
                let mut der = der_from_parts(r, s);
                der[0] = 0x10;
                der
            })
        }),
        Class::new("ecdsa-der-wrong-r-tag", e, |rng| {
            rewritten(rng, |r, s| {
                let mut der = der_from_parts(r, s);
                der[2] = 0x03;
                der
            })
        }),
        Class::new("ecdsa-der-wrong-s-tag", e, |rng| {
            rewritten(rng, |r, s| {
                let mut der = der_from_parts(r, s);
                der[4 + r.len()] = 0x04;
                der
            })
        }),
        Class::new("ecdsa-der-negative-r", e, |rng| {
            // r with its top bit set, the padding zero removed.
            let signed = signed_with_high_r(rng);
            let (_, s) = parts(&signed);
            let signature = der_from_parts(&signed.r, &s);
            built(signed.public_key, signature, signed.message, BAD_SIGNATURE)
        }),
        Class::new("ecdsa-der-negative-s", e, |rng| {
            rewritten(rng, |r, s| {
                let negative = [&[0xff][..], s].concat();
                der_from_parts(r, &negative)
            })
        }),
        Class::new("ecdsa-der-trailing-byte-after-sequence", e, |rng| {
            rewritten(rng, |r, s| [der_from_parts(r, s), vec![0]].concat())
        }),
        Class::new("ecdsa-der-trailing-byte-inside-sequence", e, |rng| {
            rewritten(rng, |r, s| {
                sequence(&[integer(r), integer(s), vec![0]].concat())
            })
        }),
        Class::new("ecdsa-der-third-integer", e, |rng| {
            rewritten(rng, |r, s| {
                sequence(&[integer(r), integer(s), integer(&[1])].concat())
            })
        }),
        Class::new("ecdsa-der-only-r", e, |rng| {
            rewritten(rng, |r, _| sequence(&integer(r)))
        }),
        Class::new("ecdsa-der-zero-length-r", e, |rng| {
            rewritten(rng, |_, s| sequence(&[integer(&[]), integer(s)].concat()))
        }),
        Class::new("ecdsa-der-empty", e, |rng| {
            rewritten(rng, |_, _| Vec::new())
        }),
        Class::new("ecdsa-der-truncated", e, |rng| {
            rewritten(rng, |r, s| {
                let mut der = der_from_parts(r, s);
                der.pop();
                der
            })
        }),
    ];
    // Each length byte off by one, both ways.
    for (name, delta) in [("plus-1", 1i8), ("minus-1", -1)] {
        classes.push(Class::new(
            format!("ecdsa-der-outer-length-{name}"),
            e,
            move |rng| rewritten(rng, move |r, s| bump(der_from_parts(r, s), 1, delta)),
        ));
        classes.push(Class::new(
            format!("ecdsa-der-r-length-{name}"),
            e,
            move |rng| rewritten(rng, move |r, s| bump(der_from_parts(r, s), 3, delta)),
        ));
        classes.push(Class::new(
            format!("ecdsa-der-s-length-{name}"),
            e,
            move |rng| {
                rewritten(rng, move |r, s| {
                    bump(der_from_parts(r, s), 5 + r.len(), delta)
                })
            },
        ));
    }
    classes
}
