//! Turns jobs into verdicts.
//!
//! A [`ModuleSet`] holds one compiled module per scheme on one runtime; a
//! [`Worker`] owns instances of them (one thread, one worker) and routes
//! each job to the module for its scheme, timing the call and turning every
//! failure — a malformed job, a trapping module, a garbled response — into
//! a verdict with a reason. [`stream`] runs a whole JSON Lines stream.
//!
//! # Layout
//!
//! - [`ModuleSet`]: the active module per scheme, swappable (`modules.rs`).
//! - [`Worker`]: instances, routing, verdicts (`worker.rs`).
//! - [`CallHealth`]: how each version's calls go, failing versions
//!   reported (`health.rs`).
//! - [`Trial`]: a candidate version shadowing the serving one, or serving
//!   a share of jobs as a canary (`trial.rs`).
//! - [`stream`]: JSON Lines in, verdict lines out, a [`stream::Summary`].

pub mod health;
pub mod modules;
pub mod stream;
pub mod trial;
pub mod worker;

pub use health::{CallHealth, DURATION_BUCKETS, FAILING_AFTER, FAILURE_KINDS, HealthReport};
pub use modules::{ModuleSet, SchemeModule};
pub use trial::{Disagreement, Trial, TrialMode, TrialSnapshot};
pub use worker::Worker;

/// A module set that could not be assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The runtime could not be created.
    #[error(transparent)]
    Runtime(#[from] hotwasm_runtime::RuntimeError),
    /// This build carries no module for the scheme and variant.
    #[error(
        "no {scheme} module in variant {variant:?} (known variants: {known}; extra ones need HOTWASM_ALL_VARIANTS=1 at build time)"
    )]
    NoSuchModule {
        /// The scheme.
        scheme: String,
        /// The variant asked for.
        variant: String,
        /// The variants this build carries.
        known: String,
    },
    /// A module failed to compile on the chosen runtime.
    #[error("{module} does not load on {runtime}: {source}")]
    Load {
        /// The module id.
        module: String,
        /// The runtime.
        runtime: String,
        /// Why.
        source: hotwasm_runtime::RuntimeError,
    },
}
