//! The host: the module set, the registry, and every change of the module
//! serving a scheme (validate without a lock → stage → commit).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Instant, SystemTime};

use crossbeam_channel::Receiver;
use hotwasm_abi::Scheme;
use hotwasm_registry::{
    ArtifactCache, ModuleRegistry, RegistryError, Validated, VersionInfo, VersionState,
};
use hotwasm_runtime::{Limits, Runtime, RuntimeKind};
use hotwasm_trust::Trust;
use hotwasm_worker::{HealthReport, ModuleSet, SchemeModule};

use crate::events::Subscribers;
use crate::{Activation, AuditLog, Cause, HostError, builtin};

/// Which modules serve when the host starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Startup {
    /// The registry's active version of each scheme, else the built-in
    /// variant.
    #[default]
    RegistryFirst,
    /// The built-in variant, whatever the registry holds.
    BuiltIn,
}

/// How to start a host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The runtime modules run on.
    pub runtime: RuntimeKind,
    /// Bounds on what a guest may use.
    pub limits: Limits,
    /// Built-in variant for schemes the registry has no active module for
    /// (default: the runtime's preferred one).
    pub variant: Option<String>,
    /// The registry directory (created if missing); module administration
    /// needs one.
    pub registry: Option<PathBuf>,
    /// Which modules serve at start.
    pub startup: Startup,
    /// Instances to prewarm for a module about to serve: at least the
    /// number of worker threads that will switch to it.
    pub prewarm: usize,
    /// A file to append the audit trail to, besides the log
    /// ([`AuditLog`]).
    pub audit_log: Option<PathBuf>,
    /// Which modules may load, checked before anything of a module is
    /// compiled or run, on every path (load, activation of a stored
    /// version, rollback, the registry's active version at start). The
    /// built-in modules are always trusted; the default trusts no key.
    pub trust: Trust,
    /// Tiered activation: a version about to serve that `runtime` has not
    /// compiled before (no artifact in the registry's cache) serves first
    /// as compiled by this faster-compiling runtime — `wasmtime-winch`,
    /// typically — after the same trust check and self-test, and is
    /// swapped for `runtime`'s build in the background once that has
    /// compiled, passed its self-test and been prewarmed
    /// ([`Cause::TierUp`]). A version this runtime refuses (Winch and
    /// wide-arithmetic) is compiled by `runtime` before it serves, as
    /// without tiering. `None` (the default): always so. `native` is
    /// refused (it would serve its built-in code, not the version).
    pub first_tier: Option<RuntimeKind>,
}

impl HostConfig {
    /// Defaults: default limits, the preferred variant, no registry,
    /// registry first, one prewarmed instance, no trusted key (only
    /// built-in modules load).
    pub fn new(runtime: RuntimeKind) -> HostConfig {
        HostConfig {
            runtime,
            limits: Limits::default(),
            variant: None,
            registry: None,
            startup: Startup::RegistryFirst,
            prewarm: 1,
            audit_log: None,
            trust: Trust::default(),
            first_tier: None,
        }
    }
}

/// A module validated and prewarmed for `scheme`, not serving yet: what
/// [`ModuleHost::commit`] makes serve.
pub struct Staged {
    scheme: Scheme,
    module: Arc<SchemeModule>,
    prewarmed: usize,
}

impl Staged {
    /// The scheme it will serve.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The module.
    pub fn module(&self) -> &Arc<SchemeModule> {
        &self.module
    }

    /// Instances made and warmed for it when it was staged, besides the
    /// one its self-test ran, which it keeps (none on runtimes whose
    /// instances cannot move between threads).
    pub fn prewarmed(&self) -> usize {
        self.prewarmed
    }
}

/// The registry and its artifact cache; the mutex guards the registry's
/// state only (never held while a guest runs).
struct Registry {
    state: Mutex<ModuleRegistry>,
    cache: ArtifactCache,
}

/// Which module serves each scheme; shared as `Arc<ModuleHost>`.
pub struct ModuleHost {
    /// This host, for the threads it starts (tier-ups).
    this: Weak<ModuleHost>,
    set: Arc<ModuleSet>,
    /// The faster-compiling runtime of tiered activation, if on.
    first_tier: Option<Arc<dyn Runtime>>,
    /// Tier-ups started and not finished.
    tier_ups: AtomicUsize,
    variant: String,
    startup: Startup,
    registry: Option<Registry>,
    /// Serializes commits: the registry's record and the serving pointer
    /// change together.
    commits: Mutex<()>,
    prewarm: usize,
    trust: Trust,
    swaps: AtomicU64,
    subscribers: Subscribers,
    audit: AuditLog,
}

impl ModuleHost {
    /// Creates the runtime, opens the registry, and makes a module serve
    /// each scheme as `config.startup` says. Blocking: compiles and
    /// self-tests.
    ///
    /// # Errors
    ///
    /// [`HostError`] when the runtime, the registry or a module cannot be
    /// set up.
    pub fn start(config: HostConfig) -> Result<Arc<ModuleHost>, HostError> {
        let runtime = config
            .runtime
            .create_with(config.limits)
            .map_err(HostError::Runtime)?;
        let registry = match &config.registry {
            Some(dir) => {
                let registry = ModuleRegistry::open(dir)?;
                Some(Registry {
                    cache: registry.cache().clone(),
                    state: Mutex::new(registry),
                })
            }
            None => None,
        };
        let audit = match &config.audit_log {
            Some(path) => AuditLog::to_file(path).map_err(|source| {
                HostError::Registry(RegistryError::Io {
                    action: "opening the audit log",
                    path: path.clone(),
                    source,
                })
            })?,
            None => AuditLog::log_only(),
        };
        let first_tier = match config.first_tier {
            Some(kind) if kind == config.runtime => None,
            // It would serve its built-in code, not the version loaded.
            Some(RuntimeKind::Native) => {
                return Err(HostError::Runtime(
                    hotwasm_runtime::RuntimeError::Unsupported {
                        runtime: "native",
                        what: "serving as the first tier (it runs built-in code, not the module)",
                    },
                ));
            }
            Some(kind) => Some(
                kind.create_first_tier(config.limits)
                    .map_err(HostError::Runtime)?,
            ),
            None => None,
        };
        let host = Arc::new_cyclic(|this| ModuleHost {
            this: this.clone(),
            first_tier,
            tier_ups: AtomicUsize::new(0),
            set: ModuleSet::new(runtime),
            variant: config
                .variant
                .unwrap_or_else(|| config.runtime.preferred_variant().to_string()),
            startup: config.startup,
            registry,
            commits: Mutex::new(()),
            prewarm: config.prewarm.max(1),
            trust: config.trust,
            swaps: AtomicU64::new(0),
            subscribers: Subscribers::default(),
            audit,
        });
        for scheme in Scheme::ALL {
            let module = match host.registry_active(scheme)? {
                Some(validated) => host.scheme_module(&validated),
                None => host.set.compile_built(scheme, &host.variant)?,
            };
            tracing::info!(%scheme, module = %module.id, "serving");
            let _commit = host.lock_commits();
            host.publish(scheme, module, Cause::Startup);
        }
        Ok(host)
    }

    /// A host serving the built-in modules of `variant` on `kind`, without
    /// a registry: what tools and benchmarks run on.
    ///
    /// # Errors
    ///
    /// As [`ModuleHost::start`].
    pub fn built(
        kind: RuntimeKind,
        variant: &str,
        limits: Limits,
    ) -> Result<Arc<ModuleHost>, HostError> {
        ModuleHost::start(HostConfig {
            limits,
            variant: Some(variant.to_string()),
            startup: Startup::BuiltIn,
            ..HostConfig::new(kind)
        })
    }

    /// The modules the workers read.
    pub fn modules(&self) -> &Arc<ModuleSet> {
        &self.set
    }

    /// The runtime modules run on.
    pub fn runtime(&self) -> RuntimeKind {
        self.set.runtime()
    }

    /// The built-in variant used where the registry has no version.
    pub fn variant(&self) -> &str {
        &self.variant
    }

    /// Which modules may load.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// Whether module administration has a registry to record in.
    pub fn has_registry(&self) -> bool {
        self.registry.is_some()
    }

    /// Commits since start, start-up excluded: activations, rollbacks,
    /// loads that activated, swaps.
    pub fn swaps(&self) -> u64 {
        self.swaps.load(Ordering::Relaxed)
    }

    /// The audit trail every door to this host records its actions in.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// A channel that receives every [`Activation`] from now on.
    pub fn subscribe(&self) -> Receiver<Activation> {
        self.subscribers.subscribe()
    }

    /// The module id serving each scheme now.
    pub fn serving(&self) -> BTreeMap<String, String> {
        Scheme::ALL
            .into_iter()
            .filter_map(|scheme| Some((scheme.to_string(), self.set.get(scheme)?.id.clone())))
            .collect()
    }

    /// How the calls of the version serving each scheme have gone since it
    /// started serving ([`HealthReport::failing`] marks one whose calls
    /// keep failing).
    pub fn health(&self) -> Vec<(Scheme, String, HealthReport)> {
        Scheme::ALL
            .into_iter()
            .filter_map(|scheme| {
                let module = self.set.get(scheme)?;
                Some((scheme, module.id.clone(), module.health.report()))
            })
            .collect()
    }

    /// The version serving each scheme, with its live counters and call
    /// durations (for metrics; [`ModuleHost::health`] is the snapshot).
    pub fn serving_modules(&self) -> Vec<(Scheme, Arc<hotwasm_worker::SchemeModule>)> {
        Scheme::ALL
            .into_iter()
            .filter_map(|scheme| Some((scheme, self.set.get(scheme)?)))
            .collect()
    }

    /// Validates (trust, compile, waPC shape, self-test) and stores `wasm`
    /// as a version of `name`; with `activate`, or when it is the name's first
    /// version, it also starts serving (if `name` is a scheme). `source`
    /// says where the bytes came from (`grpc`, a path). Blocking: compiles
    /// and runs the guest, holding no lock meanwhile.
    ///
    /// # Errors
    ///
    /// [`HostError::NoRegistry`] without a registry, and the registry's
    /// refusal with its reason: [`RegistryError::Untrusted`] for a module
    /// [`HostConfig::trust`] does not trust (unsigned, changed after
    /// signing, signed by another key), [`RegistryError::Refused`] for one
    /// that does not compile or fails its self-test.
    pub fn load(
        &self,
        name: &str,
        wasm: Vec<u8>,
        source: &str,
        activate: bool,
    ) -> Result<VersionInfo, HostError> {
        let registry = self.registry()?;
        let will_serve = activate || self.lock_registry(registry).active(name).is_none();
        let serves = Scheme::from_name(name).is_some() && will_serve;
        let (validated, tier_up) = self.validate_to_serve(registry, name, wasm, serves)?;
        let staged = Scheme::from_name(name)
            .filter(|_| will_serve)
            .map(|scheme| self.stage(scheme, self.scheme_module(&validated)));
        let _commit = self.lock_commits();
        let mut state = self.lock_registry(registry);
        let version = if activate {
            state.store_active(&validated, Some(source))?
        } else {
            state.store(&validated, Some(source))?
        };
        drop(state);
        if version.state == VersionState::Active
            && let Some(scheme) = Scheme::from_name(name)
        {
            // Unstaged only if it became the first version meanwhile.
            let staged = staged.unwrap_or_else(|| Staged {
                scheme,
                module: self.scheme_module(&validated),
                prewarmed: 0,
            });
            let serving = Arc::clone(&staged.module);
            let source = source.to_string();
            self.commit_locked(staged, Cause::Load { source });
            if let Some(wasm) = tier_up {
                self.start_tier_up(scheme, serving, wasm);
            }
        }
        Ok(version)
    }

    /// Makes a stored version (`name@hash`, a unique hash prefix of 4+
    /// digits) the active one, and serves it: validated and prewarmed
    /// first, then swapped in with one pointer store. Blocking.
    ///
    /// The modules built into this binary are addressable too: a spec that
    /// names no stored version but a built-in module (`name@hash`, or
    /// `name@native` on the native runtime) serves that module again. With
    /// a registry it is stored there first, so it survives a restart and
    /// can be rolled back from; without one, only built-in modules can be
    /// activated.
    ///
    /// # Errors
    ///
    /// A malformed spec ([`RegistryError::BadSpec`]), an unknown or
    /// ambiguous version, [`HostError::NoRegistry`] for a version that is
    /// not built in on a host without a registry, or a version refused on
    /// this runtime (the serving version stays).
    pub fn activate(&self, spec: &str) -> Result<VersionInfo, HostError> {
        let Some(registry) = &self.registry else {
            let Some(built) = builtin::find(spec, self.runtime(), &self.variant)? else {
                hotwasm_registry::parse_spec(spec)?;
                return Err(HostError::NoRegistry);
            };
            let scheme = Scheme::from_name(built.scheme)
                .ok_or_else(|| RegistryError::NotFound(built.id()))?;
            // Built into this binary: trusted as the code around it is.
            let module = self.set.compile_built(scheme, built.variant.name)?;
            let staged = self.stage(scheme, module);
            self.commit_as(staged, Cause::Activate);
            return Ok(builtin::version(built));
        };
        // A spec that names no stored version may name a built-in one.
        let mut missing = None;
        let stored = self.read_stored(registry, |state| match state.resolve_version(spec) {
            Ok(version) => Ok(Some(version)),
            Err(error @ (RegistryError::NotFound(_) | RegistryError::BadSpec(_))) => {
                missing = Some(error);
                Ok(None)
            }
            Err(error) => Err(error),
        })?;
        let (name, wasm, source) = match stored {
            Some((version, wasm)) => (version.name, wasm, None),
            None => {
                let Some(built) = builtin::find(spec, self.runtime(), &self.variant)? else {
                    let error = missing.unwrap_or_else(|| RegistryError::NotFound(spec.into()));
                    return Err(error.into());
                };
                let source = builtin::source(built);
                (built.scheme.to_string(), built.bytes.to_vec(), Some(source))
            }
        };
        let serves = Scheme::from_name(&name).is_some();
        let (validated, tier_up) = self.validate_to_serve(registry, &name, wasm, serves)?;
        let staged = Scheme::from_name(validated.name())
            .map(|scheme| self.stage(scheme, self.scheme_module(&validated)));
        let _commit = self.lock_commits();
        let mut state = self.lock_registry(registry);
        let version = match &source {
            Some(source) => state.store_active(&validated, Some(source))?,
            None => state.activate(&validated.spec())?,
        };
        drop(state);
        if let Some(staged) = staged {
            let (scheme, serving) = (staged.scheme, Arc::clone(&staged.module));
            self.commit_locked(staged, Cause::Activate);
            if let Some(wasm) = tier_up {
                self.start_tier_up(scheme, serving, wasm);
            }
        }
        Ok(version)
    }

    /// Returns `name` to the version active before, and serves it.
    ///
    /// # Errors
    ///
    /// [`RegistryError::BadName`] for a name no module can have (empty,
    /// say), whatever the host's state; [`HostError::NoRegistry`];
    /// [`RegistryError::NoHistory`] when there is nothing before;
    /// [`HostError::Changed`] when another request changed `name` while
    /// the previous version was validating.
    pub fn rollback(&self, name: &str) -> Result<VersionInfo, HostError> {
        hotwasm_registry::check_name(name)?;
        let registry = self.registry()?;
        let Some((previous, validated)) =
            self.validate_stored(registry, |state| Ok(state.previous(name)))?
        else {
            return Err(RegistryError::NoHistory(name.to_string()).into());
        };
        let staged = Scheme::from_name(name)
            .map(|scheme| self.stage(scheme, self.scheme_module(&validated)));
        let _commit = self.lock_commits();
        let mut state = self.lock_registry(registry);
        if state.previous(name).map(|v| v.hash) != Some(previous.hash) {
            return Err(HostError::Changed(name.to_string()));
        }
        let version = state.rollback(name)?;
        drop(state);
        if let Some(staged) = staged {
            self.commit_locked(staged, Cause::Rollback);
        }
        Ok(version)
    }

    /// Validates `wasm` (trust, compile through the artifact cache,
    /// self-test) as a candidate for `scheme` and prewarms it, without
    /// serving it or storing it in the registry: what a shadow or canary
    /// trial runs beside the serving version. Blocking.
    ///
    /// # Errors
    ///
    /// [`HostError::NoRegistry`] (the cache lives in the registry), and
    /// the refusal with its reason, as [`ModuleHost::load`].
    pub fn candidate(&self, scheme: Scheme, wasm: Vec<u8>) -> Result<Staged, HostError> {
        let registry = self.registry()?;
        let validated = self.validate(registry, scheme.as_str(), wasm)?;
        Ok(self.stage(scheme, self.scheme_module(&validated)))
    }

    /// Validates `wasm` as a version of `name` into the artifact cache,
    /// ahead of its activation (compiling is the slow part of a swap);
    /// nothing is stored or served. Blocking.
    ///
    /// # Errors
    ///
    /// As [`ModuleHost::candidate`].
    pub fn prepare(&self, name: &str, wasm: Vec<u8>) -> Result<(), HostError> {
        let registry = self.registry()?;
        self.validate(registry, name, wasm).map(drop)
    }

    /// The registry's versions.
    ///
    /// # Errors
    ///
    /// [`HostError::NoRegistry`].
    pub fn list(&self) -> Result<Vec<VersionInfo>, HostError> {
        Ok(self.lock_registry(self.registry()?).list())
    }

    /// A second version of `scheme` to alternate with the serving one: the
    /// registry's previous (else another stored) version when the registry
    /// chose the serving one, else another built-in variant. `None` when
    /// there is none.
    ///
    /// # Errors
    ///
    /// The registry's version does not validate on this runtime.
    pub fn alternate(&self, scheme: Scheme) -> Result<Option<Arc<SchemeModule>>, HostError> {
        if let Some(registry) = self
            .registry
            .as_ref()
            .filter(|_| self.startup == Startup::RegistryFirst)
        {
            let name = scheme.as_str();
            if self.lock_registry(registry).active(name).is_some() {
                let other = self.validate_stored(registry, |state| Ok(state.alternate(name)))?;
                return Ok(other.map(|(_, validated)| self.scheme_module(&validated)));
            }
        }
        Ok(self.set.compile_alternate(scheme, &self.variant))
    }

    /// Makes and warms instances of `module` for the workers to take when
    /// they switch to it (as many as [`HostConfig::prewarm`] or the
    /// workers attached, whichever is more). Runs the guest.
    pub fn stage(&self, scheme: Scheme, module: Arc<SchemeModule>) -> Staged {
        let prewarmed = self
            .set
            .prewarm(scheme, &module, self.set.workers().max(self.prewarm));
        Staged {
            scheme,
            module,
            prewarmed,
        }
    }

    /// Makes a staged module serve its scheme from the next call on (one
    /// pointer store), counted as a swap and published as an
    /// [`Activation`] with [`Cause::Swap`]. Returns the module it
    /// replaces.
    pub fn commit(&self, staged: Staged) -> Option<Arc<SchemeModule>> {
        self.commit_as(staged, Cause::Swap)
    }

    /// [`ModuleHost::stage`] then [`ModuleHost::commit`].
    pub fn swap_in(&self, scheme: Scheme, module: Arc<SchemeModule>) -> Option<Arc<SchemeModule>> {
        self.commit(self.stage(scheme, module))
    }

    fn commit_as(&self, staged: Staged, cause: Cause) -> Option<Arc<SchemeModule>> {
        let _commit = self.lock_commits();
        self.commit_locked(staged, cause)
    }

    /// The commit itself; the caller holds `commits`.
    fn commit_locked(&self, staged: Staged, cause: Cause) -> Option<Arc<SchemeModule>> {
        tracing::info!(scheme = %staged.scheme, module = %staged.module.id, ?cause, "activated");
        self.swaps.fetch_add(1, Ordering::Relaxed);
        self.publish(staged.scheme, staged.module, cause)
    }

    /// Stores the pointer and tells the subscribers; the caller holds
    /// `commits`.
    fn publish(
        &self,
        scheme: Scheme,
        module: Arc<SchemeModule>,
        cause: Cause,
    ) -> Option<Arc<SchemeModule>> {
        let to = module.id.clone();
        let previous = self.set.activate(scheme, module);
        self.subscribers.publish(&Activation {
            scheme,
            from: previous.as_ref().map(|m| m.id.clone()),
            to,
            cause,
            at: SystemTime::now(),
        });
        previous
    }

    /// The registry's active version of `scheme`, validated, when the
    /// start-up policy asks for it.
    fn registry_active(&self, scheme: Scheme) -> Result<Option<Validated>, HostError> {
        let Some(registry) = self
            .registry
            .as_ref()
            .filter(|_| self.startup == Startup::RegistryFirst)
        else {
            return Ok(None);
        };
        let active = self.validate_stored(registry, |state| Ok(state.active(scheme.as_str())))?;
        Ok(active.map(|(_, validated)| validated))
    }

    /// The stored version `pick` chooses, its bytes read under the registry
    /// lock, then validated without it (validation runs the guest).
    fn validate_stored(
        &self,
        registry: &Registry,
        pick: impl FnOnce(&ModuleRegistry) -> Result<Option<VersionInfo>, RegistryError>,
    ) -> Result<Option<(VersionInfo, Validated)>, HostError> {
        let Some((version, wasm)) = self.read_stored(registry, pick)? else {
            return Ok(None);
        };
        let validated = self.validate(registry, &version.name, wasm)?;
        Ok(Some((version, validated)))
    }

    /// The stored version `pick` chooses and its bytes, read under the
    /// registry lock.
    fn read_stored(
        &self,
        registry: &Registry,
        pick: impl FnOnce(&ModuleRegistry) -> Result<Option<VersionInfo>, RegistryError>,
    ) -> Result<Option<(VersionInfo, Vec<u8>)>, HostError> {
        let state = self.lock_registry(registry);
        Ok(match pick(&state)? {
            Some(version) => {
                let wasm = state.bytes(&version)?;
                Some((version, wasm))
            }
            None => None,
        })
    }

    /// Validates a version about to serve (`serves`): on the first tier
    /// when tiered activation is on, the host's runtime has no cached
    /// build of it, and the first tier accepts it — then with the bytes
    /// to compile again for the tier-up — else on the host's runtime.
    fn validate_to_serve(
        &self,
        registry: &Registry,
        name: &str,
        wasm: Vec<u8>,
        serves: bool,
    ) -> Result<(Validated, Option<Vec<u8>>), HostError> {
        let first = self.first_tier.as_ref().filter(|_| serves);
        let Some(first) = first.filter(|_| !self.is_cached(registry, &wasm)) else {
            return Ok((self.validate(registry, name, wasm)?, None));
        };
        let started = Instant::now();
        // Not through the cache: this build serves until the tier-up.
        match hotwasm_registry::validate(None, name, wasm.clone(), first.as_ref(), &self.trust) {
            Ok(validated) => {
                tracing::info!(
                    module = %validated.spec(),
                    tier = %first.kind(),
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "tiered activation: validated on the first tier"
                );
                Ok((validated, Some(wasm)))
            }
            // Not trusted is not trusted on any tier.
            Err(error @ RegistryError::Untrusted { .. }) => Err(error.into()),
            Err(error) => {
                tracing::info!(
                    tier = %first.kind(),
                    "tiered activation: the first tier refuses {name} ({error}); compiling on {} before serving",
                    self.runtime()
                );
                Ok((self.validate(registry, name, wasm)?, None))
            }
        }
    }

    /// Whether the host's runtime has a cached build of `wasm`.
    fn is_cached(&self, registry: &Registry, wasm: &[u8]) -> bool {
        self.set
            .runtime_handle()
            .artifact_fingerprint()
            .is_some_and(|fingerprint| registry.cache.entry_path(&fingerprint, wasm).is_file())
    }

    /// Starts compiling `wasm` on the host's runtime in the background, to
    /// replace `serving` (its first tier's build) once validated and
    /// prewarmed, if it still serves `scheme` then.
    fn start_tier_up(&self, scheme: Scheme, serving: Arc<SchemeModule>, wasm: Vec<u8>) {
        let Some(host) = self.this.upgrade() else {
            return;
        };
        self.tier_ups.fetch_add(1, Ordering::SeqCst);
        let id = serving.id.clone();
        let spawned = std::thread::Builder::new()
            .name("tier-up".into())
            .stack_size(hotwasm_runtime::GUEST_THREAD_STACK_BYTES)
            .spawn(move || {
                host.tier_up(scheme, &serving, wasm);
                host.tier_ups.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(error) = spawned {
            self.tier_ups.fetch_sub(1, Ordering::SeqCst);
            tracing::error!(module = %id, "cannot start the tier-up thread ({error}): the first tier's build keeps serving");
        }
    }

    /// The tier-up itself (on its own thread).
    fn tier_up(&self, scheme: Scheme, serving: &Arc<SchemeModule>, wasm: Vec<u8>) {
        let started = Instant::now();
        let from_runtime = serving.compiled.runtime().name();
        let validated = match self
            .registry()
            .and_then(|registry| self.validate(registry, scheme.as_str(), wasm))
        {
            Ok(validated) => validated,
            Err(error) => {
                tracing::error!(
                    module = %serving.id,
                    "tier-up refused by {}: {error}; the {from_runtime} build keeps serving",
                    self.runtime()
                );
                return;
            }
        };
        let staged = self.stage(scheme, self.scheme_module(&validated));
        let _commit = self.lock_commits();
        let still_serving = self
            .set
            .get(scheme)
            .is_some_and(|current| Arc::ptr_eq(&current, serving));
        if !still_serving {
            tracing::info!(module = %serving.id, "tier-up dropped: another version serves {scheme} now");
            return;
        }
        tracing::info!(
            module = %serving.id,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "tiered activation: {} build replaces the {from_runtime} one",
            self.runtime()
        );
        self.commit_locked(staged, Cause::TierUp { from_runtime });
    }

    /// Tier-ups started and not yet finished (swapped in, dropped or
    /// refused).
    pub fn tier_ups_pending(&self) -> usize {
        self.tier_ups.load(Ordering::SeqCst)
    }

    /// Checks that `wasm` is trusted, then compiles (through the registry's
    /// cache) and self-tests it.
    fn validate(
        &self,
        registry: &Registry,
        name: &str,
        wasm: Vec<u8>,
    ) -> Result<Validated, HostError> {
        let runtime = self.set.runtime_handle().as_ref();
        Ok(hotwasm_registry::validate(
            Some(&registry.cache),
            name,
            wasm,
            runtime,
            &self.trust,
        )?)
    }

    /// A validated version as the module set takes it, with the instance
    /// that passed its self-test among its warm ones.
    fn scheme_module(&self, validated: &Validated) -> Arc<SchemeModule> {
        let module = SchemeModule::new(
            self.set.module_id(validated.name(), validated.wasm()),
            Arc::clone(validated.compiled()),
        );
        if let Some(instance) = validated.take_tested_instance() {
            module.keep_warm(instance);
        }
        Arc::new(module)
    }

    fn registry(&self) -> Result<&Registry, HostError> {
        self.registry.as_ref().ok_or(HostError::NoRegistry)
    }

    fn lock_registry<'a>(&self, registry: &'a Registry) -> MutexGuard<'a, ModuleRegistry> {
        registry
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_commits(&self) -> MutexGuard<'_, ()> {
        self.commits
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
