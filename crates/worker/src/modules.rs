//! The active module for each scheme, swappable while workers run.
//!
//! Compiling ([`ModuleSet::compile`]) is slow and happens off the hot path;
//! activating ([`ModuleSet::activate`]) is one atomic pointer store. Workers
//! look at the active module at the start of every call: a call that has
//! started finishes on the module it started with, the next one sees the
//! new module. A module is freed when no slot and no worker holds it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwapOption;
use hotwasm_abi::Scheme;
use hotwasm_runtime::{CompiledModule, Runtime, RuntimeKind};

use crate::WorkerError;

/// One compiled module version and its id.
pub struct SchemeModule {
    /// `name@hash`.
    pub id: String,
    /// The compiled module.
    pub compiled: Arc<dyn CompiledModule>,
}

/// The module serving each scheme, compiled for one runtime; shared by all
/// workers (`Arc<ModuleSet>`).
pub struct ModuleSet {
    runtime: Arc<dyn Runtime>,
    slots: BTreeMap<Scheme, ArcSwapOption<SchemeModule>>,
    live_instances: Arc<AtomicUsize>,
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
            live_instances: Arc::default(),
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
        let set = ModuleSet::new(kind.create()?);
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
                known: built_variants().join(", "),
            }
        })?;
        self.compile(scheme.as_str(), module.bytes)
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
        Ok(Arc::new(SchemeModule { id, compiled }))
    }

    /// The id a module gets on this set's runtime.
    pub fn module_id(&self, name: &str, wasm: &[u8]) -> String {
        match self.runtime.kind() {
            // The native backend runs the built-in code whatever the bytes.
            RuntimeKind::Native => format!("{name}@native"),
            _ => hotwasm_modules::module_id(name, wasm),
        }
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

/// Names of the variants this binary carries.
pub fn built_variants() -> Vec<&'static str> {
    let mut names: Vec<&str> = hotwasm_modules::built()
        .iter()
        .map(|m| m.variant.name)
        .collect();
    names.dedup();
    names
}
