//! Section 2c, our host against the official one: the same guest module
//! (the `default` variant, which the official host's default engine
//! accepts), the same jobs, called through the official waPC host (`wapc`
//! with `wasmtime-provider`, on the same wasmtime) and through ours (the
//! `Worker` path servers run: deadline, memory cap, health counters, the
//! verdict), timed in alternating runs, every answer checked.

use std::time::Instant;

use hotwasm_jobs::SchemeChoice;
use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{ModuleSet, Worker, WorkerError};
use serde::Serialize;

use crate::measure::{check, jobs, spread, timed_run, warm_up};
use crate::options::BenchOptions;
use crate::report::{Cell, Spread};
use crate::{BenchError, Progress};

/// The variant both hosts run.
pub const VARIANT: &str = "default";

/// The schemes compared: one module each (the official host has no
/// routing by scheme).
const SCHEMES: [(&str, SchemeChoice); 2] = [
    ("schnorr", SchemeChoice::Schnorr),
    ("ecdsa", SchemeChoice::Ecdsa),
];

/// The comparison.
#[derive(Debug, Clone, Serialize)]
pub struct OfficialWapcSection {
    /// The module variant both hosts run.
    pub variant: String,
    /// The official host's crates.
    pub official: String,
    /// One row per scheme.
    pub rows: Vec<OfficialWapcRow>,
}

/// One scheme.
#[derive(Debug, Clone, Serialize)]
pub struct OfficialWapcRow {
    /// `schnorr` or `ecdsa`.
    pub scheme: String,
    /// The figures, or why there are none.
    pub result: Cell<OfficialWapcFigures>,
}

/// Figures of one scheme.
#[derive(Debug, Clone, Serialize)]
pub struct OfficialWapcFigures {
    /// Jobs per timed run.
    pub messages: usize,
    /// Timed runs of each host.
    pub reps: usize,
    /// Our host, µs per call: median, min, max over the runs.
    pub ours_us: Spread,
    /// The official host, µs per call.
    pub official_us: Spread,
    /// `official_us.median / ours_us.median`: above 1, ours is faster.
    pub official_over_ours: f64,
}

/// Measures the section.
///
/// # Errors
///
/// [`BenchError::WrongVerdict`] when either host answers a job wrongly;
/// [`BenchError::Worker`] when wasmtime cannot be made.
pub fn measure(
    options: &BenchOptions,
    progress: &dyn Progress,
) -> Result<OfficialWapcSection, BenchError> {
    let section = |rows| OfficialWapcSection {
        variant: VARIANT.to_string(),
        official: "wapc 2.2 + wasmtime-provider 2.25 (wasmtime 48)".to_string(),
        rows,
    };
    let blank = |cell: Cell<OfficialWapcFigures>| {
        section(
            SCHEMES
                .iter()
                .map(|(scheme, _)| OfficialWapcRow {
                    scheme: (*scheme).to_string(),
                    result: cell.clone(),
                })
                .collect(),
        )
    };
    if !options.runtimes.contains(&RuntimeKind::Wasmtime) {
        return Ok(blank(Cell::NotRun {
            reason: "wasmtime not among --runtimes".into(),
        }));
    }
    if !cfg!(feature = "official-wapc") || !RuntimeKind::Wasmtime.is_built() {
        return Ok(blank(Cell::NotBuilt {
            reason: "built without wasmtime (the official host runs on it)".into(),
        }));
    }
    if !hotwasm_modules::built_variants().contains(&VARIANT) {
        return Ok(blank(Cell::NotBuilt {
            reason: format!("the {VARIANT} variant is not in this build"),
        }));
    }
    let set = ModuleSet::built_with(RuntimeKind::Wasmtime, VARIANT, crate::measure::limits())
        .map_err(|source: WorkerError| BenchError::Worker {
            context: "official waPC host: ours".into(),
            source,
        })?;
    let size = options.budget.throughput(RuntimeKind::Wasmtime, VARIANT);
    let mut prepared = Vec::new();
    let mut rows = Vec::new();
    for (index, (scheme, choice)) in SCHEMES.into_iter().enumerate() {
        let jobs = jobs(
            options.seed + 100 + index as u64,
            choice,
            options.invalid_ratio,
            size.messages,
        );
        let context = format!("official waPC host {scheme}");
        let bytes = hotwasm_modules::find(scheme, VARIANT)
            .map(|m| m.bytes)
            .unwrap_or_default();
        match official::Host::new(bytes) {
            Ok(mut host) => {
                let mut worker = Worker::new(&set);
                warm_up(&mut worker, &jobs, &context)?;
                let warm = &jobs[..jobs.len().min(16)];
                check(&context, warm, &host.run(warm))?;
                prepared.push((rows.len(), jobs, worker, host, Vec::new(), Vec::new()));
                rows.push(OfficialWapcRow {
                    scheme: scheme.to_string(),
                    result: Cell::NotRun {
                        reason: "not measured".into(),
                    },
                });
            }
            Err(reason) => rows.push(OfficialWapcRow {
                scheme: scheme.to_string(),
                result: Cell::Refused { reason },
            }),
        }
    }
    progress.start(
        "our host against the official waPC host",
        (size.reps * prepared.len()) as u64,
    );
    for round in 0..size.reps {
        for (row, jobs, worker, host, ours, theirs) in &mut prepared {
            progress.step(&format!(
                "{} run {}/{}",
                rows[*row].scheme,
                round + 1,
                size.reps
            ));
            let context = format!("official waPC host {}", rows[*row].scheme);
            let (elapsed, verdicts) = timed_run(worker, jobs);
            check(&context, jobs, &verdicts)?;
            ours.push(elapsed.as_secs_f64() * 1e6 / jobs.len() as f64);
            let started = Instant::now();
            let verdicts = host.run(jobs);
            let elapsed = started.elapsed();
            check(&context, jobs, &verdicts)?;
            theirs.push(elapsed.as_secs_f64() * 1e6 / jobs.len() as f64);
        }
    }
    progress.finish();
    for (row, jobs, _, _, ours, theirs) in prepared {
        let (ours_us, official_us) = (spread(&ours), spread(&theirs));
        rows[row].result = Cell::Measured(OfficialWapcFigures {
            messages: jobs.len(),
            reps: size.reps,
            official_over_ours: official_us.median / ours_us.median,
            ours_us,
            official_us,
        });
    }
    Ok(section(rows))
}

#[cfg(feature = "official-wapc")]
mod official {
    use hotwasm_abi::{VerifyResponse, decode, encode};
    use hotwasm_jobs::{Job, Verdict};

    /// The official host on one module.
    pub struct Host(wapc::WapcHost);

    impl Host {
        pub fn new(bytes: &[u8]) -> Result<Host, String> {
            let engine = wasmtime_provider::WasmtimeEngineProviderBuilder::new()
                .module_bytes(bytes)
                .build()
                .map_err(|e| format!("wasmtime-provider refused the module: {e}"))?;
            wapc::WapcHost::new(Box::new(engine), None)
                .map(Host)
                .map_err(|e| format!("the waPC host refused the module: {e}"))
        }

        /// Every job through `verify`, answers decoded into verdicts.
        pub fn run(&mut self, jobs: &[Job]) -> Vec<Verdict> {
            jobs.iter()
                .map(|job| {
                    let answer = self
                        .0
                        .call("verify", &encode(&job.request()))
                        .ok()
                        .and_then(|bytes| decode::<VerifyResponse>(&bytes).ok());
                    Verdict {
                        id: Some(job.id.clone()),
                        valid: answer.as_ref().is_some_and(|r| r.valid),
                        reason: answer.and_then(|r| r.reason),
                        runtime: "wapc+wasmtime-provider".into(),
                        module: None,
                        micros: 0.0,
                    }
                })
                .collect()
        }
    }
}

#[cfg(not(feature = "official-wapc"))]
mod official {
    use hotwasm_jobs::{Job, Verdict};

    /// Not built: the official host needs wasmtime.
    pub struct Host;

    impl Host {
        pub fn new(_: &[u8]) -> Result<Host, String> {
            Err("built without the official waPC host".into())
        }

        pub fn run(&mut self, _: &[Job]) -> Vec<Verdict> {
            Vec::new()
        }
    }
}
