//! Compiled modules by scheme, on one runtime.

use std::collections::BTreeMap;
use std::sync::Arc;

use hotwasm_abi::Scheme;
use hotwasm_runtime::{CompiledModule, Runtime, RuntimeKind};

use crate::WorkerError;

/// One compiled module and its id.
#[derive(Clone)]
pub struct SchemeModule {
    /// `name@hash`.
    pub id: String,
    /// The compiled module.
    pub compiled: Arc<dyn CompiledModule>,
}

/// The module serving each scheme, compiled for one runtime.
#[derive(Clone)]
pub struct ModuleSet {
    runtime: Arc<dyn Runtime>,
    modules: BTreeMap<Scheme, SchemeModule>,
}

impl ModuleSet {
    /// An empty set on `runtime`.
    pub fn new(runtime: Arc<dyn Runtime>) -> ModuleSet {
        ModuleSet {
            runtime,
            modules: BTreeMap::new(),
        }
    }

    /// The modules built into this binary, in `variant`, compiled for
    /// `runtime`.
    ///
    /// # Errors
    ///
    /// [`WorkerError`] when the runtime cannot be created, the variant was
    /// not built, or a module does not load on the runtime.
    pub fn built(kind: RuntimeKind, variant: &str) -> Result<ModuleSet, WorkerError> {
        let mut set = ModuleSet::new(kind.create()?);
        for scheme in Scheme::ALL {
            let module = hotwasm_modules::find(scheme.as_str(), variant).ok_or_else(|| {
                WorkerError::NoSuchModule {
                    scheme: scheme.to_string(),
                    variant: variant.to_string(),
                    known: built_variants().join(", "),
                }
            })?;
            set.load(scheme, scheme.as_str(), module.bytes)?;
        }
        Ok(set)
    }

    /// Compiles `wasm` and makes it the module for `scheme`, named `name`.
    ///
    /// # Errors
    ///
    /// [`WorkerError::Load`] when the runtime refuses the module.
    pub fn load(
        &mut self,
        scheme: Scheme,
        name: &str,
        wasm: &[u8],
    ) -> Result<&SchemeModule, WorkerError> {
        let id = match self.runtime.kind() {
            // The native backend runs the built-in code whatever the bytes.
            RuntimeKind::Native => format!("{name}@native"),
            _ => hotwasm_modules::module_id(name, wasm),
        };
        let compiled = self
            .runtime
            .compile(wasm)
            .map_err(|source| WorkerError::Load {
                module: id.clone(),
                runtime: self.runtime.kind().to_string(),
                source,
            })?;
        self.modules.insert(scheme, SchemeModule { id, compiled });
        Ok(&self.modules[&scheme])
    }

    /// The runtime the modules are compiled for.
    pub fn runtime(&self) -> RuntimeKind {
        self.runtime.kind()
    }

    /// The module for `scheme`, if any.
    pub fn get(&self, scheme: Scheme) -> Option<&SchemeModule> {
        self.modules.get(&scheme)
    }
}

/// Names of the variants this binary carries.
fn built_variants() -> Vec<&'static str> {
    let mut names: Vec<&str> = hotwasm_modules::built()
        .iter()
        .map(|m| m.variant.name)
        .collect();
    names.dedup();
    names
}
