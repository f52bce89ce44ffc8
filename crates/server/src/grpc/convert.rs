//! Messages to jobs and back: a `VerifyRequest` becomes a validated
//! [`Job`] (or the reason it cannot), verdicts and registry versions become
//! their messages.

use hotwasm_jobs::{Job, JobError, JobLimits, Verdict};
use hotwasm_modules::BuiltModule;
use hotwasm_proto::v1;
use hotwasm_registry::{VersionInfo, VersionState};
use hotwasm_worker::HealthReport;

/// A request as a [`Job`], validated as a JSON line is ([`Job::new`]).
///
/// # Errors
///
/// The [`JobError`] naming the first field that is wrong.
pub(crate) fn job(request: v1::VerifyRequest, limits: &JobLimits) -> Result<Job, JobError> {
    Job::new(
        request.id,
        &request.scheme,
        request.public_key,
        request.signature,
        request.message,
        None,
        limits,
    )
}

/// A verdict as the API sends it, with the name of the server that made it.
///
/// A job that never reached a module (a malformed request, no module for
/// its scheme, a server shutting down) was not run: its verdict carries no
/// `module`, an empty `runtime` and `micros: 0`, so it cannot be mistaken
/// for a run that took no time.
pub(crate) fn verdict(verdict: Verdict, server: &str) -> v1::Verdict {
    let ran = verdict.module.is_some();
    v1::Verdict {
        id: verdict.id.unwrap_or_default(),
        valid: verdict.valid,
        reason: verdict.reason,
        runtime: if ran { verdict.runtime } else { String::new() },
        module: verdict.module,
        micros: if ran { verdict.micros } else { 0.0 },
        server: server.to_string(),
    }
}

/// A module built into the server, as the API lists it: state
/// `"built-in"`, activatable by its id like a stored version.
/// The call counts of the version `id` serving `scheme`.
pub(crate) fn health(
    (scheme, id, report): (hotwasm_abi::Scheme, String, HealthReport),
) -> v1::ModuleHealth {
    v1::ModuleHealth {
        scheme: scheme.to_string(),
        id,
        calls: report.calls,
        failures: report.failures,
        failures_in_a_row: report.failures_in_a_row,
        failing: report.failing(),
        last_failure: report.last_failure.unwrap_or_default(),
    }
}

pub(crate) fn built_in(module: &BuiltModule) -> v1::ModuleVersion {
    v1::ModuleVersion {
        id: module.id(),
        name: module.scheme.to_string(),
        sha256: module.hash(),
        size: module.bytes.len() as u64,
        state: "built-in".to_string(),
    }
}

/// A registry version as the API lists it.
pub(crate) fn version(version: &VersionInfo) -> v1::ModuleVersion {
    v1::ModuleVersion {
        id: version.id.clone(),
        name: version.name.clone(),
        sha256: version.hash.clone(),
        size: version.size,
        state: match version.state {
            VersionState::Active => "active",
            VersionState::Previous => "previous",
            VersionState::Available => "available",
        }
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotwasm_abi::Scheme;

    fn request() -> v1::VerifyRequest {
        v1::VerifyRequest {
            id: "7".into(),
            scheme: "schnorr".into(),
            public_key: vec![2; 32],
            signature: vec![3; 64],
            message: vec![4; 10],
        }
    }

    #[test]
    fn a_well_formed_request_is_a_job() {
        let job = job(request(), &JobLimits::default()).expect("a job");
        assert_eq!(job.id, "7");
        assert_eq!(job.scheme, Scheme::Schnorr);
        assert_eq!(job.message, vec![4; 10]);
    }

    #[test]
    fn a_verdict_that_never_reached_a_module_does_not_look_like_a_run() {
        let never = verdict(Verdict::error(Some("x".into()), "wasmtime", "bad"), "s");
        assert_eq!(never.runtime, "");
        assert_eq!(never.module, None);
        assert_eq!(never.micros, 0.0);
        let ran = Verdict {
            module: Some("schnorr@1234".into()),
            micros: 51.2,
            ..Verdict::error(Some("y".into()), "wasmtime", "does not verify")
        };
        let ran = verdict(ran, "s");
        assert_eq!(ran.runtime, "wasmtime");
        assert_eq!(ran.micros, 51.2);
    }

    #[test]
    fn bad_requests_name_what_is_wrong() {
        let limits = JobLimits {
            max_message_bytes: 4,
            ..JobLimits::default()
        };
        let empty_id = v1::VerifyRequest {
            id: String::new(),
            ..request()
        };
        assert_eq!(job(empty_id, &limits), Err(JobError::EmptyId));
        let rsa = v1::VerifyRequest {
            scheme: "rsa".into(),
            ..request()
        };
        assert_eq!(
            job(rsa, &limits),
            Err(JobError::UnknownScheme("rsa".into()))
        );
        assert_eq!(
            job(request(), &limits),
            Err(JobError::TooLarge {
                field: "message",
                len: 10,
                limit: 4
            })
        );
    }
}
