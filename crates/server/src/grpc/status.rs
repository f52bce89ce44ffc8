//! Errors to `tonic::Status`: the one place where the service decides what
//! a failure means on the wire.
//!
//! | error | code | why |
//! |---|---|---|
//! | `NotFound` (unknown version) | `NOT_FOUND` | |
//! | `BadSpec` (not `NAME@HASH`: `""`, no `@`, not hex), `Ambiguous` (a prefix of < 4 digits or fitting several), `BadName` (an empty name, say) | `INVALID_ARGUMENT` | the request itself is wrong, whatever the state |
//! | `Refused` (does not compile, not waPC, fails the self-test) | `INVALID_ARGUMENT` | the module is bad on this server, whatever the state |
//! | `Untrusted` (unsigned, changed after signing, signed by a key the server does not trust) | `PERMISSION_DENIED` | the server's trust policy refuses the module's author |
//! | `Untrusted` because the bytes are not a module whose signature can be read | `INVALID_ARGUMENT` | garbage, as for `Refused` |
//! | `NoHistory` (nothing to roll back to), `NoRegistry` | `FAILED_PRECONDITION` | valid request, wrong server state |
//! | `Changed` (another request changed the module while this one validated) | `ABORTED` | a concurrency conflict: retry |
//! | `Io`, `Corrupt`, runtime, worker, thread errors | `INTERNAL` | the server's fault |
//! | a request over the size limit (tonic says `OUT_OF_RANGE`) | `RESOURCE_EXHAUSTED` | what the gRPC spec asks for |
//!
//! Messages speak to a remote client: they name RPCs, never a command to
//! run on the server's host.
//! | the client's deadline passed | `DEADLINE_EXCEEDED` | tonic's own timeout says `CANCELLED` |

use hotwasm_registry::RegistryError;
use tonic::{Code, Status};

use hotwasm_host::HostError;

/// The status for a refused or failed module administration request.
pub(crate) fn admin(error: &HostError) -> Status {
    let message = match error {
        HostError::Registry(RegistryError::NotFound(what)) => {
            format!("no version {what} on this server, stored or built in (ListModules lists them)")
        }
        _ => error.to_string(),
    };
    let code = match error {
        HostError::Registry(registry) => match registry {
            RegistryError::NotFound(_) => Code::NotFound,
            RegistryError::BadSpec(_)
            | RegistryError::Ambiguous(_)
            | RegistryError::BadName(_)
            | RegistryError::Refused { .. } => Code::InvalidArgument,
            RegistryError::Untrusted {
                reason: hotwasm_trust::Untrusted::Malformed(_),
                ..
            } => Code::InvalidArgument,
            RegistryError::Untrusted { .. } => Code::PermissionDenied,
            RegistryError::NoHistory(_) => Code::FailedPrecondition,
            _ => Code::Internal,
        },
        HostError::NoRegistry => Code::FailedPrecondition,
        HostError::Changed(_) => Code::Aborted,
        _ => Code::Internal,
    };
    Status::new(code, message)
}

/// The status for an administration task that panicked or was cancelled.
pub(crate) fn task_failed(error: &tokio::task::JoinError) -> Status {
    Status::internal(format!("the administration task failed: {error}"))
}

/// The status when the client's deadline has passed.
pub(crate) fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("the deadline passed before the call finished")
}

/// The status of a response too large to send.
pub(crate) fn response_too_large(len: usize, limit: usize) -> Status {
    Status::resource_exhausted(format!(
        "the response would be {len} bytes, more than the limit of {limit}; send fewer jobs per batch"
    ))
}

/// A status tonic produced while reading a request, as the API reports it:
/// tonic answers a message over the size limit with `OUT_OF_RANGE`, the gRPC
/// spec asks for `RESOURCE_EXHAUSTED`. The service itself never returns
/// `OUT_OF_RANGE`, so every one is a size limit.
pub(crate) fn inbound(status: Status) -> Status {
    if status.code() == Code::OutOfRange {
        Status::resource_exhausted(status.message().to_string())
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_errors_map_to_documented_codes() {
        let code = |e: RegistryError| admin(&HostError::Registry(e)).code();
        assert_eq!(
            code(RegistryError::NotFound("x@1234".into())),
            Code::NotFound
        );
        assert_eq!(
            code(RegistryError::Ambiguous("x@12".into())),
            Code::InvalidArgument
        );
        assert_eq!(
            code(RegistryError::BadSpec("x".into())),
            Code::InvalidArgument
        );
        assert_eq!(
            code(RegistryError::BadName("a/b".into())),
            Code::InvalidArgument
        );
        assert_eq!(
            code(RegistryError::Refused {
                module: "x@1".into(),
                reason: "garbage".into()
            }),
            Code::InvalidArgument
        );
        assert_eq!(
            code(RegistryError::Untrusted {
                module: "x@1".into(),
                reason: hotwasm_trust::Untrusted::Unsigned
            }),
            Code::PermissionDenied
        );
        assert_eq!(
            code(RegistryError::Untrusted {
                module: "x@1".into(),
                reason: hotwasm_trust::Untrusted::Malformed("garbage".into())
            }),
            Code::InvalidArgument
        );
        assert_eq!(
            code(RegistryError::NoHistory("x".into())),
            Code::FailedPrecondition
        );
        assert_eq!(
            code(RegistryError::Io {
                action: "reading",
                path: "/x".into(),
                source: std::io::Error::other("boom"),
            }),
            Code::Internal
        );
        assert_eq!(
            admin(&HostError::NoRegistry).code(),
            Code::FailedPrecondition
        );
        assert_eq!(
            admin(&HostError::Changed("schnorr".into())).code(),
            Code::Aborted
        );
    }

    #[test]
    fn oversized_requests_are_resource_exhausted() {
        let mapped = inbound(Status::out_of_range("too large"));
        assert_eq!(mapped.code(), Code::ResourceExhausted);
        assert_eq!(mapped.message(), "too large");
        assert_eq!(inbound(Status::internal("x")).code(), Code::Internal);
    }
}
