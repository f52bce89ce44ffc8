//! The active module for each scheme, swappable while workers run.
//!
//! Compiling ([`ModuleSet::compile`]) is slow and happens off the hot path;
//! activating ([`ModuleSet::activate`]) is one atomic pointer store. Workers
//! look at the active module at the start of every call: a call that has
//! started finishes on the module it started with, the next one sees the
//! new module. A module is freed when no slot and no worker holds it.
//!
//! Processes that serve go through `hotwasm-host`'s `ModuleHost`, which
//! validates, prewarms and commits; this set is the mechanism underneath
//! (and what the worker-level tests drive directly).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use hotwasm_abi::Scheme;
use hotwasm_jobs::Generator;
use hotwasm_runtime::{CompiledModule, Instance, Limits, Runtime, RuntimeKind};

use crate::{CallHealth, Trial, WorkerError};

/// One compiled module version and its id.
pub struct SchemeModule {
    /// `name@hash`.
    pub id: String,
    /// The compiled module.
    pub compiled: Arc<dyn CompiledModule>,
    /// Instances made and warmed before activation ([`ModuleSet::prewarm`]),
    /// taken by workers when they switch to this version.
    warm: Mutex<Vec<Box<dyn Instance + Send>>>,
    /// How its calls go, since it was made.
    pub health: CallHealth,
}

impl SchemeModule {
    /// A version `id` of `compiled`, with no warmed instances.
    pub fn new(id: String, compiled: Arc<dyn CompiledModule>) -> SchemeModule {
        SchemeModule {
            id,
            compiled,
            warm: Mutex::new(Vec::new()),
            health: CallHealth::default(),
        }
    }

    /// Adds `instance`, already made from [`SchemeModule::compiled`] and
    /// warmed (the self-test's: `hotwasm_registry::Validated::take_tested_instance`),
    /// for a worker to take as [`ModuleSet::prewarm`]'s.
    pub fn keep_warm(&self, instance: Box<dyn Instance + Send>) {
        self.warm
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(instance);
    }

    /// A warmed instance, if one is left.
    pub(crate) fn take_warm(&self) -> Option<Box<dyn Instance + Send>> {
        self.warm
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
    }

    /// How many warmed instances are waiting.
    pub fn warm_instances(&self) -> usize {
        self.warm
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

/// The module serving each scheme, compiled for one runtime; shared by all
/// workers (`Arc<ModuleSet>`).
pub struct ModuleSet {
    runtime: Arc<dyn Runtime>,
    slots: BTreeMap<Scheme, ArcSwapOption<SchemeModule>>,
    trials: BTreeMap<Scheme, ArcSwapOption<Trial>>,
    live_instances: Arc<AtomicUsize>,
    workers: AtomicUsize,
}

impl ModuleSet {
    /// A set on `runtime` with no active modules.
    pub fn new(runtime: Arc<dyn Runtime>) -> Arc<ModuleSet> {
        Arc::new(ModuleSet {
            runtime,
            slots: Scheme::ALL
                .into_iter()
                .map(|scheme| (scheme, ArcSwapOption::empty()))
                .collect(),
            trials: Scheme::ALL
                .into_iter()
                .map(|scheme| (scheme, ArcSwapOption::empty()))
                .collect(),
            live_instances: Arc::default(),
            workers: AtomicUsize::new(0),
        })
    }

    /// The modules built into this binary, in `variant`, compiled for
    /// `runtime` and active.
    ///
    /// # Errors
    ///
    /// [`WorkerError`] when the runtime cannot be created, the variant was
    /// not built, or a module does not load on the runtime.
    pub fn built(kind: RuntimeKind, variant: &str) -> Result<Arc<ModuleSet>, WorkerError> {
        ModuleSet::built_with(kind, variant, Limits::default())
    }

    /// As [`ModuleSet::built`], with every guest bounded by `limits`.
    ///
    /// # Errors
    ///
    /// As [`ModuleSet::built`].
    pub fn built_with(
        kind: RuntimeKind,
        variant: &str,
        limits: Limits,
    ) -> Result<Arc<ModuleSet>, WorkerError> {
        let set = ModuleSet::new(kind.create_with(limits)?);
        for scheme in Scheme::ALL {
            let module = set.compile_built(scheme, variant)?;
            set.activate(scheme, module);
        }
        Ok(set)
    }

    /// Compiles the built-in module for `scheme` in `variant`, without
    /// activating it.
    ///
    /// # Errors
    ///
    /// [`WorkerError::NoSuchModule`] when this build lacks the variant,
    /// [`WorkerError::Load`] when the runtime refuses the module.
    pub fn compile_built(
        &self,
        scheme: Scheme,
        variant: &str,
    ) -> Result<Arc<SchemeModule>, WorkerError> {
        let module = hotwasm_modules::find(scheme.as_str(), variant).ok_or_else(|| {
            WorkerError::NoSuchModule {
                scheme: scheme.to_string(),
                variant: variant.to_string(),
                known: hotwasm_modules::built_variants().join(", "),
            }
        })?;
        self.compile(scheme.as_str(), module.bytes)
    }

    /// A second built-in version of `scheme` that loads on this runtime:
    /// another variant than `variant` (for swapping back and forth), or on
    /// native, whose code is built in whatever the bytes, a second compile
    /// of the same variant (a distinct version in memory).
    pub fn compile_alternate(&self, scheme: Scheme, variant: &str) -> Option<Arc<SchemeModule>> {
        hotwasm_modules::built_variants()
            .into_iter()
            .filter(|other| *other != variant)
            .find_map(|other| self.compile_built(scheme, other).ok())
            .or_else(|| {
                (self.runtime() == RuntimeKind::Native)
                    .then(|| self.compile_built(scheme, variant).ok())
                    .flatten()
            })
    }

    /// Compiles `wasm` as a module named `name`, without activating it.
    ///
    /// # Errors
    ///
    /// [`WorkerError::Load`] when the runtime refuses the module.
    pub fn compile(&self, name: &str, wasm: &[u8]) -> Result<Arc<SchemeModule>, WorkerError> {
        let id = self.module_id(name, wasm);
        let compiled = self
            .runtime
            .compile(wasm)
            .map_err(|source| WorkerError::Load {
                module: id.clone(),
                runtime: self.runtime.kind().to_string(),
                source,
            })?;
        Ok(Arc::new(SchemeModule::new(id, compiled)))
    }

    /// The id a module gets on this set's runtime.
    pub fn module_id(&self, name: &str, wasm: &[u8]) -> String {
        match self.runtime.kind() {
            // The native backend runs the built-in code whatever the bytes.
            RuntimeKind::Native => format!("{name}@native"),
            _ => hotwasm_modules::module_id(name, wasm),
        }
    }

    /// Makes and warms (one `verify` of a valid `scheme` job) instances of
    /// `module` on the calling thread until `count` are waiting, for workers
    /// to take when they switch to it: a swap then costs a worker no
    /// instantiation and no first-call setup (k256 builds its tables
    /// lazily). Call before [`ModuleSet::activate`], typically with
    /// [`ModuleSet::workers`]. Only the missing ones are made, so swapping
    /// back and forth between two versions (whose instances the workers
    /// keep) neither runs the guest again nor piles up instances. Returns
    /// how many were made: none on runtimes whose instances cannot move
    /// between threads (wasm3), or when instantiation fails (the workers
    /// will report that themselves).
    pub fn prewarm(&self, scheme: Scheme, module: &SchemeModule, count: usize) -> usize {
        let missing = count.saturating_sub(module.warm_instances());
        if missing == 0 {
            return 0;
        }
        let request = Generator::new(0x3a4d, scheme.into(), 0.0).job().request();
        let mut made = 0;
        for _ in 0..missing {
            let Some(Ok(mut instance)) = module.compiled.instantiate_sendable() else {
                break;
            };
            if hotwasm_runtime::verify(instance.as_mut(), &request).is_err() {
                break;
            }
            module
                .warm
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(instance);
            made += 1;
        }
        made
    }

    /// Workers currently attached to this set.
    pub fn workers(&self) -> usize {
        self.workers.load(Ordering::Relaxed)
    }

    pub(crate) fn worker_counter(&self) -> &AtomicUsize {
        &self.workers
    }

    /// Makes `module` the one serving `scheme`, atomically; returns the
    /// module it replaces.
    pub fn activate(&self, scheme: Scheme, module: Arc<SchemeModule>) -> Option<Arc<SchemeModule>> {
        self.slot(scheme).swap(Some(module))
    }

    /// Compiles `wasm` and activates it for `scheme`.
    ///
    /// # Errors
    ///
    /// [`WorkerError::Load`] when the runtime refuses the module; the
    /// active module stays.
    pub fn load(
        &self,
        scheme: Scheme,
        name: &str,
        wasm: &[u8],
    ) -> Result<Arc<SchemeModule>, WorkerError> {
        let module = self.compile(name, wasm)?;
        self.activate(scheme, Arc::clone(&module));
        Ok(module)
    }

    /// Puts `trial` beside the module serving `scheme` (or ends the one
    /// there with `None`), atomically; returns the trial it replaces.
    /// Workers look at it at the start of every job.
    pub fn set_trial(&self, scheme: Scheme, trial: Option<Arc<Trial>>) -> Option<Arc<Trial>> {
        self.trials[&scheme].swap(trial)
    }

    /// The trial running beside `scheme`'s module, if any.
    pub fn trial(&self, scheme: Scheme) -> Option<Arc<Trial>> {
        self.trials[&scheme].load_full()
    }

    /// The runtime the modules are compiled for.
    pub fn runtime(&self) -> RuntimeKind {
        self.runtime.kind()
    }

    /// The runtime itself.
    pub fn runtime_handle(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    /// The module serving `scheme` now, if any.
    pub fn get(&self, scheme: Scheme) -> Option<Arc<SchemeModule>> {
        self.slot(scheme).load_full()
    }

    /// Instances of this set's modules alive in its workers: a leak check
    /// for hot swap, it must not grow with the number of swaps.
    pub fn live_instances(&self) -> usize {
        self.live_instances.load(Ordering::Relaxed)
    }

    pub(crate) fn instance_counter(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.live_instances)
    }

    pub(crate) fn slot(&self, scheme: Scheme) -> &ArcSwapOption<SchemeModule> {
        // Every scheme has a slot from construction on.
        &self.slots[&scheme]
    }
}
