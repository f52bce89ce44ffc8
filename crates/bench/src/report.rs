//! The report: one serde model, written as `report.md`, `report.json` and
//! SVG charts.
//!
//! Every figure a ratio is computed from is in the same report, so a reader
//! (and the tests) can recompute the ratio.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::BenchError;
use crate::cold_start::ColdStartSection;
use crate::draft::DraftSection;
use crate::end_to_end::EndToEndSection;
use crate::latency::LatencySection;
use crate::machine::Machine;
use crate::method::Method;
use crate::swapping::SwappingSection;
use crate::throughput::ThroughputSection;

pub mod charts;
pub mod json;
pub mod markdown;

/// Version of the `report.json` layout.
pub const FORMAT: u32 = 1;

/// A whole bench run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`FORMAT`].
    pub format: u32,
    /// Date of the run (UTC, `YYYY-MM-DD`).
    pub generated: String,
    /// Wall time of the whole run, in seconds (report writing excluded).
    pub wall_seconds: f64,
    /// Runtimes asked for.
    pub runtimes: Vec<String>,
    /// Whether this was a `--quick` run.
    pub quick: bool,
    /// 1. Machine and build.
    pub machine: Machine,
    /// 2. Throughput.
    pub throughput: ThroughputSection,
    /// 2b. The limit, natively: libsecp256k1 on the same jobs.
    pub limit: crate::limit::LimitSection,
    /// 2c. Our host against the official waPC host.
    pub official_wapc: crate::official_wapc::OfficialWapcSection,
    /// 3. Single-message latency.
    pub latency: LatencySection,
    /// 4. Cold start.
    pub cold_start: ColdStartSection,
    /// 5. Module swapping.
    pub swapping: SwappingSection,
    /// 5b. Tiered activation.
    pub tiered: crate::tiered::TieredSection,
    /// 6. End to end.
    pub end_to_end: EndToEndSection,
    /// 6b. Latency under load, open loop.
    pub open_loop: crate::open_loop::OpenLoopSection,
    /// 6c. Scale: workers per server, servers per group.
    pub scale: crate::scale::ScaleSection,
    /// 7. Against the draft.
    pub draft: DraftSection,
    /// 8. Method.
    pub method: Method,
}

/// A measured figure, or why there is none. In JSON: an object with a
/// `status` field (`measured`, `not_built`, `refused`, `not_run`,
/// `not_applicable`) and the figures or a `reason`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Cell<T> {
    /// Measured.
    Measured(T),
    /// The module variant is not in this build.
    NotBuilt {
        /// How to build it.
        reason: String,
    },
    /// The runtime refuses the module.
    Refused {
        /// The runtime's reason.
        reason: String,
    },
    /// Not run in this bench run.
    NotRun {
        /// Why.
        reason: String,
    },
    /// Does not apply to this runtime.
    NotApplicable {
        /// Why.
        reason: String,
    },
}

impl<T> Cell<T> {
    /// The figures, when measured.
    pub fn measured(&self) -> Option<&T> {
        match self {
            Cell::Measured(figures) => Some(figures),
            _ => None,
        }
    }

    /// Short text for a table cell that holds no figures.
    pub fn blank(&self) -> Option<String> {
        match self {
            Cell::Measured(_) => None,
            Cell::NotBuilt { reason } => Some(format!("not built ({reason})")),
            Cell::Refused { reason } => Some(format!("refused: {reason}")),
            Cell::NotRun { reason } => Some(format!("not run: {reason}")),
            Cell::NotApplicable { reason } => Some(format!("n/a: {reason}")),
        }
    }
}

/// Median, min and max of repeated measurements, in the unit the field
/// name says.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    /// Number of samples.
    pub samples: usize,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile (nearest rank).
    pub p99_us: f64,
    /// Largest.
    pub max_us: f64,
}

/// The files [`write`] produced.
#[derive(Debug, Clone)]
pub struct Written {
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.json`.
    pub json: PathBuf,
    /// The charts.
    pub charts: Vec<PathBuf>,
}

/// Writes `report.md`, `report.json` and the charts into `dir` (created if
/// missing).
///
/// # Errors
///
/// [`BenchError::Io`], [`BenchError::Json`] or [`BenchError::Chart`].
pub fn write(report: &Report, dir: &Path) -> Result<Written, BenchError> {
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let charts = charts::write(report, dir)?;
    let chart_names: Vec<String> = charts
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let markdown = dir.join("report.md");
    write_file(&markdown, markdown::render(report, &chart_names).as_bytes())?;
    let json = dir.join("report.json");
    write_file(&json, json::render(report)?.as_bytes())?;
    Ok(Written {
        markdown,
        json,
        charts,
    })
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BenchError> {
    std::fs::write(path, bytes).map_err(|source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    })
}
