//! Jobs and verdicts as JSON Lines, and the signed-job generator.
//!
//! A job line is `{"id", "scheme", "public_key", "signature", "message",
//! "expect"}` with bytes in hex; a verdict line is `{"id", "valid",
//! "reason", "runtime", "module", "micros"}`. Parsing never panics: a line
//! that is not a usable job becomes a [`JobError`] naming what is wrong,
//! which the caller turns into an error verdict.
//!
//! # Layout
//!
//! - [`job`]: [`JobLine`] (the wire form), [`Job`] (validated), [`JobLimits`].
//! - [`verdict`]: the [`Verdict`] line.
//! - [`lines`]: reading JSON Lines with a bound on a line's length.
//! - [`generate`]: deterministic valid and deliberately invalid jobs.
//! - [`adversarial`]: the hard cases (`generate --adversarial`), each with
//!   the verdict it must get.
//! - [`stats`]: percentiles of measured samples, one definition for every report.

pub mod adversarial;
pub mod generate;
pub mod job;
pub mod lines;
pub mod stats;
pub mod verdict;

pub use adversarial::Adversarial;
pub use generate::{Generator, InvalidKind, SchemeChoice};
pub use job::{Job, JobError, JobLimits, JobLine};
pub use verdict::Verdict;
