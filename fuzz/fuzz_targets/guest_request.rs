//! The guests' `verify` handler compiled natively: the MessagePack
//! request decoding and the verification behind it, as the `native`
//! runtime runs them (the same `hotwasm-secp` code the guests are built
//! from). Nothing may panic; only an undecodable request is an error;
//! every answer decodes; and whether a signature is valid agrees with
//! libsecp256k1 (with hotwasm's one policy difference: hybrid keys).

#![no_main]

use hotwasm_abi::{OPERATION, Scheme, VerifyRequest, VerifyResponse};
use hotwasm_runtime::{CallError, Instance, RuntimeKind};
use libfuzzer_sys::fuzz_target;
use secp256k1::{Message, PublicKey, XOnlyPublicKey, ecdsa, schnorr};
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let mut instance = native_instance();
    let decoded = hotwasm_abi::decode::<VerifyRequest>(data);
    match instance.call(OPERATION, data) {
        Err(CallError::Guest(_)) => assert!(decoded.is_err(), "a decodable request was refused"),
        Err(other) => panic!("the native verifier failed otherwise than by decoding: {other}"),
        Ok(answer) => {
            let request = decoded.expect("the handler decoded what the contract cannot");
            let response: VerifyResponse =
                hotwasm_abi::decode(&answer).expect("every answer is a VerifyResponse");
            assert_eq!(response.valid, response.reason.is_none(), "{response:?}");
            let again = hotwasm_abi::decode::<VerifyRequest>(&hotwasm_abi::encode(&request));
            assert_eq!(
                again.ok().as_ref(),
                Some(&request),
                "the request round-trips"
            );
            let expected = Scheme::from_name(&request.scheme).is_some_and(|scheme| {
                libsecp256k1_accepts(
                    scheme,
                    &request.public_key,
                    &request.signature,
                    &request.message,
                )
            });
            assert_eq!(
                response.valid, expected,
                "hotwasm and libsecp256k1 disagree: {response:?}"
            );
        }
    }
});

fn native_instance() -> Box<dyn Instance> {
    RuntimeKind::Native
        .create()
        .and_then(|runtime| runtime.compile(&[]))
        .and_then(|module| module.instantiate())
        .expect("the native runtime always loads")
}

/// libsecp256k1's verdict, with hotwasm's policy on hybrid keys (refused,
/// as SEC1 and Bitcoin's strict encoding do): the oracle of the test suite
/// (`tests/all/oracle/judge.rs`), reduced to valid or not.
fn libsecp256k1_accepts(
    scheme: Scheme,
    public_key: &[u8],
    signature: &[u8],
    message: &[u8],
) -> bool {
    match scheme {
        Scheme::Schnorr => {
            let (Ok(key), Ok(signature)) = (
                <[u8; 32]>::try_from(public_key),
                <[u8; 64]>::try_from(signature),
            ) else {
                return false;
            };
            let Ok(key) = XOnlyPublicKey::from_byte_array(key) else {
                return false;
            };
            schnorr::verify(
                &schnorr::Signature::from_byte_array(signature),
                message,
                &key,
            )
            .is_ok()
        }
        Scheme::Ecdsa => {
            if matches!(public_key.first(), Some(0x06 | 0x07)) {
                return false;
            }
            let (Ok(key), Ok(signature)) = (
                PublicKey::from_slice(public_key),
                ecdsa::Signature::from_der(signature),
            ) else {
                return false;
            };
            let digest: [u8; 32] = Sha256::digest(message).into();
            ecdsa::verify(&signature, Message::from_digest(digest), &key).is_ok()
        }
    }
}
