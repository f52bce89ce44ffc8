//! Section 5b, tiered activation: how long after a new version is loaded
//! (`ModuleHost::load`, what a gRPC upload or a watched file ends in) its
//! first verdict comes, and its first verdict at full speed — with tiered
//! activation (`serve --tiered`: Winch's build, or wasmi's, serves first,
//! Cranelift's replaces it in the background) against compiling with
//! Cranelift before serving. One worker verifies Schnorr jobs back to back meanwhile, so
//! the compile competes with serving, as in a server.
//!
//! Every sample is a version no runtime has compiled before (the built-in
//! `default` module with a fresh custom section, signed with a key made
//! for the run and trusted by the host): the real first-upload path —
//! signature check, compile, self-test, prewarm, registry write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use hotwasm_host::{HostConfig, ModuleHost};
use hotwasm_jobs::{Generator, SchemeChoice};
use hotwasm_runtime::RuntimeKind;
use hotwasm_trust::{SecretKey, Trust};
use hotwasm_worker::Worker;
use serde::Serialize;

use crate::measure::{built_bytes, millis, spread};
use crate::options::BenchOptions;
use crate::report::{Cell, Spread};
use crate::{BenchError, Progress};

/// The variant loaded: the fastest one Winch accepts (it has no
/// wide-arithmetic, which `fast` needs).
pub const VARIANT: &str = "default";

/// The modes compared: a first tier, or none.
const MODES: [(&str, Option<RuntimeKind>); 3] = [
    (
        "tiered, wasmtime-winch first",
        Some(RuntimeKind::WasmtimeWinch),
    ),
    ("tiered, wasmi first", Some(RuntimeKind::Wasmi)),
    (CRANELIFT_FIRST, None),
];

/// The mode without tiering.
pub const CRANELIFT_FIRST: &str = "cranelift-first";

/// Longest wait for a version to reach full speed before the run fails.
const PATIENCE: Duration = Duration::from_secs(120);

/// The comparison.
#[derive(Debug, Clone, Serialize)]
pub struct TieredSection {
    /// The module variant loaded.
    pub variant: String,
    /// One row per mode: Winch first, wasmi first, then `cranelift-first`.
    pub rows: Vec<TieredRow>,
}

/// One way of activating.
#[derive(Debug, Clone, Serialize)]
pub struct TieredRow {
    /// `tiered, wasmtime-winch first`, ..., or `cranelift-first`.
    pub mode: String,
    /// The runtime a new version serves on first; `None` without tiering.
    pub first_tier: Option<String>,
    /// The figures, or why there are none.
    pub result: Cell<TieredFigures>,
    /// `cranelift-first`'s `first_verdict_ms` median over this row's: how
    /// much sooner a new version answers (tiered rows).
    pub first_verdict_speedup: Option<f64>,
}

/// Figures of one mode over its samples (one new version each).
#[derive(Debug, Clone, Serialize)]
pub struct TieredFigures {
    /// Versions loaded.
    pub samples: usize,
    /// The load call itself, ms: trust check, compile, self-test,
    /// prewarm, registry writes, and the commit that makes the version
    /// serve (`ModuleHost::load` returns after it). The rest of the way to
    /// the first verdict is the worker's: the job it is on, then its first
    /// verify on the new version.
    pub serving_ms: Spread,
    /// From the load call to the first verdict of the new version, ms.
    pub first_verdict_ms: Spread,
    /// From the load call to its first verdict from the Cranelift build,
    /// ms (the same as `first_verdict_ms` without tiering).
    pub full_speed_ms: Spread,
}

/// Measures the section.
///
/// # Errors
///
/// [`BenchError::Call`] when a version is refused or never reaches full
/// speed; [`BenchError::WrongVerdict`] when the worker answers wrongly.
pub fn measure(
    options: &BenchOptions,
    progress: &dyn Progress,
) -> Result<TieredSection, BenchError> {
    let samples = options.budget.tiered;
    let blank = |cell: Cell<TieredFigures>| TieredSection {
        variant: VARIANT.into(),
        rows: MODES
            .iter()
            .map(|(mode, first)| TieredRow {
                mode: (*mode).into(),
                first_tier: first.map(|kind| kind.name().to_string()),
                result: cell.clone(),
                first_verdict_speedup: None,
            })
            .collect(),
    };
    if !options.runtimes.contains(&RuntimeKind::Wasmtime) {
        return Ok(blank(Cell::NotRun {
            reason: "wasmtime not among --runtimes".into(),
        }));
    }
    if let Some((_, Some(missing))) = MODES
        .iter()
        .find(|(_, first)| first.is_some_and(|kind| !kind.is_built()))
    {
        return Ok(blank(Cell::NotBuilt {
            reason: format!("built without {missing}"),
        }));
    }
    if samples == 0 {
        return Ok(blank(Cell::NotRun {
            reason: "no samples in this budget".into(),
        }));
    }
    progress.start("tiered activation", (MODES.len() * samples) as u64);
    let key = SecretKey::generate();
    let mut rows = Vec::new();
    for (mode, first_tier) in MODES {
        let figures = sample_mode(mode, first_tier, samples, &key, progress)?;
        rows.push(TieredRow {
            mode: mode.into(),
            first_tier: first_tier.map(|kind| kind.name().to_string()),
            result: Cell::Measured(figures),
            first_verdict_speedup: None,
        });
    }
    progress.finish();
    let untiered = rows
        .iter()
        .find(|row| row.first_tier.is_none())
        .and_then(|row| row.result.measured())
        .map(|f| f.first_verdict_ms.median);
    for row in &mut rows {
        if let (Some(untiered), Some(_), Some(f)) =
            (untiered, &row.first_tier, row.result.measured())
        {
            row.first_verdict_speedup =
                Some(untiered / f.first_verdict_ms.median).filter(|r| r.is_finite());
        }
    }
    Ok(TieredSection {
        variant: VARIANT.into(),
        rows,
    })
}

/// Loads `samples` new versions into one host and times each.
fn sample_mode(
    mode: &str,
    first_tier: Option<RuntimeKind>,
    samples: usize,
    key: &SecretKey,
    progress: &dyn Progress,
) -> Result<TieredFigures, BenchError> {
    let context = format!("tiered activation, {mode}");
    let failed = |message: String| BenchError::Call {
        context: context.clone(),
        message,
    };
    let registry = tempfile::tempdir().map_err(|e| failed(format!("temp dir: {e}")))?;
    let host = ModuleHost::start(HostConfig {
        registry: Some(registry.path().to_path_buf()),
        trust: Trust::new(vec![key.public_key()]),
        first_tier,
        limits: crate::measure::limits(),
        ..HostConfig::new(RuntimeKind::Wasmtime)
    })
    .map_err(|e| failed(e.to_string()))?;
    let serving = Serving::start(&host, &context)?;
    let bytes = built_bytes("schnorr", VARIANT, &context)?;
    let (mut serving_at, mut first, mut full) = (Vec::new(), Vec::new(), Vec::new());
    for sample in 0..samples {
        progress.step(&format!("{mode} {}/{samples}", sample + 1));
        let version = key
            .sign(&hotwasm_modules::tagged(
                bytes,
                &format!("tiered-{mode}-{sample}"),
            ))
            .map_err(|e| failed(format!("signing: {e}")))?;
        let id = hotwasm_modules::module_id("schnorr", &version);
        let started = Instant::now();
        let loaded = host.load("schnorr", version, "bench", true);
        let served = Instant::now();
        let waited = loaded
            .map_err(|e| failed(e.to_string()))
            .and_then(|_| serving.wait_for(&id, started, &context));
        let (at_first, at_full) = match waited {
            Ok(times) => times,
            // A wrong verdict ends the serving thread: its error first.
            Err(error) => return Err(serving.stop().err().unwrap_or(error)),
        };
        serving_at.push(millis(served - started));
        first.push(millis(at_first - started));
        full.push(millis(at_full - started));
        // The next sample starts from a quiet host.
        while host.tier_ups_pending() > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    serving.stop()?;
    Ok(TieredFigures {
        samples,
        serving_ms: spread(&serving_at),
        first_verdict_ms: spread(&first),
        full_speed_ms: spread(&full),
    })
}

/// A worker verifying Schnorr jobs back to back on its own thread,
/// reporting each change of the module or runtime its verdicts name.
struct Serving {
    stop: Arc<AtomicBool>,
    changes: Receiver<Change>,
    thread: std::thread::JoinHandle<Result<(), BenchError>>,
}

/// The first verdict from a module id on a runtime.
struct Change {
    at: Instant,
    module: String,
    runtime: String,
}

impl Serving {
    fn start(host: &Arc<ModuleHost>, context: &str) -> Result<Serving, BenchError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, changes) = crossbeam_channel::unbounded();
        let jobs: Vec<_> = Generator::new(77, SchemeChoice::Schnorr, 0.1)
            .take(64)
            .collect();
        let set = Arc::clone(host.modules());
        let stopped = Arc::clone(&stop);
        let thread_context = context.to_string();
        let thread = std::thread::Builder::new()
            .name("bench-serving".into())
            .stack_size(hotwasm_runtime::GUEST_THREAD_STACK_BYTES)
            .spawn(move || {
                let mut worker = Worker::new(&set);
                let mut last = (String::new(), String::new());
                for job in jobs.iter().cycle() {
                    if stopped.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    let verdict = worker.verify(job);
                    let at = Instant::now();
                    if job.expect != Some(verdict.valid) {
                        return Err(BenchError::WrongVerdict {
                            context: thread_context,
                            id: job.id.clone(),
                            expected: job.expect.unwrap_or(true),
                            got: verdict.valid,
                            reason: verdict.reason.unwrap_or_else(|| "-".into()),
                        });
                    }
                    let module = verdict.module.unwrap_or_default();
                    if (module.as_str(), verdict.runtime.as_str()) != (&last.0, &last.1) {
                        last = (module.clone(), verdict.runtime.clone());
                        let _ = sender.send(Change {
                            at,
                            module,
                            runtime: verdict.runtime,
                        });
                    }
                }
                Ok(())
            })
            .map_err(|e| BenchError::Call {
                context: context.to_string(),
                message: format!("cannot start the serving thread: {e}"),
            })?;
        Ok(Serving {
            stop,
            changes,
            thread,
        })
    }

    /// When the first verdict of `id`, and its first from Cranelift, came.
    fn wait_for(
        &self,
        id: &str,
        started: Instant,
        context: &str,
    ) -> Result<(Instant, Instant), BenchError> {
        let mut first = None;
        loop {
            let left = PATIENCE.saturating_sub(started.elapsed());
            let change = match self.changes.recv_timeout(left) {
                Ok(change) => change,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(BenchError::Call {
                        context: context.to_string(),
                        message: format!("{id} not at full speed after {PATIENCE:?}"),
                    });
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(BenchError::Call {
                        context: context.to_string(),
                        message: "the serving thread ended".into(),
                    });
                }
            };
            if change.module != id {
                continue;
            }
            let first = *first.get_or_insert(change.at);
            if change.runtime == RuntimeKind::Wasmtime.name() {
                return Ok((first, change.at));
            }
        }
    }

    fn stop(self) -> Result<(), BenchError> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_else(|_| {
            Err(BenchError::Call {
                context: "tiered activation".into(),
                message: "the serving thread panicked".into(),
            })
        })
    }
}
