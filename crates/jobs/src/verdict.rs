//! Verdict lines.

use serde::{Deserialize, Serialize};

/// The outcome of one job, as written on one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The job's id; `null` when the line could not be read as a job.
    pub id: Option<String>,
    /// Whether the signature verifies.
    pub valid: bool,
    /// Why not, when `valid` is false.
    pub reason: Option<String>,
    /// The runtime that produced the verdict.
    pub runtime: String,
    /// `name@hash` of the module that produced it; `null` when the job never
    /// reached a module (it was malformed).
    pub module: Option<String>,
    /// Time spent in the module call, in microseconds.
    pub micros: f64,
}

impl Verdict {
    /// A verdict for a job that could not be run, with the reason.
    pub fn error(id: Option<String>, runtime: &str, reason: impl Into<String>) -> Verdict {
        Verdict {
            id,
            valid: false,
            reason: Some(reason.into()),
            runtime: runtime.to_string(),
            module: None,
            micros: 0.0,
        }
    }

    /// Parses one verdict line.
    ///
    /// # Errors
    ///
    /// The JSON error when the line is not a verdict.
    pub fn parse(line: &str) -> Result<Verdict, serde_json::Error> {
        serde_json::from_str(line)
    }
}
