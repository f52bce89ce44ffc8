//! The `wasmi` backend: a register-machine interpreter written in Rust.
//!
//! Calls run on fuel in slices: when a slice is used up, wasmi pauses the
//! call (a resumable call), the host looks at the clock, and either refuels
//! or stops the call at its deadline. Memory is capped by the store's
//! limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmi::{
    Caller, CompilationMode, Config, CustomFuelCosts, Engine, Extern, Linker, Memory, Module,
    Store, StoreLimits, StoreLimitsBuilder, TypedFunc, TypedResumableCall, WasmResults,
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

/// When wasmi translates a module's functions into its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Translation {
    /// Every function when the module compiles: compiling takes longer and
    /// no call pays for translation. What a runtime that serves for long
    /// wants.
    #[default]
    Eager,
    /// The whole module validated when it compiles (a module that is not
    /// valid WebAssembly is still refused there), each function translated
    /// at its first call: compiling takes about a quarter of the time, and
    /// the first calls of each function (the self-test's, the prewarm's)
    /// pay for its translation. What a first tier wants (`ModuleHost`'s
    /// tiered activation).
    ///
    /// Translation is charged no fuel, so a call can always resume: under
    /// wasmi 2.0, running out of fuel while translating a callee is not
    /// resumable (wasmi-labs/wasmi#2032) and would fail an honest call.
    /// The price: the clock is looked at between fuel slices only, so a
    /// call that reaches many untranslated functions can pass its deadline
    /// by up to the module's whole translation — bounded by the module
    /// size cap, paid once per compiled module (translations are shared by
    /// every instance), and the same work an eager compile does unbounded.
    /// Limits only translation finds (too many locals or registers in one
    /// function) then fail that function's calls, not the compile: a
    /// module whose self-test does not reach such a function passes it.
    Lazy,
}

impl WasmiRuntime {
    /// An engine with the wide-arithmetic proposal enabled (the `fast`
    /// variant needs it; wasmi leaves it off by default), fuel metering
    /// on and eager translation, whose guests run within `limits`.
    pub fn new(limits: Limits) -> Self {
        Self::with_translation(Translation::Eager, limits)
    }

    /// [`WasmiRuntime::new`] translating functions as `translation` says.
    pub fn with_translation(translation: Translation, limits: Limits) -> Self {
        let mut config = Config::default();
        config
            .wasm_wide_arithmetic(true)
            .consume_fuel(limits.metered);
        match translation {
            // Also keeps translation off the hot path.
            Translation::Eager => {
                config.compilation_mode(CompilationMode::Eager);
            }
            Translation::Lazy => {
                config
                    .compilation_mode(CompilationMode::LazyTranslation)
                    .fuel_cost(CustomFuelCosts {
                        // wasmi's default for copies; translation free
                        // (validation happens at compile time in this
                        // mode, where no fuel is charged anyway).
                        bytes_copied_per_fuel: 64,
                        fuel_per_bytes_translated: 0,
                        fuel_per_bytes_validated: 0,
                    });
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A waPC module whose call first runs a function never called before,
    /// of 200,000 `nop`s: at wasmi's default fuel costs (7 units per byte
    /// translated) its translation alone needs more than a fuel slice.
    fn module_with_a_big_callee() -> Vec<u8> {
        let nops = "nop\n".repeat(200_000);
        wat::parse_str(format!(
            r#"(module
                (import "wapc" "__guest_request" (func $request (param i32 i32)))
                (import "wapc" "__guest_response" (func $response (param i32 i32)))
                (memory (export "memory") 1)
                (data (i32.const 0) "\82\a5valid\c3\a6reason\c0")
                (func $big {nops})
                (func (export "__guest_call") (param i32 i32) (result i32)
                    (call $big)
                    (call $request (i32.const 1024) (i32.const 2048))
                    (call $response (i32.const 0) (i32.const 16))
                    i32.const 1))"#
        ))
        .expect("wat")
    }

    #[test]
    fn a_lazily_translated_callee_never_fails_a_call_for_lack_of_fuel() {
        let wasm = module_with_a_big_callee();
        for translation in [Translation::Eager, Translation::Lazy] {
            let runtime = WasmiRuntime::with_translation(translation, Limits::default());
            let module = runtime.compile(&wasm).expect("compiles");
            let mut instance = module.instantiate().expect("instantiates");
            for call in 0..2 {
                let answer = instance.call("verify", b"job");
                assert!(answer.is_ok(), "{translation:?}, call {call}: {answer:?}");
            }
        }
    }

    #[test]
    fn lazy_translation_still_refuses_an_invalid_module_when_it_compiles() {
        // A function body that adds with nothing on the stack: invalid,
        // though never called (`wat` writes it without validating).
        let wasm = wat::parse_str(
            r#"(module
                (memory (export "memory") 1)
                (func $broken (result i32) i32.add)
                (func (export "__guest_call") (param i32 i32) (result i32) i32.const 0))"#,
        )
        .expect("wat");
        let runtime = WasmiRuntime::with_translation(Translation::Lazy, Limits::default());
        let refused = runtime.compile(&wasm);
        assert!(
            matches!(refused, Err(RuntimeError::Compile { .. })),
            "{:?}",
            refused.err()
        );
    }
}
