//! Section 2b, the limit, natively: libsecp256k1 — the C library Bitcoin
//! Core verifies with, through the `secp256k1` crate — on the same jobs
//! as the native rows of the throughput table, timed side by side with the
//! native k256 code (runs interleaved), every verdict checked. It is the
//! fastest verifier a user could pick instead of hotwasm; the table gives
//! k256 native ÷ libsecp256k1, and wasmtime ÷ libsecp256k1 as wasmtime's
//! ratio to native (throughput table) times k256 ÷ libsecp256k1.
//!
//! libsecp256k1 does the whole job as the modules do: parse the key and
//! the signature, hash the message for ECDSA (SHA-256), verify, under the
//! modules' checks (`hotwasm_secp::{schnorr, ecdsa}::verify_libsecp256k1`,
//! the code the `libsecp256k1` module family compiles).

use std::time::Instant;

use hotwasm_abi::Scheme;
use hotwasm_jobs::{Job, Verdict};
use hotwasm_modules::Family;
use hotwasm_runtime::RuntimeKind;
use hotwasm_worker::{ModuleSet, Worker};
use serde::Serialize;

use crate::measure::{check, jobs, spread, timed_run, warm_up};
use crate::options::BenchOptions;
use crate::report::Spread;
use crate::throughput::{SCHEMES, ThroughputSection, family};
use crate::{BenchError, Progress};

/// The libsecp256k1 rows.
#[derive(Debug, Clone, Serialize)]
pub struct LimitSection {
    /// The library and its version, as the report names it.
    pub library: String,
    /// One row per scheme of the throughput table.
    pub rows: Vec<LimitRow>,
    /// libsecp256k1 compiled to WebAssembly (the `libsecp256k1` module
    /// family), one row per runtime and scheme measured in the throughput
    /// table.
    pub modules: Vec<LimitModuleRow>,
}

/// libsecp256k1 as a module on one runtime, one scheme.
#[derive(Debug, Clone, Serialize)]
pub struct LimitModuleRow {
    /// Runtime name.
    pub runtime: String,
    /// The `libsecp256k1` variant it ran.
    pub variant: String,
    /// `schnorr`, `ecdsa` or `mixed`.
    pub scheme: String,
    /// µs per verify, from the throughput table.
    pub micros_per_verify: f64,
    /// ÷ libsecp256k1 natively: the row's ratio to native (k256, in the
    /// throughput rounds) times this section's k256 ÷ libsecp256k1, two
    /// ratios each measured side by side.
    pub over_native_libsecp256k1: Option<f64>,
    /// The runtime's preferred (k256) variant.
    pub k256_variant: String,
    /// µs per verify ÷ the k256 module's on the same runtime and scheme,
    /// timed in the same throughput rounds: below 1, libsecp256k1 is the
    /// faster code on this runtime.
    pub over_k256_module: Option<f64>,
}

/// One scheme.
#[derive(Debug, Clone, Serialize)]
pub struct LimitRow {
    /// `schnorr`, `ecdsa` or `mixed`.
    pub scheme: String,
    /// Jobs per timed run.
    pub messages: usize,
    /// Timed runs of each.
    pub reps: usize,
    /// libsecp256k1, µs per verify: median, min, max over the runs.
    pub libsecp256k1_us: Spread,
    /// The native k256 code on the same jobs, in the same rounds.
    pub k256_us: Spread,
    /// `k256_us.median / libsecp256k1_us.median`.
    pub k256_over_libsecp256k1: f64,
    /// The fastest wasmtime variant of the throughput table for this
    /// scheme, if measured.
    pub wasmtime_variant: Option<String>,
    /// Its ratio to native (throughput table) times
    /// `k256_over_libsecp256k1`: two ratios each measured side by side.
    pub wasmtime_over_libsecp256k1: Option<f64>,
}

/// Version of the `secp256k1` crate this build links (its bundled
/// libsecp256k1 is the one the crate version pins).
const CRATE: &str = "secp256k1 0.33 (bundled libsecp256k1)";

/// Measures the section; `throughput` gives the wasmtime figures.
///
/// # Errors
///
/// [`BenchError::WrongVerdict`] when libsecp256k1 or k256 disagrees with a
/// job's `expect`; [`BenchError::Worker`] when the native runtime cannot
/// be made.
pub fn measure(
    options: &BenchOptions,
    throughput: &ThroughputSection,
    progress: &dyn Progress,
) -> Result<LimitSection, BenchError> {
    let variant = RuntimeKind::Native.preferred_variant();
    let set = ModuleSet::built_with(RuntimeKind::Native, variant, crate::measure::limits())
        .map_err(|source| BenchError::Worker {
            context: "limit: native".into(),
            source,
        })?;
    let size = options.budget.throughput(RuntimeKind::Native, variant);
    let mut prepared = Vec::new();
    for (index, (scheme, choice)) in SCHEMES.into_iter().enumerate() {
        // The seeds of the throughput table: the same jobs.
        let jobs = jobs(
            options.seed + index as u64,
            choice,
            options.invalid_ratio,
            size.messages,
        );
        let mut worker = Worker::new(&set);
        warm_up(&mut worker, &jobs, &format!("limit k256 {scheme}"))?;
        check(&format!("limit libsecp256k1 {scheme}"), &jobs, &run(&jobs))?;
        prepared.push((scheme, jobs, worker, Vec::new(), Vec::new()));
    }
    progress.start(
        "the limit: libsecp256k1",
        (size.reps * SCHEMES.len()) as u64,
    );
    for round in 0..size.reps {
        for (scheme, jobs, worker, k256, libsecp) in &mut prepared {
            progress.step(&format!("{scheme} run {}/{}", round + 1, size.reps));
            let (elapsed, verdicts) = timed_run(worker, jobs);
            check(&format!("limit k256 {scheme}"), jobs, &verdicts)?;
            k256.push(elapsed.as_secs_f64() * 1e6 / jobs.len() as f64);
            let started = Instant::now();
            let verdicts = run(jobs);
            let elapsed = started.elapsed();
            check(&format!("limit libsecp256k1 {scheme}"), jobs, &verdicts)?;
            libsecp.push(elapsed.as_secs_f64() * 1e6 / jobs.len() as f64);
        }
    }
    progress.finish();
    let rows: Vec<LimitRow> = prepared
        .into_iter()
        .map(|(scheme, jobs, _, k256, libsecp)| {
            let (k256_us, libsecp256k1_us) = (spread(&k256), spread(&libsecp));
            let wasmtime = throughput.best(RuntimeKind::Wasmtime.name(), scheme);
            LimitRow {
                scheme: scheme.to_string(),
                messages: jobs.len(),
                reps: size.reps,
                k256_over_libsecp256k1: k256_us.median / libsecp256k1_us.median,
                wasmtime_variant: wasmtime.map(|(variant, _)| variant.to_string()),
                // Two ratios each measured side by side (wasmtime ÷ native
                // in the throughput rounds, k256 ÷ libsecp256k1 in these),
                // not times taken minutes apart on a shared machine.
                wasmtime_over_libsecp256k1: wasmtime
                    .and_then(|(_, figures)| figures.ratio_to_native)
                    .map(|ratio| ratio * k256_us.median / libsecp256k1_us.median),
                libsecp256k1_us,
                k256_us,
            }
        })
        .collect();
    let modules = module_rows(throughput, &rows);
    Ok(LimitSection {
        library: CRATE.to_string(),
        rows,
        modules,
    })
}

/// The `libsecp256k1` family's rows of the throughput table, set against
/// libsecp256k1 natively and against the k256 module on the same runtime.
fn module_rows(throughput: &ThroughputSection, rows: &[LimitRow]) -> Vec<LimitModuleRow> {
    throughput
        .rows
        .iter()
        .filter(|row| family(&row.variant) == Family::Libsecp256k1)
        .filter_map(|row| {
            let figures = row.result.measured()?;
            let k256_variant = row
                .runtime
                .parse::<RuntimeKind>()
                .ok()?
                .preferred_variant()
                .to_string();
            let k256 = throughput.find(&row.runtime, &k256_variant, &row.scheme);
            let k256_over_libsecp256k1 = rows
                .iter()
                .find(|limit| limit.scheme == row.scheme)
                .map(|limit| limit.k256_over_libsecp256k1);
            Some(LimitModuleRow {
                runtime: row.runtime.clone(),
                variant: row.variant.clone(),
                scheme: row.scheme.clone(),
                micros_per_verify: figures.micros_per_verify,
                over_native_libsecp256k1: figures
                    .ratio_to_native
                    .zip(k256_over_libsecp256k1)
                    .map(|(ratio, k256_over)| ratio * k256_over),
                over_k256_module: k256
                    .map(|k256| figures.micros_per_verify / k256.micros_per_verify),
                k256_variant,
            })
        })
        .collect()
}

/// libsecp256k1's verdict on every job, in order.
fn run(jobs: &[Job]) -> Vec<Verdict> {
    jobs.iter()
        .map(|job| Verdict {
            id: Some(job.id.clone()),
            valid: verify(job),
            reason: None,
            runtime: "libsecp256k1".into(),
            module: None,
            micros: 0.0,
        })
        .collect()
}

/// Whether libsecp256k1 finds `job`'s signature valid, under the
/// modules' checks (`hotwasm-secp`, the code the `libsecp256k1` modules
/// compile).
pub fn verify(job: &Job) -> bool {
    let verify = match job.scheme {
        Scheme::Schnorr => hotwasm_secp::schnorr::verify_libsecp256k1,
        Scheme::Ecdsa => hotwasm_secp::ecdsa::verify_libsecp256k1,
    };
    verify(&job.public_key, &job.signature, &job.message).is_ok()
}
