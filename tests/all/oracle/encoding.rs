//! Byte-level helpers for the oracle's cases: the curve constants, 256-bit
//! additions, and DER written by hand so that every non-strict form can be
//! built on purpose. Nothing here knows about signatures; libsecp256k1
//! decides what the bytes mean. The DER pieces repeat those of
//! `hotwasm-jobs`' adversarial generator on purpose: the oracle shares no
//! code with what it checks.

/// The group order n.
pub const N: [u8; 32] = hex32("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
/// n - 1: the largest secret key.
pub const N_MINUS_1: [u8; 32] =
    hex32("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140");
/// The field prime p.
pub const P: [u8; 32] = hex32("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f");
/// (n - 1) / 2: the largest low-S value.
pub const HALF_N: [u8; 32] =
    hex32("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0");
/// (n + 1) / 2: the smallest high-S value.
pub const HALF_N_PLUS_1: [u8; 32] =
    hex32("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1");

const fn hex32(text: &str) -> [u8; 32] {
    let bytes = text.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(bytes[2 * i]) << 4) | nibble(bytes[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a hex digit"),
    }
}

/// `a + b` as a big-endian number of 33 bytes (the carry first).
pub fn add(a: &[u8; 32], b: &[u8; 32]) -> [u8; 33] {
    let mut out = [0u8; 33];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i + 1] = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    out[0] = carry as u8;
    out
}

/// `a + small`, which must fit in 256 bits.
pub fn add_small(a: &[u8; 32], small: u8) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[31] = small;
    let sum = add(a, &b);
    assert_eq!(sum[0], 0, "overflow");
    let mut out = [0u8; 32];
    out.copy_from_slice(&sum[1..]);
    out
}

/// `a + p` when it fits in 256 bits: another encoding of the same field
/// element, out of range.
pub fn plus_p(a: &[u8; 32]) -> Option<[u8; 32]> {
    let sum = add(a, &P);
    (sum[0] == 0).then(|| {
        let mut out = [0u8; 32];
        out.copy_from_slice(&sum[1..]);
        out
    })
}

/// A 32-byte big-endian number with value `small`.
pub fn small(value: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[24..].copy_from_slice(&value.to_be_bytes());
    out
}

/// The content octets of a DER INTEGER for the unsigned big-endian `value`:
/// no superfluous leading zeros, one zero added when the top bit is set.
pub fn der_int_content(value: &[u8]) -> Vec<u8> {
    let first = value.iter().position(|&b| b != 0).unwrap_or(value.len());
    let mut out = if first == value.len() {
        vec![0]
    } else {
        value[first..].to_vec()
    };
    if out[0] & 0x80 != 0 {
        out.insert(0, 0);
    }
    out
}

/// An INTEGER TLV with the given content octets, short-form length.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, u8::try_from(content.len()).expect("short content")];
    out.extend_from_slice(content);
    out
}

/// Strict DER `SEQUENCE { INTEGER r, INTEGER s }`.
pub fn der(r: &[u8], s: &[u8]) -> Vec<u8> {
    der_from_parts(&der_int_content(r), &der_int_content(s))
}

/// A sequence of two INTEGERs with the given content octets.
pub fn der_from_parts(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut body = tlv(0x02, r);
    body.extend(tlv(0x02, s));
    tlv(0x30, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_consistent() {
        // (n - 1) / 2 + (n + 1) / 2 = n.
        assert_eq!(add(&HALF_N, &HALF_N_PLUS_1)[1..], N);
        assert_eq!(add_small(&HALF_N, 1), HALF_N_PLUS_1);
        assert_eq!(der_int_content(&[0, 0, 0x80]), vec![0, 0x80]);
        assert_eq!(der_int_content(&[0, 0]), vec![0]);
    }
}
