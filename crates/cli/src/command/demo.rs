//! `hotwasm demo`: the whole pipeline in one process — client, in-process
//! queue, server with its worker pool, shared-memory verdict ring — so one
//! command shows the system on a machine with nothing installed.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use hotwasm_client::pipeline::PipelineOptions;
use hotwasm_client::{ResultsVia, SubmitOptions};
use hotwasm_queue::MemoryQueue;
use hotwasm_runtime::RuntimeKind;
use hotwasm_server::ServerConfig;
use hotwasm_server::consume::ConsumeOptions;

use crate::command::submit::{JobArgs, bar, report};

/// Arguments of `hotwasm demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    jobs: JobArgs,
    /// native, wasmtime, wasmi or wasm3.
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
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// Runs the pipeline and checks every verdict.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let jobs = args.jobs.jobs()?;
    let mut server = ServerConfig::new(args.runtime);
    server.variant = args.variant.clone();
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
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = runtime.block_on(async {
        let bar = bar(jobs.len() as u64, "verdicts");
        let summary =
            hotwasm_client::pipeline::run(Arc::new(MemoryQueue::new()), &jobs, options, &|n| {
                bar.set_position(n)
            })
            .await;
        bar.finish_and_clear();
        summary
    })?;
    if !args.json {
        eprintln!(
            "hotwasm demo: {} jobs through the in-process queue to {} workers on {}, verdicts through shared memory",
            jobs.len(),
            args.workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
            args.runtime
        );
    }
    report(&summary, args.json)
}
