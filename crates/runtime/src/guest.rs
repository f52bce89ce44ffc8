//! The one typed call every caller makes: a `verify` request in, the
//! guest's decoded answer out.

use hotwasm_abi::{OPERATION, VerifyRequest, VerifyResponse};

use crate::{CallError, Instance};

/// Encodes `request`, calls the guest's `verify` operation and decodes its
/// answer.
///
/// # Errors
///
/// The [`CallError`] of the call, or [`CallError::Malformed`] when the
/// answer is not a `VerifyResponse`.
pub fn verify<I: Instance + ?Sized>(
    instance: &mut I,
    request: &VerifyRequest,
) -> Result<VerifyResponse, CallError> {
    let response = instance.call(OPERATION, &hotwasm_abi::encode(request))?;
    hotwasm_abi::decode(&response).map_err(|e| CallError::Malformed(e.to_string()))
}
