//! A server and a client in one process: the whole trip (client → queue →
//! server → ring or results stream → client) for `hotwasm demo` and the
//! benchmark.
//!
//! With a [`MemoryQueue`](hotwasm_queue::MemoryQueue) nothing needs to be
//! installed; with a [`RedisQueue`](hotwasm_queue::RedisQueue) the jobs
//! make the full trip through Redis. This crate joins `hotwasm-server` and
//! `hotwasm-client`, so neither depends on the other: a client builds
//! without any wasm runtime.

use std::sync::Arc;

use hotwasm_client::submit::submit;
use hotwasm_client::{ClientError, Outgoing, SubmitOptions, Summary};
use hotwasm_queue::{JobQueue, ResultsStreams};
use hotwasm_server::consume::{ConsumeOptions, consume};
use hotwasm_server::{Server, ServerConfig, ServerError};

/// A pipeline run that could not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The in-process server could not start.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The client's submission failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The task starting the server panicked or was cancelled.
    #[error("starting the in-process server: {0}")]
    Start(#[from] tokio::task::JoinError),
}

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

impl PipelineOptions {
    /// Both halves sign and check replies with one fresh reply key, as a
    /// deployment with a reply key does.
    #[must_use]
    pub fn with_fresh_reply_key(mut self) -> PipelineOptions {
        let key = hotwasm_auth::MacKey::generate();
        self.consume.reply_key = Some(key.clone());
        self.submit.reply_key = Some(key);
        self
    }
}

/// Starts the in-process server: its runtime, modules and workers, with
/// every module compiled, so nothing after this is compile time.
///
/// # Errors
///
/// [`PipelineError`] when the server cannot start.
pub async fn start(config: ServerConfig) -> Result<Arc<Server>, PipelineError> {
    Ok(tokio::task::spawn_blocking(move || Server::start(config)).await??)
}

/// Starts a server on `queue` (compiling its modules before anything is
/// timed), submits `jobs`, collects their verdicts, and shuts the server
/// down gracefully. The summary's times cover submission to last verdict.
///
/// # Errors
///
/// [`PipelineError`] when the server cannot start or the submission fails.
pub async fn run<Q: JobQueue + ResultsStreams>(
    queue: Arc<Q>,
    jobs: &[Outgoing],
    options: PipelineOptions,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Summary, PipelineError> {
    let server = start(options.server.clone()).await?;
    run_on(server, queue, jobs, &options, progress).await
}

/// As [`run`], on a server already started with [`start`] (so the caller
/// can act on it while the jobs run, e.g. swap its modules).
///
/// # Errors
///
/// [`PipelineError::Client`] when the submission fails.
pub async fn run_on<Q: JobQueue + ResultsStreams>(
    server: Arc<Server>,
    queue: Arc<Q>,
    jobs: &[Outgoing],
    options: &PipelineOptions,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Summary, PipelineError> {
    run_group(vec![server], queue, jobs, options, progress).await
}

/// As [`run_on`], with several servers consuming as one group (each needs
/// its own [`ServerConfig::name`]): how a fleet shares one stream.
///
/// # Errors
///
/// [`PipelineError::Client`] when the submission fails.
pub async fn run_group<Q: JobQueue + ResultsStreams>(
    servers: Vec<Arc<Server>>,
    queue: Arc<Q>,
    jobs: &[Outgoing],
    options: &PipelineOptions,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Summary, PipelineError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumers: Vec<_> = servers
        .into_iter()
        .map(|server| {
            let mut stopped = stopped.clone();
            tokio::spawn(consume(
                server,
                Arc::clone(&queue),
                options.consume.clone(),
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            ))
        })
        .collect();
    let summary = submit(queue, jobs, &options.submit, progress).await;
    let _ = stop.send(true);
    for consumer in consumers {
        let _ = consumer.await;
    }
    Ok(summary?)
}
