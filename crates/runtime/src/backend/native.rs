//! The `native` backend: the verify code linked into the host.
//!
//! It is the baseline every wasm figure is compared with. It runs the same
//! `hotwasm-secp` code the guests are compiled from, behind the same waPC
//! request and response encoding, so the only difference measured is
//! WebAssembly itself. The module bytes it is given are not executed: a
//! native "module" is always the built-in verifier.

use std::sync::Arc;

use crate::{CallError, CompiledModule, Instance, Runtime, RuntimeError, RuntimeKind};

/// Runs the built-in verifier.
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeRuntime;

impl Runtime for NativeRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Native
    }

    fn compile(&self, _wasm: &[u8]) -> Result<Arc<dyn CompiledModule>, RuntimeError> {
        Ok(Arc::new(NativeModule))
    }
}

struct NativeModule;

impl CompiledModule for NativeModule {
    fn runtime(&self) -> RuntimeKind {
        RuntimeKind::Native
    }

    fn instantiate(&self) -> Result<Box<dyn Instance>, RuntimeError> {
        Ok(Box::new(NativeInstance))
    }

    fn instantiate_sendable(&self) -> Option<Result<Box<dyn Instance + Send>, RuntimeError>> {
        Some(Ok(Box::new(NativeInstance)))
    }
}

struct NativeInstance;

impl Instance for NativeInstance {
    fn call(&mut self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        if operation != "verify" {
            return Err(CallError::Guest(format!(
                "No handler registered for function {operation}"
            )));
        }
        hotwasm_secp::handle(payload).map_err(|e| CallError::Guest(e.to_string()))
    }

    fn memory_bytes(&self) -> usize {
        0
    }
}
