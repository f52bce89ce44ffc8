//! The bench's errors.

use std::path::PathBuf;

/// Why a bench run or writing its report failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A runtime gave a verdict that differs from the job's `expect`: the
    /// figures of that run would be meaningless.
    #[error(
        "wrong verdict in {context}: job {id} expected valid={expected}, got valid={got} ({reason})"
    )]
    WrongVerdict {
        /// Which run (section, runtime, variant).
        context: String,
        /// The job id.
        id: String,
        /// The job's `expect`.
        expected: bool,
        /// The verdict.
        got: bool,
        /// The verdict's reason, or `-`.
        reason: String,
    },
    /// A run returned fewer or more verdicts than it was given jobs.
    #[error("{context}: {expected} verdicts expected, {got} returned")]
    VerdictCount {
        /// Which run.
        context: String,
        /// Jobs given.
        expected: usize,
        /// Verdicts returned.
        got: usize,
    },
    /// A module set could not be assembled for a row that should load.
    #[error("{context}: {source}")]
    Worker {
        /// Which run.
        context: String,
        /// Why.
        source: hotwasm_worker::WorkerError,
    },
    /// A module host could not start.
    #[error("{context}: {source}")]
    Host {
        /// What was being measured.
        context: String,
        /// The host's error.
        source: hotwasm_host::HostError,
    },
    /// A runtime failed to create, compile or instantiate.
    #[error("{context}: {source}")]
    Runtime {
        /// Which run.
        context: String,
        /// Why.
        source: hotwasm_runtime::RuntimeError,
    },
    /// A direct module call failed.
    #[error("{context}: {message}")]
    Call {
        /// Which run.
        context: String,
        /// Why.
        message: String,
    },
    /// The end-to-end pipeline failed or lost or changed verdicts.
    #[error("end-to-end pipeline ({config}): {message}")]
    Pipeline {
        /// The pipeline configuration, in words.
        config: String,
        /// Why.
        message: String,
    },
    /// A worker thread of the in-process run panicked.
    #[error("a worker thread of {0} panicked")]
    Panicked(String),
    /// The options make no run (no runtime, zero messages, ...).
    #[error("bad bench options: {0}")]
    Options(String),
    /// Writing a report file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Encoding `report.json` failed.
    #[error("encoding report.json: {0}")]
    Json(#[from] serde_json::Error),
    /// Drawing a chart failed.
    #[error("drawing {path}: {message}")]
    Chart {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}
