//! The `wasmtime` backend: Cranelift-compiled native code.
//!
//! Compilation makes an [`InstancePre`] (imports resolved once), so
//! instantiation is only allocation and initialisation.

use std::sync::Arc;

use std::hash::{Hash, Hasher};

use wasmtime::{
    Caller, Config, Engine, Extern, InstanceAllocationStrategy, InstancePre, Linker, Module,
    OptLevel, PoolingAllocationConfig, Store, TypedFunc,
};

use crate::backend::check_wapc_shape;
use crate::wapc::{self, Fault, WapcHost};
use crate::{CallError, CompiledModule, Instance, Runtime, RuntimeError, RuntimeKind};

const NAME: &str = "wasmtime";

/// Instances one engine can hold at once (each worker holds one per
/// scheme, plus the ones being replaced during a swap).
pub const POOLED_INSTANCES: u32 = 128;

/// Largest linear memory a guest may grow to.
pub const MAX_MEMORY_BYTES: usize = 256 << 20;

/// A wasmtime engine with the waPC host functions linked.
pub struct WasmtimeRuntime {
    engine: Engine,
    linker: Arc<Linker<WapcHost>>,
}

impl WasmtimeRuntime {
    /// An engine with Cranelift at `speed` and the wide-arithmetic proposal
    /// enabled (the `fast` variant needs it).
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Engine`] when wasmtime rejects the configuration.
    pub fn new() -> Result<Self, RuntimeError> {
        let mut config = Config::new();
        config
            .cranelift_opt_level(OptLevel::Speed)
            .wasm_wide_arithmetic(true);
        // Instances come from a preallocated pool: instantiation is then a
        // few microseconds, which is what makes a hot swap cheap.
        let mut pool = PoolingAllocationConfig::default();
        pool.total_memories(POOLED_INSTANCES)
            .total_tables(POOLED_INSTANCES)
            .total_core_instances(POOLED_INSTANCES)
            .max_memory_size(MAX_MEMORY_BYTES);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine {
            runtime: NAME,
            message: format!("{e:#}"),
        })?;
        let mut linker = Linker::new(&engine);
        link_wapc(&mut linker).map_err(|e| RuntimeError::Engine {
            runtime: NAME,
            message: format!("{e:#}"),
        })?;
        Ok(WasmtimeRuntime {
            engine,
            linker: Arc::new(linker),
        })
    }

    /// The underlying engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl Runtime for WasmtimeRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Wasmtime
    }

    fn compile(&self, wasm: &[u8]) -> Result<Arc<dyn CompiledModule>, RuntimeError> {
        let module = Module::new(&self.engine, wasm).map_err(|e| RuntimeError::Compile {
            runtime: NAME,
            message: format!("{e:#}"),
        })?;
        check_wapc_shape(wasm)?;
        self.prepare(module)
    }

    fn artifact_fingerprint(&self) -> Option<String> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        Some(format!("wasmtime-{:016x}", hasher.finish()))
    }

    fn precompile(&self, wasm: &[u8]) -> Result<Vec<u8>, RuntimeError> {
        check_wapc_shape(wasm)?;
        self.engine
            .precompile_module(wasm)
            .map_err(|e| RuntimeError::Compile {
                runtime: NAME,
                message: format!("{e:#}"),
            })
    }

    unsafe fn load_artifact(
        &self,
        wasm: &[u8],
        artifact: &[u8],
    ) -> Result<Arc<dyn CompiledModule>, RuntimeError> {
        check_wapc_shape(wasm)?;
        // SAFETY: the caller guarantees the artifact came from `precompile`
        // under this engine's fingerprint.
        let module = unsafe { Module::deserialize(&self.engine, artifact) }.map_err(|e| {
            RuntimeError::Compile {
                runtime: NAME,
                message: format!("precompiled artifact refused: {e:#}"),
            }
        })?;
        self.prepare(module)
    }
}

impl WasmtimeRuntime {
    /// Resolves the imports once, so instantiation only allocates.
    fn prepare(&self, module: Module) -> Result<Arc<dyn CompiledModule>, RuntimeError> {
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| RuntimeError::NotWapc(format!("{e:#}")))?;
        Ok(Arc::new(WasmtimeModule {
            engine: self.engine.clone(),
            pre,
        }))
    }
}

struct WasmtimeModule {
    engine: Engine,
    pre: InstancePre<WapcHost>,
}

impl CompiledModule for WasmtimeModule {
    fn instantiate(&self) -> Result<Box<dyn Instance>, RuntimeError> {
        Ok(Box::new(self.new_instance()?))
    }

    fn instantiate_sendable(&self) -> Option<Result<Box<dyn Instance + Send>, RuntimeError>> {
        Some(
            self.new_instance()
                .map(|instance| Box::new(instance) as Box<dyn Instance + Send>),
        )
    }
}

impl WasmtimeModule {
    fn new_instance(&self) -> Result<WasmtimeInstance, RuntimeError> {
        let failed = |e: wasmtime::Error| RuntimeError::Instantiate {
            runtime: NAME,
            message: format!("{e:#}"),
        };
        let mut store = Store::new(&self.engine, WapcHost::default());
        let instance = self.pre.instantiate(&mut store).map_err(failed)?;
        let guest_call = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, wapc::GUEST_CALL)
            .map_err(|e| RuntimeError::NotWapc(format!("{e:#}")))?;
        for init in wapc::INIT_FUNCTIONS {
            if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, init) {
                init.call(&mut store, ()).map_err(failed)?;
            }
        }
        Ok(WasmtimeInstance { store, guest_call })
    }
}

struct WasmtimeInstance {
    store: Store<WapcHost>,
    guest_call: TypedFunc<(i32, i32), i32>,
}

impl Instance for WasmtimeInstance {
    fn call(&mut self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        let (op_len, len) = self.store.data_mut().begin(operation, payload)?;
        let code = self
            .guest_call
            .call(&mut self.store, (op_len, len))
            .map_err(|e| CallError::Trap(format!("{e:#}")))?;
        self.store.data_mut().finish(code)
    }
}

/// The guest's memory and the protocol state, borrowed together.
fn memory_and_host<'a>(
    caller: &'a mut Caller<'_, WapcHost>,
) -> Result<(&'a mut [u8], &'a mut WapcHost), wasmtime::Error> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory.data_and_store_mut(caller)),
        _ => Err(wasmtime::Error::msg("guest exports no memory")),
    }
}

fn trap(fault: Fault) -> wasmtime::Error {
    wasmtime::Error::msg(fault.to_string())
}

fn link_wapc(linker: &mut Linker<WapcHost>) -> wasmtime::Result<()> {
    let m = wapc::IMPORT_MODULE;
    linker.func_wrap(
        m,
        "__guest_request",
        |mut caller: Caller<'_, WapcHost>, op_ptr: i32, ptr: i32| {
            let (memory, host) = memory_and_host(&mut caller)?;
            host.guest_request(memory, op_ptr, ptr).map_err(trap)
        },
    )?;
    linker.func_wrap(
        m,
        "__guest_response",
        |mut caller: Caller<'_, WapcHost>, ptr: i32, len: i32| {
            let (memory, host) = memory_and_host(&mut caller)?;
            host.guest_response(memory, ptr, len).map_err(trap)
        },
    )?;
    linker.func_wrap(
        m,
        "__guest_error",
        |mut caller: Caller<'_, WapcHost>, ptr: i32, len: i32| {
            let (memory, host) = memory_and_host(&mut caller)?;
            host.guest_error(memory, ptr, len).map_err(trap)
        },
    )?;
    linker.func_wrap(
        m,
        "__host_call",
        |mut caller: Caller<'_, WapcHost>,
         bd_ptr: i32,
         bd_len: i32,
         ns_ptr: i32,
         ns_len: i32,
         op_ptr: i32,
         op_len: i32,
         ptr: i32,
         len: i32| {
            let (memory, host) = memory_and_host(&mut caller)?;
            host.host_call(
                memory,
                (bd_ptr, bd_len),
                (ns_ptr, ns_len),
                (op_ptr, op_len),
                (ptr, len),
            )
            .map_err(trap)
        },
    )?;
    linker.func_wrap(
        m,
        "__host_response",
        |_: Caller<'_, WapcHost>, _ptr: i32| {},
    )?;
    linker.func_wrap(m, "__host_response_len", |caller: Caller<'_, WapcHost>| {
        caller.data().host_response_len()
    })?;
    linker.func_wrap(
        m,
        "__host_error",
        |mut caller: Caller<'_, WapcHost>, ptr: i32| {
            let (memory, host) = memory_and_host(&mut caller)?;
            host.host_error(memory, ptr).map_err(trap)
        },
    )?;
    linker.func_wrap(m, "__host_error_len", |caller: Caller<'_, WapcHost>| {
        caller.data().host_error_len()
    })?;
    linker.func_wrap(
        m,
        "__console_log",
        |mut caller: Caller<'_, WapcHost>, ptr: i32, len: i32| {
            let (memory, host) = memory_and_host(&mut caller)?;
            host.console_log(memory, ptr, len).map_err(trap)
        },
    )?;
    Ok(())
}
