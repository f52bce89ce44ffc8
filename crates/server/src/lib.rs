//! The hotwasm server: verifies jobs from a queue and over gRPC in
//! hot-swappable modules, and sends the verdicts back.
//!
//! A [`Server`] owns a [`ModuleHost`](hotwasm_host::ModuleHost) (which
//! module serves each scheme, and module administration) and a
//! [`WorkerPool`] of threads running the modules.
//! [`consume`] takes jobs from a [`JobQueue`](hotwasm_queue::JobQueue)
//! (Redis Streams or in-process), writes each verdict where its client
//! reads (a results stream or a shared-memory ring) and only then
//! acknowledges the job. [`grpc`] is the tonic service: unary and streaming
//! verify, batches, module administration, statistics, health and
//! reflection.
//!
//! # Layout
//!
//! - [`Server`], [`ServerConfig`]: shared state (`server.rs`).
//! - [`WorkerPool`]: worker threads (`pool.rs`).
//! - [`consume`]: the queue consumer loop (`consume.rs`); verdicts leave
//!   through `hotwasm_queue::reply`'s sinks.
//! - [`grpc`]: the gRPC service (`grpc.rs`, `grpc/`).
//! - [`metrics`]: the Prometheus endpoint (`metrics.rs`).

pub mod consume;
pub mod grpc;
pub mod metrics;
pub mod pool;
mod server;

pub use pool::WorkerPool;
pub use server::{Server, ServerConfig, Stats, default_name};

/// A multi-threaded tokio runtime fit to serve: module administration
/// validates guests on its blocking threads, so every thread gets a stack
/// fit for guests ([`GUEST_THREAD_STACK_BYTES`](hotwasm_runtime::GUEST_THREAD_STACK_BYTES)).
///
/// # Errors
///
/// The I/O error of starting its threads.
pub fn async_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(hotwasm_runtime::GUEST_THREAD_STACK_BYTES)
        .build()
}

/// A server that could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The module host could not start (runtime, registry, modules).
    #[error(transparent)]
    Host(#[from] hotwasm_host::HostError),
    /// Worker threads could not be started.
    #[error("starting worker threads: {0}")]
    Threads(std::io::Error),
}
