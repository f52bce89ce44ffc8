//! What operators (and servers, for promotions and roll-backs) change in
//! the fleet's state. Each is one compare-and-set of a scheme's state with
//! its history entry.

use crate::state::{HistoryEntry, Mode, Rollout, SchemeState, Why, now_ms};
use crate::{Fleet, FleetError};

/// The parameters of a trial.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialParams {
    /// Shadow or canary, with its fraction.
    pub mode: Mode,
    /// See [`Rollout::promote_after`].
    pub promote_after: u64,
    /// See [`Rollout::max_error_rate`].
    pub max_error_rate: f64,
    /// See [`Rollout::max_p99_ms`].
    pub max_p99_ms: Option<f64>,
    /// See [`Rollout::compare_reason`].
    pub compare_reason: bool,
}

/// [`Fleet::update`] for a change `decide` always makes (or refuses).
async fn change(
    fleet: &Fleet,
    scheme: &str,
    decide: impl FnMut(&SchemeState) -> Result<Option<(SchemeState, HistoryEntry)>, FleetError>,
) -> Result<SchemeState, FleetError> {
    fleet
        .update(scheme, decide)
        .await?
        .ok_or_else(|| FleetError::Refused("nothing changed".into()))
}

/// The module name of `spec` (`name@sha256`).
fn name_of(spec: &str) -> &str {
    spec.split_once('@').map_or(spec, |(name, _)| name)
}

fn entry(
    by: &str,
    scheme: &str,
    from: Option<String>,
    to: Option<String>,
    why: Why,
    detail: String,
) -> HistoryEntry {
    HistoryEntry {
        at_ms: now_ms(),
        by: by.to_string(),
        scheme: scheme.to_string(),
        from,
        to,
        why,
        detail,
    }
}

/// Makes `spec` (`name@sha256`, resolved) active on every server at once.
/// A trial in progress for the scheme ends.
///
/// # Errors
///
/// [`FleetError::Refused`] when it is already active; [`FleetError::Redis`].
pub async fn activate(fleet: &Fleet, spec: &str, by: &str) -> Result<SchemeState, FleetError> {
    let scheme = name_of(spec);
    change(fleet, scheme, |current| {
        if current.active.as_deref() == Some(spec) && current.rollout.is_none() {
            return Err(FleetError::Refused(format!("{spec} is already active")));
        }
        let detail = match &current.rollout {
            Some(rollout) => {
                format!("ended the {} of {}", rollout.mode.name(), rollout.candidate)
            }
            None => String::new(),
        };
        // Re-activating the active version (to end a trial) keeps the
        // version to roll back to.
        let previous = match &current.active {
            Some(active) if active != spec => Some(active.clone()),
            _ => current.previous.clone(),
        };
        let next = SchemeState {
            active: Some(spec.to_string()),
            previous,
            rollout: None,
            ..current.clone()
        };
        let history = entry(
            by,
            scheme,
            current.active.clone(),
            Some(spec.to_string()),
            Why::Manual,
            detail,
        );
        Ok(Some((next, history)))
    })
    .await
}

/// Returns `scheme` to the version active before the current one.
///
/// # Errors
///
/// [`FleetError::Refused`] when the fleet has no previous version of it;
/// [`FleetError::Redis`].
pub async fn rollback(fleet: &Fleet, scheme: &str, by: &str) -> Result<SchemeState, FleetError> {
    change(fleet, scheme, |current| {
        let Some(previous) = current.previous.clone() else {
            return Err(FleetError::Refused(format!(
                "the fleet has no previous version of {scheme} to return to"
            )));
        };
        let next = SchemeState {
            active: Some(previous.clone()),
            previous: current.active.clone(),
            rollout: None,
            ..current.clone()
        };
        let history = entry(
            by,
            scheme,
            current.active.clone(),
            Some(previous),
            Why::Rollback,
            String::new(),
        );
        Ok(Some((next, history)))
    })
    .await
}

/// Starts a trial of `candidate` (`name@sha256`, resolved).
///
/// # Errors
///
/// [`FleetError::Refused`] when a trial of the scheme is already running
/// (abort it first) or the candidate is the active version;
/// [`FleetError::Redis`].
pub async fn start_trial(
    fleet: &Fleet,
    candidate: &str,
    params: &TrialParams,
    by: &str,
) -> Result<SchemeState, FleetError> {
    let scheme = name_of(candidate);
    change(fleet, scheme, |current| {
        if let Some(rollout) = &current.rollout {
            return Err(FleetError::Refused(format!(
                "a {} of {} is running: `hotwasm modules abort {scheme}` ends it",
                rollout.mode.name(),
                rollout.candidate
            )));
        }
        if current.active.as_deref() == Some(candidate) {
            return Err(FleetError::Refused(format!(
                "{candidate} is the active version"
            )));
        }
        let rollout = Rollout {
            // Unique even if the state is reset and revisions repeat
            // (a trial's counts outlive it for 30 days).
            id: format!("{scheme}-{}-{:x}", current.rev + 1, now_ms()),
            candidate: candidate.to_string(),
            mode: params.mode,
            promote_after: params.promote_after,
            max_error_rate: params.max_error_rate,
            max_p99_ms: params.max_p99_ms,
            compare_reason: params.compare_reason,
            by: by.to_string(),
            started_ms: now_ms(),
        };
        let history = entry(
            by,
            scheme,
            current.active.clone(),
            Some(candidate.to_string()),
            Why::TrialStarted,
            format!(
                "{}, promoted after {} jobs",
                params.mode, params.promote_after
            ),
        );
        let next = SchemeState {
            rollout: Some(rollout),
            ..current.clone()
        };
        Ok(Some((next, history)))
    })
    .await
}

/// Ends `scheme`'s trial by hand; the active version stays.
///
/// # Errors
///
/// [`FleetError::Refused`] when none runs; [`FleetError::Redis`].
pub async fn abort(fleet: &Fleet, scheme: &str, by: &str) -> Result<SchemeState, FleetError> {
    change(fleet, scheme, |current| {
        let Some(rollout) = &current.rollout else {
            return Err(FleetError::Refused(format!(
                "no trial of {scheme} is running"
            )));
        };
        let history = entry(
            by,
            scheme,
            current.active.clone(),
            Some(rollout.candidate.clone()),
            Why::Aborted,
            "by hand".into(),
        );
        Ok(Some((
            SchemeState {
                rollout: None,
                ..current.clone()
            },
            history,
        )))
    })
    .await
}

/// Ends the trial `rollout` of `scheme` — if it is still the one running —
/// with `why`: [`Why::Promoted`] makes the candidate active; anything else
/// leaves the active version. Returns whether this call ended it (another
/// server may have been first).
///
/// # Errors
///
/// [`FleetError::Redis`].
pub async fn end_trial(
    fleet: &Fleet,
    scheme: &str,
    rollout: &str,
    why: Why,
    detail: &str,
    by: &str,
) -> Result<bool, FleetError> {
    let changed = fleet
        .update(scheme, |current| {
            let Some(running) = current.rollout.as_ref().filter(|r| r.id == rollout) else {
                return Ok(None);
            };
            let next = if why == Why::Promoted {
                SchemeState {
                    active: Some(running.candidate.clone()),
                    previous: current.active.clone().or_else(|| current.previous.clone()),
                    rollout: None,
                    ..current.clone()
                }
            } else {
                SchemeState {
                    rollout: None,
                    ..current.clone()
                }
            };
            let to = Some(running.candidate.clone());
            let history = entry(by, scheme, current.active.clone(), to, why, detail.into());
            Ok(Some((next, history)))
        })
        .await?;
    Ok(changed.is_some())
}
