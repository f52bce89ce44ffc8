//! The waPC `verify` contract shared by the host and the guest modules.
//!
//! A guest registers the waPC operation [`OPERATION`]; its request is a
//! MessagePack map [`VerifyRequest`] and its response a MessagePack map
//! [`VerifyResponse`]. A well-formed request with a bad key or signature is
//! answered with `valid: false` and a reason; only a request that cannot be
//! decoded is a waPC error.
//!
//! # Layout
//!
//! - [`VerifyRequest`], [`VerifyResponse`]: the two messages.
//! - [`Scheme`]: the signature schemes, by their wire names.
//! - [`encode`], [`decode`]: the one MessagePack encoding both sides use.

use serde::{Deserialize, Serialize};

/// The waPC operation every verifying guest registers.
pub const OPERATION: &str = "verify";

/// A signature scheme, named on the wire as `"schnorr"` or `"ecdsa"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// BIP-340 Schnorr over the raw message bytes.
    Schnorr,
    /// secp256k1 ECDSA over SHA-256 of the message, strict DER, low-S.
    Ecdsa,
}

impl Scheme {
    /// Every scheme, in a fixed order.
    pub const ALL: [Scheme; 2] = [Scheme::Schnorr, Scheme::Ecdsa];

    /// The wire name of the scheme.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Schnorr => "schnorr",
            Scheme::Ecdsa => "ecdsa",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Scheme> {
        match name {
            "schnorr" => Some(Scheme::Schnorr),
            "ecdsa" => Some(Scheme::Ecdsa),
            _ => None,
        }
    }
}

impl core::fmt::Display for Scheme {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `verify` request: `{scheme, public_key, signature, message}`.
///
/// `scheme` travels as a string so that a guest can answer an unknown
/// scheme with `valid: false` and a reason instead of a decode error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRequest {
    /// `"schnorr"` or `"ecdsa"`.
    pub scheme: String,
    /// 32-byte x-only key (Schnorr) or SEC1 key, 33 or 65 bytes (ECDSA).
    #[serde(with = "serde_bytes")]
    pub public_key: Vec<u8>,
    /// 64-byte BIP-340 signature or a DER-encoded ECDSA signature.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
    /// The signed message, any length.
    #[serde(with = "serde_bytes")]
    pub message: Vec<u8>,
}

/// The `verify` response: `{valid, reason}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResponse {
    /// Whether the signature verifies.
    pub valid: bool,
    /// Why it does not, when `valid` is false.
    pub reason: Option<String>,
}

impl VerifyResponse {
    /// A signature that verifies.
    pub fn valid() -> Self {
        VerifyResponse {
            valid: true,
            reason: None,
        }
    }

    /// A signature that does not verify, and why.
    pub fn invalid(reason: impl Into<String>) -> Self {
        VerifyResponse {
            valid: false,
            reason: Some(reason.into()),
        }
    }
}

/// A message that is not the MessagePack map the contract describes.
#[derive(Debug)]
pub struct DecodeError(rmp_serde::decode::Error);

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "malformed MessagePack message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Encodes a message as a MessagePack map (field names as keys).
///
/// # Panics
///
/// If `value`'s `Serialize` implementation fails, which the messages of
/// this crate never do (an empty payload sent on instead would be worse).
#[allow(
    clippy::expect_used,
    reason = "plain structs of strings, bools and bytes into a Vec: no I/O, no unsupported type"
)]
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).expect("a message of strings, bools and bytes encodes")
}

/// Decodes a MessagePack message.
///
/// # Errors
///
/// [`DecodeError`] when the bytes are not a MessagePack encoding of `T`.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    rmp_serde::from_slice(bytes).map_err(DecodeError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_as_a_map_with_binary_fields() {
        let request = VerifyRequest {
            scheme: "schnorr".into(),
            public_key: vec![1; 32],
            signature: vec![2; 64],
            message: b"hello".to_vec(),
        };
        let bytes = encode(&request);
        // fixmap with 4 entries, then the key "scheme".
        assert_eq!(bytes[0], 0x84);
        assert_eq!(&bytes[1..8], b"\xa6scheme");
        // bin 8 header for the 32-byte key.
        assert!(bytes.windows(2).any(|w| w == [0xc4, 32]));
        assert_eq!(decode::<VerifyRequest>(&bytes).ok(), Some(request));
    }

    #[test]
    fn response_with_nil_reason_round_trips() {
        let bytes = encode(&VerifyResponse::valid());
        assert_eq!(bytes, b"\x82\xa5valid\xc3\xa6reason\xc0");
        assert_eq!(
            decode::<VerifyResponse>(&bytes).ok(),
            Some(VerifyResponse::valid())
        );
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(decode::<VerifyRequest>(b"\xff\x00garbage").is_err());
        assert!(decode::<VerifyRequest>(&[]).is_err());
    }

    #[test]
    fn scheme_names_round_trip() {
        for scheme in Scheme::ALL {
            assert_eq!(Scheme::from_name(scheme.as_str()), Some(scheme));
        }
        assert_eq!(Scheme::from_name("rsa"), None);
    }
}
