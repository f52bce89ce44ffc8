//! Who may administer modules: every `LoadModule`, `ActivateModule` and
//! `RollbackModule` must carry an admin token the server was started with
//! (`authorization: Bearer NAME:SECRET`), and every one of them — refused
//! or not — goes to the host's audit trail with the token's name and the
//! caller's address. `ListModules` and `Stats` change nothing and stay
//! open, as do the verification calls.

use hotwasm_auth::AdminTokens;
use hotwasm_host::{AuditEntry, AuditLog};
use tonic::{Request, Status};

/// The caller of an administration request that was let in.
pub(crate) struct Caller {
    /// The token's name.
    pub(crate) who: String,
    /// `grpc <peer address>`.
    pub(crate) via: String,
}

impl Caller {
    /// Records what came of `action` on `target`.
    pub(crate) fn audit<T>(
        &self,
        audit: &AuditLog,
        action: &str,
        target: &str,
        outcome: &Result<T, Status>,
        done: impl FnOnce(&T) -> String,
    ) {
        audit.record(&AuditEntry {
            who: &self.who,
            via: &self.via,
            action,
            target,
            outcome: match outcome {
                Ok(value) => Ok(done(value)),
                Err(status) => Err(status.message().to_string()),
            },
        });
    }
}

/// Lets `request` in if it carries one of `tokens`; a refusal is audited.
pub(crate) fn authorize<T>(
    tokens: &AdminTokens,
    audit: &AuditLog,
    request: &Request<T>,
    action: &str,
    target: &str,
) -> Result<Caller, Status> {
    let via = match request.remote_addr() {
        Some(address) => format!("grpc {address}"),
        None => "grpc".to_string(),
    };
    let presented = request
        .metadata()
        .get("authorization")
        .and_then(|value| value.to_str().ok());
    let refusal = if tokens.is_empty() {
        Status::permission_denied(
            "module administration is closed on this server: its operator gave it no admin tokens",
        )
    } else {
        match presented.and_then(|header| tokens.check(header)) {
            Some(who) => {
                return Ok(Caller {
                    who: who.to_string(),
                    via,
                });
            }
            None if presented.is_none() => Status::unauthenticated(
                "module administration needs an admin token: send `authorization: Bearer NAME:SECRET` with a token this server accepts",
            ),
            None => Status::unauthenticated("the admin token is not one this server accepts"),
        }
    };
    audit.record(&AuditEntry {
        who: "unauthenticated",
        via: &via,
        action,
        target,
        outcome: Err(refusal.message().to_string()),
    });
    Err(refusal)
}
