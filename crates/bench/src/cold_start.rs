//! Section 4, cold start: how long a module takes to become useful on each
//! runtime — compile (or load), load of a precompiled artifact (the
//! registry's cache, wasmtime only), instantiation, and the first call on a
//! fresh instance (k256 builds its tables lazily there).

use std::time::Instant;

use hotwasm_abi::{Scheme, VerifyRequest};
use hotwasm_jobs::Generator;
use hotwasm_runtime::{CompiledModule, Runtime, RuntimeError};
use serde::Serialize;

use crate::measure::{built_bytes, micros, millis, spread};
use crate::options::BenchOptions;
use crate::report::{Cell, Spread};
use crate::{BenchError, Progress};

/// Cold-start figures per runtime and module.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStartSection {
    /// One row per runtime and scheme.
    pub rows: Vec<ColdStartRow>,
}

/// One runtime and module.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStartRow {
    /// Runtime name.
    pub runtime: String,
    /// Variant (the runtime's preferred one).
    pub variant: String,
    /// `schnorr` or `ecdsa`.
    pub scheme: String,
    /// The figures.
    pub result: Cell<ColdStartFigures>,
}

/// What it costs to get from bytes to a first verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStartFigures {
    /// Module size in bytes.
    pub module_bytes: usize,
    /// Samples behind `compile_ms` and the precompiled load.
    pub compiles: usize,
    /// `Runtime::compile` (validate, compile or translate, waPC shape
    /// check), milliseconds.
    pub compile_ms: Spread,
    /// Loading a precompiled artifact (`Runtime::load_artifact`).
    pub precompiled: Cell<Precompiled>,
    /// Samples behind `instantiate_us` and `first_call_us`.
    pub instances: usize,
    /// `CompiledModule::instantiate` (including the guest's `wapc_init`),
    /// microseconds.
    pub instantiate_us: Spread,
    /// The first verify on that fresh instance, microseconds.
    pub first_call_us: Spread,
}

/// A precompiled artifact and its load time.
#[derive(Debug, Clone, Serialize)]
pub struct Precompiled {
    /// Artifact size in bytes.
    pub artifact_bytes: usize,
    /// Load time in milliseconds.
    pub load_ms: Spread,
}

/// Measures cold start on each runtime's preferred variant.
///
/// # Errors
///
/// [`BenchError::Runtime`] when a runtime cannot compile or instantiate
/// its preferred variant, [`BenchError::Call`] when a first call fails.
pub fn measure(
    options: &BenchOptions,
    progress: &dyn Progress,
) -> Result<ColdStartSection, BenchError> {
    let kinds = options.with_native();
    progress.start("cold start", (kinds.len() * Scheme::ALL.len()) as u64);
    let mut rows = Vec::new();
    for kind in kinds {
        let variant = kind.preferred_variant();
        let runtime = kind
            .create_with(crate::measure::limits())
            .map_err(|source| BenchError::Runtime {
                context: format!("cold start {kind}"),
                source,
            })?;
        for scheme in Scheme::ALL {
            progress.step(&format!("{kind}/{variant} {scheme}"));
            let context = format!("cold start {kind}/{variant} {scheme}");
            let figures = measure_module(options, runtime.as_ref(), variant, scheme, &context)?;
            rows.push(ColdStartRow {
                runtime: kind.name().to_string(),
                variant: crate::throughput::shown_variant(kind, variant).to_string(),
                scheme: scheme.to_string(),
                result: Cell::Measured(figures),
            });
        }
    }
    progress.finish();
    Ok(ColdStartSection { rows })
}

fn measure_module(
    options: &BenchOptions,
    runtime: &dyn Runtime,
    variant: &str,
    scheme: Scheme,
    context: &str,
) -> Result<ColdStartFigures, BenchError> {
    let bytes = built_bytes(scheme.as_str(), variant, context)?;
    let runtime_error = |source| BenchError::Runtime {
        context: context.to_string(),
        source,
    };
    let compiles = options.budget.cold_compiles.max(1);
    let mut compile_ms = Vec::with_capacity(compiles);
    let mut compiled = None;
    for _ in 0..compiles {
        let started = Instant::now();
        let module = runtime.compile(bytes).map_err(runtime_error)?;
        compile_ms.push(millis(started.elapsed()));
        compiled = Some(module);
    }
    let compiled = compiled.ok_or_else(|| BenchError::Call {
        context: context.to_string(),
        message: "no compile ran".into(),
    })?;

    let precompiled = match runtime.precompile(bytes) {
        Err(RuntimeError::Unsupported { what, .. }) => Cell::NotApplicable {
            reason: format!("no {what}"),
        },
        Err(source) => return Err(runtime_error(source)),
        Ok(artifact) => {
            let mut load_ms = Vec::with_capacity(compiles);
            for _ in 0..compiles {
                let started = Instant::now();
                // SAFETY: `artifact` was made by `precompile` of this very
                // runtime a moment ago, in this process.
                let module =
                    unsafe { runtime.load_artifact(bytes, &artifact) }.map_err(runtime_error)?;
                load_ms.push(millis(started.elapsed()));
                drop(module);
            }
            Cell::Measured(Precompiled {
                artifact_bytes: artifact.len(),
                load_ms: spread(&load_ms),
            })
        }
    };

    let request = Generator::new(options.seed, scheme.into(), 0.0)
        .job()
        .request();
    let instances = options.budget.cold_instances.max(1);
    let (mut instantiate_us, mut first_call_us) =
        (Vec::with_capacity(instances), Vec::with_capacity(instances));
    for _ in 0..instances {
        let (instantiate, first_call) = first_verdict(compiled.as_ref(), &request, context)?;
        instantiate_us.push(instantiate);
        first_call_us.push(first_call);
    }
    Ok(ColdStartFigures {
        module_bytes: bytes.len(),
        compiles,
        compile_ms: spread(&compile_ms),
        precompiled,
        instances,
        instantiate_us: spread(&instantiate_us),
        first_call_us: spread(&first_call_us),
    })
}

/// Instantiates `compiled` and makes one call of a valid job: returns both
/// times in microseconds, after checking the verdict.
fn first_verdict(
    compiled: &dyn CompiledModule,
    request: &VerifyRequest,
    context: &str,
) -> Result<(f64, f64), BenchError> {
    let started = Instant::now();
    let mut instance = compiled
        .instantiate()
        .map_err(|source| BenchError::Runtime {
            context: context.to_string(),
            source,
        })?;
    let instantiated = started.elapsed();
    let started = Instant::now();
    let outcome = hotwasm_runtime::verify(instance.as_mut(), request);
    let called = started.elapsed();
    let response = outcome.map_err(|e| BenchError::Call {
        context: context.to_string(),
        message: e.to_string(),
    })?;
    if !response.valid {
        return Err(BenchError::WrongVerdict {
            context: context.to_string(),
            id: "first call".into(),
            expected: true,
            got: false,
            reason: response.reason.unwrap_or_else(|| "-".into()),
        });
    }
    Ok((micros(instantiated), micros(called)))
}
