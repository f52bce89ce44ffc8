//! The self-test every module version must pass before it can serve.
//!
//! For each scheme the module claims, it must say `valid: true` to a
//! correctly signed job and `valid: false` to the same job with a tampered
//! signature. A module that traps, answers garbage, or gets either verdict
//! wrong is refused.

use hotwasm_abi::Scheme;
use hotwasm_jobs::{Generator, Job};
use hotwasm_runtime::{CallError, CompiledModule, Instance, RuntimeError};

/// The self-test jobs for `scheme`: one valid, one invalid.
pub fn jobs(scheme: Scheme) -> [Job; 2] {
    let valid = Generator::new(0x5e1f, scheme.into(), 0.0).job();
    let mut invalid = valid.clone();
    invalid.id = format!("{}-tampered", valid.id);
    if let Some(last) = invalid.signature.last_mut() {
        *last ^= 1;
    }
    invalid.expect = Some(false);
    [valid, invalid]
}

/// Why a module failed its self-test.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelfTestError {
    /// No instance could be made.
    #[error("cannot instantiate: {0}")]
    Instantiate(RuntimeError),
    /// A self-test call failed (trap, deadline, protocol, bad answer).
    #[error("self-test {scheme} job failed: {source}")]
    Call {
        /// The scheme tested.
        scheme: Scheme,
        /// How the call failed.
        source: CallError,
    },
    /// The module got a verdict wrong.
    #[error(
        "self-test: a {} {scheme} signature was judged {}",
        if *.expected_valid { "valid" } else { "tampered" },
        if *.judged_valid { "valid" } else { "invalid" }
    )]
    WrongVerdict {
        /// The scheme tested.
        scheme: Scheme,
        /// Whether the signature was the valid one.
        expected_valid: bool,
        /// What the module said.
        judged_valid: bool,
    },
}

/// Runs the self-test for `scheme` on a fresh instance of `module`.
///
/// # Errors
///
/// [`SelfTestError`] naming the job that went wrong.
pub fn run(module: &dyn CompiledModule, scheme: Scheme) -> Result<(), SelfTestError> {
    run_keeping(module, scheme).map(drop)
}

/// [`run`], returning the instance that passed, warm from the test's two
/// verifies, when the runtime's instances can move between threads (all
/// but wasm3's): a worker can serve with it instead of making and warming
/// another (`hotwasm_worker::SchemeModule::keep_warm`).
///
/// # Errors
///
/// As [`run`].
pub fn run_keeping(
    module: &dyn CompiledModule,
    scheme: Scheme,
) -> Result<Option<Box<dyn Instance + Send>>, SelfTestError> {
    let mut instance = match module.instantiate_sendable() {
        Some(sendable) => Tested::Sendable(sendable.map_err(SelfTestError::Instantiate)?),
        None => Tested::Local(module.instantiate().map_err(SelfTestError::Instantiate)?),
    };
    for job in jobs(scheme) {
        let response = hotwasm_runtime::verify(instance.as_mut(), &job.request())
            .map_err(|source| SelfTestError::Call { scheme, source })?;
        let expected_valid = job.expect == Some(true);
        if response.valid != expected_valid {
            return Err(SelfTestError::WrongVerdict {
                scheme,
                expected_valid,
                judged_valid: response.valid,
            });
        }
    }
    Ok(match instance {
        Tested::Sendable(instance) => Some(instance),
        Tested::Local(_) => None,
    })
}

/// The instance under test.
enum Tested {
    Sendable(Box<dyn Instance + Send>),
    Local(Box<dyn Instance>),
}

impl Tested {
    fn as_mut(&mut self) -> &mut dyn Instance {
        match self {
            Tested::Sendable(instance) => instance.as_mut(),
            Tested::Local(instance) => instance.as_mut(),
        }
    }
}
