//! Bounds on what a guest module may take: time per call and per start,
//! memory, the size of what it answers, and its own size.
//!
//! Modules are untrusted code. Every runtime enforces the same [`Limits`]
//! with its own mechanism — wasmtime by epoch interruption and its
//! instance pool, wasmi by fuel checked against the clock and its store
//! limits, wasm3 by checks written into the module at compile time — so a
//! guest that loops, grows or floods costs one error, never a worker.

use std::time::Duration;

use crate::RuntimeError;

/// What one guest may use. The defaults never bind an honest verify
/// module (a verify is 0.1–5 ms and needs about 2 MiB) and stop a hostile
/// one quickly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest a `__guest_call` may run before it is stopped.
    pub call_timeout: Duration,
    /// Longest instantiation plus `wapc_init` may run.
    pub init_timeout: Duration,
    /// Largest linear memory an instance may have.
    pub max_memory_bytes: usize,
    /// Largest response (or error message) a guest may hand back.
    pub max_response_bytes: usize,
    /// Largest module accepted for compilation.
    pub max_module_bytes: usize,
    /// An instance whose memory grew past this is dropped after its call
    /// instead of being kept for the next one, so the memory returns to
    /// the system.
    pub keep_instance_bytes: usize,
    /// Whether calls are stopped at their deadlines (epoch interruption,
    /// fuel, the checks written into wasm3 modules). Always on in hotwasm's
    /// commands; off only to measure what the deadlines cost
    /// (`cargo bench -p hotwasm-worker --bench limits`).
    pub metered: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout: Duration::from_millis(100),
            init_timeout: Duration::from_secs(1),
            max_memory_bytes: 64 << 20,
            max_response_bytes: 64 << 10,
            max_module_bytes: 8 << 20,
            keep_instance_bytes: 16 << 20,
            metered: true,
        }
    }
}

impl Limits {
    /// Refuses a module larger than [`Limits::max_module_bytes`] before
    /// any runtime parses it.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::ModuleTooLarge`].
    pub fn check_module_size(&self, wasm: &[u8]) -> Result<(), RuntimeError> {
        if wasm.len() > self.max_module_bytes {
            return Err(RuntimeError::ModuleTooLarge {
                bytes: wasm.len(),
                limit: self.max_module_bytes,
            });
        }
        Ok(())
    }
}
