//! secp256k1 signature verification: the code every runtime runs.
//!
//! The guest modules compile this crate to WebAssembly; the `native` runtime
//! links it directly, which makes it the baseline every wasm figure is
//! compared with. Keeping one copy of the code is what makes the comparison
//! fair and the verdicts identical.
//!
//! # Layout
//!
//! - [`schnorr`]: BIP-340 over the raw message (feature `schnorr`).
//! - [`ecdsa`]: SHA-256, strict SEC1 key (02/03/04 only), strict DER,
//!   low-S (feature `ecdsa`).
//! - [`verify`], [`handle`]: dispatch by scheme and the waPC `verify`
//!   handler (MessagePack in, MessagePack out).
//! - [`libsecp256k1`] (feature `libsecp256k1`): the same contract with
//!   libsecp256k1, Bitcoin Core's C library, doing the curve arithmetic: a
//!   second, independent implementation (the `libsecp256k1` module family
//!   and the bench's limit rows). Each scheme module keeps the checks and
//!   reasons in one `verify_with`, so both libraries refuse alike.

use hotwasm_abi::{DecodeError, Scheme, VerifyRequest, VerifyResponse};
// Provides the critical-section implementation k256's lazy tables need;
// without a use, the linker would drop it and leave the symbols unresolved.
use critical_section as _;

#[cfg(feature = "ecdsa")]
pub mod ecdsa;
#[cfg(feature = "schnorr")]
pub mod schnorr;

/// Why a signature was rejected; becomes the `reason` of the response.
pub type Rejection = String;

/// Verifies one request with the schemes compiled into this build.
///
/// A scheme this build does not contain (a Schnorr-only guest asked for
/// ECDSA, or a name that is no scheme at all) is answered `valid: false`
/// with a reason, as the contract asks.
pub fn verify(request: &VerifyRequest) -> VerifyResponse {
    dispatch(
        request,
        #[cfg(feature = "schnorr")]
        schnorr::verify,
        #[cfg(feature = "ecdsa")]
        ecdsa::verify,
    )
}

/// One scheme's verifier: key, signature and message in, the reason out
/// when the signature is refused.
#[allow(dead_code)] // unused in a build with neither scheme
type SchemeVerifier = fn(&[u8], &[u8], &[u8]) -> Result<(), Rejection>;

/// Routes a request to the verifier of its scheme. Taking the verifiers as
/// arguments keeps one library's code out of a module built on the other.
fn dispatch(
    request: &VerifyRequest,
    #[cfg(feature = "schnorr")] schnorr: SchemeVerifier,
    #[cfg(feature = "ecdsa")] ecdsa: SchemeVerifier,
) -> VerifyResponse {
    let outcome = match Scheme::from_name(&request.scheme) {
        #[cfg(feature = "schnorr")]
        Some(Scheme::Schnorr) => schnorr(&request.public_key, &request.signature, &request.message),
        #[cfg(feature = "ecdsa")]
        Some(Scheme::Ecdsa) => ecdsa(&request.public_key, &request.signature, &request.message),
        #[allow(unreachable_patterns)]
        Some(scheme) => Err(format!("this module does not verify {scheme} signatures")),
        None => Err(format!("unknown scheme {:?}", request.scheme)),
    };
    match outcome {
        Ok(()) => VerifyResponse::valid(),
        Err(reason) => VerifyResponse::invalid(reason),
    }
}

/// The waPC `verify` handler: decodes the request, verifies, encodes the
/// response.
///
/// # Errors
///
/// [`DecodeError`] when the payload is not a MessagePack `verify` request;
/// that is the only case that becomes a waPC error.
pub fn handle(payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let request: VerifyRequest = hotwasm_abi::decode(payload)?;
    Ok(hotwasm_abi::encode(&verify(&request)))
}

/// The same contract with libsecp256k1 doing the curve arithmetic.
#[cfg(feature = "libsecp256k1")]
pub mod libsecp256k1 {
    use hotwasm_abi::{DecodeError, VerifyRequest, VerifyResponse};

    /// As [`crate::verify`], with libsecp256k1.
    pub fn verify(request: &VerifyRequest) -> VerifyResponse {
        crate::dispatch(
            request,
            #[cfg(feature = "schnorr")]
            crate::schnorr::verify_libsecp256k1,
            #[cfg(feature = "ecdsa")]
            crate::ecdsa::verify_libsecp256k1,
        )
    }

    /// As [`crate::handle`], with libsecp256k1.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] when the payload is not a MessagePack `verify`
    /// request.
    pub fn handle(payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let request: VerifyRequest = hotwasm_abi::decode(payload)?;
        Ok(hotwasm_abi::encode(&verify(&request)))
    }
}

/// The schemes this build verifies.
pub fn schemes() -> &'static [Scheme] {
    &[
        #[cfg(feature = "schnorr")]
        Scheme::Schnorr,
        #[cfg(feature = "ecdsa")]
        Scheme::Ecdsa,
    ]
}

/// A hint for a field that looks like hex text sent where raw bytes were
/// expected: an even number of ASCII hex digits whose decoded length
/// `raw_len_ok` accepts. Empty otherwise.
#[cfg(any(feature = "schnorr", feature = "ecdsa"))]
pub(crate) fn hex_text_hint(bytes: &[u8], raw_len_ok: impl Fn(usize) -> bool) -> &'static str {
    let hex = !bytes.is_empty()
        && bytes.len().is_multiple_of(2)
        && raw_len_ok(bytes.len() / 2)
        && bytes.iter().all(u8::is_ascii_hexdigit);
    if hex {
        "; these bytes are hex digits: was hex text sent where raw bytes were expected?"
    } else {
        ""
    }
}
