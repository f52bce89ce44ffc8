//! What to measure and how long to spend on it.
//!
//! The [`Budget`] is the time plan: how many messages and repetitions each
//! table gets. The default plan gives native and wasmtime the draft's 1024
//! messages on every variant, and the interpreters (wasmi, wasm3, 20–60x
//! slower) fewer messages — full repetitions on their preferred variant,
//! one short run on the others — so `hotwasm bench` stays within about
//! three minutes on two cores. Every table prints the N and R it used.

use hotwasm_runtime::RuntimeKind;
use serde::Serialize;

use crate::BenchError;

/// Messages per timed run and how many timed runs (repetitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Size {
    /// Jobs per timed run.
    pub messages: usize,
    /// Timed runs; the table reports their median, min and max.
    pub reps: usize,
}

impl Size {
    const fn new(messages: usize, reps: usize) -> Size {
        Size { messages, reps }
    }
}

/// The time plan of a bench run: sizes per table. Build one with
/// [`Budget::standard`] or [`Budget::quick`] and adjust it with
/// [`Budget::with_overrides`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// `"default"`, `"quick"`, or either with `+overrides`.
    pub name: String,
    /// Throughput, native and wasmtime (every variant).
    pub compiled: Size,
    /// Throughput, the interpreters on their preferred variant (wasmi
    /// `fast`, wasm3 `compat`).
    pub interpreter_preferred: Size,
    /// Throughput, the interpreters on their other variants.
    pub interpreter_other: Size,
    /// Single-message latency samples, native and wasmtime.
    pub latency_compiled: usize,
    /// Single-message latency samples, wasmi and wasm3.
    pub latency_interpreter: usize,
    /// Cold start: compiles and precompiled loads timed per module.
    pub cold_compiles: usize,
    /// Cold start: instantiations (each followed by a first call) per module.
    pub cold_instances: usize,
    /// Swapping: mixed stream against the same jobs grouped by scheme,
    /// native and wasmtime (`reps` pairs).
    pub routing_compiled: Size,
    /// The same, on the interpreters.
    pub routing_interpreter: Size,
    /// Swapping: recompile + instantiate + verify samples (the draft's way).
    pub recompiles: usize,
    /// Swapping: activations of a fresh version, each timed to its first
    /// verdict.
    pub activations: usize,
    /// Swapping: jobs in the latency run with a new version every 10 ms,
    /// native and wasmtime.
    pub swap_run_compiled: usize,
    /// Tiered activation: new versions loaded per mode, each timed to its
    /// first verdict and to full speed.
    pub tiered: usize,
    /// Scale: jobs per run and runs at each point of the sweep.
    pub scale: Size,
    /// The same, on the interpreters.
    pub swap_run_interpreter: usize,
    /// End to end: jobs per run and runs, in-process and through the
    /// pipeline.
    pub end_to_end: Size,
}

impl Budget {
    /// The default plan: at most about three minutes on two cores (release
    /// build).
    pub fn standard() -> Budget {
        Budget {
            name: "default".into(),
            compiled: Size::new(1024, 5),
            interpreter_preferred: Size::new(512, 3),
            interpreter_other: Size::new(128, 1),
            latency_compiled: 2000,
            latency_interpreter: 200,
            cold_compiles: 5,
            cold_instances: 20,
            routing_compiled: Size::new(1024, 5),
            routing_interpreter: Size::new(128, 3),
            recompiles: 10,
            activations: 20,
            swap_run_compiled: 2000,
            swap_run_interpreter: 200,
            tiered: 4,
            scale: Size::new(4096, 3),
            // Long enough (about 0.3 s a run on two cores) that a pipeline's
            // start and drain do not dominate the ratio to in-process.
            end_to_end: Size::new(4096, 5),
        }
    }

    /// `--quick`: the same tables, about a tenth of the work (≤ 30 s).
    pub fn quick() -> Budget {
        Budget {
            name: "quick".into(),
            compiled: Size::new(256, 3),
            interpreter_preferred: Size::new(64, 2),
            interpreter_other: Size::new(16, 1),
            latency_compiled: 300,
            latency_interpreter: 40,
            cold_compiles: 2,
            cold_instances: 5,
            routing_compiled: Size::new(256, 3),
            routing_interpreter: Size::new(32, 2),
            recompiles: 3,
            activations: 8,
            swap_run_compiled: 500,
            swap_run_interpreter: 40,
            tiered: 2,
            scale: Size::new(512, 1),
            end_to_end: Size::new(256, 2),
        }
    }

    /// Applies `--messages N` and `--reps R`: `N` becomes the message count
    /// of every timed run (throughput, routing, end to end) and caps every
    /// sample count (latency, cold start, recompiles, activations, swap
    /// runs); `R` becomes the repetitions of every table that repeats.
    pub fn with_overrides(mut self, messages: Option<usize>, reps: Option<usize>) -> Budget {
        if messages.is_none() && reps.is_none() {
            return self;
        }
        self.name.push_str("+overrides");
        let sizes = [
            &mut self.compiled,
            &mut self.interpreter_preferred,
            &mut self.interpreter_other,
            &mut self.routing_compiled,
            &mut self.routing_interpreter,
            &mut self.end_to_end,
            &mut self.scale,
        ];
        for size in sizes {
            if let Some(n) = messages {
                size.messages = n;
            }
            if let Some(r) = reps {
                size.reps = r;
            }
        }
        if let Some(n) = messages {
            for samples in [
                &mut self.latency_compiled,
                &mut self.latency_interpreter,
                &mut self.cold_compiles,
                &mut self.cold_instances,
                &mut self.recompiles,
                &mut self.activations,
                &mut self.swap_run_compiled,
                &mut self.swap_run_interpreter,
                &mut self.tiered,
            ] {
                *samples = (*samples).min(n);
            }
        }
        self
    }

    /// The throughput size of `kind` running `variant`.
    pub fn throughput(&self, kind: RuntimeKind, variant: &str) -> Size {
        match kind {
            // Winch's other variants only place it against its preferred
            // one: one short run, as for the interpreters.
            RuntimeKind::WasmtimeWinch if variant != kind.preferred_variant() => {
                self.interpreter_other
            }
            _ if !kind.is_interpreter() => self.compiled,
            // Pulley (a portable fallback, ~35x native) gets half the
            // messages of the interpreters that are hotwasm's choices.
            RuntimeKind::WasmtimePulley if variant == kind.preferred_variant() => Size {
                messages: (self.interpreter_preferred.messages / 2).max(1),
                ..self.interpreter_preferred
            },
            _ if variant == kind.preferred_variant() => self.interpreter_preferred,
            _ => self.interpreter_other,
        }
    }

    /// Latency samples for `kind`.
    pub fn latency(&self, kind: RuntimeKind) -> usize {
        if is_interpreter(kind) {
            self.latency_interpreter
        } else {
            self.latency_compiled
        }
    }

    /// Routing size for `kind`.
    pub fn routing(&self, kind: RuntimeKind) -> Size {
        if is_interpreter(kind) {
            self.routing_interpreter
        } else {
            self.routing_compiled
        }
    }

    /// Jobs in the swap-latency run for `kind`.
    pub fn swap_run(&self, kind: RuntimeKind) -> usize {
        if is_interpreter(kind) {
            self.swap_run_interpreter
        } else {
            self.swap_run_compiled
        }
    }
}

/// The interpreters (wasmi, wasm3, Pulley) get smaller sizes: they are
/// 8–60x slower.
pub(crate) fn is_interpreter(kind: RuntimeKind) -> bool {
    kind.is_interpreter()
}

/// Everything a bench run needs.
#[derive(Clone)]
pub struct BenchOptions {
    /// Runtimes to measure, in report order. Native runs in the throughput
    /// table whatever this says: it is the baseline of every ratio.
    pub runtimes: Vec<RuntimeKind>,
    /// Sizes per table.
    pub budget: Budget,
    /// Whether this is a `--quick` run (recorded in the report).
    pub quick: bool,
    /// Seed of the job generator.
    pub seed: u64,
    /// Fraction of deliberately invalid jobs in every job set.
    pub invalid_ratio: f64,
    /// Worker threads of the end-to-end section (in-process and pipeline).
    pub workers: usize,
    /// Runtime of the end-to-end section; `None` picks wasmtime if asked,
    /// else the first runtime asked.
    pub end_to_end_runtime: Option<RuntimeKind>,
    /// Redis URL for the end-to-end rows through Redis.
    pub redis: Option<String>,
    /// Runs the full pipeline (in-process server, real client) for the
    /// end-to-end section; off, those rows say "not run".
    pub pipelines: bool,
    /// The scale section's sweep.
    pub scale: ScaleSweep,
}

/// The points of the scale section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScaleSweep {
    /// Worker threads in one process [default: 1 to the machine's cores].
    pub workers: Vec<usize>,
    /// Servers (one worker each) in one group through Redis [default: 1,
    /// 2, 3].
    pub servers: Vec<usize>,
}

impl ScaleSweep {
    /// 1 to `cores` workers; 1, 2 and 3 servers.
    pub fn for_cores(cores: usize) -> ScaleSweep {
        ScaleSweep {
            workers: (1..=cores.max(1)).collect(),
            servers: vec![1, 2, 3],
        }
    }
}

impl std::fmt::Debug for BenchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchOptions")
            .field("runtimes", &self.runtimes)
            .field("budget", &self.budget)
            .field("quick", &self.quick)
            .field("seed", &self.seed)
            .field("invalid_ratio", &self.invalid_ratio)
            .field("workers", &self.workers)
            .field("end_to_end_runtime", &self.end_to_end_runtime)
            .field("redis", &self.redis)
            .field("pipelines", &self.pipelines)
            .field("scale", &self.scale)
            .finish()
    }
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            runtimes: RuntimeKind::built(),
            budget: Budget::standard(),
            quick: false,
            seed: 2026,
            invalid_ratio: 0.1,
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            end_to_end_runtime: None,
            redis: None,
            pipelines: true,
            scale: ScaleSweep::for_cores(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
        }
    }
}

impl BenchOptions {
    /// Checks that the options describe a run.
    ///
    /// # Errors
    ///
    /// [`BenchError::Options`] naming the problem.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.runtimes.is_empty() {
            return Err(BenchError::Options("no runtime to measure".into()));
        }
        if self.workers == 0 {
            return Err(BenchError::Options("workers must be at least 1".into()));
        }
        let b = &self.budget;
        let sizes = [
            b.compiled,
            b.interpreter_preferred,
            b.interpreter_other,
            b.routing_compiled,
            b.routing_interpreter,
            b.end_to_end,
            b.scale,
        ];
        if sizes.iter().any(|s| s.messages == 0 || s.reps == 0) {
            return Err(BenchError::Options(
                "messages and repetitions must be at least 1".into(),
            ));
        }
        let points = self.scale.workers.iter().chain(&self.scale.servers);
        if points.clone().any(|n| *n == 0) || points.clone().any(|n| *n > 256) {
            return Err(BenchError::Options(
                "every point of the scale sweep must be within 1..=256".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.invalid_ratio) {
            return Err(BenchError::Options(
                "the invalid ratio must be within [0, 1]".into(),
            ));
        }
        Ok(())
    }

    /// Runtimes of the report, native first and always present (the
    /// baseline of every ratio).
    pub(crate) fn with_native(&self) -> Vec<RuntimeKind> {
        let mut kinds = vec![RuntimeKind::Native];
        kinds.extend(
            self.runtimes
                .iter()
                .copied()
                .filter(|k| *k != RuntimeKind::Native),
        );
        kinds
    }

    /// The runtime of the end-to-end section.
    pub fn end_to_end_kind(&self) -> RuntimeKind {
        self.end_to_end_runtime.unwrap_or_else(|| {
            if self.runtimes.contains(&RuntimeKind::Wasmtime) {
                RuntimeKind::Wasmtime
            } else {
                self.runtimes
                    .first()
                    .copied()
                    .unwrap_or(RuntimeKind::Native)
            }
        })
    }
}
