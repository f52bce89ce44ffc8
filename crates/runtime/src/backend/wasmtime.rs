//! The `wasmtime` backends: one engine per [`Tier`] — Cranelift-compiled
//! machine code (`wasmtime`), Winch's baseline machine code
//! (`wasmtime-winch`), or Cranelift-compiled Pulley bytecode run by
//! wasmtime's interpreter (`wasmtime-pulley`). Same host functions, limits
//! and pooling on each.
//!
//! Compilation makes an [`InstancePre`] (imports resolved once), so
//! instantiation is only allocation and initialisation.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{
    Caller, Config, Engine, Extern, InstanceAllocationStrategy, InstancePre, Linker, Memory,
    Module, OptLevel, PoolingAllocationConfig, Store, Strategy, Trap, TypedFunc,
};

use crate::backend::check_wapc_shape;
use crate::wapc::{self, Fault, WapcHost};
use crate::{CallError, CompiledModule, Instance, Limits, Runtime, RuntimeError, RuntimeKind};

/// How a wasmtime engine turns wasm into something it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Cranelift, the optimising compiler: the fastest code.
    Cranelift,
    /// Winch, the single-pass baseline compiler: compiles fastest, runs
    /// slower; x86-64 and aarch64 only, no wide-arithmetic.
    Winch,
    /// Pulley: Cranelift compiles to wasmtime's portable bytecode, which
    /// an interpreter runs (no machine code is generated).
    Pulley,
}

impl Tier {
    /// The runtime this tier is.
    pub fn kind(self) -> RuntimeKind {
        match self {
            Tier::Cranelift => RuntimeKind::Wasmtime,
            Tier::Winch => RuntimeKind::WasmtimeWinch,
            Tier::Pulley => RuntimeKind::WasmtimePulley,
        }
    }
}

/// The Pulley target matching this host's pointer width.
const PULLEY_TARGET: &str = if cfg!(target_pointer_width = "64") {
    "pulley64"
} else {
    "pulley32"
};

/// Instances one engine can hold at once (each worker holds one per
/// scheme, plus the ones being replaced during a swap).
pub const POOLED_INSTANCES: u32 = 128;

/// Set to `on-demand` to allocate instances one by one instead of from the
/// pool, without the pool's memory cap: what instruction counting under
/// valgrind needs, never a server.
pub const ALLOCATOR_ENV: &str = "HOTWASM_WASMTIME_ALLOCATOR";

/// A wasmtime engine with the waPC host functions linked, and the thread
/// that advances its epoch.
pub struct WasmtimeRuntime {
    tier: Tier,
    engine: Engine,
    linker: Arc<Linker<WapcHost>>,
    limits: Limits,
    deadlines: Deadlines,
    /// Shared with every module compiled here: epochs advance while any
    /// of them can still run. `None` when calls are not metered.
    ticker: Option<Arc<Ticker>>,
}

impl WasmtimeRuntime {
    /// A Cranelift engine: see [`WasmtimeRuntime::with_tier`].
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Engine`] when wasmtime rejects the configuration.
    pub fn new(limits: Limits) -> Result<Self, RuntimeError> {
        Self::with_tier(Tier::Cranelift, limits)
    }

    /// An engine on `tier` (Cranelift at `speed`, with the wide-arithmetic
    /// proposal the `fast` variant needs where the tier implements it),
    /// whose guests run within `limits`: epoch interruption stops a call at
    /// its deadline, the instance pool caps memory.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Engine`] when wasmtime rejects the configuration
    /// (a tier this build or this CPU does not support).
    pub fn with_tier(tier: Tier, limits: Limits) -> Result<Self, RuntimeError> {
        let name = tier.kind().name();
        let mut config = Config::new();
        match tier {
            Tier::Cranelift => {
                config.strategy(Strategy::Cranelift);
            }
            Tier::Winch => {
                config.strategy(Strategy::Winch);
            }
            Tier::Pulley => {
                config
                    .strategy(Strategy::Cranelift)
                    .target(PULLEY_TARGET)
                    .map_err(|e| RuntimeError::Engine {
                        runtime: name,
                        message: format!("{e:#}"),
                    })?;
            }
        }
        config
            .cranelift_opt_level(OptLevel::Speed)
            .wasm_wide_arithmetic(tier != Tier::Winch)
            .epoch_interruption(limits.metered)
            // A trap's reason is one line for the verdict, not a backtrace
            // as deep as the guest's recursion.
            .wasm_backtrace_max_frames(None);
        // Instances come from a preallocated pool: instantiation is then a
        // few microseconds, which is what makes a hot swap cheap. A slot's
        // memory is returned to the system when its instance is dropped.
        let mut pool = PoolingAllocationConfig::default();
        pool.total_memories(POOLED_INSTANCES)
            .total_tables(POOLED_INSTANCES)
            .total_core_instances(POOLED_INSTANCES)
            .max_memory_size(limits.max_memory_bytes);
        if std::env::var(ALLOCATOR_ENV).is_ok_and(|v| v == "on-demand") {
            // Valgrind (scripts/count-instructions.sh) cannot reserve the
            // pool's address space; the generated code is the same.
            tracing::warn!(
                "INSECURE: {ALLOCATOR_ENV}=on-demand: wasmtime instances are not pooled and their memory is not capped; for measurement only"
            );
        } else {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine {
            runtime: name,
            message: format!("{e:#}"),
        })?;
        let mut linker = Linker::new(&engine);
        link_wapc(&mut linker).map_err(|e| RuntimeError::Engine {
            runtime: name,
            message: format!("{e:#}"),
        })?;
        let deadlines = Deadlines::new(&limits);
        let ticker = match limits.metered {
            true => Some(Arc::new(Ticker::start(&engine, deadlines.tick).map_err(
                |e| RuntimeError::Engine {
                    runtime: name,
                    message: format!("cannot start the epoch thread: {e}"),
                },
            )?)),
            false => None,
        };
        Ok(WasmtimeRuntime {
            tier,
            engine,
            linker: Arc::new(linker),
            limits,
            deadlines,
            ticker,
        })
    }

    /// The underlying engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The tier this engine compiles for.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    fn name(&self) -> &'static str {
        self.tier.kind().name()
    }

    /// A compile error, with what to do about the one a tier is known for.
    fn explain(&self, message: String) -> String {
        if self.tier == Tier::Winch && message.contains("wide arithmetic") {
            format!(
                "{message} (Winch does not implement the wide-arithmetic proposal: use a variant without it, such as `default`)"
            )
        } else {
            message
        }
    }
}

impl Runtime for WasmtimeRuntime {
    fn kind(&self) -> RuntimeKind {
        self.tier.kind()
    }

    fn limits(&self) -> Limits {
        self.limits
    }

    fn compile(&self, wasm: &[u8]) -> Result<Arc<dyn CompiledModule>, RuntimeError> {
        self.limits.check_module_size(wasm)?;
        let module = Module::new(&self.engine, wasm).map_err(|e| RuntimeError::Compile {
            runtime: self.name(),
            message: self.explain(format!("{e:#}")),
        })?;
        check_wapc_shape(wasm)?;
        self.prepare(module)
    }

    fn artifact_fingerprint(&self) -> Option<String> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        Some(format!("{}-{:016x}", self.name(), hasher.finish()))
    }

    fn precompile(&self, wasm: &[u8]) -> Result<Vec<u8>, RuntimeError> {
        self.limits.check_module_size(wasm)?;
        check_wapc_shape(wasm)?;
        self.engine
            .precompile_module(wasm)
            .map_err(|e| RuntimeError::Compile {
                runtime: self.name(),
                message: self.explain(format!("{e:#}")),
            })
    }

    unsafe fn load_artifact(
        &self,
        wasm: &[u8],
        artifact: &[u8],
    ) -> Result<Arc<dyn CompiledModule>, RuntimeError> {
        self.limits.check_module_size(wasm)?;
        check_wapc_shape(wasm)?;
        // SAFETY: the caller guarantees the artifact came from `precompile`
        // under this engine's fingerprint.
        let module = unsafe { Module::deserialize(&self.engine, artifact) }.map_err(|e| {
            RuntimeError::Compile {
                runtime: self.name(),
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
            tier: self.tier,
            name: self.name(),
            engine: self.engine.clone(),
            pre,
            limits: self.limits,
            deadlines: self.deadlines,
            _ticker: self.ticker.clone(),
        }))
    }
}

/// The call and start deadlines in epoch ticks.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    tick: Duration,
    call: u64,
    init: u64,
}

impl Deadlines {
    /// A tick of a twentieth of the call deadline, within 1–10 ms: a call
    /// is stopped at most one tick after its deadline.
    fn new(limits: &Limits) -> Deadlines {
        let tick =
            (limits.call_timeout / 20).clamp(Duration::from_millis(1), Duration::from_millis(10));
        // The deadline counts from the next tick, which may come at once:
        // one tick more guarantees the full budget.
        let ticks = |d: Duration| d.as_nanos().div_ceil(tick.as_nanos()) as u64 + 1;
        Deadlines {
            tick,
            call: ticks(limits.call_timeout),
            init: ticks(limits.init_timeout),
        }
    }
}

/// Advances an engine's epoch every tick, until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: &Engine, tick: Duration) -> std::io::Result<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("wasmtime-epoch".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether wasmtime stopped the guest at its epoch deadline.
fn is_deadline(e: &wasmtime::Error) -> bool {
    e.downcast_ref::<Trap>() == Some(&Trap::Interrupt)
}

struct WasmtimeModule {
    tier: Tier,
    name: &'static str,
    engine: Engine,
    pre: InstancePre<WapcHost>,
    limits: Limits,
    deadlines: Deadlines,
    _ticker: Option<Arc<Ticker>>,
}

impl CompiledModule for WasmtimeModule {
    fn runtime(&self) -> RuntimeKind {
        self.tier.kind()
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

impl WasmtimeModule {
    fn new_instance(&self) -> Result<WasmtimeInstance, RuntimeError> {
        let init_timeout = self.limits.init_timeout;
        let failed = |e: wasmtime::Error| {
            if is_deadline(&e) {
                RuntimeError::InitDeadline {
                    runtime: self.name,
                    limit: init_timeout,
                }
            } else {
                RuntimeError::Instantiate {
                    runtime: self.name,
                    message: format!("{e:#}"),
                }
            }
        };
        let mut store = Store::new(&self.engine, WapcHost::new(self.limits.max_response_bytes));
        // One budget for the start function and `wapc_init` together.
        if self.limits.metered {
            store.set_epoch_deadline(self.deadlines.init);
        }
        let instance = self.pre.instantiate(&mut store).map_err(failed)?;
        let guest_call = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, wapc::GUEST_CALL)
            .map_err(|e| RuntimeError::NotWapc(format!("{e:#}")))?;
        for init in wapc::INIT_FUNCTIONS {
            if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, init) {
                init.call(&mut store, ()).map_err(failed)?;
            }
        }
        let memory = instance.get_memory(&mut store, "memory");
        Ok(WasmtimeInstance {
            store,
            guest_call,
            memory,
            call_ticks: self.limits.metered.then_some(self.deadlines.call),
            call_timeout: self.limits.call_timeout,
        })
    }
}

struct WasmtimeInstance {
    store: Store<WapcHost>,
    guest_call: TypedFunc<(i32, i32), i32>,
    memory: Option<Memory>,
    /// `None` when calls are not metered.
    call_ticks: Option<u64>,
    call_timeout: Duration,
}

impl Instance for WasmtimeInstance {
    fn call(&mut self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        let (op_len, len) = self.store.data_mut().begin(operation, payload)?;
        if let Some(ticks) = self.call_ticks {
            self.store.set_epoch_deadline(ticks);
        }
        let code = self
            .guest_call
            .call(&mut self.store, (op_len, len))
            .map_err(|e| {
                if is_deadline(&e) {
                    CallError::Deadline(self.call_timeout)
                } else {
                    CallError::Trap(format!("{e:#}"))
                }
            })?;
        self.store.data_mut().finish(code)
    }

    fn memory_bytes(&self) -> usize {
        self.memory
            .map_or(0, |memory| memory.data_size(&self.store))
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
