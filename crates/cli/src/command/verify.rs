//! `hotwasm verify`: jobs in, verdicts out, optionally checked.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use hotwasm_jobs::JobLimits;
use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{ModuleSet, Worker, stream};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `hotwasm verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// native, wasmtime, wasmi or wasm3.
    #[arg(long, default_value = "wasmtime", env = "HOTWASM_RUNTIME")]
    runtime: RuntimeKind,
    /// Module variant (see `hotwasm modules list`); defaults to the fastest
    /// the runtime loads: `fast`, or `compat` on wasm3.
    #[arg(long)]
    variant: Option<String>,
    /// Jobs file (JSON Lines); `-` or absent reads standard input.
    #[arg(long, short)]
    input: Option<PathBuf>,
    /// Exit non-zero if any verdict differs from its job's `expect`, or any
    /// line is not a readable job.
    #[arg(long)]
    check: bool,
    /// Largest message a job may carry, in bytes.
    #[arg(long, default_value_t = JobLimits::default().max_message_bytes)]
    max_message_bytes: usize,
}

/// Verifies the jobs.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let variant = args
        .variant
        .unwrap_or_else(|| args.runtime.preferred_variant().to_string());
    let modules = ModuleSet::built(args.runtime, &variant)
        .with_context(|| format!("preparing the {variant} modules on {}", args.runtime))?;
    let mut worker = Worker::new(&modules);
    let limits = JobLimits {
        max_message_bytes: args.max_message_bytes,
        ..JobLimits::default()
    };

    let (input, length): (Box<dyn BufRead>, Option<u64>) = match &args.input {
        Some(path) if path.as_os_str() != "-" => {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let length = file.metadata().ok().map(|m| m.len());
            (Box::new(BufReader::new(file)), length)
        }
        _ => (Box::new(std::io::stdin().lock()), None),
    };
    let bar = match length {
        Some(length) => ProgressBar::new(length).with_style(
            ProgressStyle::with_template(
                "{spinner} verifying [{bar:40}] {percent}% {bytes}/{total_bytes} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner(),
    };
    let output = BufWriter::new(std::io::stdout().lock());
    let started = Instant::now();
    let summary = stream::run(input, output, &mut worker, &limits, |consumed| {
        bar.set_position(consumed)
    })
    .context("reading jobs or writing verdicts")?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();

    eprintln!(
        "{} verdicts on {} ({variant}) in {:.2} s: {} valid, {} invalid, {} malformed lines; \
         {} checked against expect, {} failed",
        summary.verdicts,
        args.runtime,
        elapsed.as_secs_f64(),
        summary.valid,
        summary.verdicts - summary.valid,
        summary.malformed,
        summary.checked,
        summary.failure_count
    );
    if !args.check {
        return Ok(ExitCode::SUCCESS);
    }
    for failure in &summary.failures {
        let expected = match failure.expected {
            Some(expected) => format!("expected valid={expected}"),
            None => "unreadable".to_string(),
        };
        eprintln!(
            "  line {} id {}: {expected}, got valid={} ({})",
            failure.line,
            failure.id.as_deref().unwrap_or("-"),
            failure.verdict.valid,
            failure.verdict.reason.as_deref().unwrap_or("no reason")
        );
    }
    if summary.failure_count > summary.failures.len() as u64 {
        eprintln!(
            "  ... and {} more",
            summary.failure_count - summary.failures.len() as u64
        );
    }
    Ok(if summary.failure_count == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
