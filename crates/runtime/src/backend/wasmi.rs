//! The `wasmi` backend: a register-machine interpreter written in Rust.
//!
//! Calls run on fuel in slices: when a slice is used up, wasmi pauses the
//! call (a resumable call), the host looks at the clock, and either refuels
//! or stops the call at its deadline. Memory is capped by the store's
//! limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmi::{
    Caller, CompilationMode, Config, Engine, Extern, Linker, Memory, Module, Store, StoreLimits,
    StoreLimitsBuilder, TypedFunc, TypedResumableCall, WasmResults,
};

use crate::backend::check_wapc_shape;
use crate::wapc::{self, Fault, WapcHost};
use crate::{CallError, CompiledModule, Instance, Limits, Runtime, RuntimeError, RuntimeKind};

const NAME: &str = "wasmi";

/// Fuel between two looks at the clock: about a millisecond of guest code
/// (wasmi charges roughly one unit per instruction).
pub const FUEL_SLICE: u64 = 1_000_000;

/// Fuel for a module's start function, which wasmi cannot pause: a bound
/// in instructions rather than time (honest guests have none).
pub const START_FUEL: u64 = 100_000_000;

/// A wasmi engine with the waPC host functions linked.
pub struct WasmiRuntime {
    engine: Engine,
    linker: Arc<Linker<State>>,
    limits: Limits,
}

/// What an instance's store holds: the waPC state and the memory cap.
struct State {
    host: WapcHost,
    limits: StoreLimits,
}

impl WasmiRuntime {
    /// An engine with the wide-arithmetic proposal enabled (the `fast`
    /// variant needs it; wasmi leaves it off by default) and fuel metering
    /// on, whose guests run within `limits`.
    pub fn new(limits: Limits) -> Self {
        let mut config = Config::default();
        // Eager translation: under wasmi 2.0's default lazy translation, a
        // callee translated mid-call charges fuel, and running out there is
        // not resumable (wasmi-labs/wasmi#2032): an honest call could fail.
        // Translating at compile time also keeps that cost off the hot path.
        config
            .wasm_wide_arithmetic(true)
            .consume_fuel(limits.metered)
            .compilation_mode(CompilationMode::Eager);
        let engine = Engine::new(&config);
        let mut linker = Linker::new(&engine);
        link_wapc(&mut linker);
        WasmiRuntime {
            engine,
            linker: Arc::new(linker),
            limits,
        }
    }
}

impl Default for WasmiRuntime {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Runtime for WasmiRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Wasmi
    }

    fn limits(&self) -> Limits {
        self.limits
    }

    fn compile(&self, wasm: &[u8]) -> Result<Arc<dyn CompiledModule>, RuntimeError> {
        self.limits.check_module_size(wasm)?;
        let module = Module::new(&self.engine, wasm).map_err(|e| RuntimeError::Compile {
            runtime: NAME,
            message: e.to_string(),
        })?;
        check_wapc_shape(wasm)?;
        Ok(Arc::new(WasmiModule {
            engine: self.engine.clone(),
            linker: Arc::clone(&self.linker),
            module,
            limits: self.limits,
        }))
    }
}

struct WasmiModule {
    engine: Engine,
    linker: Arc<Linker<State>>,
    module: Module,
    limits: Limits,
}

impl CompiledModule for WasmiModule {
    fn runtime(&self) -> RuntimeKind {
        RuntimeKind::Wasmi
    }

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
        let state = State {
            host: WapcHost::new(self.limits.max_response_bytes),
            limits: StoreLimitsBuilder::new()
                .memory_size(self.limits.max_memory_bytes)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        let metered = self.limits.metered;
        if metered {
            store.set_fuel(START_FUEL).map_err(failed)?;
        }
        let instance = self
            .linker
            .instantiate_and_start(&mut store, &self.module)
            .map_err(failed)?;
        let guest_call = instance
            .get_typed_func::<(i32, i32), i32>(&store, wapc::GUEST_CALL)
            .map_err(|e| RuntimeError::NotWapc(e.to_string()))?;
        let deadline = Instant::now() + self.limits.init_timeout;
        for init in wapc::INIT_FUNCTIONS {
            if let Ok(init) = instance.get_typed_func::<(), ()>(&store, init) {
                if !metered {
                    init.call(&mut store, ()).map_err(failed)?;
                    continue;
                }
                store.set_fuel(FUEL_SLICE).map_err(failed)?;
                let call = init.call_resumable(&mut store, ());
                run_until(&mut store, deadline, call).map_err(|e| match e {
                    CallError::Deadline(_) => RuntimeError::InitDeadline {
                        runtime: NAME,
                        limit: self.limits.init_timeout,
                    },
                    other => RuntimeError::Instantiate {
                        runtime: NAME,
                        message: other.to_string(),
                    },
                })?;
            }
        }
        let memory = instance.get_memory(&store, "memory");
        Ok(WasmiInstance {
            store,
            guest_call,
            memory,
            call_timeout: self.limits.call_timeout,
            metered,
        })
    }
}

/// Drives a resumable call to its end: refuels each slice while the
/// deadline has not passed, and stops the call when it has.
fn run_until<R: WasmResults>(
    store: &mut Store<State>,
    deadline: Instant,
    mut call: Result<TypedResumableCall<R>, wasmi::Error>,
) -> Result<R, CallError> {
    loop {
        match call {
            Ok(TypedResumableCall::Finished(results)) => return Ok(results),
            Ok(TypedResumableCall::OutOfFuel(paused)) => {
                let now = Instant::now();
                if now >= deadline {
                    let over = now.saturating_duration_since(deadline);
                    return Err(CallError::Deadline(over));
                }
                store
                    .set_fuel(FUEL_SLICE.max(paused.required_fuel()))
                    .map_err(|e| CallError::Trap(e.to_string()))?;
                call = paused.resume(&mut *store);
            }
            // A host function refused the guest (a fault): not resumed.
            Ok(TypedResumableCall::HostTrap(trapped)) => {
                return Err(CallError::Trap(trapped.host_error().to_string()));
            }
            Err(e) => return Err(CallError::Trap(e.to_string())),
        }
    }
}

struct WasmiInstance {
    store: Store<State>,
    guest_call: TypedFunc<(i32, i32), i32>,
    memory: Option<Memory>,
    call_timeout: Duration,
    metered: bool,
}

impl Instance for WasmiInstance {
    fn call(&mut self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        let (op_len, len) = self.store.data_mut().host.begin(operation, payload)?;
        if !self.metered {
            let code = self
                .guest_call
                .call(&mut self.store, (op_len, len))
                .map_err(|e| CallError::Trap(e.to_string()))?;
            return self.store.data_mut().host.finish(code);
        }
        let deadline = Instant::now() + self.call_timeout;
        self.store
            .set_fuel(FUEL_SLICE)
            .map_err(|e| CallError::Trap(e.to_string()))?;
        let call = self
            .guest_call
            .call_resumable(&mut self.store, (op_len, len));
        let code = run_until(&mut self.store, deadline, call).map_err(|e| match e {
            CallError::Deadline(_) => CallError::Deadline(self.call_timeout),
            other => other,
        })?;
        self.store.data_mut().host.finish(code)
    }

    fn memory_bytes(&self) -> usize {
        self.memory
            .map_or(0, |memory| memory.data_size(&self.store))
    }
}

fn memory_and_host<'a>(
    caller: &'a mut Caller<'_, State>,
) -> Result<(&'a mut [u8], &'a mut WapcHost), wasmi::Error> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => {
            let (memory, state) = memory.data_and_store_mut(caller);
            Ok((memory, &mut state.host))
        }
        _ => Err(wasmi::Error::new("guest exports no memory")),
    }
}

fn trap(fault: Fault) -> wasmi::Error {
    wasmi::Error::new(fault.to_string())
}

fn link_wapc(linker: &mut Linker<State>) {
    let m = wapc::IMPORT_MODULE;
    // Each name is defined once on a fresh linker, so `func_wrap` cannot
    // report a duplicate definition; the results are checked in debug builds.
    let results = [
        linker
            .func_wrap(
                m,
                "__guest_request",
                |mut caller: Caller<'_, State>, op_ptr: i32, ptr: i32| {
                    let (memory, host) = memory_and_host(&mut caller)?;
                    host.guest_request(memory, op_ptr, ptr).map_err(trap)
                },
            )
            .map(drop),
        linker
            .func_wrap(
                m,
                "__guest_response",
                |mut caller: Caller<'_, State>, ptr: i32, len: i32| {
                    let (memory, host) = memory_and_host(&mut caller)?;
                    host.guest_response(memory, ptr, len).map_err(trap)
                },
            )
            .map(drop),
        linker
            .func_wrap(
                m,
                "__guest_error",
                |mut caller: Caller<'_, State>, ptr: i32, len: i32| {
                    let (memory, host) = memory_and_host(&mut caller)?;
                    host.guest_error(memory, ptr, len).map_err(trap)
                },
            )
            .map(drop),
        linker
            .func_wrap(
                m,
                "__host_call",
                |mut caller: Caller<'_, State>,
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
            .func_wrap(m, "__host_response", |_: Caller<'_, State>, _ptr: i32| {})
            .map(drop),
        linker
            .func_wrap(m, "__host_response_len", |caller: Caller<'_, State>| {
                caller.data().host.host_response_len()
            })
            .map(drop),
        linker
            .func_wrap(
                m,
                "__host_error",
                |mut caller: Caller<'_, State>, ptr: i32| {
                    let (memory, host) = memory_and_host(&mut caller)?;
                    host.host_error(memory, ptr).map_err(trap)
                },
            )
            .map(drop),
        linker
            .func_wrap(m, "__host_error_len", |caller: Caller<'_, State>| {
                caller.data().host.host_error_len()
            })
            .map(drop),
        linker
            .func_wrap(
                m,
                "__console_log",
                |mut caller: Caller<'_, State>, ptr: i32, len: i32| {
                    let (memory, host) = memory_and_host(&mut caller)?;
                    host.console_log(memory, ptr, len).map_err(trap)
                },
            )
            .map(drop),
    ];
    debug_assert!(results.iter().all(Result::is_ok));
}
