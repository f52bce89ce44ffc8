//! The server's shared state: the module host (which module serves each
//! scheme, and module administration), the worker pool, and counters.
//!
//! Both front doors use it: the queue consumer ([`crate::consume`]) and the
//! gRPC service ([`crate::grpc`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hotwasm_host::{HostConfig, ModuleHost};
use hotwasm_jobs::{Job, JobLimits, JobLine, Verdict};
use hotwasm_runtime::RuntimeKind;

use crate::ServerError;
use crate::pool::WorkerPool;

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// This server's name: its consumer name in the queue's group, and the
    /// `server` of its verdicts. Unique per process.
    pub name: String,
    /// Worker threads.
    pub workers: usize,
    /// Bounds on what a job may carry.
    pub limits: JobLimits,
    /// The modules: runtime, guest limits, built-in variant, registry
    /// (module administration needs one). Their prewarm count is the
    /// number of workers, whatever it says.
    pub modules: HostConfig,
}

impl ServerConfig {
    /// A configuration with the defaults: `<hostname>-<pid>` as name, one
    /// worker per core, and [`HostConfig::new`]'s modules (the preferred
    /// variant, no registry).
    pub fn new(runtime: RuntimeKind) -> ServerConfig {
        ServerConfig {
            name: default_name(),
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            limits: JobLimits::default(),
            modules: HostConfig::new(runtime),
        }
    }
}

/// `<hostname>-<pid>`: unique per process across the hosts of a group.
pub fn default_name() -> String {
    let host = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_string();
    let host = if host.is_empty() {
        "hotwasm".to_string()
    } else {
        host
    };
    format!("{host}-{}", std::process::id())
}

/// Counters since the server started (module swaps are the host's:
/// [`ModuleHost::swaps`]).
#[derive(Debug, Default)]
pub struct Stats {
    /// Jobs that could not be read as jobs.
    pub malformed: AtomicU64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: AtomicU64,
    /// Jobs taken over from other consumers (a dead or stalled server's).
    pub reclaimed: AtomicU64,
    /// Verdicts not delivered because the job had been reclaimed by
    /// another server meanwhile (this one stalled past the reclaim time):
    /// the new owner's verdict is the one delivered.
    pub fenced: AtomicU64,
    /// gRPC calls refused because every in-flight slot was taken
    /// (`RESOURCE_EXHAUSTED`).
    pub refused: AtomicU64,
    /// gRPC calls being handled now (a streaming call until its response
    /// starts).
    pub grpc_in_flight: Arc<AtomicU64>,
}

/// A running server's state; shared as `Arc<Server>`.
pub struct Server {
    config: ServerConfig,
    host: Arc<ModuleHost>,
    pool: WorkerPool,
    stats: Stats,
    started: Instant,
}

impl Server {
    /// Starts the module host (the registry's active version of each
    /// scheme, else the built-in variant) and the workers. Blocking:
    /// compiles and self-tests.
    ///
    /// # Errors
    ///
    /// [`ServerError`] when the runtime, the registry or a module cannot be
    /// set up, or the threads cannot start.
    pub fn start(config: ServerConfig) -> Result<Arc<Server>, ServerError> {
        let host = ModuleHost::start(HostConfig {
            prewarm: config.workers,
            ..config.modules.clone()
        })?;
        let pool =
            WorkerPool::start(host.modules(), config.workers).map_err(ServerError::Threads)?;
        Ok(Arc::new(Server {
            config,
            host,
            pool,
            stats: Stats::default(),
            started: Instant::now(),
        }))
    }

    /// This server's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The configuration it started with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The worker pool.
    pub fn pool(&self) -> &WorkerPool {
        &self.pool
    }

    /// The module host: which module serves each scheme, and module
    /// administration.
    pub fn host(&self) -> &Arc<ModuleHost> {
        &self.host
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// When the server started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Parses one JSON job line within the server's limits; on failure, the
    /// error verdict to send back instead (counted as malformed).
    pub fn parse_job(&self, line: &[u8]) -> Result<Job, Verdict> {
        let text = String::from_utf8_lossy(line);
        let parsed = match JobLine::parse(text.trim()) {
            Err(e) => Err((None, e.to_string())),
            Ok(job_line) => job_line.validate(&self.config.limits).map_err(|e| {
                let id = (!job_line.id.is_empty()).then(|| job_line.id.clone());
                (id, format!("malformed job: {e}"))
            }),
        };
        parsed.map_err(|(id, reason)| {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            Verdict::error(id, self.pool.runtime(), reason)
        })
    }
}
