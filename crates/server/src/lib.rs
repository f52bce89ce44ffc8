//! The hotwasm server: verifies jobs from a queue and over gRPC in
//! hot-swappable modules, and sends the verdicts back.
//!
//! A [`Server`] owns the modules serving each scheme, a [`WorkerPool`] of
//! threads running them, and the registry behind module administration.
//! [`consume`] takes jobs from a [`JobQueue`](hotwasm_queue::JobQueue)
//! (Redis Streams or in-process), writes each verdict where its client
//! reads (a results stream or a shared-memory ring) and only then
//! acknowledges the job. [`grpc`] is the tonic service: unary and streaming
//! verify, batches, module administration, statistics, health and
//! reflection.
//!
//! # Layout
//!
//! - [`Server`], [`ServerConfig`]: shared state and module administration (`server.rs`).
//! - [`WorkerPool`]: worker threads (`pool.rs`).
//! - [`consume`]: the queue consumer loop (`consume.rs`); verdicts leave
//!   through `hotwasm_queue::reply`'s sinks.
//! - [`grpc`]: the gRPC service (`grpc.rs`, `grpc/`).

pub mod consume;
pub mod grpc;
pub mod pool;
mod server;

pub use pool::WorkerPool;
pub use server::{Server, ServerConfig, Stats, default_name};

/// A server that could not start or an administration request refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
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
    /// Worker threads could not be started.
    #[error("starting worker threads: {0}")]
    Threads(std::io::Error),
}
