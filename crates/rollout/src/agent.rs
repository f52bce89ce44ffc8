//! The server's side of the fleet: follow the control stream, converge to
//! the fleet's desired state, run and judge trials, report.
//!
//! On start the agent notes the control stream's position, reads every
//! scheme's state and converges to it, so a server that was down (or
//! joins later) catches up; then it follows the stream from that position.
//! It also re-reads the state every few seconds, so an entry missed while
//! Redis was away costs seconds, not the change. Each scheme's state is
//! applied once per revision: a version that does not validate here is
//! refused once (reported, recorded in the history), not retried in a loop,
//! and a version an operator activated on this server alone (over gRPC)
//! stays until the fleet's state changes again.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hotwasm_abi::Scheme;
use hotwasm_host::{Activation, AuditEntry, ModuleHost};
use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{Trial, TrialMode, TrialSnapshot};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::state::{
    DisagreementRecord, Mode, Refusal, Rollout, SchemeState, ServerReport, SwapReport, TrialReport,
    TrialTotals, Why, now_ms,
};
use crate::{Fleet, FleetError, commands};

/// How an agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The server's name (its consumer name in the group).
    pub name: String,
    /// How often the server reports itself.
    pub heartbeat: Duration,
    /// How often trial counts are added to the fleet's and judged.
    pub tick: Duration,
    /// How often the whole state is re-read, besides the control stream.
    pub resync: Duration,
}

impl AgentConfig {
    /// Defaults for a server named `name`: heartbeat every second, trials
    /// judged every 100 ms, state re-read every 5 s.
    pub fn new(name: impl Into<String>) -> AgentConfig {
        AgentConfig {
            name: name.into(),
            heartbeat: Duration::from_secs(1),
            tick: Duration::from_millis(100),
            resync: Duration::from_secs(5),
        }
    }
}

/// Refusals kept in a server's report.
const REFUSALS_REPORTED: usize = 8;

/// Follows the fleet until `shutdown` resolves.
pub async fn run(
    fleet: Fleet,
    host: Arc<ModuleHost>,
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) {
    let wake = Arc::new(Notify::new());
    let follower = tokio::spawn(follow(fleet.clone(), Arc::clone(&host), Arc::clone(&wake)));
    let mut agent = Agent {
        activations: host.subscribe(),
        fleet,
        host,
        config,
        applied: BTreeMap::new(),
        refused: Vec::new(),
        refused_rollouts: BTreeSet::new(),
        last_swap: None,
        trials: BTreeMap::new(),
        last_error: None,
        started_ms: now_ms(),
    };
    tokio::pin!(shutdown);
    let mut next_resync = Instant::now();
    let mut next_heartbeat = Instant::now();
    loop {
        let woken = tokio::select! {
            () = &mut shutdown => break,
            () = wake.notified() => true,
            () = tokio::time::sleep(agent.config.tick) => false,
        };
        agent.note_swaps();
        if woken || Instant::now() >= next_resync {
            next_resync = Instant::now() + agent.config.resync;
            let converged = agent.converge().await;
            if matches!(converged, Ok(true)) {
                // Say at once what changed here.
                next_heartbeat = Instant::now();
            }
            agent.outcome("reading the fleet state", converged.map(drop));
        }
        let judged = agent.judge().await;
        agent.outcome("counting trials", judged);
        if Instant::now() >= next_heartbeat {
            next_heartbeat = Instant::now() + agent.config.heartbeat;
            agent.note_swaps();
            let reported = agent.fleet.report(&agent.report()).await;
            agent.outcome("reporting", reported);
        }
    }
    follower.abort();
    // A server that stops says so at once rather than after its heartbeat
    // goes stale.
    let mut last = agent.report();
    last.heartbeat_ms = 0;
    let _ = agent.fleet.report(&last).await;
}

/// Reads the control stream and wakes the agent for each change; compiles
/// each newly published module ahead of its activation.
async fn follow(fleet: Fleet, host: Arc<ModuleHost>, wake: Arc<Notify>) {
    let mut position = None;
    let mut connection = None;
    loop {
        let result = async {
            let position = match &mut position {
                Some(position) => position,
                empty => {
                    let at = fleet.control_position().await?;
                    // State read after this point: nothing in between is missed.
                    wake.notify_one();
                    empty.insert(at)
                }
            };
            let connection = match &mut connection {
                Some(connection) => connection,
                empty => empty.insert(fleet.follower().await?),
            };
            let entries = fleet
                .follow(connection, position, Duration::from_secs(2))
                .await?;
            for (id, fields) in entries {
                *position = id;
                if let Some(spec) = fields.get("published") {
                    prepare(&fleet, &host, spec).await;
                } else {
                    wake.notify_one();
                }
            }
            Ok::<(), FleetError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "following the fleet's control stream; retrying");
            connection = None;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Compiles a newly published module into the artifact cache, so its
/// activation later costs no compile. Failures are left for the
/// activation to report.
async fn prepare(fleet: &Fleet, host: &Arc<ModuleHost>, spec: &str) {
    if host.runtime() == RuntimeKind::Native || Scheme::from_name(name_of(spec)).is_none() {
        return;
    }
    let Ok(Some(wasm)) = fleet.module_bytes(sha_of(spec)).await else {
        return;
    };
    let host = Arc::clone(host);
    let name = name_of(spec).to_string();
    let _ = tokio::task::spawn_blocking(move || host.prepare(&name, wasm)).await;
}

struct Agent {
    fleet: Fleet,
    host: Arc<ModuleHost>,
    config: AgentConfig,
    activations: crossbeam_channel::Receiver<Activation>,
    /// The revision of each scheme's state applied.
    applied: BTreeMap<String, u64>,
    refused: Vec<Refusal>,
    /// Rollouts this server could not take part in (native runtime).
    refused_rollouts: BTreeSet<String>,
    last_swap: Option<SwapReport>,
    /// The trials this server runs, with the counts already added to the
    /// fleet's.
    trials: BTreeMap<Scheme, Reporting>,
    last_error: Option<String>,
    /// When this agent started (Unix ms): with the name, who reports a
    /// trial's counts, so a restarted server adds to its earlier counts.
    started_ms: u64,
}

struct Reporting {
    rollout: Rollout,
    trial: Arc<Trial>,
    /// The counts last stored in the fleet's records.
    reported: TrialSnapshot,
    /// The fleet's totals as last read.
    totals: TrialTotals,
    /// The end this server asked for, once.
    ended: bool,
}

/// Why a version could not be had.
enum Unavailable {
    /// Redis did not answer: try again later.
    Transient(FleetError),
    /// It cannot be had on this server.
    Refused(String),
}

impl Agent {
    /// Logs a failed step once per distinct error, and its recovery.
    fn outcome(&mut self, what: &str, result: Result<(), FleetError>) {
        match result {
            Ok(()) => {
                if self.last_error.take().is_some() {
                    tracing::info!("the fleet's records answer again");
                }
            }
            Err(e) => {
                let message = format!("{what}: {e}");
                if self.last_error.as_ref() != Some(&message) {
                    tracing::warn!("fleet: {message}");
                    self.last_error = Some(message);
                }
            }
        }
    }

    fn note_swaps(&mut self) {
        for activation in self.activations.try_iter() {
            self.last_swap = Some(SwapReport {
                scheme: activation.scheme.to_string(),
                from: activation.from,
                to: activation.to,
                at_ms: activation
                    .at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                    .unwrap_or_default(),
            });
        }
    }

    /// Applies every scheme's state not applied yet; `true` when there
    /// was one.
    async fn converge(&mut self) -> Result<bool, FleetError> {
        let mut changed = false;
        for (name, state) in self.fleet.states().await? {
            if self.applied.get(&name) == Some(&state.rev) {
                continue;
            }
            let Some(scheme) = Scheme::from_name(&name) else {
                self.applied.insert(name, state.rev);
                continue;
            };
            changed = true;
            if self.apply(scheme, &state).await {
                self.applied.insert(name, state.rev);
            }
        }
        Ok(changed)
    }

    /// Makes this server match `state`; `false` when a transient failure
    /// means it must be tried again.
    async fn apply(&mut self, scheme: Scheme, state: &SchemeState) -> bool {
        let mut done = true;
        if let Some(version) = &state.active
            && !self.serves(scheme, version)
        {
            done &= self.activate(scheme, version).await;
        }
        let running = self.host.modules().trial(scheme);
        match (&state.rollout, running) {
            (None, Some(_)) => {
                self.host.modules().set_trial(scheme, None);
                self.trials.remove(&scheme);
                tracing::info!(%scheme, "trial ended");
            }
            (Some(rollout), running)
                if running.as_ref().is_none_or(|trial| trial.id != rollout.id)
                    && !self.refused_rollouts.contains(&rollout.id) =>
            {
                done &= self.start_trial(scheme, rollout).await;
            }
            _ => {}
        }
        done
    }

    /// Whether the module serving `scheme` is `version` (`name@sha256`).
    fn serves(&self, scheme: Scheme, version: &str) -> bool {
        let Some(serving) = self.host.serving().remove(scheme.as_str()) else {
            return false;
        };
        let (Some((name, sha)), Some((serving_name, serving_hash))) =
            (version.split_once('@'), serving.split_once('@'))
        else {
            return false;
        };
        if name != serving_name {
            return false;
        }
        if serving_hash == "native" {
            // Native runs the built-in code of the scheme, whatever version
            // of it is named.
            return is_built_in(version);
        }
        sha.starts_with(serving_hash)
    }

    async fn activate(&mut self, scheme: Scheme, version: &str) -> bool {
        let wasm = match self.bytes(version).await {
            Ok(wasm) => wasm,
            Err(Unavailable::Transient(e)) => {
                self.outcome("fetching a module", Err(e));
                return false;
            }
            Err(Unavailable::Refused(reason)) => {
                self.refuse(scheme, version, &reason).await;
                return true;
            }
        };
        let host = Arc::clone(&self.host);
        let name = scheme.as_str().to_string();
        let loaded =
            tokio::task::spawn_blocking(move || host.load(&name, wasm, "fleet", true)).await;
        let outcome = match loaded {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("validation stopped: {e}")),
        };
        self.audit("activate", version, &outcome);
        match outcome {
            Ok(()) => tracing::info!(%scheme, %version, "serving the fleet's version"),
            Err(reason) => self.refuse(scheme, version, &reason).await,
        }
        true
    }

    async fn start_trial(&mut self, scheme: Scheme, rollout: &Rollout) -> bool {
        if self.host.runtime() == RuntimeKind::Native {
            self.refused_rollouts.insert(rollout.id.clone());
            self.note_refusal(
                scheme,
                &rollout.candidate,
                "the native runtime runs built-in code only: this server takes no part in the trial",
            );
            return true;
        }
        let wasm = match self.bytes(&rollout.candidate).await {
            Ok(wasm) => wasm,
            Err(Unavailable::Transient(e)) => {
                self.outcome("fetching a module", Err(e));
                return false;
            }
            Err(Unavailable::Refused(reason)) => {
                self.abort_refused(scheme, rollout, &reason).await;
                return true;
            }
        };
        let host = Arc::clone(&self.host);
        let staged = tokio::task::spawn_blocking(move || host.candidate(scheme, wasm)).await;
        let outcome = match staged {
            Ok(Ok(staged)) => Ok(staged),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("validation stopped: {e}")),
        };
        self.audit(
            rollout.mode.name(),
            &rollout.candidate,
            &outcome.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        match outcome {
            Ok(staged) => {
                let mode = match rollout.mode {
                    Mode::Shadow { sample } => TrialMode::Shadow { sample },
                    Mode::Canary { fraction } => TrialMode::Canary { fraction },
                };
                let trial = Arc::new(Trial::new(
                    rollout.id.clone(),
                    mode,
                    Arc::clone(staged.module()),
                    rollout.compare_reason,
                ));
                self.host
                    .modules()
                    .set_trial(scheme, Some(Arc::clone(&trial)));
                tracing::info!(%scheme, candidate = %rollout.candidate, mode = %rollout.mode, "trial started");
                self.trials.insert(
                    scheme,
                    Reporting {
                        rollout: rollout.clone(),
                        trial,
                        reported: TrialSnapshot::default(),
                        totals: TrialTotals::default(),
                        ended: false,
                    },
                );
            }
            Err(reason) => self.abort_refused(scheme, rollout, &reason).await,
        }
        true
    }

    /// A candidate this server cannot run ends the trial everywhere.
    async fn abort_refused(&mut self, scheme: Scheme, rollout: &Rollout, reason: &str) {
        self.refused_rollouts.insert(rollout.id.clone());
        self.note_refusal(scheme, &rollout.candidate, reason);
        let detail = format!("refused by server {}: {reason}", self.config.name);
        let ended = commands::end_trial(
            &self.fleet,
            scheme.as_str(),
            &rollout.id,
            Why::Aborted,
            &detail,
            &self.by(),
        )
        .await;
        self.outcome("ending a trial", ended.map(drop));
    }

    /// The bytes of `version`: built in, or published in the fleet.
    async fn bytes(&self, version: &str) -> Result<Vec<u8>, Unavailable> {
        let (name, sha) = version
            .split_once('@')
            .ok_or_else(|| Unavailable::Refused(format!("{version} is not NAME@SHA256")))?;
        if let Some(built) = hotwasm_modules::built()
            .iter()
            .find(|m| m.scheme == name && m.hash() == sha)
        {
            return Ok(built.bytes.to_vec());
        }
        if self.host.runtime() == RuntimeKind::Native {
            return Err(Unavailable::Refused(
                "the native runtime runs built-in code only".into(),
            ));
        }
        match self.fleet.module_bytes(sha).await {
            Ok(Some(wasm)) => Ok(wasm),
            Ok(None) => Err(Unavailable::Refused(format!(
                "{version} is not published in the fleet"
            ))),
            Err(e @ FleetError::BadModule(_)) => Err(Unavailable::Refused(e.to_string())),
            Err(e) => Err(Unavailable::Transient(e)),
        }
    }

    fn note_refusal(&mut self, scheme: Scheme, version: &str, reason: &str) {
        tracing::warn!(%scheme, %version, reason, "refused the fleet's version");
        self.refused.push(Refusal {
            scheme: scheme.to_string(),
            version: version.to_string(),
            reason: reason.to_string(),
            at_ms: now_ms(),
        });
        let excess = self.refused.len().saturating_sub(REFUSALS_REPORTED);
        self.refused.drain(..excess);
    }

    async fn refuse(&mut self, scheme: Scheme, version: &str, reason: &str) {
        self.note_refusal(scheme, version, reason);
        let recorded = self
            .fleet
            .record(&crate::state::HistoryEntry {
                at_ms: now_ms(),
                by: self.by(),
                scheme: scheme.to_string(),
                from: self.host.serving().remove(scheme.as_str()),
                to: Some(version.to_string()),
                why: Why::Refused,
                detail: reason.to_string(),
            })
            .await;
        self.outcome("recording a refusal", recorded);
    }

    fn audit(&self, action: &str, target: &str, outcome: &Result<(), String>) {
        self.host.audit().record(&AuditEntry {
            who: "fleet",
            via: "redis",
            action,
            target,
            outcome: outcome.clone().map(|()| "ok".to_string()),
        });
    }

    fn by(&self) -> String {
        format!("server {}", self.config.name)
    }

    /// Adds each trial's new counts to the fleet's, stores its
    /// disagreements, and ends the trial when its bounds say so.
    async fn judge(&mut self) -> Result<(), FleetError> {
        let by = self.by();
        let server = self.config.name.clone();
        let reporter = format!("{server}@{}", self.started_ms);
        for reporting in self.trials.values_mut() {
            let disagreements = reporting.trial.take_disagreements();
            if !disagreements.is_empty() {
                let records: Vec<DisagreementRecord> = disagreements
                    .into_iter()
                    .map(|d| DisagreementRecord {
                        at_ms: now_ms(),
                        server: server.clone(),
                        rollout: reporting.rollout.id.clone(),
                        job: serde_json::to_value(d.job.to_line()).unwrap_or_default(),
                        active: serde_json::to_value(&d.serving).unwrap_or_default(),
                        candidate: serde_json::to_value(&d.candidate).unwrap_or_default(),
                    })
                    .collect();
                self.fleet.record_disagreements(&records).await?;
            }
            let now = reporting.trial.snapshot();
            if now != reporting.reported {
                reporting.totals = self
                    .fleet
                    .report_trial(&reporting.rollout.id, &reporter, &totals_of(&now))
                    .await?;
                reporting.reported = now;
            }
            if reporting.ended {
                continue;
            }
            // Judged every tick on the last totals, so a decision whose
            // write failed is made again.
            let p99 = p99_of(&reporting.trial);
            let Some((why, detail)) =
                verdict_on(&reporting.rollout, &reporting.totals, p99, &server)
            else {
                continue;
            };
            let scheme = name_of(&reporting.rollout.candidate).to_string();
            if commands::end_trial(
                &self.fleet,
                &scheme,
                &reporting.rollout.id,
                why,
                &detail,
                &by,
            )
            .await?
            {
                tracing::info!(%scheme, candidate = %reporting.rollout.candidate, %why, detail, "trial decided");
            }
            reporting.ended = true;
        }
        Ok(())
    }

    fn report(&self) -> ServerReport {
        let trials = self
            .trials
            .iter()
            .map(|(scheme, reporting)| TrialReport {
                scheme: scheme.to_string(),
                rollout: reporting.rollout.id.clone(),
                candidate: reporting.trial.candidate.id.clone(),
                counts: totals_of(&reporting.trial.snapshot()),
                p99_micros: reporting.trial.latency.quantile_micros(0.99),
            })
            .collect();
        ServerReport {
            name: self.config.name.clone(),
            runtime: self.host.runtime().to_string(),
            heartbeat_ms: now_ms(),
            serving: self.host.serving(),
            applied: self.applied.clone(),
            trials,
            refused: self.refused.clone(),
            last_swap: self.last_swap.clone(),
        }
    }
}

/// Calls of a canary's candidate on one server before its p99 is judged.
pub const P99_AFTER_CALLS: u64 = 100;

fn p99_of(trial: &Trial) -> Option<f64> {
    (trial.latency.count() >= P99_AFTER_CALLS)
        .then(|| trial.latency.quantile_micros(0.99))
        .flatten()
}

/// Whether a trial is over, with the fleet's `totals` and this server's
/// p99 of the candidate's calls (µs): the end and its reason.
///
/// - shadow: any disagreement or failed call aborts it; `promote_after`
///   agreeing jobs promote it;
/// - canary: failed calls over `max_error_rate × promote_after` (the whole
///   window's budget, spent) or a p99 over `max_p99_ms` on any server roll
///   it back; `promote_after` jobs within bounds promote it.
pub fn verdict_on(
    rollout: &Rollout,
    totals: &TrialTotals,
    p99_micros: Option<f64>,
    server: &str,
) -> Option<(Why, String)> {
    match rollout.mode {
        Mode::Shadow { .. } => {
            let compared = totals.agreed + totals.disagreed;
            if totals.disagreed > 0 || totals.errors > 0 {
                return Some((
                    Why::Aborted,
                    format!(
                        "{} disagreements and {} failed candidate calls in {compared} compared jobs",
                        totals.disagreed, totals.errors
                    ),
                ));
            }
            (totals.agreed >= rollout.promote_after).then(|| {
                (
                    Why::Promoted,
                    format!("{} agreeing jobs, no disagreement", totals.agreed),
                )
            })
        }
        Mode::Canary { .. } => {
            let jobs = totals.served + totals.fell_back;
            #[allow(clippy::cast_precision_loss)]
            let budget = rollout.max_error_rate * rollout.promote_after as f64;
            #[allow(clippy::cast_precision_loss)]
            if totals.errors as f64 > budget {
                return Some((
                    Why::RolledBack,
                    format!(
                        "{} failed candidate calls in {jobs} jobs: over the window's budget of {budget} ({} × {})",
                        totals.errors, rollout.max_error_rate, rollout.promote_after
                    ),
                ));
            }
            if let (Some(max_ms), Some(p99)) = (rollout.max_p99_ms, p99_micros)
                && p99 > max_ms * 1000.0
            {
                return Some((
                    Why::RolledBack,
                    format!(
                        "p99 of the candidate's calls on server {server} is {:.3} ms, over {max_ms} ms",
                        p99 / 1000.0
                    ),
                ));
            }
            (jobs >= rollout.promote_after).then(|| {
                (
                    Why::Promoted,
                    format!("{jobs} jobs, {} failed candidate calls", totals.errors),
                )
            })
        }
    }
}

fn totals_of(snapshot: &TrialSnapshot) -> TrialTotals {
    TrialTotals {
        agreed: snapshot.agreed,
        disagreed: snapshot.disagreed,
        errors: snapshot.errors,
        served: snapshot.served,
        fell_back: snapshot.fell_back,
        skipped: snapshot.skipped,
    }
}

fn name_of(spec: &str) -> &str {
    spec.split_once('@').map_or(spec, |(name, _)| name)
}

fn sha_of(spec: &str) -> &str {
    spec.split_once('@').map_or("", |(_, sha)| sha)
}

fn is_built_in(version: &str) -> bool {
    hotwasm_modules::built()
        .iter()
        .any(|m| version.split_once('@') == Some((m.scheme, m.hash().as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(mode: Mode) -> Rollout {
        Rollout {
            id: "schnorr-3".into(),
            candidate: "schnorr@ab".into(),
            mode,
            promote_after: 1000,
            max_error_rate: 0.01,
            max_p99_ms: Some(5.0),
            compare_reason: false,
            by: "test".into(),
            started_ms: 0,
        }
    }

    #[test]
    fn a_shadow_stops_at_the_first_disagreement_or_error_and_promotes_after_the_count() {
        let shadow = rollout(Mode::Shadow { sample: 1.0 });
        let agreed = |agreed| TrialTotals {
            agreed,
            ..TrialTotals::default()
        };
        assert_eq!(verdict_on(&shadow, &agreed(999), None, "a"), None);
        assert_eq!(
            verdict_on(&shadow, &agreed(1000), None, "a").map(|v| v.0),
            Some(Why::Promoted)
        );
        let one_off = TrialTotals {
            disagreed: 1,
            ..agreed(5000)
        };
        assert_eq!(
            verdict_on(&shadow, &one_off, None, "a").map(|v| v.0),
            Some(Why::Aborted)
        );
        let one_error = TrialTotals {
            errors: 1,
            ..agreed(5)
        };
        assert_eq!(
            verdict_on(&shadow, &one_error, None, "a").map(|v| v.0),
            Some(Why::Aborted)
        );
    }

    #[test]
    fn a_canary_rolls_back_past_its_error_budget_or_p99_and_promotes_within_them() {
        let canary = rollout(Mode::Canary { fraction: 0.05 });
        let served = |served, errors| TrialTotals {
            served,
            errors,
            fell_back: errors,
            ..TrialTotals::default()
        };
        // Budget: 0.01 × 1000 = 10 failed calls over the window.
        assert_eq!(verdict_on(&canary, &served(100, 10), None, "a"), None);
        assert_eq!(
            verdict_on(&canary, &served(100, 11), None, "a").map(|v| v.0),
            Some(Why::RolledBack)
        );
        assert_eq!(
            verdict_on(&canary, &served(100, 0), Some(5_001.0), "a").map(|v| v.0),
            Some(Why::RolledBack)
        );
        assert_eq!(
            verdict_on(&canary, &served(100, 0), Some(4_000.0), "a"),
            None
        );
        assert_eq!(
            verdict_on(&canary, &served(995, 5), Some(4_000.0), "a").map(|v| v.0),
            Some(Why::Promoted)
        );
    }
}
