//! `hotwasm modules ... --redis URL`: the fleet's modules, through the
//! records every `hotwasm serve --redis` follows (`hotwasm-rollout`).

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;
use hotwasm_queue::RedisOptions;
use hotwasm_rollout::commands::{self, TrialParams};
use hotwasm_rollout::state::{Mode, SchemeState, ServerReport, now_ms};
use hotwasm_rollout::{DEFAULT_PREFIX, Fleet};

use crate::command::redis_auth::RedisAuthArgs;

/// `writeln!` into a `String`, which cannot fail.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {
        let _ = writeln!($out, $($arg)*);
    };
}

/// A server whose last heartbeat is older than this is shown as gone.
const STALE: Duration = Duration::from_secs(10);

/// Which fleet to act on.
#[derive(Debug, Clone, clap::Args)]
pub struct FleetArgs {
    /// Act on every server of the fleet through the Redis they take jobs
    /// from (e.g. redis://127.0.0.1:6379), instead of the local registry.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// The fleet's key prefix in Redis (`hotwasm serve --fleet`).
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_PREFIX)]
    pub fleet: String,
    /// Who is asking, as the fleet's history records it [default: uid N@HOST].
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    #[command(flatten)]
    pub redis_auth: RedisAuthArgs,
}

impl FleetArgs {
    /// Whether the command acts on a fleet.
    pub fn given(&self) -> bool {
        self.redis.is_some()
    }

    fn by(&self) -> String {
        self.by.clone().unwrap_or_else(|| {
            format!(
                "{}@{}",
                hotwasm_host::AuditLog::local_user(),
                gethostname::gethostname().to_string_lossy()
            )
        })
    }
}

/// A fleet operation.
#[derive(Debug)]
pub enum Operation {
    /// Store a module's bytes.
    Publish {
        /// Module name.
        name: String,
        /// The bytes.
        wasm: Vec<u8>,
    },
    /// Activate a version everywhere.
    Activate {
        /// `name@hash`.
        spec: String,
        /// Wait until every live server serves it, at most this long.
        wait: Option<Duration>,
    },
    /// Return to the previous version everywhere.
    Rollback {
        /// Module name.
        name: String,
    },
    /// Start a shadow or canary.
    Trial {
        /// `name@hash` of the candidate.
        spec: String,
        /// Its parameters.
        params: TrialParams,
    },
    /// End a trial by hand.
    Abort {
        /// Module name.
        name: String,
    },
    /// Show each scheme's state and each server's.
    Status {
        /// JSON instead of tables.
        json: bool,
    },
    /// Show the jobs two versions disagreed on.
    Disagreements {
        /// How many (newest).
        count: usize,
        /// JSON lines instead of text.
        json: bool,
    },
    /// Show the history of changes.
    History {
        /// How many (newest).
        count: usize,
        /// JSON lines instead of text.
        json: bool,
    },
}

/// Performs `operation` on the fleet `args` names and prints the outcome.
pub fn run(args: &FleetArgs, operation: Operation) -> anyhow::Result<()> {
    let url = args
        .redis
        .clone()
        .context("this command acts on a fleet: pass --redis URL")?;
    let mut options = RedisOptions::new(url);
    options.connect_timeout = Duration::from_secs(5);
    args.redis_auth.apply(&mut options)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let fleet = Fleet::connect(&options, &args.fleet).await?;
        let by = args.by();
        let out = perform(&fleet, &by, operation).await?;
        crate::print(&out)
    })
}

async fn perform(fleet: &Fleet, by: &str, operation: Operation) -> anyhow::Result<String> {
    let mut out = String::new();
    match operation {
        Operation::Publish { name, wasm } => {
            hotwasm_registry::check_name(&name)?;
            let (spec, new) = fleet.publish(&name, &wasm, by).await?;
            outln!(
                out,
                "{} {spec} ({} bytes)",
                if new {
                    "published"
                } else {
                    "already published:"
                },
                wasm.len()
            );
        }
        Operation::Activate { spec, wait } => {
            let spec = fleet.resolve(&spec).await?;
            let asked = now_ms();
            let state = commands::activate(fleet, &spec, by).await?;
            outln!(
                out,
                "{spec} is the fleet's active version (revision {})",
                state.rev
            );
            if let Some(wait) = wait {
                out.push_str(&wait_for(fleet, &spec, asked, wait).await?);
            }
        }
        Operation::Rollback { name } => {
            let state = commands::rollback(fleet, &name, by).await?;
            outln!(
                out,
                "the fleet returns {name} to {}",
                state.active.as_deref().unwrap_or("?")
            );
        }
        Operation::Trial { spec, params } => {
            let spec = fleet.resolve(&spec).await?;
            let state = commands::start_trial(fleet, &spec, &params, by).await?;
            let rollout = state.rollout.context("the trial was not stored")?;
            outln!(
                out,
                "{}: {spec} ({}), promoted after {} jobs; `hotwasm modules status --redis …` follows it",
                rollout.id,
                rollout.mode,
                rollout.promote_after
            );
        }
        Operation::Abort { name } => {
            commands::abort(fleet, &name, by).await?;
            outln!(out, "the trial of {name} is over; the active version stays");
        }
        Operation::Status { json } => out = status(fleet, json).await?,
        Operation::Disagreements { count, json } => {
            let records = fleet.disagreements(count).await?;
            if records.is_empty() && !json {
                outln!(out, "no disagreement recorded");
            }
            for record in records {
                if json {
                    outln!(out, "{}", serde_json::to_string(&record)?);
                } else {
                    outln!(
                        out,
                        "{} {} on {}: job {}\n  active:    {}\n  candidate: {}",
                        format_ms(record.at_ms),
                        record.rollout,
                        record.server,
                        record.job,
                        record.active,
                        record.candidate
                    );
                }
            }
        }
        Operation::History { count, json } => {
            for entry in fleet.history(count).await? {
                if json {
                    outln!(out, "{}", serde_json::to_string(&entry)?);
                } else {
                    outln!(
                        out,
                        "{}  {:<13} {:<7} {} -> {}  by {}{}",
                        format_ms(entry.at_ms),
                        entry.why.to_string(),
                        entry.scheme,
                        short(entry.from.as_deref()),
                        short(entry.to.as_deref()),
                        entry.by,
                        if entry.detail.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", entry.detail)
                        }
                    );
                }
            }
        }
    }
    Ok(out)
}

/// Waits until every live server serves `spec`; says how long after the
/// command the last one swapped.
async fn wait_for(
    fleet: &Fleet,
    spec: &str,
    asked_ms: u64,
    wait: Duration,
) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let servers = live(fleet.servers().await?);
        let behind: Vec<&ServerReport> = servers
            .iter()
            .filter(|server| !serves(server, spec))
            .collect();
        if behind.is_empty() {
            let last = servers
                .iter()
                .filter_map(|server| server.last_swap.as_ref())
                .filter(|swap| swap.at_ms >= asked_ms)
                .map(|swap| swap.at_ms)
                .max()
                .unwrap_or(asked_ms);
            return Ok(format!(
                "{} servers serve it; the last swapped {} ms after the command\n",
                servers.len(),
                last.saturating_sub(asked_ms)
            ));
        }
        if tokio::time::Instant::now() >= deadline {
            let names: Vec<String> = behind
                .iter()
                .map(|server| match server.refused.last() {
                    Some(refusal) if refusal.version == spec => {
                        format!("{} (refused: {})", server.name, refusal.reason)
                    }
                    _ => server.name.clone(),
                })
                .collect();
            anyhow::bail!(
                "after {wait:?}, {} of {} servers do not serve {spec} yet: {}",
                behind.len(),
                servers.len(),
                names.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether `server` reports serving `spec` (`name@sha256`).
fn serves(server: &ServerReport, spec: &str) -> bool {
    let Some((name, sha)) = spec.split_once('@') else {
        return false;
    };
    // A native server runs built-in code only: it serves a built-in
    // version, and refuses any other.
    let built_in = || {
        hotwasm_modules::built()
            .iter()
            .any(|m| m.scheme == name && m.hash() == sha)
    };
    server
        .serving
        .get(name)
        .and_then(|id| id.split_once('@'))
        .is_some_and(|(_, hash)| {
            if hash == "native" {
                built_in()
            } else {
                sha.starts_with(hash)
            }
        })
}

/// The servers heard from recently.
fn live(servers: Vec<ServerReport>) -> Vec<ServerReport> {
    let now = now_ms();
    servers
        .into_iter()
        .filter(|server| now.saturating_sub(server.heartbeat_ms) < millis(STALE))
        .collect()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

async fn status(fleet: &Fleet, json: bool) -> anyhow::Result<String> {
    let states = fleet.states().await?;
    let servers = fleet.servers().await?;
    let mut trials = Vec::new();
    for state in states.values() {
        if let Some(rollout) = &state.rollout {
            trials.push((rollout.id.clone(), fleet.trial_totals(&rollout.id).await?));
        }
    }
    let mut out = String::new();
    if json {
        let trials: serde_json::Map<String, serde_json::Value> = trials
            .into_iter()
            .map(|(id, totals)| (id, serde_json::to_value(totals).unwrap_or_default()))
            .collect();
        let published: serde_json::Map<String, serde_json::Value> =
            fleet.published().await?.into_iter().collect();
        let json = serde_json::json!({
            "prefix": fleet.prefix(),
            "published": published,
            "schemes": states,
            "trials": trials,
            "servers": servers,
        });
        outln!(out, "{json}");
        return Ok(out);
    }
    outln!(out, "fleet {}:", fleet.prefix());
    if states.is_empty() {
        outln!(
            out,
            "  no fleet-wide version yet: each server serves what it chose at start"
        );
    }
    for (scheme, state) in &states {
        describe_scheme(&mut out, scheme, state, &trials);
    }
    let published = fleet.published().await?;
    outln!(out, "\npublished ({}):", published.len());
    for (spec, meta) in &published {
        outln!(
            out,
            "  {:<26} {:>9} bytes  by {} at {}",
            short(Some(spec)),
            meta["bytes"],
            meta["by"].as_str().unwrap_or("?"),
            format_ms(meta["at_ms"].as_u64().unwrap_or_default())
        );
    }
    let now = now_ms();
    outln!(out, "\nservers ({}):", servers.len());
    for server in &servers {
        let age = now.saturating_sub(server.heartbeat_ms);
        let seen = if server.heartbeat_ms == 0 {
            "stopped".to_string()
        } else if age >= millis(STALE) {
            format!("gone ({} s)", age / 1000)
        } else {
            format!("{:.1} s ago", age as f64 / 1000.0)
        };
        let serving: Vec<String> = server.serving.values().cloned().collect();
        outln!(
            out,
            "  {:<20} {:<9} {:<12} {}",
            server.name,
            server.runtime,
            seen,
            serving.join(", ")
        );
        for trial in &server.trials {
            outln!(
                out,
                "      {} {}: {} agreed, {} disagreed, {} skipped, {} failed, {} served, {} fell back{}",
                trial.rollout,
                trial.candidate,
                trial.counts.agreed,
                trial.counts.disagreed,
                trial.counts.skipped,
                trial.counts.errors,
                trial.counts.served,
                trial.counts.fell_back,
                trial
                    .p99_micros
                    .map(|p| format!(", p99 ≤ {:.0} µs", p))
                    .unwrap_or_default()
            );
        }
        if let Some(swap) = &server.last_swap {
            outln!(
                out,
                "      last swap {}: {} -> {}",
                format_ms(swap.at_ms),
                swap.from.as_deref().unwrap_or("-"),
                swap.to
            );
        }
        for refusal in &server.refused {
            outln!(
                out,
                "      refused {} at {}: {}",
                refusal.version,
                format_ms(refusal.at_ms),
                refusal.reason
            );
        }
    }
    Ok(out)
}

fn describe_scheme(
    out: &mut String,
    scheme: &str,
    state: &SchemeState,
    trials: &[(String, hotwasm_rollout::state::TrialTotals)],
) {
    outln!(
        out,
        "  {scheme}: active {} (previous {}), revision {}",
        short(state.active.as_deref()),
        short(state.previous.as_deref()),
        state.rev
    );
    if let Some(rollout) = &state.rollout {
        let totals = trials
            .iter()
            .find(|(id, _)| *id == rollout.id)
            .map(|(_, totals)| *totals)
            .unwrap_or_default();
        let progress = match rollout.mode {
            Mode::Shadow { .. } => format!(
                "{}/{} agreeing, {} disagreements, {} failed calls, {} skipped (shadow threads behind)",
                totals.agreed,
                rollout.promote_after,
                totals.disagreed,
                totals.errors,
                totals.skipped
            ),
            Mode::Canary { .. } => format!(
                "{}/{} jobs, {} failed calls (budget {})",
                totals.served + totals.fell_back,
                rollout.promote_after,
                totals.errors,
                rollout.max_error_rate * rollout.promote_after as f64
            ),
        };
        outln!(
            out,
            "    {} {} ({}), started {} by {}: {progress}",
            rollout.id,
            rollout.candidate,
            rollout.mode,
            format_ms(rollout.started_ms),
            rollout.by
        );
    }
}

/// `name@sha256` shortened to `name@` and 16 digits, as module ids are.
fn short(spec: Option<&str>) -> String {
    match spec.and_then(|s| s.split_once('@')) {
        Some((name, hash)) => format!("{name}@{}", hash.get(..16).unwrap_or(hash)),
        None => spec.unwrap_or("-").to_string(),
    }
}

/// Unix milliseconds as an RFC 3339 time.
fn format_ms(ms: u64) -> String {
    // humantime formats up to the end of year 9999.
    const LAST: u64 = 253_402_300_799_999;
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms.min(LAST)))
        .to_string()
}
