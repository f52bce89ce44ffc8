//! The versioned module registry.
//!
//! A module version is a name plus the SHA-256 of its bytes. Loading a
//! version validates it before it can ever serve: it must be trusted
//! ([`hotwasm_trust::Trust`]: signed by a trusted key, or built in), checked
//! before any of it is compiled, then compile on the runtime, speak waPC, and answer a self-test (a known valid and a known
//! invalid signature) correctly. Versions live on disk; one per name is
//! active, and the ones active before it form a history that
//! [`ModuleRegistry::rollback`] walks back. Compiled artifacts are cached on
//! disk per engine configuration, with an integrity check, so a restart or a
//! re-activation does not compile again.
//!
//! # Layout
//!
//! - [`ModuleRegistry`]: the on-disk registry (`store.rs`).
//! - [`parse_spec`], [`check_name`]: the shape of `name@hash` (`spec.rs`).
//! - [`validate()`]: trust check, compile and self-test, without touching
//!   the registry (`validate.rs`); [`selftest`]: the test every version must pass.
//! - [`cache`]: precompiled artifacts, checked before use.
//! - `file.rs`: atomic file replacement.
//!
//! Serving modules (activation, prewarming, the directory watch) is the
//! `hotwasm-host` crate's; this crate only stores and validates.

pub mod cache;
mod file;
pub mod selftest;
mod spec;
mod store;
mod validate;

use std::path::PathBuf;

pub use cache::ArtifactCache;
pub use spec::{check_name, parse_spec};
pub use store::{ModuleRegistry, VersionInfo, VersionState};
pub use validate::{Validated, validate};

/// A registry operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The artifact cache's key cannot be read or made.
    #[error(transparent)]
    Key(hotwasm_auth::SecretError),
    /// Reading or writing the registry directory failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The registry's state file is not valid.
    #[error("registry state {} is corrupt: {message}", path.display())]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A module name that is not a plain identifier.
    #[error("invalid module name {0:?}: use letters, digits, '-' and '_' only")]
    BadName(String),
    /// A version spec that is not `NAME@HASH`: no `@`, a name no module
    /// can have (empty, say), no hash or a hash that is not hex.
    #[error(
        "{0:?} is not a version: expected NAME@HASH, a module name and at least 4 hex digits of its hash"
    )]
    BadSpec(String),
    /// No version matches.
    #[error("no version {0} in the registry")]
    NotFound(String),
    /// A hash prefix matches more than one version, or is shorter than
    /// four digits.
    #[error("{0} is ambiguous: give more digits of the hash (4 at least)")]
    Ambiguous(String),
    /// Nothing to roll back to.
    #[error("{0} has no previous version to roll back to")]
    NoHistory(String),
    /// The module was refused before anything of it ran: it is not signed
    /// by a trusted key, nor built in.
    #[error("{module} refused: {reason}")]
    Untrusted {
        /// `name@hash`.
        module: String,
        /// Why.
        reason: hotwasm_trust::Untrusted,
    },
    /// The module was refused: it does not compile, is not waPC, or fails
    /// the self-test.
    #[error("{module} refused: {reason}")]
    Refused {
        /// `name@hash`.
        module: String,
        /// Why.
        reason: String,
    },
}
