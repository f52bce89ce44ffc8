//! `hotwasm bench`: the evaluation — every runtime against native, measured
//! in one run, checked, and written as a report (`report.md`,
//! `report.json`, `*.svg`).
//!
//! [`run`] measures the sections in order and returns a [`Report`];
//! [`report::write`] writes it to a directory. Every timed run collects its
//! verdicts inside the timed region and checks them against the jobs'
//! `expect` outside it: one wrong verdict ends the run with
//! [`BenchError::WrongVerdict`].
//!
//! # Layout
//!
//! - [`options`]: [`BenchOptions`] and the time [`Budget`] (messages and
//!   repetitions per table).
//! - [`progress`]: the [`Progress`] callback and a terminal implementation.
//! - one file per section: [`machine`], [`throughput`], [`limit`],
//!   [`official_wapc`], [`open_loop`], [`latency`],
//!   [`cold_start`], [`swapping`], [`tiered`], [`end_to_end`], [`scale`] (with the injected
//!   [`PipelineRunner`]), [`draft`], [`method`].
//! - `measure.rs`: timing, statistics and verdict checks shared by them.
//! - [`report`]: the serde model and its writers (`report/markdown.rs`,
//!   `report/json.rs`, `report/charts.rs`).

use std::time::Instant;

pub mod cold_start;
pub mod compare;
pub mod draft;
pub mod end_to_end;
mod error;
pub mod latency;
pub mod limit;
pub mod machine;
mod measure;
pub mod method;
pub mod official_wapc;
pub mod open_loop;
pub mod options;
pub mod progress;
pub mod report;
pub mod scale;
pub mod swapping;
pub mod throughput;
pub mod tiered;

pub use error::BenchError;
pub use options::{BenchOptions, Budget, ScaleSweep, Size};
pub use progress::Progress;
pub use report::{Cell, Report};

/// Runs every section of the evaluation with `options`, reporting progress
/// to `progress`, and returns the report (not yet written).
///
/// # Errors
///
/// [`BenchError::WrongVerdict`] when any runtime gives a verdict that differs
/// from the job's `expect`; other [`BenchError`]s when a runtime, module or
/// the end-to-end pipeline fails.
pub fn run(options: &BenchOptions, progress: &dyn Progress) -> Result<Report, BenchError> {
    options.validate()?;
    let started = Instant::now();
    let machine = machine::describe();
    let throughput = throughput::measure(options, progress)?;
    let limit = limit::measure(options, &throughput, progress)?;
    let official_wapc = official_wapc::measure(options, progress)?;
    let latency = latency::measure(options, progress)?;
    let cold_start = cold_start::measure(options, progress)?;
    let swapping = swapping::measure(options, progress)?;
    let tiered = tiered::measure(options, progress)?;
    let end_to_end = end_to_end::measure(options, progress)?;
    let open_loop = open_loop::measure(options, &latency, progress)?;
    let scale = scale::measure(options, progress)?;
    let draft = draft::compare(&throughput, &latency, &swapping, &tiered);
    let method = method::describe(options);
    Ok(Report {
        format: report::FORMAT,
        generated: machine.date.clone(),
        wall_seconds: started.elapsed().as_secs_f64(),
        runtimes: options
            .runtimes
            .iter()
            .map(|k| k.name().to_string())
            .collect(),
        quick: options.quick,
        machine,
        throughput,
        limit,
        official_wapc,
        latency,
        cold_start,
        swapping,
        tiered,
        end_to_end,
        open_loop,
        scale,
        draft,
        method,
    })
}
