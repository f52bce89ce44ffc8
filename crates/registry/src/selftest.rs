//! The self-test every module version must pass before it can serve.
//!
//! For each scheme the module claims, it must say `valid: true` to a
//! correctly signed job and `valid: false` to the same job with a tampered
//! signature. A module that traps, answers garbage, or gets either verdict
//! wrong is refused.

use hotwasm_abi::{OPERATION, Scheme, VerifyResponse};
use hotwasm_jobs::{Generator, Job, SchemeChoice};
use hotwasm_runtime::CompiledModule;

/// The self-test jobs for `scheme`: one valid, one invalid.
pub fn jobs(scheme: Scheme) -> [Job; 2] {
    let choice = match scheme {
        Scheme::Schnorr => SchemeChoice::Schnorr,
        Scheme::Ecdsa => SchemeChoice::Ecdsa,
    };
    let valid = Generator::new(0x5e1f, choice, 0.0).job();
    let mut invalid = valid.clone();
    invalid.id = format!("{}-tampered", valid.id);
    if let Some(last) = invalid.signature.last_mut() {
        *last ^= 1;
    }
    invalid.expect = Some(false);
    [valid, invalid]
}

/// Runs the self-test for `scheme` on a fresh instance of `module`.
///
/// # Errors
///
/// A reason naming the job that went wrong.
pub fn run(module: &dyn CompiledModule, scheme: Scheme) -> Result<(), String> {
    let mut instance = module
        .instantiate()
        .map_err(|e| format!("cannot instantiate: {e}"))?;
    for job in jobs(scheme) {
        let payload = hotwasm_abi::encode(&job.request());
        let response = instance
            .call(OPERATION, &payload)
            .map_err(|e| format!("self-test {scheme} job failed: {e}"))?;
        let response: VerifyResponse = hotwasm_abi::decode(&response)
            .map_err(|e| format!("self-test {scheme} job got an undecodable answer: {e}"))?;
        if Some(response.valid) != job.expect {
            return Err(format!(
                "self-test: a {} {scheme} signature was judged {}",
                if job.expect == Some(true) {
                    "valid"
                } else {
                    "tampered"
                },
                if response.valid { "valid" } else { "invalid" },
            ));
        }
    }
    Ok(())
}
