//! The server's shared state: the module set serving each scheme, the
//! worker pool, the registry behind module administration, and counters.
//!
//! Both front doors use it: the queue consumer ([`crate::consume`]) and the
//! gRPC service ([`crate::grpc`]). Module administration validates and
//! compiles a version before it is activated, so an activation is one
//! pointer store and a refused module never serves.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use hotwasm_abi::Scheme;
use hotwasm_jobs::{Job, JobLimits, JobLine, Verdict};
use hotwasm_modules::BuiltModule;
use hotwasm_registry::{ModuleRegistry, RegistryError, VersionInfo};
use hotwasm_runtime::{Limits, RuntimeKind};
use hotwasm_worker::{ModuleSet, SchemeModule};

use crate::ServerError;
use crate::pool::WorkerPool;

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// This server's name: its consumer name in the queue's group, and the
    /// `server` of its verdicts. Unique per process.
    pub name: String,
    /// The runtime modules run on.
    pub runtime: RuntimeKind,
    /// Built-in variant for schemes the registry has no active module for
    /// (default: the runtime's preferred one).
    pub variant: Option<String>,
    /// The module registry (module administration needs one).
    pub registry: Option<PathBuf>,
    /// Worker threads.
    pub workers: usize,
    /// Bounds on what a job may carry.
    pub limits: JobLimits,
    /// Bounds on what a guest module may use (time, memory, sizes).
    pub guest_limits: Limits,
}

impl ServerConfig {
    /// A configuration with the defaults: `<hostname>-<pid>` as name, the
    /// preferred variant, no registry, one worker per core.
    pub fn new(runtime: RuntimeKind) -> ServerConfig {
        ServerConfig {
            name: default_name(),
            runtime,
            variant: None,
            registry: None,
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            limits: JobLimits::default(),
            guest_limits: Limits::default(),
        }
    }
}

/// `<hostname>-<pid>`: unique per process across the hosts of a group.
pub fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hotwasm".to_string());
    format!("{host}-{}", std::process::id())
}

/// Counters since the server started.
#[derive(Debug, Default)]
pub struct Stats {
    /// Jobs that could not be read as jobs.
    pub malformed: AtomicU64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: AtomicU64,
    /// Module activations and rollbacks.
    pub swaps: AtomicU64,
}

/// A running server's state; shared as `Arc<Server>`.
pub struct Server {
    config: ServerConfig,
    set: Arc<ModuleSet>,
    pool: WorkerPool,
    registry: Option<Arc<Mutex<ModuleRegistry>>>,
    stats: Stats,
    started: Instant,
}

impl Server {
    /// Creates the runtime, activates a module per scheme (the registry's
    /// active version, else the built-in variant), and starts the workers.
    ///
    /// # Errors
    ///
    /// [`ServerError`] when the runtime, the registry or a module cannot be
    /// set up.
    pub fn start(config: ServerConfig) -> Result<Arc<Server>, ServerError> {
        let set = ModuleSet::new(
            config
                .runtime
                .create_with(config.guest_limits)
                .map_err(ServerError::Runtime)?,
        );
        let registry = match &config.registry {
            Some(dir) => Some(ModuleRegistry::open(dir)?),
            None => None,
        };
        let variant = config
            .variant
            .clone()
            .unwrap_or_else(|| config.runtime.preferred_variant().to_string());
        for scheme in Scheme::ALL {
            let active = registry
                .as_ref()
                .and_then(|r| r.active(scheme.as_str()).map(|v| (r, v)));
            let module = match active {
                Some((registry, version)) => {
                    registry.prepare(&version, set.runtime_handle().as_ref())?
                }
                None => set.compile_built(scheme, &variant)?,
            };
            tracing::info!(%scheme, module = %module.id, "serving");
            set.activate(scheme, module);
        }
        let pool = WorkerPool::start(&set, config.workers).map_err(ServerError::Threads)?;
        Ok(Arc::new(Server {
            config,
            set,
            pool,
            registry: registry.map(|r| Arc::new(Mutex::new(r))),
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

    /// The modules serving each scheme.
    pub fn modules(&self) -> &Arc<ModuleSet> {
        &self.set
    }

    /// The registry behind module administration, to share with a
    /// directory watcher.
    pub fn registry_handle(&self) -> Option<&Arc<Mutex<ModuleRegistry>>> {
        self.registry.as_ref()
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

    /// The module id serving each scheme now.
    pub fn serving(&self) -> BTreeMap<String, String> {
        Scheme::ALL
            .into_iter()
            .filter_map(|scheme| {
                let module = self.set.get(scheme)?;
                Some((scheme.to_string(), module.id.clone()))
            })
            .collect()
    }

    /// Validates (compile, waPC shape, self-test) and stores `wasm` as a
    /// version of `name`; with `activate`, or when it is the name's first
    /// version, it also starts serving. Blocking: compiles.
    ///
    /// # Errors
    ///
    /// [`ServerError::NoRegistry`] without a registry, and the registry's
    /// refusal with its reason.
    pub fn load_module(
        &self,
        name: &str,
        wasm: &[u8],
        activate: bool,
    ) -> Result<VersionInfo, ServerError> {
        let mut registry = self.registry()?;
        let runtime = self.set.runtime_handle().as_ref();
        let (version, module) = registry.load_prepared(name, wasm, Some("grpc"), runtime)?;
        let version = if activate {
            registry.activate(&version.id)?
        } else {
            version
        };
        if version.state == hotwasm_registry::VersionState::Active {
            self.serve(&version.name, module);
        }
        Ok(version)
    }

    /// Makes a stored version (`name@hash`, a unique hash prefix of 4+
    /// digits) the active one, and serves it: prepared and prewarmed first,
    /// then swapped in with one pointer store. Blocking: may compile.
    ///
    /// The modules built into this binary are addressable too: a spec that
    /// names no stored version but a built-in module (`name@hash` as
    /// `ListModules` and the verdicts show it, or `name@native` on the
    /// native runtime) serves that module again. With a registry it is
    /// stored there first, so it survives a restart and can be rolled back
    /// from like any other version; without one, only built-in modules can
    /// be activated.
    ///
    /// # Errors
    ///
    /// A malformed spec ([`RegistryError::BadSpec`]), an unknown or
    /// ambiguous version, [`ServerError::NoRegistry`] for a version that is
    /// not built in on a server without a registry, or a version refused on
    /// this runtime (the serving version stays).
    pub fn activate_module(&self, spec: &str) -> Result<VersionInfo, ServerError> {
        let Some(mut registry) = self.registry_if_any() else {
            return match self.built_in(spec)? {
                Some(built) => self.serve_built_in(built),
                None => {
                    hotwasm_registry::parse_spec(spec)?;
                    Err(ServerError::NoRegistry)
                }
            };
        };
        let runtime = self.set.runtime_handle().as_ref();
        let (version, module) = match registry.resolve_version(spec) {
            Ok(version) => {
                let module = registry.prepare(&version, runtime)?;
                (registry.activate(&version.id)?, module)
            }
            Err(error @ (RegistryError::NotFound(_) | RegistryError::BadSpec(_))) => {
                let Some(built) = self.built_in(spec)? else {
                    return Err(error.into());
                };
                let source = format!("built-in {}", built.variant.name);
                let (version, module) =
                    registry.load_prepared(built.scheme, built.bytes, Some(&source), runtime)?;
                (registry.activate(&version.id)?, module)
            }
            Err(error) => return Err(error.into()),
        };
        self.serve(&version.name, module);
        Ok(version)
    }

    /// The built-in module `spec` names, if it names one: `name@hash` with
    /// a prefix of 4+ digits of a built-in module's hash, or `name@native`
    /// on the native runtime (the server's variant).
    ///
    /// # Errors
    ///
    /// [`RegistryError::Ambiguous`] when the prefix fits several.
    fn built_in(&self, spec: &str) -> Result<Option<&'static BuiltModule>, RegistryError> {
        let Some((name, prefix)) = spec.split_once('@') else {
            return Ok(None);
        };
        if prefix == "native" && self.config.runtime == RuntimeKind::Native {
            return Ok(hotwasm_modules::find(name, &self.variant()));
        }
        let Ok((name, prefix)) = hotwasm_registry::parse_spec(spec) else {
            return Ok(None);
        };
        let mut matches: Vec<&'static BuiltModule> = hotwasm_modules::built()
            .iter()
            .filter(|m| m.scheme == name && m.hash().starts_with(&prefix))
            .collect();
        // Two variants may compile to the same bytes: one version.
        matches.dedup_by_key(|m| m.hash());
        match matches.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(RegistryError::Ambiguous(spec.to_string())),
        }
    }

    /// Serves a built-in module without a registry to record it in.
    fn serve_built_in(&self, built: &'static BuiltModule) -> Result<VersionInfo, ServerError> {
        let scheme =
            Scheme::from_name(built.scheme).ok_or_else(|| RegistryError::NotFound(built.id()))?;
        let module = self.set.compile_built(scheme, built.variant.name)?;
        self.serve(built.scheme, module);
        Ok(VersionInfo {
            name: built.scheme.to_string(),
            hash: built.hash(),
            id: built.id(),
            size: built.bytes.len() as u64,
            state: hotwasm_registry::VersionState::Active,
            loaded_unix: 0,
            source: Some(format!("built-in {}", built.variant.name)),
        })
    }

    /// The variant built-in modules are taken from when the registry has
    /// no active version.
    fn variant(&self) -> String {
        self.config
            .variant
            .clone()
            .unwrap_or_else(|| self.config.runtime.preferred_variant().to_string())
    }

    /// Returns `name` to the version active before, and serves it.
    ///
    /// # Errors
    ///
    /// [`RegistryError::BadName`] for a name no module can have (empty,
    /// say), whatever the server's state; otherwise as
    /// [`Server::activate_module`], and no previous version is an error.
    pub fn rollback_module(&self, name: &str) -> Result<VersionInfo, ServerError> {
        hotwasm_registry::check_name(name)?;
        let mut registry = self.registry()?;
        let previous = registry
            .previous(name)
            .ok_or_else(|| hotwasm_registry::RegistryError::NoHistory(name.to_string()))?;
        let module = registry.prepare(&previous, self.set.runtime_handle().as_ref())?;
        let version = registry.rollback(name)?;
        self.serve(&version.name, module);
        Ok(version)
    }

    /// The registry's versions.
    ///
    /// # Errors
    ///
    /// [`ServerError::NoRegistry`].
    pub fn list_modules(&self) -> Result<Vec<VersionInfo>, ServerError> {
        Ok(self.registry()?.list())
    }

    fn serve(&self, name: &str, module: Arc<SchemeModule>) {
        if let Some(scheme) = Scheme::from_name(name) {
            self.swap_in(scheme, module);
        }
    }

    /// Serves `module` for `scheme` from the next call on: prewarmed
    /// instances for every worker first, then one pointer store. Counted
    /// as a swap. Returns the module it replaces, to swap back to.
    pub fn swap_in(&self, scheme: Scheme, module: Arc<SchemeModule>) -> Option<Arc<SchemeModule>> {
        self.set
            .prewarm(scheme, &module, self.set.workers().max(self.pool.threads()));
        tracing::info!(%scheme, module = %module.id, "activated");
        let previous = self.set.activate(scheme, module);
        self.stats.swaps.fetch_add(1, Ordering::Relaxed);
        previous
    }

    fn registry(&self) -> Result<MutexGuard<'_, ModuleRegistry>, ServerError> {
        self.registry_if_any().ok_or(ServerError::NoRegistry)
    }

    fn registry_if_any(&self) -> Option<MutexGuard<'_, ModuleRegistry>> {
        let registry = self.registry.as_ref()?;
        Some(
            registry
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}
