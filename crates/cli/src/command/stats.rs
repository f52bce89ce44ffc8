//! `hotwasm stats --server URL`: a running server's counters at a glance
//! (the `Stats` RPC), once or refreshed with `--watch`, with rates since
//! the previous look.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use hotwasm_client::admin::{AdminClient, StatsResponse};

use crate::command::seconds::Seconds;

/// Arguments of `hotwasm stats`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server (e.g. http://127.0.0.1:50051).
    #[arg(long, env = "HOTWASM_SERVER", value_name = "URL")]
    server: String,
    /// The CA certificate (PEM) that signs the server's TLS certificate,
    /// for an https:// URL.
    #[arg(long, env = "HOTWASM_TLS_CA", value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// Refresh every SECONDS until interrupted, with rates since the last
    /// refresh.
    #[arg(long, value_name = "SECONDS")]
    watch: Option<Seconds>,
    /// Print the counters as one JSON object (per refresh with --watch).
    #[arg(long)]
    json: bool,
}

/// Runs `hotwasm stats`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = crate::command::modules::remote::connect_options(None, args.tls_ca.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut client = AdminClient::connect_with(&args.server, &options).await?;
        let mut previous: Option<(Instant, StatsResponse)> = None;
        loop {
            let stats = client.stats().await?;
            let now = Instant::now();
            let out = if args.json {
                format!("{}\n", json(&stats))
            } else {
                table(
                    &args.server,
                    &stats,
                    previous.as_ref().map(|(at, s)| (now - *at, s)),
                )
            };
            crate::print(&out)?;
            let Some(Seconds(every)) = args.watch else {
                return Ok(ExitCode::SUCCESS);
            };
            previous = Some((now, stats));
            tokio::time::sleep(every.max(Duration::from_millis(100))).await;
        }
    })
}

fn json(stats: &StatsResponse) -> serde_json::Value {
    serde_json::json!({
        "server": stats.server,
        "runtime": stats.runtime,
        "workers": stats.workers,
        "uptime_seconds": stats.uptime_seconds,
        "verdicts": stats.verdicts,
        "valid": stats.valid,
        "malformed": stats.malformed,
        "dead_lettered": stats.dead_lettered,
        "reclaimed": stats.reclaimed,
        "fenced": stats.fenced,
        "refused": stats.refused,
        "swaps": stats.swaps,
        "modules": stats.modules.iter().map(|m| serde_json::json!({
            "scheme": m.scheme,
            "id": m.id,
            "calls": m.calls,
            "failures": m.failures,
            "failing": m.failing,
            "last_failure": m.last_failure,
        })).collect::<Vec<_>>(),
    })
}

/// The counters as a small table; with the previous look, per-second
/// rates beside the totals.
fn table(url: &str, stats: &StatsResponse, previous: Option<(Duration, &StatsResponse)>) -> String {
    use std::fmt::Write as _;
    let rate = |now: u64, then: fn(&StatsResponse) -> u64| match previous {
        Some((elapsed, before)) if !elapsed.is_zero() => format!(
            "  ({:.0}/s)",
            now.saturating_sub(then(before)) as f64 / elapsed.as_secs_f64()
        ),
        _ => String::new(),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} at {url}: {} with {} workers, up {:.0} s",
        stats.server, stats.runtime, stats.workers, stats.uptime_seconds
    );
    /// A counter's name, its value now, and how to read it from the
    /// previous look.
    type Row = (&'static str, u64, fn(&StatsResponse) -> u64);
    let rows: [Row; 8] = [
        ("verdicts", stats.verdicts, |s| s.verdicts),
        ("  valid", stats.valid, |s| s.valid),
        ("malformed", stats.malformed, |s| s.malformed),
        ("reclaimed", stats.reclaimed, |s| s.reclaimed),
        ("fenced", stats.fenced, |s| s.fenced),
        ("dead-lettered", stats.dead_lettered, |s| s.dead_lettered),
        ("refused", stats.refused, |s| s.refused),
        ("swaps", stats.swaps, |s| s.swaps),
    ];
    for (name, value, of) in rows {
        let _ = writeln!(out, "  {name:<14} {value:>12}{}", rate(value, of));
    }
    for module in &stats.modules {
        let _ = writeln!(
            out,
            "  {:<8} {}: {} calls, {} failed{}",
            module.scheme,
            module.id,
            module.calls,
            module.failures,
            if module.failing {
                format!("  FAILING: {}", module.last_failure)
            } else {
                String::new()
            }
        );
    }
    out
}
