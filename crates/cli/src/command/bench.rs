//! `hotwasm bench`: the evaluation report — every runtime against native,
//! measured, checked and written to `--out` (report.md, report.json, SVG
//! charts). All the work is in `hotwasm-bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hotwasm_bench::progress::{Bars, Silent};
use hotwasm_bench::{BenchOptions, Budget, Progress};
use hotwasm_runtime::RuntimeKind;

/// Arguments of `hotwasm bench`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    /// The same tables with about a tenth of the work (≤ 30 s).
    #[arg(long)]
    quick: bool,
    /// Messages per timed run, for every table [default: 1024 for native
    /// and wasmtime, fewer for the interpreters; see the report's method].
    #[arg(long, value_name = "N")]
    messages: Option<usize>,
    /// Repetitions of every timed run [default: 5 for native and wasmtime,
    /// fewer for the interpreters].
    #[arg(long, value_name = "R")]
    reps: Option<usize>,
    /// Runtimes to measure, comma-separated; native always runs as the
    /// baseline.
    /// [default: every runtime this build has: native, wasmtime,
    /// wasmtime-winch, wasmtime-pulley, wasmi, wasm3]
    #[arg(long, value_delimiter = ',')]
    runtimes: Option<Vec<RuntimeKind>>,
    /// Directory for report.md, report.json and the charts.
    #[arg(long, default_value = "report")]
    out: PathBuf,
    /// Worker threads of the end-to-end section [default: one per core].
    #[arg(long)]
    workers: Option<usize>,
    /// Redis URL: adds the end-to-end rows through Redis.
    #[arg(long, env = "HOTWASM_REDIS")]
    redis: Option<String>,
    /// Worker counts of the scale section's in-process sweep,
    /// comma-separated [default: 1 to the machine's cores].
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    scale_workers: Option<Vec<usize>>,
    /// Server counts (one worker each, one group) of the scale section's
    /// sweep through Redis, comma-separated [default: 1,2,3].
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    scale_servers: Option<Vec<usize>>,
    /// Print report.json on standard output instead of the tables.
    #[arg(long)]
    json: bool,
    /// No progress bars.
    #[arg(long)]
    no_progress: bool,
}

/// What else `hotwasm bench` does besides a run.
#[derive(Debug, clap::Subcommand)]
enum BenchCommand {
    /// Committed reports side by side (one run per CPU family, say): the
    /// machines, ratios to native, compile times, latency, swap cost; with
    /// two reports, the second's figures over the first's.
    Compare {
        /// report.json files, or directories holding one.
        #[arg(required = true, num_args = 1..)]
        reports: Vec<PathBuf>,
        /// Also write the comparison (Markdown) to FILE.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Runs the bench, writes the report, prints the tables.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(BenchCommand::Compare { reports, out }) = args.command {
        let loaded = hotwasm_bench::compare::load(&reports)?;
        if let Some(out) = &out {
            hotwasm_bench::compare::write(&loaded, out)
                .with_context(|| format!("writing {}", out.display()))?;
        }
        crate::print(&hotwasm_bench::compare::render(&loaded))?;
        return Ok(ExitCode::SUCCESS);
    }
    let budget = if args.quick {
        Budget::quick()
    } else {
        Budget::standard()
    }
    .with_overrides(args.messages, args.reps);
    let mut options = BenchOptions {
        runtimes: args.runtimes.unwrap_or_else(RuntimeKind::built),
        budget,
        quick: args.quick,
        redis: args.redis,
        ..BenchOptions::default()
    };
    if let Some(workers) = args.workers {
        options.workers = workers;
    }
    if let Some(workers) = args.scale_workers {
        options.scale.workers = workers;
    }
    if let Some(servers) = args.scale_servers {
        options.scale.servers = servers;
    }
    let progress: Box<dyn Progress> = if args.no_progress {
        Box::new(Silent)
    } else {
        Box::new(Bars::new())
    };
    let report = hotwasm_bench::run(&options, progress.as_ref()).context("bench failed")?;
    let written = hotwasm_bench::report::write(&report, &args.out)
        .with_context(|| format!("writing the report to {}", args.out.display()))?;
    if args.json {
        crate::print(&hotwasm_bench::report::json::render(&report)?)?;
    } else {
        crate::print(&hotwasm_bench::report::markdown::tables(&report))?;
    }
    let charts: Vec<String> = written
        .charts
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    eprintln!(
        "hotwasm bench: {:.1} s; wrote {}, {} and {}",
        report.wall_seconds,
        written.markdown.display(),
        written.json.display(),
        charts.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
