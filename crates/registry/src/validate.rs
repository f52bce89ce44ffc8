//! Validation: what a module must pass before it is stored or served —
//! be trusted (signed by a trusted key, or built in), compile on the
//! runtime (through the artifact cache), speak waPC, and pass the
//! self-test of the schemes it claims.
//!
//! Validation runs guest code (the self-test) and may compile for seconds;
//! it touches no registry state, so callers run it without holding any
//! lock that module administration needs.

use std::sync::{Arc, Mutex};

use hotwasm_abi::Scheme;
use hotwasm_runtime::{CompiledModule, Instance, Runtime};
use hotwasm_trust::{Provenance, Trust};

use crate::cache::{ArtifactCache, CacheOutcome};
use crate::spec::check_name;
use crate::{RegistryError, selftest};

/// A module that passed validation on one runtime: its bytes, their hash
/// and the compiled module, ready to store ([`crate::ModuleRegistry::store`])
/// and to serve without compiling or self-testing again.
pub struct Validated {
    name: String,
    hash: String,
    wasm: Vec<u8>,
    compiled: Arc<dyn CompiledModule>,
    provenance: Provenance,
    /// The instance that passed the self-test, until taken.
    tested: Mutex<Option<Box<dyn Instance + Send>>>,
}

impl Validated {
    /// The module's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the bytes, hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// `name@<full hash>`: the one stored version these bytes are.
    pub fn spec(&self) -> String {
        format!("{}@{}", self.name, self.hash)
    }

    /// The bytes that were validated.
    pub fn wasm(&self) -> &[u8] {
        &self.wasm
    }

    /// The module compiled for the runtime it was validated on.
    pub fn compiled(&self) -> &Arc<dyn CompiledModule> {
        &self.compiled
    }

    /// Why it may load: built in, signed by a trusted key, or not trusted
    /// but allowed.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// The instance of [`Validated::compiled`] that passed the self-test,
    /// warm, for a worker to serve with (the first call takes it; `None`
    /// after, and on runtimes whose instances stay on their thread). Held
    /// until taken or the `Validated` is dropped (on wasmtime, a slot of
    /// the instance pool).
    pub fn take_tested_instance(&self) -> Option<Box<dyn Instance + Send>> {
        self.tested
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

impl std::fmt::Debug for Validated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validated")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .field("bytes", &self.wasm.len())
            .field("provenance", &self.provenance)
            .finish_non_exhaustive()
    }
}

/// Checks that `trust` trusts `wasm`, before anything else, then compiles
/// it as a module named `name` on `runtime` (through `cache`, when given:
/// a build that will soon be replaced, the first tier's of a tiered
/// activation, is not worth an artifact) and runs its
/// self-test: a module named after a scheme must pass that scheme's test;
/// a module under another name must pass at least one. A module that is
/// not trusted but allowed ([`Trust::allow_unsigned`]) is logged as a
/// warning every time it passes.
///
/// # Errors
///
/// [`RegistryError::BadName`] for a name no module can have;
/// [`RegistryError::Untrusted`] when `trust` refuses it (nothing of it was
/// compiled or run); [`RegistryError::Refused`] with the reason when the
/// module does not compile, is not waPC or fails its self-test (its cache
/// entry, if one was made, is removed).
pub fn validate(
    cache: Option<&ArtifactCache>,
    name: &str,
    wasm: Vec<u8>,
    runtime: &dyn Runtime,
    trust: &Trust,
) -> Result<Validated, RegistryError> {
    check_name(name)?;
    let module = hotwasm_modules::module_id(name, &wasm);
    let provenance = trust
        .check(&wasm)
        .map_err(|reason| RegistryError::Untrusted {
            module: module.clone(),
            reason,
        })?;
    let refused = |reason: String| RegistryError::Refused {
        module: module.clone(),
        reason,
    };
    let compiled = match cache {
        Some(cache) => {
            let (compiled, outcome) = cache
                .compile(runtime, &wasm)
                .map_err(|e| refused(e.to_string()))?;
            if let CacheOutcome::Rebuilt(why) = &outcome {
                tracing::info!(module = name, "cache entry rebuilt: {why}");
            }
            compiled
        }
        None => runtime.compile(&wasm).map_err(|e| refused(e.to_string()))?,
    };
    let tested = match Scheme::from_name(name) {
        Some(scheme) => selftest::run_keeping(compiled.as_ref(), scheme).map_err(|e| e.to_string()),
        None => {
            let failures: Vec<String> = Scheme::ALL
                .into_iter()
                .filter_map(|scheme| selftest::run(compiled.as_ref(), scheme).err())
                .map(|e| e.to_string())
                .collect();
            if failures.len() == Scheme::ALL.len() {
                Err(failures.join("; "))
            } else {
                Ok(None)
            }
        }
    };
    let tested = match tested {
        Ok(tested) => tested,
        Err(reason) => {
            // A refused module leaves nothing behind, its cache entry included.
            if let Some(cache) = cache {
                cache.forget(runtime, &wasm);
            }
            return Err(refused(reason));
        }
    };
    match &provenance {
        Provenance::BuiltIn => tracing::debug!(%module, "built into this binary: trusted"),
        Provenance::Signed { key_id } => tracing::info!(%module, key_id, "signed by a trusted key"),
        Provenance::Unverified(reason) => tracing::warn!(
            %module,
            "LOADING A MODULE THAT IS NOT TRUSTED because unsigned modules are allowed \
             (--allow-unsigned): {reason}"
        ),
    }
    Ok(Validated {
        name: name.to_string(),
        hash: hotwasm_modules::content_hash(&wasm),
        wasm,
        compiled,
        provenance,
        tested: Mutex::new(tested),
    })
}
