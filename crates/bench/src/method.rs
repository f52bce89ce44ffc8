//! Section 8, method: warm-up, repetitions, what each timed region holds,
//! and one command per table to reproduce it.

use serde::Serialize;

use crate::measure::WARM_UP_JOBS;
use crate::options::{BenchOptions, Budget};

/// How the figures were made.
#[derive(Debug, Clone, Serialize)]
pub struct Method {
    /// The sizes used.
    pub budget: Budget,
    /// Generator seed.
    pub seed: u64,
    /// Fraction of deliberately invalid jobs.
    pub invalid_ratio: f64,
    /// Worker threads of the end-to-end section.
    pub workers: usize,
    /// Statements on method, one per entry.
    pub notes: Vec<String>,
    /// What each timed region holds, per section.
    pub timed_regions: Vec<Entry>,
    /// One command per table.
    pub reproduce: Vec<Entry>,
}

/// A labelled line.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The table or section.
    pub what: String,
    /// The text.
    pub text: String,
}

/// Describes the method of a run with `options`.
pub fn describe(options: &BenchOptions) -> Method {
    let entry = |what: &str, text: &str| Entry {
        what: what.into(),
        text: text.into(),
    };
    let notes = vec![
        format!(
            "Jobs come from hotwasm_jobs::Generator (seed {}, a fraction {} deliberately invalid: \
             tampered messages and signatures, wrong or malformed keys, malformed or high-S \
             signatures); every job carries `expect`.",
            options.seed, options.invalid_ratio
        ),
        "Every timed run keeps its verdicts and checks them against `expect` after the clock \
         stops; one wrong verdict aborts the bench with an error and a non-zero exit."
            .into(),
        format!(
            "Warm-up: before its first timed run, each worker verifies the first {WARM_UP_JOBS} \
             jobs of the run untimed (instances made, k256's lazily built tables filled)."
        ),
        "Repetitions: each throughput row runs its N jobs R times on one warm worker and \
         reports the median, min and max; N and R are printed on every row. Runs are \
         interleaved: round r times the r-th run of every row in turn, so load from elsewhere \
         on a shared machine falls on all rows alike and the ratios compare runs made side by \
         side. The plan gives \
         native and wasmtime the draft's 1024 messages on every variant and the interpreters \
         (20–60x slower) fewer: full repetitions on their preferred variant, one short run on \
         the others, so the default run fits in about three minutes on two cores. \
         `--messages N` and `--reps R` override every size."
            .into(),
        "Ratios to native divide figures measured in the same run, and are recomputable from \
         the figures in report.json."
            .into(),
        "Guests run metered, as in a server (epoch deadlines on wasmtime, fuel on wasmi, \
         deadline checks written into wasm3's modules, memory caps), but with 10 s call and start deadlines instead of \
         the server's 100 ms: the same generated code and checks, and no verdict decided by \
         a loaded machine descheduling a worker."
            .into(),
        "Native runs the same verification code (crates/secp, k256) linked into the host, \
         through the same Worker path as the wasm runtimes; it is always measured, as the \
         baseline."
            .into(),
        "Timings use std::time::Instant (monotonic). The machine is shared: compare ratios \
         within one run rather than absolute times across runs."
            .into(),
    ];
    let timed_regions = vec![
        entry(
            "2 throughput",
            "The loop of N `Worker::verify` calls on a warm worker: waPC request encoding, \
             the module call, response decoding, the verdict pushed into a preallocated \
             vector. No I/O, no job generation, no checking.",
        ),
        entry(
            "2b limit",
            "The loop of N verifies of the native rows' jobs by libsecp256k1 (key and \
             signature parsed, ECDSA message hashed, verified), and the native k256 worker's \
             loop on the same jobs, alternating run by run; verdicts checked after each.",
        ),
        entry(
            "2c official waPC host",
            "The loop of N calls of one module through `wapc::WapcHost::call` on a \
             `wasmtime-provider` engine (request encoding and answer decoding included), and \
             the same module's N `Worker::verify` calls on our host, alternating run by run.",
        ),
        entry(
            "6b open loop",
            "From each request's scheduled send time to its verdict over gRPC (loopback, \
             in-process server); requests are spawned on schedule whether or not earlier ones \
             have returned, so queueing behind a stalled server is charged to the requests it \
             held up. Capacity: 2 × workers clients calling back to back. Through Redis: the \
             real client submits on schedule (`submit --rate`) and times each verdict from its \
             job's scheduled moment; capacity is every job submitted at once.",
        ),
        entry(
            "5b tiered activation",
            "From the `ModuleHost::load` call of a signed version never compiled (trust check, \
             compile, self-test, prewarm, registry writes, commit) to its return (serving), to \
             the first verdict the verifying worker gets from it, and to its first verdict from \
             the Cranelift build.",
        ),
        entry(
            "6c scale",
            "In-process: as 6 with 1..cores threads. Through Redis: submit to last verdict of \
             N jobs through a group of S servers of one worker each. Rounds are interleaved \
             across the sweep's points; CPU is the whole process's (`CLOCK_PROCESS_CPUTIME_ID`) \
             over the run.",
        ),
        entry(
            "3 latency",
            "One `Worker::verify` call per sample, warm worker, mixed schemes; the runtimes \
             take their samples in turn (one verify each, then the next job).",
        ),
        entry(
            "4 cold start",
            "`Runtime::compile` of the module bytes; `Runtime::load_artifact` of an artifact \
             made by `Runtime::precompile` (the registry cache's load, without its file read \
             and digest checks); `CompiledModule::instantiate` (with `wapc_init`); the first \
             `verify` call on that fresh instance.",
        ),
        entry(
            "5 swapping",
            "Mixed vs grouped: as throughput, the two orders alternating. Recompile: compile + \
             instantiate + one verify, per message. Activation: `ModuleSet::activate` of a \
             version the worker never ran, prewarmed with `ModuleSet::prewarm` (not possible \
             on wasm3), up to its first verdict. Under swaps: each verify alone while another \
             thread prewarms and activates the next of four rotated versions every 10 ms.",
        ),
        entry(
            "6 end to end",
            "In-process: from releasing the warm worker threads (a barrier) to joining the \
             last; each thread takes the next job from a shared counter, so none idles while \
             work is left. Pipeline: whatever the injected runner reports as elapsed (first \
             submit to last verdict) and per-job submit-to-verdict latency; all N jobs are \
             submitted at once, so the latency is mostly time queued behind other jobs.",
        ),
    ];
    let reproduce = vec![
        entry("all tables", "hotwasm bench --out report/"),
        entry(
            "2 throughput, one runtime",
            "hotwasm bench --runtimes wasmtime --messages 1024 --reps 5",
        ),
        entry(
            "2 throughput, every variant",
            "HOTWASM_ALL_VARIANTS=1 cargo build --release -p hotwasm && target/release/hotwasm bench",
        ),
        entry(
            "3–5 per runtime",
            "hotwasm bench --runtimes native,wasm3 (native is always the baseline)",
        ),
        entry(
            "6 with Redis",
            "hotwasm bench --redis redis://127.0.0.1:6379",
        ),
        entry(
            "6c, another sweep",
            "hotwasm bench --redis redis://127.0.0.1:6379 --scale-workers 1,2,4,8 --scale-servers 1,2,4",
        ),
        entry(
            "two reports side by side",
            "hotwasm bench compare docs/results/A docs/results/B",
        ),
        entry(
            "criterion cross-checks",
            "cargo bench -p hotwasm-worker --bench verify; cargo bench -p hotwasm-host --bench swap",
        ),
    ];
    Method {
        budget: options.budget.clone(),
        seed: options.seed,
        invalid_ratio: options.invalid_ratio,
        workers: options.workers,
        notes,
        timed_regions,
        reproduce,
    }
}
