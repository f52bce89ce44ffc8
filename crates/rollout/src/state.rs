//! What the fleet stores in Redis: the desired state of each scheme, the
//! rollout in progress, the history of swaps, each server's report, and
//! the jobs two versions disagreed on. All JSON.

use serde::{Deserialize, Serialize};

/// The fleet's desired state for one scheme. Changed only through
/// [`crate::Fleet::change`], which bumps `rev` atomically.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemeState {
    /// Changes so far; the next change must name this one.
    pub rev: u64,
    /// `name@sha256` every server should serve; `None` leaves each server
    /// on what it chose at start (its registry's version, else built-in).
    pub active: Option<String>,
    /// The version active before `active`, for `rollback`.
    pub previous: Option<String>,
    /// A candidate on trial, if any.
    pub rollout: Option<Rollout>,
}

/// A candidate on trial beside the active version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Unique per rollout (`SCHEME-REV-TIME`); the trial's counts live under it.
    pub id: String,
    /// `name@sha256` of the candidate.
    pub candidate: String,
    /// Shadow or canary.
    pub mode: Mode,
    /// Shadow: agreeing jobs after which the candidate is promoted.
    /// Canary: jobs in the window after which it is promoted.
    pub promote_after: u64,
    /// Canary: largest share of the candidate's calls that may fail before
    /// it is rolled back.
    pub max_error_rate: f64,
    /// Canary: largest p99 of the candidate's calls on any server, in
    /// milliseconds, before it is rolled back.
    pub max_p99_ms: Option<f64>,
    /// Shadow: also compare the reason of two invalid verdicts.
    pub compare_reason: bool,
    /// Who started it.
    pub by: String,
    /// When, in Unix milliseconds.
    pub started_ms: u64,
}

/// How the candidate takes part.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Mode {
    /// Runs after the active version on `sample` (0..=1) of jobs; the
    /// delivered verdict is the active version's.
    Shadow {
        /// Fraction of jobs compared.
        sample: f64,
    },
    /// Serves `fraction` (0..=1) of jobs.
    Canary {
        /// Fraction of jobs served by the candidate.
        fraction: f64,
    },
}

impl Mode {
    /// `shadow` or `canary`.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Shadow { .. } => "shadow",
            Mode::Canary { .. } => "canary",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Percentages to two decimals, without trailing zeros: 25%, 0.5%.
        let percent = |share: f64| (share * 10_000.0).round() / 100.0;
        match self {
            Mode::Shadow { sample } => write!(f, "shadow on {}% of jobs", percent(*sample)),
            Mode::Canary { fraction } => write!(f, "canary on {}% of jobs", percent(*fraction)),
        }
    }
}

/// The fleet-wide totals of a rollout's trial (a hash per rollout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialTotals {
    /// Shadow: jobs both versions judged alike.
    pub agreed: u64,
    /// Shadow: jobs they judged differently.
    pub disagreed: u64,
    /// Candidate calls that gave no answer.
    pub errors: u64,
    /// Canary: jobs the candidate served.
    pub served: u64,
    /// Canary: jobs the active version answered because the candidate failed.
    pub fell_back: u64,
    /// Shadow: sampled jobs not compared because the shadow threads were
    /// behind.
    #[serde(default)]
    pub skipped: u64,
}

/// Why the fleet's state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// A module's bytes were stored.
    Published,
    /// An operator activated a version.
    Manual,
    /// An operator returned to the previous version.
    Rollback,
    /// A shadow or canary started.
    TrialStarted,
    /// A candidate passed its trial and became active.
    Promoted,
    /// A canary failed its bounds and was ended; the active version stays.
    RolledBack,
    /// A shadow found a disagreement or an error, or an operator aborted
    /// a trial; the active version stays.
    Aborted,
    /// A server could not take a version (it does not validate there).
    Refused,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Why::Published => "published",
            Why::Manual => "manual",
            Why::Rollback => "rollback",
            Why::TrialStarted => "trial-started",
            Why::Promoted => "promoted",
            Why::RolledBack => "rolled-back",
            Why::Aborted => "aborted",
            Why::Refused => "refused",
        })
    }
}

/// One entry of the fleet's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Unix milliseconds.
    pub at_ms: u64,
    /// Who: the operator's client name, or `server NAME` for a decision a
    /// server made (promotion, roll-back, refusal).
    pub by: String,
    /// The module name (scheme).
    pub scheme: String,
    /// The version active before.
    pub from: Option<String>,
    /// The version active (or on trial, or refused) after.
    pub to: Option<String>,
    /// Why.
    pub why: Why,
    /// More words: the trial's figures, a refusal's reason.
    pub detail: String,
}

/// What a server reports about itself (a hash per server, refreshed with
/// every heartbeat).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    /// The consumer name.
    pub name: String,
    /// The runtime it runs modules on.
    pub runtime: String,
    /// Unix milliseconds of this report.
    pub heartbeat_ms: u64,
    /// The module id serving each scheme.
    pub serving: std::collections::BTreeMap<String, String>,
    /// The revision of each scheme's state it has applied.
    pub applied: std::collections::BTreeMap<String, u64>,
    /// Trials it runs.
    pub trials: Vec<TrialReport>,
    /// The last version it would not take, and why.
    pub refused: Vec<Refusal>,
    /// Its last swap.
    pub last_swap: Option<SwapReport>,
}

/// A trial as one server sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialReport {
    /// The scheme.
    pub scheme: String,
    /// The rollout.
    pub rollout: String,
    /// The candidate's module id.
    pub candidate: String,
    /// This server's counts.
    pub counts: TrialTotals,
    /// p99 of the candidate's calls here, in µs (bucket bound).
    pub p99_micros: Option<f64>,
}

/// A version a server would not take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    /// The scheme.
    pub scheme: String,
    /// The version.
    pub version: String,
    /// Why.
    pub reason: String,
    /// Unix milliseconds.
    pub at_ms: u64,
}

/// A server's last swap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwapReport {
    /// The scheme.
    pub scheme: String,
    /// The module id before.
    pub from: Option<String>,
    /// The module id after.
    pub to: String,
    /// Unix milliseconds.
    pub at_ms: u64,
}

/// A job two versions judged differently, as stored (bounded) in Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisagreementRecord {
    /// Unix milliseconds.
    pub at_ms: u64,
    /// The server that saw it.
    pub server: String,
    /// The rollout.
    pub rollout: String,
    /// The job, as its JSON line.
    pub job: serde_json::Value,
    /// The active version's verdict (the one delivered).
    pub active: serde_json::Value,
    /// The candidate's.
    pub candidate: serde_json::Value,
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}
