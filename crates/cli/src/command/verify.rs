//! `hotwasm verify`: jobs in, verdicts out, optionally checked.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use hotwasm_abi::Scheme;
use hotwasm_host::{HostConfig, ModuleHost, Startup};
use hotwasm_jobs::JobLimits;
use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{Worker, stream};
use std::sync::Arc;

use crate::command::limits::LimitArgs;
use crate::command::modules::RegistryArgs;
use crate::command::trust::TrustArgs;
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `hotwasm verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// native, wasmtime, wasmtime-winch, wasmtime-pulley, wasmi or wasm3.
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
    /// Alternate between two versions of each module every N jobs: the
    /// registry's active and previous versions, or two built-in variants.
    #[arg(long, value_name = "N")]
    swap_every: Option<u64>,
    /// Watch DIR while verifying: a new or changed NAME.wasm is loaded into
    /// the registry, validated and activated; a broken one is refused.
    #[arg(long, value_name = "DIR")]
    modules_dir: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    guest: LimitArgs,
    #[command(flatten)]
    trust: TrustArgs,
}

/// Verifies the jobs.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let host = start_host(&args)?;
    let _watcher = match &args.modules_dir {
        Some(dir) => Some(
            hotwasm_host::watch::watch(dir, Arc::clone(&host), None)
                .with_context(|| format!("watching {}", dir.display()))?,
        ),
        None => None,
    };
    let mut alternates = Vec::new();
    if args.swap_every.is_some() {
        for scheme in Scheme::ALL {
            let other = host
                .alternate(scheme)
                .with_context(|| format!("preparing a second {scheme} module"))?
                .with_context(|| {
                    format!(
                        "--swap-every needs two versions of the {scheme} module on {}: \
                         load a second one with `hotwasm modules load`",
                        args.runtime
                    )
                })?;
            alternates.push((scheme, other));
        }
    }
    let mut worker = Worker::new(host.modules());
    let mut jobs_done = 0u64;
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
        bar.set_position(consumed);
        jobs_done += 1;
        if let Some(every) = args.swap_every.filter(|n| *n > 0)
            && jobs_done.is_multiple_of(every)
        {
            for (scheme, other) in alternates.iter_mut() {
                if let Some(previous) = host.swap_in(*scheme, Arc::clone(other)) {
                    *other = previous;
                }
            }
        }
    })
    .context("reading jobs or writing verdicts")?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    let serving = host.serving().into_values().collect::<Vec<_>>().join(", ");

    eprintln!(
        "{} verdicts on {} ({}) in {:.2} s: {} valid, {} invalid, {} malformed lines; \
         {} checked against expect, {} failed",
        summary.verdicts,
        args.runtime,
        serving,
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

/// The module host `--variant`, `--registry` and `--modules-dir` ask for:
/// `--variant` serves built-in modules; otherwise the registry's active
/// version of a scheme wins over the built-in one. A registry is opened
/// (created) for `--modules-dir`, else only when it exists.
fn start_host(args: &Args) -> anyhow::Result<Arc<ModuleHost>> {
    let registry = args.registry.dir();
    let config = HostConfig {
        limits: args.guest.limits(),
        variant: args.variant.clone(),
        registry: (args.modules_dir.is_some()
            || (args.variant.is_none() && args.registry.exists()))
        .then_some(registry),
        startup: match args.variant {
            Some(_) => Startup::BuiltIn,
            None => Startup::RegistryFirst,
        },
        trust: args.trust.trust("verify")?,
        ..HostConfig::new(args.runtime)
    };
    ModuleHost::start(config).with_context(|| format!("preparing the modules on {}", args.runtime))
}
