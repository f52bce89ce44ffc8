//! `hotwasm demo`: the whole pipeline in one process — client, in-process
//! queue, server with its worker pool, shared-memory verdict ring — with the
//! modules swapped for other versions while the jobs run, so one command
//! shows what the system is for on a machine with nothing installed.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use hotwasm_abi::Scheme;
use hotwasm_client::{ResultsVia, SubmitOptions, Summary};
use hotwasm_pipeline::PipelineOptions;
use hotwasm_queue::MemoryQueue;
use hotwasm_runtime::RuntimeKind;
use hotwasm_server::consume::ConsumeOptions;
use hotwasm_server::{Server, ServerConfig};
use hotwasm_worker::SchemeModule;
use serde::Serialize;

use crate::command::limits::LimitArgs;
use crate::command::submit::{JobArgs, bar};

/// Arguments of `hotwasm demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    jobs: JobArgs,
    /// native, wasmtime, wasmtime-winch, wasmtime-pulley, wasmi or wasm3.
    #[arg(long, default_value = "wasmtime", env = "HOTWASM_RUNTIME")]
    runtime: RuntimeKind,
    /// Built-in module variant [default: the runtime's fastest that loads].
    #[arg(long)]
    variant: Option<String>,
    /// Worker threads [default: one per core].
    #[arg(long)]
    workers: Option<usize>,
    /// Slots of the shared-memory verdict ring (any number of jobs fits).
    #[arg(long, default_value_t = 1024, value_parser = crate::command::submit::ring_slots)]
    ring_slots: u32,
    /// Module swaps while the jobs run, evenly spaced by verdicts received:
    /// each swaps every scheme's module for another built-in version (and
    /// the next one back). 0 runs without swapping.
    #[arg(long, default_value_t = 2)]
    swaps: u32,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    guest: LimitArgs,
}

/// One swap made while the jobs ran.
#[derive(Debug, Clone, Serialize)]
struct SwapMoment {
    /// Verdicts the client had received when it was made.
    after_verdicts: u64,
    /// Seconds since the submission started.
    at_seconds: f64,
    /// `from → to` module id per scheme.
    modules: Vec<(String, String)>,
}

/// The demo's JSON output: the client's summary and the swaps.
#[derive(Serialize)]
struct DemoReport<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    swaps: &'a [SwapMoment],
}

/// Runs the pipeline, swapping modules mid-run, and checks every verdict.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let jobs = args.jobs.jobs()?;
    let mut server = ServerConfig::new(args.runtime);
    server.modules.variant = args.variant.clone();
    server.modules.limits = args.guest.limits();
    if let Some(workers) = args.workers {
        server.workers = workers.max(1);
    }
    let options = PipelineOptions {
        server,
        consume: ConsumeOptions::default(),
        submit: SubmitOptions {
            results: ResultsVia::Shm {
                slots: args.ring_slots,
            },
            ..SubmitOptions::new()
        },
    }
    .with_fresh_reply_key();
    let runtime = hotwasm_server::async_runtime().context("starting the async runtime")?;
    let (summary, swaps) = runtime.block_on(async {
        let server = hotwasm_pipeline::start(options.server.clone()).await?;
        let swapper = Swapper::prepare(&server, &args, jobs.len() as u64)?;
        let bar = bar(jobs.len() as u64, "verdicts");
        let watch = swapper.watch();
        let summary = hotwasm_pipeline::run_on(
            server,
            Arc::new(MemoryQueue::new()),
            &jobs,
            &options,
            &|n| {
                bar.set_position(n);
                swapper.received(n);
            },
        )
        .await;
        bar.finish_and_clear();
        let swaps = swapper.finish(watch);
        anyhow::Ok((summary?, swaps))
    })?;
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    if args.json {
        let report = DemoReport {
            summary: &summary,
            swaps: &swaps,
        };
        crate::print(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        eprintln!(
            "hotwasm demo: {} jobs through the in-process queue to {workers} workers on {}, \
             verdicts through shared memory, {} module swaps while they ran",
            jobs.len(),
            args.runtime,
            swaps.len()
        );
        eprint!("{summary}");
        for (n, swap) in swaps.iter().enumerate() {
            let modules: Vec<String> = swap
                .modules
                .iter()
                .map(|(from, to)| format!("{from} → {to}"))
                .collect();
            eprintln!(
                "  swap {}: after {} verdicts, {:.3} s: {}",
                n + 1,
                swap.after_verdicts,
                swap.at_seconds,
                modules.join(", ")
            );
        }
    }
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Swaps the server's modules at evenly spaced verdict counts. The client's
/// progress callback only records the count; a thread of its own prewarms
/// and activates, so the client's reader is never held up by a swap.
struct Swapper {
    server: Arc<Server>,
    /// Per scheme, the version to swap in next.
    alternates: Mutex<Vec<(Scheme, Arc<SchemeModule>)>>,
    /// Verdict counts at which to swap, ascending.
    thresholds: Vec<u64>,
    received: AtomicU64,
    done: AtomicBool,
    started: Instant,
    moments: Mutex<Vec<SwapMoment>>,
}

impl Swapper {
    /// Compiles a second built-in version of every scheme's module.
    fn prepare(server: &Arc<Server>, args: &Args, jobs: u64) -> anyhow::Result<Arc<Swapper>> {
        let mut alternates = Vec::new();
        if args.swaps > 0 {
            for scheme in Scheme::ALL {
                let other = server.host().alternate(scheme)?.with_context(|| {
                    format!(
                        "--swaps needs a second built-in version of the {scheme} module on {}",
                        args.runtime
                    )
                })?;
                alternates.push((scheme, other));
            }
        }
        let swaps = u64::from(args.swaps);
        let thresholds = (1..=swaps).map(|k| jobs * k / (swaps + 1)).collect();
        Ok(Arc::new(Swapper {
            server: Arc::clone(server),
            alternates: Mutex::new(alternates),
            thresholds,
            received: AtomicU64::new(0),
            done: AtomicBool::new(false),
            started: Instant::now(),
            moments: Mutex::new(Vec::new()),
        }))
    }

    /// The client received `n` verdicts so far.
    fn received(&self, n: u64) {
        self.received.store(n, Ordering::Relaxed);
    }

    /// Starts the thread that swaps when a threshold is crossed.
    fn watch(self: &Arc<Self>) -> std::thread::JoinHandle<()> {
        let swapper = Arc::clone(self);
        std::thread::spawn(move || {
            for &threshold in &swapper.thresholds {
                while swapper.received.load(Ordering::Relaxed) < threshold {
                    if swapper.done.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                swapper.swap();
            }
        })
    }

    fn swap(&self) {
        let after_verdicts = self.received.load(Ordering::Relaxed);
        let mut alternates = self
            .alternates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut modules = Vec::new();
        for (scheme, next) in alternates.iter_mut() {
            let to = next.id.clone();
            if let Some(previous) = self.server.host().swap_in(*scheme, Arc::clone(next)) {
                modules.push((previous.id.clone(), to));
                *next = previous;
            }
        }
        self.moments
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(SwapMoment {
                after_verdicts,
                at_seconds: self.started.elapsed().as_secs_f64(),
                modules,
            });
    }

    /// Stops the thread and returns the swaps made.
    fn finish(&self, watch: std::thread::JoinHandle<()>) -> Vec<SwapMoment> {
        self.done.store(true, Ordering::Relaxed);
        let _ = watch.join();
        std::mem::take(
            &mut *self
                .moments
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}
