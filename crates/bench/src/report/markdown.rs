//! `report.md`: the report as Markdown tables, also what the terminal shows.

use std::fmt::Write;

use crate::report::{Cell, Report, Spread};

/// The whole report as Markdown; `charts` are file names to link.
pub fn render(report: &Report, charts: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# hotwasm bench, {}\n", report.generated);
    let _ = writeln!(
        out,
        "Runtimes: {}. Plan: `{}`{}. Wall time {:.1} s. Every timed run was checked against \
         the jobs' expected verdicts.\n",
        report.runtimes.join(", "),
        report.method.budget.name,
        if report.quick { " (--quick)" } else { "" },
        report.wall_seconds
    );
    for chart in charts {
        let _ = writeln!(out, "![{chart}]({chart})\n");
    }
    machine(&mut out, report);
    out.push_str(&tables(report));
    method(&mut out, report);
    out
}

/// Sections 2–7, the tables a terminal shows.
pub fn tables(report: &Report) -> String {
    let mut out = String::new();
    throughput(&mut out, report);
    latency(&mut out, report);
    cold_start(&mut out, report);
    swapping(&mut out, report);
    tiered(&mut out, report);
    end_to_end(&mut out, report);
    open_loop(&mut out, report);
    scale(&mut out, report);
    draft(&mut out, report);
    out
}

/// The line under every table set's heading: which machine the figures
/// are from (ratios to native differ by CPU family).
fn measured_on(out: &mut String, report: &Report) {
    let m = &report.machine;
    let _ = writeln!(
        out,
        "*Measured {} on {} — {}, {} cores, {} build.*\n",
        report.generated, m.cpu, m.cpu_family, m.cores, m.profile
    );
}

fn machine(out: &mut String, report: &Report) {
    let m = &report.machine;
    let _ = writeln!(out, "## 1. Machine and build\n");
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| date | {} |", m.date);
    let _ = writeln!(out, "| CPU | {} |", m.cpu);
    let _ = writeln!(out, "| CPU family | {} |", m.cpu_family);
    let _ = writeln!(out, "| cores | {} |", m.cores);
    if let Some(mib) = m.memory_mib {
        let _ = writeln!(out, "| memory | {:.1} GiB |", mib as f64 / 1024.0);
    }
    let _ = writeln!(out, "| OS | {}, {} |", m.os, m.kernel);
    let _ = writeln!(out, "| rustc | {} (captured at build time) |", m.rustc);
    let _ = writeln!(out, "| profile | {} |", m.profile);
    let crates: Vec<String> = m
        .crates
        .iter()
        .map(|c| format!("{} {}", c.name, c.version))
        .collect();
    let _ = writeln!(out, "| crates (Cargo.lock) | {} |\n", crates.join(", "));
    let _ = writeln!(
        out,
        "| variant | family | flags | schnorr | ecdsa |\n|---|---|---|---|---|"
    );
    let (built, not_built): (Vec<_>, Vec<_>) =
        m.variants.iter().partition(|v| !v.modules.is_empty());
    for v in built {
        let module = |scheme: &str| {
            v.modules
                .iter()
                .find(|m| m.scheme == scheme)
                .map(|m| format!("{} B, `{}`", m.bytes, &m.sha256[..16.min(m.sha256.len())]))
                .unwrap_or_else(|| "not built (HOTWASM_ALL_VARIANTS=1)".into())
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | `{}` | {} | {} |",
            v.name,
            v.family,
            v.flags,
            module("schnorr"),
            module("ecdsa")
        );
    }
    if !not_built.is_empty() {
        let names: Vec<String> = not_built.iter().map(|v| format!("`{}`", v.name)).collect();
        let _ = writeln!(
            out,
            "\nNot built (build with `HOTWASM_ALL_VARIANTS=1`): {}.",
            names.join(", ")
        );
    }
    out.push('\n');
}

fn throughput(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## 2. Throughput\n");
    measured_on(out, report);
    let _ = writeln!(
        out,
        "Time for N verifies on one warm worker, median of R runs (min – max); ratio to \
         native for the same scheme, this run.\n"
    );
    let _ = writeln!(
        out,
        "| runtime | variant | scheme | N × R | median (min – max) | µs / verify | vs native |\n\
         |---|---|---|---|---|---|---|"
    );
    let mut last_blank: Option<(&str, &str)> = None;
    // Variants this build does not carry: one line under the table.
    let mut not_built: Vec<String> = Vec::new();
    for row in &report.throughput.rows {
        // A variant that is not built or refused is one line, not one per
        // scheme.
        let group = (row.runtime.as_str(), row.variant.as_str());
        if matches!(row.result, Cell::NotBuilt { .. }) {
            let name = format!("{}/{}", row.runtime, row.variant);
            if !not_built.contains(&name) {
                not_built.push(name);
            }
            continue;
        }
        if row.result.measured().is_none() {
            if last_blank == Some(group) {
                continue;
            }
            last_blank = Some(group);
            let _ = writeln!(
                out,
                "| {} | {} | all | | {} | | |",
                row.runtime,
                row.variant,
                row.result.blank().unwrap_or_default()
            );
            continue;
        }
        let (size, time, us, ratio) = match &row.result {
            Cell::Measured(f) => (
                format!("{} × {}", f.messages, f.reps),
                spread_ms(&f.run_ms),
                number(f.micros_per_verify),
                f.ratio_to_native.map(ratio).unwrap_or_else(|| "-".into()),
            ),
            blank => (
                String::new(),
                blank.blank().unwrap_or_default(),
                String::new(),
                String::new(),
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {size} | {time} | {us} | {ratio} |",
            row.runtime, row.variant, row.scheme
        );
    }
    if !not_built.is_empty() {
        let _ = writeln!(
            out,
            "\nNot built (build with `HOTWASM_ALL_VARIANTS=1`): {}.",
            not_built.join(", ")
        );
    }
    out.push('\n');
    limit(out, report);
    official_wapc(out, report);
}

fn official_wapc(out: &mut String, report: &Report) {
    let section = &report.official_wapc;
    let _ = writeln!(out, "### Our host against the official waPC host\n");
    let _ = writeln!(
        out,
        "The {} modules, the same jobs, through {} and through ours (the worker path servers \
         run, with its deadline, memory cap and counters), alternating runs; µs per call, \
         median (min – max).\n",
        section.variant, section.official
    );
    let _ = writeln!(
        out,
        "| scheme | N × R | ours µs | official µs | official ÷ ours |\n|---|---|---|---|---|"
    );
    for row in &section.rows {
        match &row.result {
            Cell::Measured(f) => {
                let _ = writeln!(
                    out,
                    "| {} | {} × {} | {} | {} | {} |",
                    row.scheme,
                    f.messages,
                    f.reps,
                    spread_plain(&f.ours_us),
                    spread_plain(&f.official_us),
                    ratio(f.official_over_ours)
                );
            }
            blank => {
                let _ = writeln!(
                    out,
                    "| {} | | {} | | |",
                    row.scheme,
                    blank.blank().unwrap_or_default()
                );
            }
        }
    }
    out.push('\n');
}

fn limit(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "### The limit: libsecp256k1
"
    );
    let _ = writeln!(
        out,
        "The same jobs as the native rows verified by {} (Bitcoin Core's verifier), \
         timed in the same rounds as the native k256 code; µs per verify, median (min – max). \
         wasmtime ÷ libsecp256k1 is the best wasmtime variant's ratio to native above times \
         k256 ÷ libsecp256k1.\n",
        report.limit.library
    );
    let _ = writeln!(
        out,
        "| scheme | N × R | libsecp256k1 µs | k256 native µs | k256 ÷ libsecp256k1 | wasmtime (best variant) ÷ libsecp256k1 |\n\
         |---|---|---|---|---|---|"
    );
    for row in &report.limit.rows {
        let wasmtime = match (&row.wasmtime_variant, row.wasmtime_over_libsecp256k1) {
            (Some(variant), Some(r)) => format!("{} ({variant})", ratio(r)),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} × {} | {} | {} | {} | {wasmtime} |",
            row.scheme,
            row.messages,
            row.reps,
            spread_plain(&row.libsecp256k1_us),
            spread_plain(&row.k256_us),
            ratio(row.k256_over_libsecp256k1)
        );
    }
    out.push('\n');
    limit_modules(out, report);
}

/// libsecp256k1 as a module family, against itself natively and against
/// the k256 module on the same runtime.
fn limit_modules(out: &mut String, report: &Report) {
    let modules = &report.limit.modules;
    if modules.is_empty() {
        let _ = writeln!(
            out,
            "libsecp256k1 as a module (the `libsecp256k1` variants): not measured in this run.\n"
        );
        return;
    }
    let _ = writeln!(
        out,
        "libsecp256k1 as a module: the `libsecp256k1` family (its C compiled to wasm32 by clang, \
         the same contract and reasons as the k256 modules) on every runtime, from the \
         throughput table. ÷ native libsecp256k1 is the row's ratio to native times k256 ÷ \
         libsecp256k1 above; ÷ k256 module compares with the runtime's preferred k256 variant, \
         timed in the same rounds (below 1: libsecp256k1 is the faster code there).\n"
    );
    let _ = writeln!(
        out,
        "| runtime | variant | scheme | µs / verify | ÷ native libsecp256k1 | ÷ k256 module |\n\
         |---|---|---|---|---|---|"
    );
    for row in modules {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            row.runtime,
            row.variant,
            row.scheme,
            number(row.micros_per_verify),
            row.over_native_libsecp256k1
                .map(ratio)
                .unwrap_or_else(|| "-".into()),
            row.over_k256_module
                .map(|r| format!("{} ({})", ratio(r), row.k256_variant))
                .unwrap_or_else(|| "-".into()),
        );
    }
    out.push('\n');
}

fn latency(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## 3. Single-message latency\n");
    measured_on(out, report);
    let _ = writeln!(
        out,
        "Each verify timed alone on a warm worker, mixed schemes.\n\n\
         | runtime | variant | samples | p50 µs | p99 µs | max µs | p50 vs native |\n\
         |---|---|---|---|---|---|---|"
    );
    for row in &report.latency.rows {
        match &row.result {
            Cell::Measured(f) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    row.runtime,
                    row.variant,
                    f.latency.samples,
                    number(f.latency.p50_us),
                    number(f.latency.p99_us),
                    number(f.latency.max_us),
                    f.p50_ratio_to_native
                        .map(ratio)
                        .unwrap_or_else(|| "-".into())
                );
            }
            blank => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | | | | |",
                    row.runtime,
                    row.variant,
                    blank.blank().unwrap_or_default()
                );
            }
        }
    }
    out.push('\n');
}

fn cold_start(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## 4. Cold start\n");
    measured_on(out, report);
    let _ = writeln!(
        out,
        "Medians (min – max). Native \"compiles\" nothing: its row is the cost of the \
         host path alone.\n\n\
         | runtime | variant | module | size | compile ms | precompiled load ms (artifact) | \
         instantiate µs | first call µs |\n|---|---|---|---|---|---|---|---|"
    );
    for row in &report.cold_start.rows {
        let Cell::Measured(f) = &row.result else {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | | | | |",
                row.runtime,
                row.variant,
                row.scheme,
                row.result.blank().unwrap_or_default()
            );
            continue;
        };
        let precompiled = match &f.precompiled {
            Cell::Measured(p) => format!(
                "{} ({} KiB)",
                spread_plain(&p.load_ms),
                p.artifact_bytes / 1024
            ),
            blank => blank.blank().unwrap_or_default(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} KiB | {} | {} | {} | {} |",
            row.runtime,
            row.variant,
            row.scheme,
            f.module_bytes / 1024,
            spread_plain(&f.compile_ms),
            precompiled,
            spread_plain(&f.instantiate_us),
            spread_plain(&f.first_call_us)
        );
    }
    out.push('\n');
}

fn tiered(out: &mut String, report: &Report) {
    let section = &report.tiered;
    let _ = writeln!(out, "### Tiered activation\n");
    let _ = writeln!(
        out,
        "A Schnorr version no runtime has compiled before (the `{}` module under a new hash, \
         signed) loaded into a wasmtime host while one worker verifies: ms from the load call \
         to its return (trust check, compile, self-test, prewarm, registry writes, the commit \
         that makes the version serve), to the version's first verdict (the worker finishes \
         its job, then verifies on the new version) and to its first verdict from the \
         Cranelift build, median (min – max). A tiered row serves its first tier's build \
         first (`serve --tiered RUNTIME`); `cranelift-first` compiles with Cranelift before \
         serving.\n",
        section.variant
    );
    let _ = writeln!(
        out,
        "| mode | versions | load → serving, ms | load → first verdict, ms | load → full speed, ms | first verdict sooner |\n\
         |---|---|---|---|---|---|"
    );
    for row in &section.rows {
        let sooner = row.first_verdict_speedup.map_or_else(|| "-".into(), ratio);
        match &row.result {
            Cell::Measured(f) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {sooner} |",
                    row.mode,
                    f.samples,
                    spread_plain(&f.serving_ms),
                    spread_plain(&f.first_verdict_ms),
                    spread_plain(&f.full_speed_ms)
                );
            }
            blank => {
                let _ = writeln!(
                    out,
                    "| {} | | {} | | | |",
                    row.mode,
                    blank.blank().unwrap_or_default()
                );
            }
        }
    }
    out.push('\n');
}

fn swapping(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## 5. Module swapping\n");
    measured_on(out, report);
    let _ = writeln!(
        out,
        "**Mixed schemes** (the draft's random mode: each job picks a scheme, routed per \
         job) against the same jobs grouped by scheme (two single-scheme runs); median of the \
         per-pair ratios.\n\n\
         | runtime | variant | N × pairs | mixed ms | grouped ms | mixed / grouped |\n\
         |---|---|---|---|---|---|"
    );
    for row in &report.swapping.rows {
        match &row.routing {
            Cell::Measured(r) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} × {} | {} | {} | {:.3} |",
                    row.runtime,
                    row.variant,
                    r.messages,
                    r.reps,
                    spread_plain(&r.mixed_ms),
                    spread_plain(&r.grouped_ms),
                    r.ratio
                );
            }
            blank => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | | | |",
                    row.runtime,
                    row.variant,
                    blank.blank().unwrap_or_default()
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\n**Swapping a version in**: the draft recompiled the module for every message; we \
         activate a version compiled (and, where possible, warmed) beforehand.\n\n\
         | runtime | variant | recompile + instantiate + verify, ms | vs a steady verify | \
         activate → first verdict, µs | p50 / p99 µs steady | p50 / p99 µs, a swap every \
         10 ms | p99 ratio |\n|---|---|---|---|---|---|---|---|"
    );
    for row in &report.swapping.rows {
        let (recompile, versus) = match &row.recompile {
            Cell::Measured(r) => (
                format!("{} (n={})", spread_plain(&r.per_message_ms), r.samples),
                format!("{:.0}x", r.ratio_to_steady),
            ),
            blank => (blank.blank().unwrap_or_default(), String::new()),
        };
        let activation = match &row.activation {
            Cell::Measured(a) => format!(
                "{} (n={}{})",
                spread_plain(&a.first_verdict_us),
                a.samples,
                if a.prewarmed {
                    ", prewarmed"
                } else {
                    ", not prewarmable"
                }
            ),
            blank => blank.blank().unwrap_or_default(),
        };
        let (steady, swapping, p99) = match &row.under_swaps {
            Cell::Measured(u) => (
                format!("{} / {}", number(u.steady.p50_us), number(u.steady.p99_us)),
                format!(
                    "{} / {} ({} swaps, {} jobs)",
                    number(u.swapping.p50_us),
                    number(u.swapping.p99_us),
                    u.swaps,
                    u.jobs
                ),
                format!("{:.3}", u.p99_ratio),
            ),
            blank => (
                blank.blank().unwrap_or_default(),
                String::new(),
                String::new(),
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {recompile} | {versus} | {activation} | {steady} | {swapping} | {p99} |",
            row.runtime, row.variant
        );
    }
    out.push('\n');
}

fn end_to_end(out: &mut String, report: &Report) {
    let e = &report.end_to_end;
    let _ = writeln!(out, "## 6. End to end\n");
    measured_on(out, report);
    let _ = writeln!(
        out,
        "{} / {}, {} workers. In-process: the worker threads take the jobs one by one from a \
         shared counter, one worker each over one module set. Pipeline: client → queue → server → verdicts → client.\n\n\
         | path | N × R | run ms | jobs / s | p50 / p99 µs | vs in-process |\n\
         |---|---|---|---|---|---|",
        e.runtime, e.variant, e.workers
    );
    match &e.in_process {
        Cell::Measured(p) => {
            let _ = writeln!(
                out,
                "| in-process | {} × {} | {} | {:.0} | | 1.00 |",
                p.messages,
                p.reps,
                spread_plain(&p.run_ms),
                p.jobs_per_second
            );
        }
        blank => {
            let _ = writeln!(
                out,
                "| in-process | {} | | | | |",
                blank.blank().unwrap_or_default()
            );
        }
    }
    for row in &e.pipelines {
        let path = format!("{} queue + {} verdicts", row.transport, row.results);
        match &row.result {
            Cell::Measured(p) => {
                let _ = writeln!(
                    out,
                    "| {path} | {} × {} | {} | {:.0} | {} / {} | {} |",
                    p.messages,
                    p.reps,
                    spread_plain(&p.run_ms),
                    p.jobs_per_second,
                    number(p.latency.p50_us),
                    number(p.latency.p99_us),
                    p.ratio_to_in_process
                        .map(|r| format!("{r:.2}"))
                        .unwrap_or_default()
                );
            }
            blank => {
                let _ = writeln!(
                    out,
                    "| {path} | {} | | | | |",
                    blank.blank().unwrap_or_default()
                );
            }
        }
    }
    out.push('\n');
}

fn open_loop(out: &mut String, report: &Report) {
    let section = &report.open_loop;
    let _ = writeln!(out, "### Latency under load (open loop, gRPC `Verify`)\n");
    let Cell::Measured(f) = &section.result else {
        let _ = writeln!(
            out,
            "{}: {}\n",
            section.runtime,
            section.result.blank().unwrap_or_default()
        );
        return;
    };
    let _ = writeln!(
        out,
        "A server in this process ({}, {} workers) answering `Verify` over loopback; requests \
         sent on a fixed schedule at shares of its capacity ({} verifies/s with {} clients \
         calling back to back), {} s per rate, latency from each request's scheduled send \
         time (no coordinated omission).\n",
        section.runtime,
        section.workers,
        number(f.capacity_per_s),
        2 * section.workers,
        f.seconds_per_rate
    );
    let _ = writeln!(
        out,
        "| load | rate / s | requests | refused (full) | p50 µs | p99 µs | p99.9 µs | max µs |\n\
         |---|---|---|---|---|---|---|---|"
    );
    for row in &f.rows {
        let _ = writeln!(
            out,
            "| {}% | {} | {} | {} | {} | {} | {} | {} |",
            row.load_percent,
            number(row.rate_per_s),
            row.requests,
            row.refused,
            number(row.p50_us),
            number(row.p99_us),
            number(row.p999_us),
            number(row.max_us)
        );
    }
    if let Some(over) = f.p99_at_half_over_unloaded {
        let _ = writeln!(
            out,
            "\np99 at 50% of capacity: {} the p99 of single calls one after another on the same \
             path ({} µs; the verify alone: {} µs, section 3).",
            ratio(over),
            number(f.unloaded_p99_us),
            f.single_verify_p99_us
                .map(number)
                .unwrap_or_else(|| "-".into())
        );
    }
    out.push('\n');
    let _ = writeln!(out, "**Through Redis**\n");
    let Cell::Measured(r) = &section.redis else {
        let _ = writeln!(out, "{}\n", section.redis.blank().unwrap_or_default());
        return;
    };
    let _ = writeln!(
        out,
        "The real client `XADD`s jobs on a fixed schedule (`submit --rate`) to a server of \
         this process reading in a consumer group; verdicts come back in a shared-memory \
         ring; latency from each job's scheduled moment. Capacity {} jobs/s with every job \
         submitted at once; {} s per rate.\n",
        number(r.capacity_per_s),
        r.seconds_per_rate
    );
    let _ = writeln!(
        out,
        "| load | rate / s | jobs | p50 µs | p99 µs | p99.9 µs | max µs |\n|---|---|---|---|---|---|---|"
    );
    for row in &r.rows {
        let _ = writeln!(
            out,
            "| {}% | {} | {} | {} | {} | {} | {} |",
            row.load_percent,
            number(row.rate_per_s),
            row.requests,
            number(row.p50_us),
            number(row.p99_us),
            number(row.p999_us),
            number(row.max_us)
        );
    }
    if let Some(over) = r.p99_at_half_over_unloaded {
        let _ = writeln!(
            out,
            "\np99 at 50% of capacity: {} the p99 at a trickle of {} jobs/s ({} µs).",
            ratio(over),
            crate::open_loop::TRICKLE_PER_S,
            number(r.unloaded_p99_us)
        );
    }
    out.push('\n');
}

fn scale(out: &mut String, report: &Report) {
    let section = &report.scale;
    let _ = writeln!(out, "### Scale\n");
    let memory: Vec<String> = section
        .instance_memory_kib
        .iter()
        .map(|(scheme, kib)| format!("{scheme} {kib:.0} KiB"))
        .collect();
    let _ = writeln!(
        out,
        "{} on {} cores. Cost per job is the process's CPU time over the jobs (every thread; \
         not redis-server's); RSS is the process's resident set. Efficiency is the speed-up \
         over linear from the first row; the knee is the first point below {:.0}%. Linear \
         memory of one fresh instance: {}.\n",
        section.runtime,
        section.cores,
        crate::scale::KNEE_EFFICIENCY * 100.0,
        memory.join(", ")
    );
    for (what, cell, unit) in [
        (
            "Workers in one process (in-process)",
            &section.workers,
            "workers",
        ),
        (
            "Servers of one worker each in one group (through Redis, the real client)",
            &section.servers,
            "servers",
        ),
    ] {
        let _ = writeln!(out, "**{what}**\n");
        let Cell::Measured(crate::scale::Sweep { rows }) = cell else {
            let _ = writeln!(out, "{}\n", cell.blank().unwrap_or_default());
            continue;
        };
        let _ = writeln!(
            out,
            "| {unit} | N × R | jobs/s | speed-up | efficiency | CPU µs/job | RSS MiB | RSS per server MiB |\n\
             |---|---|---|---|---|---|---|---|"
        );
        for row in rows {
            let _ = writeln!(
                out,
                "| {} | {} × {} | {} | {:.2}x | {:.0}% | {:.1} | {:.1} | {} |",
                row.count,
                row.messages,
                row.reps,
                spread_plain(&row.jobs_per_second),
                row.speedup,
                row.efficiency * 100.0,
                row.cpu_us_per_job,
                row.rss_mib,
                row.rss_per_server_mib
                    .map_or_else(|| "-".into(), |mib| format!("{mib:.1}"))
            );
        }
        let _ = match crate::scale::knee(rows) {
            Some(count) => writeln!(out, "\nKnee at {count} {unit}.\n"),
            None => writeln!(
                out,
                "\nNo knee up to {} {unit}.\n",
                rows.last().map_or(0, |row| row.count)
            ),
        };
    }
}

fn draft(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## 7. Against the draft\n");
    measured_on(out, report);
    let _ = writeln!(out, "| | draft | this run | target |\n|---|---|---|---|");
    for row in &report.draft.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            row.what, row.draft, row.ours_text, row.target
        );
    }
    let _ = writeln!(out, "\n{}\n", report.draft.why);
}

fn method(out: &mut String, report: &Report) {
    let m = &report.method;
    let _ = writeln!(out, "## 8. Method\n");
    for note in &m.notes {
        let _ = writeln!(out, "- {note}");
    }
    let b = &m.budget;
    let _ = writeln!(
        out,
        "\nPlan `{}` (N messages × R runs, or samples):\n\n| table | size |\n|---|---|",
        b.name
    );
    let rows = [
        ("throughput, native and wasmtime", size(b.compiled)),
        (
            "throughput, wasmi `fast` and wasm3 `compat`",
            size(b.interpreter_preferred),
        ),
        (
            "throughput, other variants on wasmi and wasm3",
            size(b.interpreter_other),
        ),
        (
            "latency samples, native and wasmtime / interpreters",
            format!("{} / {}", b.latency_compiled, b.latency_interpreter),
        ),
        (
            "cold start: compiles and loads / instances",
            format!("{} / {}", b.cold_compiles, b.cold_instances),
        ),
        (
            "mixed vs grouped, native and wasmtime / interpreters (N × pairs)",
            format!(
                "{} / {}",
                size(b.routing_compiled),
                size(b.routing_interpreter)
            ),
        ),
        ("recompile samples", b.recompiles.to_string()),
        ("activation samples", b.activations.to_string()),
        (
            "jobs in the swap-latency runs, native and wasmtime / interpreters",
            format!("{} / {}", b.swap_run_compiled, b.swap_run_interpreter),
        ),
        ("end to end", size(b.end_to_end)),
    ];
    for (what, size) in rows {
        let _ = writeln!(out, "| {what} | {size} |");
    }
    let _ = writeln!(out, "\nTimed regions:\n");
    for entry in &m.timed_regions {
        let _ = writeln!(out, "- **{}**: {}", entry.what, entry.text);
    }
    let _ = writeln!(out, "\nReproduce:\n\n| table | command |\n|---|---|");
    for entry in &m.reproduce {
        let _ = writeln!(out, "| {} | `{}` |", entry.what, entry.text);
    }
}

fn size(size: crate::Size) -> String {
    format!("{} × {}", size.messages, size.reps)
}

/// A number with precision that suits its size.
pub(crate) fn number(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn ratio(r: f64) -> String {
    format!("{r:.2}x")
}

fn spread_ms(s: &Spread) -> String {
    format!(
        "{} ms ({} – {})",
        number(s.median),
        number(s.min),
        number(s.max)
    )
}

fn spread_plain(s: &Spread) -> String {
    format!(
        "{} ({} – {})",
        number(s.median),
        number(s.min),
        number(s.max)
    )
}
