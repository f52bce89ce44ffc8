//! The runtime backends: each implements the contract in the crate root
//! and nothing else.

pub mod native;
#[cfg(feature = "wasm3")]
pub mod wasm3;
#[cfg(feature = "wasmi")]
pub mod wasmi;
#[cfg(feature = "wasmtime")]
pub mod wasmtime;

use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

use crate::RuntimeError;
use crate::wapc;

/// Checks that a module has the shape of a waPC guest: it exports the
/// function `__guest_call` and its memory as `memory`, and imports nothing
/// but waPC host functions. Runs after the backend has compiled the module,
/// so a module that is not wasm at all gets the runtime's own message.
///
/// # Errors
///
/// [`RuntimeError::NotWapc`] naming what is missing or foreign.
#[cfg_attr(
    not(any(feature = "wasmtime", feature = "wasmi", feature = "wasm3")),
    allow(dead_code)
)]
pub(crate) fn check_wapc_shape(wasm: &[u8]) -> Result<(), RuntimeError> {
    let not_wapc = |message: String| Err(RuntimeError::NotWapc(message));
    let (mut has_call, mut has_memory) = (false, false);
    for payload in Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::ImportSection(imports)) => {
                for import in imports.into_imports() {
                    let import = import.map_err(|e| RuntimeError::NotWapc(e.to_string()))?;
                    let is_host_function = import.module == wapc::IMPORT_MODULE
                        && matches!(import.ty, TypeRef::Func(_))
                        && wapc::HOST_FUNCTIONS.contains(&import.name);
                    if !is_host_function {
                        return not_wapc(format!(
                            "imports {}::{}, which a waPC host does not provide",
                            import.module, import.name
                        ));
                    }
                }
            }
            Ok(Payload::ExportSection(exports)) => {
                for export in exports {
                    let export = export.map_err(|e| RuntimeError::NotWapc(e.to_string()))?;
                    has_call |=
                        export.name == wapc::GUEST_CALL && export.kind == ExternalKind::Func;
                    has_memory |= export.name == "memory" && export.kind == ExternalKind::Memory;
                }
            }
            Ok(_) => {}
            Err(e) => return not_wapc(e.to_string()),
        }
    }
    if !has_call {
        return not_wapc(format!("does not export the function {}", wapc::GUEST_CALL));
    }
    if !has_memory {
        return not_wapc("does not export its linear memory as \"memory\"".into());
    }
    Ok(())
}
