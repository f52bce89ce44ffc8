//! The `wasm3` backend: a threaded-code interpreter written in C.
//!
//! wasm3 has no shareable compiled form: a module is parsed into one
//! runtime and compiled lazily there, function by function. So "compile"
//! here validates the bytes once (parse in a scratch environment, check the
//! waPC shape), writes deadline checks and the memory cap into them
//! ([`instrument`]: wasm3 can neither be interrupted nor given a memory
//! limit from outside) and keeps them; each instance parses and loads its
//! own copy. wasm3 only accepts MVP WebAssembly: use the `compat` variant.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasm3::error::{Error as Wasm3Error, Trap};
use wasm3::{CallContext, Environment};
use wasmparser::{Validator, WasmFeatures};

use crate::backend::check_wapc_shape;
use crate::wapc::{self, Fault, WapcHost};
use crate::{CallError, CompiledModule, Instance, Limits, Runtime, RuntimeError, RuntimeKind};

pub mod instrument;

const NAME: &str = "wasm3";

/// Size of each instance's value stack, in bytes.
pub const STACK_BYTES: u32 = 1024 * 1024;

/// Runs modules in wasm3.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wasm3Runtime {
    limits: Limits,
}

impl Wasm3Runtime {
    /// A wasm3 backend whose guests run within `limits`; engines are
    /// created per instance.
    pub fn new(limits: Limits) -> Self {
        Wasm3Runtime { limits }
    }
}

impl Runtime for Wasm3Runtime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Wasm3
    }

    fn limits(&self) -> Limits {
        self.limits
    }

    fn compile(&self, wasm: &[u8]) -> Result<Arc<dyn CompiledModule>, RuntimeError> {
        self.limits.check_module_size(wasm)?;
        let compile_error = |e: Wasm3Error| RuntimeError::Compile {
            runtime: NAME,
            message: e.to_string(),
        };
        // wasm3 compiles lazily: a post-MVP instruction would only surface
        // as a trap on the first call that reaches it. Refuse it up front.
        let features = WasmFeatures::WASM1 | WasmFeatures::MUTABLE_GLOBAL;
        Validator::new_with_features(features)
            .validate_all(wasm)
            .map_err(|e| RuntimeError::Compile {
                runtime: NAME,
                message: format!(
                    "wasm3 runs WebAssembly 1.0 (MVP) only and this module is not: {e} \
                     (use an MVP variant such as `compat`)"
                ),
            })?;
        check_wapc_shape(wasm)?;
        let instrumented =
            instrument::instrument(wasm, self.limits.max_memory_bytes, self.limits.metered)
                .map_err(|message| RuntimeError::Compile {
                    runtime: NAME,
                    message,
                })?;
        // Only bytes that passed validation reach wasm3's C parser.
        let environment = Environment::new().map_err(compile_error)?;
        environment
            .parse_module(instrumented.clone())
            .map_err(compile_error)?;
        Ok(Arc::new(Wasm3Module {
            wasm: Arc::from(instrumented),
            limits: self.limits,
        }))
    }
}

struct Wasm3Module {
    /// Instrumented, without custom sections.
    wasm: Arc<[u8]>,
    limits: Limits,
}

/// What the host functions share with the instance.
struct State {
    wapc: WapcHost,
    /// The last fault, kept because a wasm3 trap carries no message of
    /// ours.
    fault: Option<Fault>,
    /// When the running call (or start) must stop.
    deadline: Instant,
    /// Set when the deadline check stopped the guest.
    timed_out: bool,
}

type Shared = Rc<RefCell<State>>;

thread_local! {
    /// One wasm3 environment per thread, shared by the instances made on
    /// it. The `wasm3` crate (0.3.1) never frees the environment of a
    /// runtime that loaded a module (`Runtime::parse_and_load_module`
    /// forgets the parsed module and its reference to the environment), so
    /// an environment per instance leaked its code pages with every
    /// instance dropped; a shared one is leaked once per thread, and wasm3
    /// reuses the code pages a dropped runtime gives back to it.
    static ENVIRONMENT: RefCell<Option<Environment>> = const { RefCell::new(None) };
}

/// This thread's wasm3 environment, made on first use.
fn environment() -> Result<Environment, Wasm3Error> {
    ENVIRONMENT.with(|cell| {
        let mut cell = cell.borrow_mut();
        if let Some(environment) = cell.as_ref() {
            return Ok(environment.clone());
        }
        let environment = Environment::new()?;
        *cell = Some(environment.clone());
        Ok(environment)
    })
}

impl CompiledModule for Wasm3Module {
    fn runtime(&self) -> RuntimeKind {
        RuntimeKind::Wasm3
    }

    fn instantiate(&self) -> Result<Box<dyn Instance>, RuntimeError> {
        let failed = |e: Wasm3Error| RuntimeError::Instantiate {
            runtime: NAME,
            message: e.to_string(),
        };
        let environment = environment().map_err(failed)?;
        let runtime = environment.create_runtime(STACK_BYTES).map_err(failed)?;
        let state = Shared::new(RefCell::new(State {
            wapc: WapcHost::new(self.limits.max_response_bytes),
            fault: None,
            // The module's start function runs while it loads.
            deadline: Instant::now() + self.limits.init_timeout,
            timed_out: false,
        }));
        // A failure after the deadline check stopped the guest is the
        // deadline's, whatever wasm3 reports.
        let stopped = |e: Wasm3Error| {
            if state.borrow().timed_out {
                RuntimeError::InitDeadline {
                    runtime: NAME,
                    limit: self.limits.init_timeout,
                }
            } else {
                failed(e)
            }
        };
        {
            let mut module = runtime
                .parse_and_load_module(self.wasm.to_vec())
                .map_err(stopped)?;
            link_wapc(&mut module, &state).map_err(failed)?;
            link_deadline(&mut module, &state).map_err(failed)?;
        }
        for init in wapc::INIT_FUNCTIONS {
            if let Ok(init) = runtime.find_function::<(), ()>(init) {
                init.call().map_err(stopped)?;
            }
        }
        runtime
            .find_function::<(i32, i32), i32>(wapc::GUEST_CALL)
            .map_err(|e| RuntimeError::NotWapc(e.to_string()))?;
        Ok(Box::new(Wasm3Instance {
            runtime,
            _environment: environment,
            state,
            call_timeout: self.limits.call_timeout,
        }))
    }
}

struct Wasm3Instance {
    // Declared before the environment so that it is dropped first.
    runtime: wasm3::Runtime,
    _environment: Environment,
    state: Shared,
    call_timeout: Duration,
}

impl Instance for Wasm3Instance {
    fn call(&mut self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        let (op_len, len) = {
            let mut state = self.state.borrow_mut();
            state.deadline = Instant::now() + self.call_timeout;
            state.timed_out = false;
            state.wapc.begin(operation, payload)?
        };
        let guest_call = self
            .runtime
            .find_function::<(i32, i32), i32>(wapc::GUEST_CALL)
            .map_err(|e| CallError::Trap(e.to_string()))?;
        let outcome = guest_call.call(op_len, len);
        let mut state = self.state.borrow_mut();
        match outcome {
            Ok(code) => state.wapc.finish(code),
            Err(_) if state.timed_out => Err(CallError::Deadline(self.call_timeout)),
            Err(e) => Err(CallError::Trap(match state.fault.take() {
                Some(fault) => fault.to_string(),
                None => e.to_string(),
            })),
        }
    }

    fn memory_bytes(&self) -> usize {
        // SAFETY: only the length of the returned slice pointer is read;
        // the memory itself is never dereferenced here.
        let memory: *const [u8] = unsafe { self.runtime.memory() };
        memory.len()
    }
}

/// Links the deadline check [`instrument`] wrote into the module: it
/// answers the next countdown, or stops the guest once the deadline of the
/// running call has passed.
fn link_deadline(module: &mut wasm3::Module<'_>, state: &Shared) -> Result<(), Wasm3Error> {
    let s = Rc::clone(state);
    module.link_closure(
        instrument::IMPORT.0,
        instrument::IMPORT.1,
        move |_: CallContext<'_>, ()| -> Result<i32, Trap> {
            let mut state = s.borrow_mut();
            if Instant::now() >= state.deadline {
                state.timed_out = true;
                return Err(Trap::Abort);
            }
            Ok(instrument::CHECK_EVERY)
        },
    )
}

/// The guest's memory during a host call.
///
/// # Safety
///
/// Valid only while the host function runs: no wasm code executes in that
/// time, so wasm3 cannot grow (and move) the memory under the slice.
unsafe fn memory<'a>(ctx: &'a mut CallContext<'_>) -> &'a mut [u8] {
    // SAFETY: wasm3 returns its live linear memory; see the function docs.
    unsafe { &mut *ctx.memory_mut() }
}

fn record(state: &Shared, result: Result<(), Fault>) -> Result<(), Trap> {
    result.map_err(|fault| {
        state.borrow_mut().fault = Some(fault);
        Trap::OutOfBoundsMemoryAccess
    })
}

/// Links every waPC host function the module imports; functions it does
/// not import are skipped.
fn link_wapc(module: &mut wasm3::Module<'_>, state: &Shared) -> Result<(), Wasm3Error> {
    let m = wapc::IMPORT_MODULE;
    let skip_missing = |result: Result<(), Wasm3Error>| match result {
        Err(Wasm3Error::FunctionNotFound) => Ok(()),
        other => other,
    };
    let s = Rc::clone(state);
    skip_missing(module.link_closure(
        m,
        "__guest_request",
        move |mut ctx: CallContext<'_>, (op_ptr, ptr): (i32, i32)| {
            // SAFETY: called from wasm3 during the host call.
            let memory = unsafe { memory(&mut ctx) };
            let result = s.borrow().wapc.guest_request(memory, op_ptr, ptr);
            record(&s, result)
        },
    ))?;
    let s = Rc::clone(state);
    skip_missing(module.link_closure(
        m,
        "__guest_response",
        move |mut ctx: CallContext<'_>, (ptr, len): (i32, i32)| {
            // SAFETY: called from wasm3 during the host call.
            let memory = unsafe { memory(&mut ctx) };
            let result = s.borrow_mut().wapc.guest_response(memory, ptr, len);
            record(&s, result)
        },
    ))?;
    let s = Rc::clone(state);
    skip_missing(module.link_closure(
        m,
        "__guest_error",
        move |mut ctx: CallContext<'_>, (ptr, len): (i32, i32)| {
            // SAFETY: called from wasm3 during the host call.
            let memory = unsafe { memory(&mut ctx) };
            let result = s.borrow_mut().wapc.guest_error(memory, ptr, len);
            record(&s, result)
        },
    ))?;
    let s = Rc::clone(state);
    skip_missing(module.link_closure(
        m,
        "__host_call",
        move |mut ctx: CallContext<'_>,
              (bd_ptr, bd_len, ns_ptr, ns_len, op_ptr, op_len, ptr, len): (
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
        )| {
            // SAFETY: called from wasm3 during the host call.
            let memory = unsafe { memory(&mut ctx) };
            let result = s.borrow_mut().wapc.host_call(
                memory,
                (bd_ptr, bd_len),
                (ns_ptr, ns_len),
                (op_ptr, op_len),
                (ptr, len),
            );
            match result {
                Ok(code) => Ok(code),
                Err(fault) => record(&s, Err(fault)).map(|()| 0),
            }
        },
    ))?;
    skip_missing(module.link_closure(
        m,
        "__host_response",
        |_: CallContext<'_>, _ptr: i32| -> Result<(), Trap> { Ok(()) },
    ))?;
    let s = Rc::clone(state);
    skip_missing(module.link_closure(
        m,
        "__host_response_len",
        move |_: CallContext<'_>, ()| -> Result<i32, Trap> {
            Ok(s.borrow().wapc.host_response_len())
        },
    ))?;
    let s = Rc::clone(state);
    skip_missing(module.link_closure(
        m,
        "__host_error",
        move |mut ctx: CallContext<'_>, ptr: i32| {
            // SAFETY: called from wasm3 during the host call.
            let memory = unsafe { memory(&mut ctx) };
            let result = s.borrow().wapc.host_error(memory, ptr);
            record(&s, result)
        },
    ))?;
    let s = Rc::clone(state);
    skip_missing(module.link_closure(
        m,
        "__host_error_len",
        move |_: CallContext<'_>, ()| -> Result<i32, Trap> { Ok(s.borrow().wapc.host_error_len()) },
    ))?;
    let s = Rc::clone(state);
    skip_missing(module.link_closure(
        m,
        "__console_log",
        move |mut ctx: CallContext<'_>, (ptr, len): (i32, i32)| {
            // SAFETY: called from wasm3 during the host call.
            let memory = unsafe { memory(&mut ctx) };
            let result = s.borrow().wapc.console_log(memory, ptr, len);
            record(&s, result)
        },
    ))?;
    Ok(())
}
