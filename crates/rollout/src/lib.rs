//! Module rollout across a fleet of servers, on the Redis they already
//! share.
//!
//! Operators publish module bytes (stored once, under their SHA-256) and
//! change each scheme's desired state — activate a version, roll back,
//! run a candidate as a **shadow** (it runs after the active version on a
//! sample of live jobs and its verdicts are compared; the delivered
//! verdict stays the active version's) or as a **canary** (it serves a
//! share of jobs; a failed call falls back to the active version) — with
//! `hotwasm modules … --redis`. Every server follows the changes, validates
//! and prewarms locally before it acts, reports what it runs, and judges
//! the trials: a shadow that disagrees once is aborted, a canary past its
//! error budget or latency bound is rolled back, and a candidate that
//! passes is promoted on every server. Every change lands in a history.
//!
//! # Layout
//!
//! - [`Fleet`]: the records in Redis and every read and write of them (`fleet.rs`).
//! - [`state`]: what is stored: desired state, rollouts, history, reports.
//! - [`commands`]: activate, rollback, start a trial, abort, end a trial.
//! - [`agent`]: the server's side: follow, converge, judge, report.

pub mod agent;
pub mod commands;
mod fleet;
pub mod state;

pub use agent::AgentConfig;
pub use fleet::{DEFAULT_PREFIX, Fleet, MAX_MODULE_BYTES};

/// A fleet operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// A Redis command failed.
    #[error("{action}: {source}")]
    Redis {
        /// What was being done.
        action: &'static str,
        /// Redis's error.
        source: redis::RedisError,
    },
    /// Redis did not answer in time.
    #[error("Redis did not answer ({0})")]
    Unreachable(String),
    /// The request cannot be applied to the fleet's state.
    #[error("{0}")]
    Refused(String),
    /// A version spec that names no single version.
    #[error("{0}")]
    UnknownVersion(String),
    /// Bytes that cannot be published.
    #[error("refusing to publish: {0}")]
    BadModule(String),
    /// A record in Redis that this version cannot read.
    #[error("unreadable fleet record: {0}")]
    Corrupt(String),
}

impl FleetError {
    fn redis(action: &'static str, source: redis::RedisError) -> FleetError {
        FleetError::Redis { action, source }
    }
}
