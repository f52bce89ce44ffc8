//! The `Runtime` contract and its four backends.
//!
//! A [`Runtime`] compiles WebAssembly bytes into a [`CompiledModule`]; a
//! compiled module makes [`Instance`]s; an instance answers waPC calls.
//! Compilation is the slow, shareable step (`Send + Sync`, done once per
//! module version); instantiation is cheap and per worker thread; calls are
//! the hot path. Hot swap, limits and trust checks build on this split.
//!
//! The host side of waPC is implemented once ([`wapc`]) and shared by the
//! three wasm backends, so they differ only in how they run wasm.
//!
//! # Layout
//!
//! - [`Runtime`], [`CompiledModule`], [`Instance`]: the contract.
//! - [`RuntimeKind`]: the backends by name; [`RuntimeKind::create`] makes one.
//! - [`backend`]: `native`, `wasmtime` (three tiers: Cranelift, Winch,
//!   Pulley), `wasmi`, `wasm3`.
//! - [`wapc`]: the waPC host protocol over a guest's linear memory.
//! - [`error`]: [`RuntimeError`] (compile, instantiate) and [`CallError`].
//! - [`limits`]: [`Limits`], what a guest may use, enforced by every backend.
//! - [`guest`]: [`verify`], the typed `verify` call every caller makes.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub mod backend;
pub mod error;
pub mod guest;
pub mod limits;
pub mod wapc;

pub use error::{CallError, RuntimeError};
pub use guest::verify;
pub use limits::Limits;

/// Native stack a thread that runs guests should have. wasm3 runs wasm
/// calls as native recursion: a guest recursing until wasm3's own stack
/// limit needs 2–4 MiB of native stack, more than a spawned thread's
/// default of 2 MiB, and overflowing that aborts the process. (wasmtime
/// and wasmi bound guest recursion themselves.)
pub const GUEST_THREAD_STACK_BYTES: usize = 16 << 20;

/// A way to run guest modules: compiles bytes into shareable modules.
pub trait Runtime: Send + Sync {
    /// Which backend this is.
    fn kind(&self) -> RuntimeKind;

    /// Parses, validates and compiles a module and checks that it speaks
    /// waPC (exports `__guest_call`; imports nothing but `wapc` functions).
    ///
    /// # Errors
    ///
    /// [`RuntimeError`] when the bytes are not a module this runtime can
    /// load, or the module is not a waPC guest.
    fn compile(&self, wasm: &[u8]) -> Result<Arc<dyn CompiledModule>, RuntimeError>;

    /// The bounds every guest of this runtime runs within.
    fn limits(&self) -> Limits {
        Limits::default()
    }

    /// Names the engine build and configuration that precompiled artifacts
    /// depend on; artifacts made under one fingerprint load only under the
    /// same one. `None` when the runtime has no precompiled form.
    fn artifact_fingerprint(&self) -> Option<String> {
        None
    }

    /// Compiles `wasm` to an artifact [`Runtime::load_artifact`] can load
    /// without compiling again.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Unsupported`] when the runtime has no precompiled
    /// form; otherwise as [`Runtime::compile`].
    fn precompile(&self, wasm: &[u8]) -> Result<Vec<u8>, RuntimeError> {
        let _ = wasm;
        Err(RuntimeError::Unsupported {
            runtime: self.kind().name(),
            what: "precompiled artifacts",
        })
    }

    /// Loads an artifact made by [`Runtime::precompile`] from `wasm`.
    ///
    /// # Safety
    ///
    /// The artifact is executable code: it must be exactly what
    /// `precompile` produced under the same fingerprint (the caller checks
    /// its integrity); a forged artifact can do anything the process can.
    ///
    /// # Errors
    ///
    /// [`RuntimeError`] when the artifact is not loadable here.
    unsafe fn load_artifact(
        &self,
        wasm: &[u8],
        artifact: &[u8],
    ) -> Result<Arc<dyn CompiledModule>, RuntimeError> {
        let _ = (wasm, artifact);
        Err(RuntimeError::Unsupported {
            runtime: self.kind().name(),
            what: "precompiled artifacts",
        })
    }
}

/// A compiled module, shareable across threads; makes instances.
pub trait CompiledModule: Send + Sync {
    /// The runtime that compiled it (what its verdicts name).
    fn runtime(&self) -> RuntimeKind;

    /// Creates a fresh instance and runs the guest's `wapc_init`.
    ///
    /// # Errors
    ///
    /// [`RuntimeError`] when instantiation fails or `wapc_init` traps.
    fn instantiate(&self) -> Result<Box<dyn Instance>, RuntimeError>;

    /// Like [`CompiledModule::instantiate`], for an instance made on one
    /// thread and used on another (prepared ahead of a swap). `None` when
    /// this runtime's instances are bound to their thread (wasm3).
    fn instantiate_sendable(&self) -> Option<Result<Box<dyn Instance + Send>, RuntimeError>> {
        None
    }
}

/// One live instance of a module. Not shared between threads: each worker
/// owns its instances.
pub trait Instance {
    /// Invokes a waPC operation and returns the guest's response.
    ///
    /// After [`CallError::Trap`] the instance's state is undefined and it
    /// should be dropped and replaced with a fresh one.
    ///
    /// # Errors
    ///
    /// [`CallError`] when the guest traps, reports a waPC error, or breaks
    /// the protocol.
    fn call(&mut self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, CallError>;

    /// Bytes of linear memory the instance holds now (0 when it has none),
    /// so a worker can drop an instance that grew instead of keeping it.
    fn memory_bytes(&self) -> usize;
}

/// The runtime backends, by their command-line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuntimeKind {
    /// The verify code linked into the host: the baseline.
    Native,
    /// wasmtime: Cranelift ahead-of-time compiler.
    Wasmtime,
    /// wasmtime with Winch, its single-pass baseline compiler: compiles
    /// several times faster than Cranelift, runs slower.
    WasmtimeWinch,
    /// wasmtime with Pulley, its portable interpreter: Cranelift compiles
    /// to Pulley bytecode instead of machine code.
    WasmtimePulley,
    /// wasmi: a register-machine interpreter written in Rust.
    Wasmi,
    /// wasm3: a threaded-code interpreter written in C.
    Wasm3,
}

impl RuntimeKind {
    /// Every backend, baseline first.
    pub const ALL: [RuntimeKind; 6] = [
        RuntimeKind::Native,
        RuntimeKind::Wasmtime,
        RuntimeKind::WasmtimeWinch,
        RuntimeKind::WasmtimePulley,
        RuntimeKind::Wasmi,
        RuntimeKind::Wasm3,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Native => "native",
            RuntimeKind::Wasmtime => "wasmtime",
            RuntimeKind::WasmtimeWinch => "wasmtime-winch",
            RuntimeKind::WasmtimePulley => "wasmtime-pulley",
            RuntimeKind::Wasmi => "wasmi",
            RuntimeKind::Wasm3 => "wasm3",
        }
    }

    /// The module variant this backend runs fastest of those it can load.
    /// (Winch does not implement the wide-arithmetic proposal `fast` uses.)
    pub fn preferred_variant(self) -> &'static str {
        match self {
            RuntimeKind::Wasm3 => "compat",
            RuntimeKind::WasmtimeWinch => "default",
            RuntimeKind::Native
            | RuntimeKind::Wasmtime
            | RuntimeKind::WasmtimePulley
            | RuntimeKind::Wasmi => "fast",
        }
    }

    /// Whether this backend interprets wasm (wasmi, wasm3, Pulley) rather
    /// than running machine code compiled from it.
    pub fn is_interpreter(self) -> bool {
        matches!(
            self,
            RuntimeKind::Wasmi | RuntimeKind::Wasm3 | RuntimeKind::WasmtimePulley
        )
    }

    /// Whether this is one of wasmtime's tiers (Cranelift, Winch, Pulley).
    pub fn is_wasmtime(self) -> bool {
        matches!(
            self,
            RuntimeKind::Wasmtime | RuntimeKind::WasmtimeWinch | RuntimeKind::WasmtimePulley
        )
    }

    /// Creates the backend with the default [`Limits`].
    ///
    /// # Errors
    ///
    /// [`RuntimeError`] when the engine cannot be configured on this host.
    pub fn create(self) -> Result<Arc<dyn Runtime>, RuntimeError> {
        self.create_with(Limits::default())
    }

    /// Creates the backend; every module it compiles runs within `limits`
    /// (native runs built-in code and has nothing to bound).
    ///
    /// # Errors
    ///
    /// [`RuntimeError`] when the engine cannot be configured on this host.
    pub fn create_with(self, limits: Limits) -> Result<Arc<dyn Runtime>, RuntimeError> {
        let _ = limits; // unused when only native is built
        Ok(match self {
            RuntimeKind::Native => Arc::new(backend::native::NativeRuntime),
            #[cfg(feature = "wasmtime")]
            RuntimeKind::Wasmtime => Arc::new(backend::wasmtime::WasmtimeRuntime::new(limits)?),
            #[cfg(feature = "wasmtime-winch")]
            RuntimeKind::WasmtimeWinch => Arc::new(backend::wasmtime::WasmtimeRuntime::with_tier(
                backend::wasmtime::Tier::Winch,
                limits,
            )?),
            #[cfg(feature = "wasmtime-pulley")]
            RuntimeKind::WasmtimePulley => Arc::new(backend::wasmtime::WasmtimeRuntime::with_tier(
                backend::wasmtime::Tier::Pulley,
                limits,
            )?),
            #[cfg(feature = "wasmi")]
            RuntimeKind::Wasmi => Arc::new(backend::wasmi::WasmiRuntime::new(limits)),
            #[cfg(feature = "wasm3")]
            RuntimeKind::Wasm3 => Arc::new(backend::wasm3::Wasm3Runtime::new(limits)),
            #[allow(unreachable_patterns)]
            other => {
                return Err(RuntimeError::NotBuilt {
                    runtime: other.name(),
                });
            }
        })
    }

    /// Creates the backend set to serve a newly loaded version soonest, as
    /// the first tier of tiered activation: wasmi translates each function
    /// at its first call (`backend::wasmi::Translation::Lazy`); the others
    /// are as [`RuntimeKind::create_with`] makes them.
    ///
    /// # Errors
    ///
    /// As [`RuntimeKind::create_with`].
    pub fn create_first_tier(self, limits: Limits) -> Result<Arc<dyn Runtime>, RuntimeError> {
        match self {
            #[cfg(feature = "wasmi")]
            RuntimeKind::Wasmi => Ok(Arc::new(backend::wasmi::WasmiRuntime::with_translation(
                backend::wasmi::Translation::Lazy,
                limits,
            ))),
            other => other.create_with(limits),
        }
    }

    /// Whether this build includes the backend (cargo features `wasmtime`,
    /// `wasmtime-winch`, `wasmtime-pulley`, `wasmi`, `wasm3`; native is
    /// always built).
    pub fn is_built(self) -> bool {
        match self {
            RuntimeKind::Native => true,
            RuntimeKind::Wasmtime => cfg!(feature = "wasmtime"),
            RuntimeKind::WasmtimeWinch => cfg!(feature = "wasmtime-winch"),
            RuntimeKind::WasmtimePulley => cfg!(feature = "wasmtime-pulley"),
            RuntimeKind::Wasmi => cfg!(feature = "wasmi"),
            RuntimeKind::Wasm3 => cfg!(feature = "wasm3"),
        }
    }

    /// The backends this build includes, baseline first.
    pub fn built() -> Vec<RuntimeKind> {
        RuntimeKind::ALL
            .into_iter()
            .filter(|kind| kind.is_built())
            .collect()
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown runtime name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown runtime {0:?} (expected one of: native, wasmtime, wasmtime-winch, wasmtime-pulley, wasmi, wasm3)"
)]
pub struct UnknownRuntime(pub String);

impl FromStr for RuntimeKind {
    type Err = UnknownRuntime;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RuntimeKind::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| UnknownRuntime(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_is_created_exactly_when_it_is_built() {
        assert!(RuntimeKind::built().contains(&RuntimeKind::Native));
        for kind in RuntimeKind::ALL {
            match kind.create() {
                Ok(runtime) => {
                    assert!(kind.is_built(), "{kind}");
                    assert_eq!(runtime.kind(), kind);
                }
                Err(RuntimeError::NotBuilt { runtime }) => {
                    assert!(!kind.is_built(), "{kind}");
                    assert_eq!(runtime, kind.name());
                }
                Err(other) => panic!("{kind}: {other}"),
            }
        }
    }
}
