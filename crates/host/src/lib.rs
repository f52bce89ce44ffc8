//! Which module version serves each scheme, and the one place where a
//! version becomes the one serving.
//!
//! A [`ModuleHost`] owns the [`ModuleSet`](hotwasm_worker::ModuleSet) the
//! workers read, the optional [`ModuleRegistry`](hotwasm_registry::ModuleRegistry),
//! and the policy that picks the modules at start (the registry's active
//! version, else the built-in variant). Every change of the serving module
//! goes through it — a module loaded over gRPC or dropped into a watched
//! directory, an activation, a rollback, a swap made by a tool — in the
//! same steps:
//!
//! 1. **validate**: check that [`HostConfig::trust`] trusts it (signed by
//!    a trusted key, or built in) before anything of it runs, then compile
//!    and self-test, holding no lock, so a slow or hostile module never
//!    blocks administration;
//! 2. **stage**: make and warm instances for the workers to take;
//! 3. **commit**: under one short lock, record the change in the registry,
//!    store the new module's pointer, count the swap, and publish one
//!    [`Activation`] event to every subscriber (metrics, audit log and
//!    rollout hook in here).
//!
//! # Layout
//!
//! - [`ModuleHost`], [`HostConfig`], [`Startup`], [`Staged`]: the host (`host.rs`).
//! - [`Activation`], [`Cause`]: the event of a commit (`events.rs`).
//! - `builtin.rs`: the modules built into this binary, addressable as versions.
//! - [`audit`]: who administered which module, and the outcome.
//! - [`watch`]: load and activate `.wasm` files dropped into a directory.

pub mod audit;
mod builtin;
mod events;
mod host;
pub mod watch;

pub use audit::{AuditEntry, AuditLog};
pub use events::{Activation, Cause};
pub use host::{HostConfig, ModuleHost, Staged, Startup};

/// A host that could not start, or a module change it refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The runtime could not be created.
    #[error(transparent)]
    Runtime(hotwasm_runtime::RuntimeError),
    /// A built-in module is missing or does not load.
    #[error(transparent)]
    Modules(#[from] hotwasm_worker::WorkerError),
    /// The registry refused the request or could not be read.
    #[error(transparent)]
    Registry(#[from] hotwasm_registry::RegistryError),
    /// Module administration without a registry.
    #[error(
        "this server runs without a module registry: only its built-in modules can be activated"
    )]
    NoRegistry,
    /// Another request changed the module's versions while this one was
    /// validating; nothing was changed by this one.
    #[error("{0} changed while this request was validating its module: try again")]
    Changed(String),
}
