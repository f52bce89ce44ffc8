//! Section 2, throughput: N jobs per timed run on every runtime, variant and
//! scheme, median of R runs, µs per verify and the ratio to native measured
//! in the same run.

use hotwasm_jobs::SchemeChoice;
use hotwasm_modules::Family;
use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{ModuleSet, Worker, WorkerError};
use serde::Serialize;

use crate::measure::{check, jobs, millis, spread, timed_run, warm_up};
use crate::options::BenchOptions;
use crate::report::{Cell, Spread};
use crate::{BenchError, Progress};

/// The schemes of the throughput table, in order.
pub const SCHEMES: [(&str, SchemeChoice); 3] = [
    ("schnorr", SchemeChoice::Schnorr),
    ("ecdsa", SchemeChoice::Ecdsa),
    ("mixed", SchemeChoice::Mixed),
];

/// Variant name of the native rows: native runs the built-in code.
pub const NATIVE_VARIANT: &str = "built-in";

/// The module family of a row's variant; native's built-in code is k256.
pub fn family(variant: &str) -> Family {
    hotwasm_modules::variant(variant).map_or(Family::K256, |v| v.family)
}

/// Every throughput row.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputSection {
    /// Rows by runtime, variant, scheme.
    pub rows: Vec<ThroughputRow>,
}

/// One runtime, variant and scheme.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRow {
    /// Runtime name.
    pub runtime: String,
    /// Module variant ([`NATIVE_VARIANT`] for native).
    pub variant: String,
    /// `schnorr`, `ecdsa` or `mixed`.
    pub scheme: String,
    /// The figures, or why there are none.
    pub result: Cell<ThroughputFigures>,
}

/// Figures of one throughput row.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputFigures {
    /// Jobs per timed run (N).
    pub messages: usize,
    /// Timed runs (R).
    pub reps: usize,
    /// Time for N jobs, in milliseconds: median, min, max over R runs.
    pub run_ms: Spread,
    /// `run_ms.median * 1000 / messages`.
    pub micros_per_verify: f64,
    /// `micros_per_verify` over native's for the same scheme in this run.
    pub ratio_to_native: Option<f64>,
}

impl ThroughputSection {
    /// The measured row of `runtime`, `variant`, `scheme`.
    pub fn find(&self, runtime: &str, variant: &str, scheme: &str) -> Option<&ThroughputFigures> {
        self.rows
            .iter()
            .find(|r| r.runtime == runtime && r.variant == variant && r.scheme == scheme)
            .and_then(|r| r.result.measured())
    }

    /// The measured `scheme` row of `runtime` with the smallest ratio to
    /// native among the variants that compile native's code (k256), and
    /// its variant.
    pub fn best(&self, runtime: &str, scheme: &str) -> Option<(&str, &ThroughputFigures)> {
        self.rows
            .iter()
            .filter(|r| r.runtime == runtime && r.scheme == scheme)
            .filter(|r| family(&r.variant) == Family::K256)
            .filter_map(|r| r.result.measured().map(|f| (r.variant.as_str(), f)))
            .min_by(|a, b| a.1.micros_per_verify.total_cmp(&b.1.micros_per_verify))
    }
}

/// Measures the throughput table.
///
/// Repetitions are interleaved: every row is prepared and warmed first,
/// then round `r` times the `r`-th run of every row in turn. A burst of
/// load from elsewhere on a shared machine then falls on all rows alike
/// instead of on one row, so the ratios to native, taken from medians,
/// compare runs made side by side.
///
/// # Errors
///
/// [`BenchError::WrongVerdict`] on any wrong verdict; [`BenchError::Worker`]
/// when a runtime cannot be created.
pub fn measure(
    options: &BenchOptions,
    progress: &dyn Progress,
) -> Result<ThroughputSection, BenchError> {
    let plan = plan(options);
    progress.start("throughput: preparing", (plan.len() * SCHEMES.len()) as u64);
    let mut rows = Vec::new();
    let mut prepared = Vec::new();
    for (kind, variant) in plan {
        let shown = shown_variant(kind, variant);
        let set = if !hotwasm_modules::built_variants().contains(&variant) {
            Err(Cell::NotBuilt {
                reason: "build with HOTWASM_ALL_VARIANTS=1".into(),
            })
        } else {
            match ModuleSet::built_with(kind, variant, crate::measure::limits()) {
                Ok(set) => Ok(set),
                Err(WorkerError::Load { source, .. }) => Err(Cell::Refused {
                    reason: source.to_string(),
                }),
                Err(source) => {
                    return Err(BenchError::Worker {
                        context: format!("throughput {kind}/{variant}"),
                        source,
                    });
                }
            }
        };
        for (index, (scheme, choice)) in SCHEMES.into_iter().enumerate() {
            progress.step(&format!("{kind}/{shown} {scheme}"));
            let result = match &set {
                Err(blank) => blank.clone(),
                Ok(set) => {
                    let size = options.budget.throughput(kind, variant);
                    let context = format!("throughput {kind}/{variant} {scheme}");
                    let jobs = jobs(
                        options.seed + index as u64,
                        choice,
                        options.invalid_ratio,
                        size.messages,
                    );
                    let mut worker = Worker::new(set);
                    warm_up(&mut worker, &jobs, &context)?;
                    prepared.push(Prepared {
                        row: rows.len(),
                        worker,
                        jobs,
                        reps: size.reps,
                        context,
                        samples: Vec::with_capacity(size.reps),
                    });
                    Cell::NotRun {
                        reason: "not measured".into(),
                    }
                }
            };
            rows.push(ThroughputRow {
                runtime: kind.name().to_string(),
                variant: shown.to_string(),
                scheme: scheme.to_string(),
                result,
            });
        }
    }
    progress.finish();

    let runs: usize = prepared.iter().map(|p| p.reps).sum();
    progress.start("throughput", runs as u64);
    let rounds = prepared.iter().map(|p| p.reps).max().unwrap_or(0);
    for round in 0..rounds {
        for row in prepared.iter_mut().filter(|p| p.reps > round) {
            progress.step(&format!("{} run {}/{}", row.context, round + 1, row.reps));
            let (elapsed, verdicts) = timed_run(&mut row.worker, &row.jobs);
            check(&row.context, &row.jobs, &verdicts)?;
            row.samples.push(millis(elapsed));
        }
    }
    for row in prepared {
        let run_ms = spread(&row.samples);
        rows[row.row].result = Cell::Measured(ThroughputFigures {
            messages: row.jobs.len(),
            reps: row.reps,
            run_ms,
            micros_per_verify: run_ms.median * 1000.0 / row.jobs.len() as f64,
            ratio_to_native: None,
        });
    }
    fill_ratios(&mut rows);
    progress.finish();
    Ok(ThroughputSection { rows })
}

/// A row ready to be timed: its worker (instances warm), its jobs, and
/// the samples so far.
struct Prepared {
    row: usize,
    worker: Worker,
    jobs: Vec<hotwasm_jobs::Job>,
    reps: usize,
    context: String,
    samples: Vec<f64>,
}

/// The variant as the report names it: native runs the built-in code
/// whatever the variant.
pub(crate) fn shown_variant(kind: RuntimeKind, variant: &str) -> &str {
    if kind == RuntimeKind::Native {
        NATIVE_VARIANT
    } else {
        variant
    }
}

/// Runtime and variant pairs in table order: native once (it runs the
/// built-in code whatever the variant), every other runtime on its
/// preferred variant first, then on every other variant. Of the
/// libsecp256k1 family, each runtime runs the build its preferred variant
/// would load: the MVP one on wasm3, the other elsewhere.
fn plan(options: &BenchOptions) -> Vec<(RuntimeKind, &'static str)> {
    let mut plan = Vec::new();
    for kind in options.with_native() {
        let preferred = kind.preferred_variant();
        plan.push((kind, preferred));
        if kind == RuntimeKind::Native {
            continue;
        }
        for variant in hotwasm_modules::VARIANTS {
            // The opt-level and codegen-units builds compare builds, not
            // runtimes: measured where the draft measured them (wasmtime's
            // Cranelift, wasmi, wasm3), not again on Winch and Pulley.
            let build_comparison = variant.opt_level != "3" || variant.codegen_units != 1;
            let other_tier = matches!(
                kind,
                RuntimeKind::WasmtimeWinch | RuntimeKind::WasmtimePulley
            );
            let other_libsecp256k1_build = variant.family == Family::Libsecp256k1
                && hotwasm_modules::variant(preferred).map(|p| p.is_mvp())
                    != Some(variant.is_mvp());
            if variant.name != preferred
                && !(build_comparison && other_tier)
                && !other_libsecp256k1_build
            {
                plan.push((kind, variant.name));
            }
        }
    }
    plan
}

fn fill_ratios(rows: &mut [ThroughputRow]) {
    let native: Vec<(String, f64)> = rows
        .iter()
        .filter(|r| r.runtime == RuntimeKind::Native.name())
        .filter_map(|r| {
            r.result
                .measured()
                .map(|f| (r.scheme.clone(), f.micros_per_verify))
        })
        .collect();
    for row in rows {
        let baseline = native
            .iter()
            .find(|(scheme, _)| *scheme == row.scheme)
            .map(|(_, us)| *us);
        if let Cell::Measured(figures) = &mut row.result {
            figures.ratio_to_native = baseline.map(|b| figures.micros_per_verify / b);
        }
    }
}
