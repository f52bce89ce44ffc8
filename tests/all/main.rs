//! End-to-end tests, one binary (shorter link times), one module per
//! concern.

mod differential;
mod host;
mod hot_swap;
mod limits;
mod misbehaving_modules;
mod official_wapc_host;
mod oracle;
mod pipeline;
mod registry;
mod signed_modules;
mod trials;
mod vectors;

use std::sync::Arc;

use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{ModuleSet, Worker};

/// A runtime, a variant, and its modules compiled there.
pub type Loaded = (RuntimeKind, &'static str, Arc<ModuleSet>);

/// Every (runtime, variant) pair whose modules load, and the pairs that are
/// refused with the runtime's reason. Native runs one "variant": the
/// built-in code.
pub fn loadable_combinations() -> (Vec<Loaded>, Vec<String>) {
    let variants = hotwasm_modules::built_variants();
    let mut loaded = Vec::new();
    let mut refused = Vec::new();
    for kind in RuntimeKind::ALL {
        let variants = if kind == RuntimeKind::Native {
            &variants[..1]
        } else {
            &variants[..]
        };
        for variant in variants {
            match ModuleSet::built_with(kind, variant, unhurried()) {
                Ok(set) => loaded.push((kind, *variant, set)),
                Err(e) => refused.push(format!("{kind}/{variant}: {e}")),
            }
        }
    }
    (loaded, refused)
}

/// A worker on the built modules of `variant`, panicking with the reason
/// if they do not load.
pub fn worker(kind: RuntimeKind, variant: &str) -> Worker {
    let set = ModuleSet::built_with(kind, variant, unhurried())
        .unwrap_or_else(|e| panic!("{kind}/{variant}: {e}"));
    Worker::new(&set)
}

/// The default limits with deadlines no honest call comes near, even a
/// debug build of wasm3 on a loaded machine: the tests built on these
/// helpers compare verdicts, and a deadline must not decide them.
pub fn unhurried() -> hotwasm_runtime::Limits {
    hotwasm_runtime::Limits {
        call_timeout: std::time::Duration::from_secs(10),
        init_timeout: std::time::Duration::from_secs(10),
        ..hotwasm_runtime::Limits::default()
    }
}
