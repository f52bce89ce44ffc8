//! A server and a client in one process: the whole pipeline
//! (client → queue → server → ring or results stream → client) for
//! `hotwasm demo` and the benchmark.
//!
//! With a [`MemoryQueue`](hotwasm_queue::MemoryQueue) nothing needs to be
//! installed; with a [`RedisQueue`](hotwasm_queue::RedisQueue) the jobs
//! make the full trip through Redis.

use std::sync::Arc;

use hotwasm_queue::{JobQueue, ResultsStreams};
use hotwasm_server::consume::{ConsumeOptions, consume};
use hotwasm_server::{Server, ServerConfig};

use crate::ClientError;
use crate::submit::{Outgoing, SubmitOptions, submit};
use crate::summary::Summary;

/// The two halves' settings.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// The in-process server.
    pub server: ServerConfig,
    /// Its consumer loop.
    pub consume: ConsumeOptions,
    /// The client.
    pub submit: SubmitOptions,
}

/// Starts the in-process server: its runtime, modules and workers, with
/// every module compiled, so nothing after this is compile time.
///
/// # Errors
///
/// [`ClientError`] when the server cannot start.
pub async fn start(config: ServerConfig) -> Result<Arc<Server>, ClientError> {
    Ok(tokio::task::spawn_blocking(move || Server::start(config))
        .await
        .map_err(|e| ClientError::Stopped(e.to_string()))??)
}

/// Starts a server on `queue` (compiling its modules before anything is
/// timed), submits `jobs`, collects their verdicts, and shuts the server
/// down gracefully. The summary's times cover submission to last verdict.
///
/// # Errors
///
/// [`ClientError`] when the server cannot start or the submission fails.
pub async fn run<Q: JobQueue + ResultsStreams>(
    queue: Arc<Q>,
    jobs: &[Outgoing],
    options: PipelineOptions,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Summary, ClientError> {
    let server = start(options.server.clone()).await?;
    run_on(server, queue, jobs, &options, progress).await
}

/// As [`run`], on a server already started with [`start`] (so the caller
/// can act on it while the jobs run, e.g. swap its modules).
///
/// # Errors
///
/// [`ClientError`] when the submission fails.
pub async fn run_on<Q: JobQueue + ResultsStreams>(
    server: Arc<Server>,
    queue: Arc<Q>,
    jobs: &[Outgoing],
    options: &PipelineOptions,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Summary, ClientError> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let consumer = tokio::spawn(consume(
        server,
        Arc::clone(&queue),
        options.consume.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let summary = submit(queue, jobs, &options.submit, progress).await;
    let _ = stop.send(());
    let _ = consumer.await;
    summary
}
