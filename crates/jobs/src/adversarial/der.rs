//! DER written by hand: strict `SEQUENCE { INTEGER r, INTEGER s }` and the
//! pieces to build every non-strict variant of it on purpose.

/// The content octets of a DER INTEGER for the unsigned big-endian
/// `value`: no superfluous leading zeros, one zero added when the top bit
/// is set.
pub(crate) fn int_content(value: &[u8]) -> Vec<u8> {
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

/// `tag || short length || content`. Contents here are at most 72 bytes.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, u8::try_from(content.len()).unwrap_or(u8::MAX)];
    out.extend_from_slice(content);
    out
}

/// An INTEGER with the given content octets.
pub(crate) fn integer(content: &[u8]) -> Vec<u8> {
    tlv(0x02, content)
}

/// A SEQUENCE around `body`.
pub(crate) fn sequence(body: &[u8]) -> Vec<u8> {
    tlv(0x30, body)
}

/// A sequence of two INTEGERs with the given content octets.
pub(crate) fn from_parts(r: &[u8], s: &[u8]) -> Vec<u8> {
    sequence(&[integer(r), integer(s)].concat())
}

/// Strict DER of (r, s), unsigned big-endian values of any length.
pub(crate) fn strict(r: &[u8], s: &[u8]) -> Vec<u8> {
    from_parts(&int_content(r), &int_content(s))
}

/// `a + b` as 33 big-endian bytes (the carry first).
pub(crate) fn add(a: &[u8; 32], b: &[u8; 32]) -> [u8; 33] {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_der_pads_high_bits_and_strips_zeros() {
        assert_eq!(int_content(&[0, 0, 0x80]), vec![0, 0x80]);
        assert_eq!(int_content(&[0, 0]), vec![0]);
        assert_eq!(strict(&[1], &[2]), vec![0x30, 6, 2, 1, 1, 2, 1, 2]);
        assert_eq!(add(&[0xff; 32], &[0xff; 32])[0], 1);
    }
}
