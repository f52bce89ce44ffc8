//! The `wasmi` backend: a register-machine interpreter written in Rust.

use std::sync::Arc;

use wasmi::{Caller, Config, Engine, Extern, Linker, Module, Store, TypedFunc};

use crate::backend::check_wapc_shape;
use crate::wapc::{self, Fault, WapcHost};
use crate::{CallError, CompiledModule, Instance, Runtime, RuntimeError, RuntimeKind};

const NAME: &str = "wasmi";

/// A wasmi engine with the waPC host functions linked.
pub struct WasmiRuntime {
    engine: Engine,
    linker: Arc<Linker<WapcHost>>,
}

impl WasmiRuntime {
    /// An engine with the wide-arithmetic proposal enabled (the `fast`
    /// variant needs it; wasmi leaves it off by default).
    pub fn new() -> Self {
        let mut config = Config::default();
        config.wasm_wide_arithmetic(true);
        let engine = Engine::new(&config);
        let mut linker = Linker::new(&engine);
        link_wapc(&mut linker);
        WasmiRuntime {
            engine,
            linker: Arc::new(linker),
        }
    }
}

impl Default for WasmiRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime for WasmiRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Wasmi
    }

    fn compile(&self, wasm: &[u8]) -> Result<Arc<dyn CompiledModule>, RuntimeError> {
        let module = Module::new(&self.engine, wasm).map_err(|e| RuntimeError::Compile {
            runtime: NAME,
            message: e.to_string(),
        })?;
        check_wapc_shape(wasm)?;
        Ok(Arc::new(WasmiModule {
            engine: self.engine.clone(),
            linker: Arc::clone(&self.linker),
            module,
        }))
    }
}

struct WasmiModule {
    engine: Engine,
    linker: Arc<Linker<WapcHost>>,
    module: Module,
}

impl CompiledModule for WasmiModule {
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

impl WasmiModule {
    fn new_instance(&self) -> Result<WasmiInstance, RuntimeError> {
        let failed = |e: wasmi::Error| RuntimeError::Instantiate {
            runtime: NAME,
            message: e.to_string(),
        };
        let mut store = Store::new(&self.engine, WapcHost::default());
        let instance = self
            .linker
            .instantiate_and_start(&mut store, &self.module)
            .map_err(failed)?;
        let guest_call = instance
            .get_typed_func::<(i32, i32), i32>(&store, wapc::GUEST_CALL)
            .map_err(|e| RuntimeError::NotWapc(e.to_string()))?;
        for init in wapc::INIT_FUNCTIONS {
            if let Ok(init) = instance.get_typed_func::<(), ()>(&store, init) {
                init.call(&mut store, ()).map_err(failed)?;
            }
        }
        Ok(WasmiInstance { store, guest_call })
    }
}

struct WasmiInstance {
    store: Store<WapcHost>,
    guest_call: TypedFunc<(i32, i32), i32>,
}

impl Instance for WasmiInstance {
    fn call(&mut self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        let (op_len, len) = self.store.data_mut().begin(operation, payload)?;
        let code = self
            .guest_call
            .call(&mut self.store, (op_len, len))
            .map_err(|e| CallError::Trap(e.to_string()))?;
        self.store.data_mut().finish(code)
    }
}

fn memory_and_host<'a>(
    caller: &'a mut Caller<'_, WapcHost>,
) -> Result<(&'a mut [u8], &'a mut WapcHost), wasmi::Error> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory.data_and_store_mut(caller)),
        _ => Err(wasmi::Error::new("guest exports no memory")),
    }
}

fn trap(fault: Fault) -> wasmi::Error {
    wasmi::Error::new(fault.to_string())
}

fn link_wapc(linker: &mut Linker<WapcHost>) {
    let m = wapc::IMPORT_MODULE;
    // Each name is defined once on a fresh linker, so `func_wrap` cannot
    // report a duplicate definition; the results are checked in debug builds.
    let results = [
        linker
            .func_wrap(
                m,
                "__guest_request",
                |mut caller: Caller<'_, WapcHost>, op_ptr: i32, ptr: i32| {
                    let (memory, host) = memory_and_host(&mut caller)?;
                    host.guest_request(memory, op_ptr, ptr).map_err(trap)
                },
            )
            .map(drop),
        linker
            .func_wrap(
                m,
                "__guest_response",
                |mut caller: Caller<'_, WapcHost>, ptr: i32, len: i32| {
                    let (memory, host) = memory_and_host(&mut caller)?;
                    host.guest_response(memory, ptr, len).map_err(trap)
                },
            )
            .map(drop),
        linker
            .func_wrap(
                m,
                "__guest_error",
                |mut caller: Caller<'_, WapcHost>, ptr: i32, len: i32| {
                    let (memory, host) = memory_and_host(&mut caller)?;
                    host.guest_error(memory, ptr, len).map_err(trap)
                },
            )
            .map(drop),
        linker
            .func_wrap(
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
            )
            .map(drop),
        linker
            .func_wrap(
                m,
                "__host_response",
                |_: Caller<'_, WapcHost>, _ptr: i32| {},
            )
            .map(drop),
        linker
            .func_wrap(m, "__host_response_len", |caller: Caller<'_, WapcHost>| {
                caller.data().host_response_len()
            })
            .map(drop),
        linker
            .func_wrap(
                m,
                "__host_error",
                |mut caller: Caller<'_, WapcHost>, ptr: i32| {
                    let (memory, host) = memory_and_host(&mut caller)?;
                    host.host_error(memory, ptr).map_err(trap)
                },
            )
            .map(drop),
        linker
            .func_wrap(m, "__host_error_len", |caller: Caller<'_, WapcHost>| {
                caller.data().host_error_len()
            })
            .map(drop),
        linker
            .func_wrap(
                m,
                "__console_log",
                |mut caller: Caller<'_, WapcHost>, ptr: i32, len: i32| {
                    let (memory, host) = memory_and_host(&mut caller)?;
                    host.console_log(memory, ptr, len).map_err(trap)
                },
            )
            .map(drop),
    ];
    debug_assert!(results.iter().all(Result::is_ok));
}
