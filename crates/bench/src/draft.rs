//! Section 7, against the draft: its published figures next to ours from
//! the same report, and why they differ.

use serde::Serialize;

use crate::latency::LatencySection;
use crate::swapping::SwappingSection;
use crate::throughput::ThroughputSection;

/// Why the draft's figures and ours differ, in one paragraph.
pub const WHY: &str = "The draft's timed loops included console printing (a line per \
message), so its times add terminal I/O — about the same for every runtime — to the verify \
time, which pulls every ratio to native toward 1 and makes them depend on the terminal; and \
it swapped modules by recompiling them, once per message. Our timed regions hold \
the verify calls only (verdicts are checked after the clock stops), our fastest modules are \
built for each runtime (wide-arithmetic for wasmtime and wasmi, MVP for wasm3), and a swap is \
an atomic pointer store onto a version compiled and warmed beforehand.";

/// The comparison rows.
#[derive(Debug, Clone, Serialize)]
pub struct DraftSection {
    /// One row per published figure.
    pub rows: Vec<DraftRow>,
    /// [`WHY`].
    pub why: String,
}

/// One published figure of the draft and ours.
#[derive(Debug, Clone, Serialize)]
pub struct DraftRow {
    /// What is compared.
    pub what: String,
    /// The draft's figure, as published.
    pub draft: String,
    /// Our figure (the number), when measured.
    pub ours: Option<f64>,
    /// Our figure with its unit and where it comes from.
    pub ours_text: String,
    /// The project's target for it.
    pub target: String,
}

/// Builds the comparison from the measured sections.
pub fn compare(
    throughput: &ThroughputSection,
    latency: &LatencySection,
    swapping: &SwappingSection,
    tiered: &crate::tiered::TieredSection,
) -> DraftSection {
    let mut rows = Vec::new();
    for (runtime, draft, target) in [
        ("wasmtime", "2.7–3.7x (3.1x)", "≤ 1.15x"),
        ("wasmi", "not measured", "≤ 20x"),
        ("wasm3", "26–30x (28x)", "≤ 35x"),
    ] {
        let best = throughput.best(runtime, "mixed");
        rows.push(DraftRow {
            what: format!("{runtime} / native, throughput (mixed)"),
            draft: draft.into(),
            ours: best.and_then(|(_, f)| f.ratio_to_native),
            ours_text: best
                .and_then(|(variant, f)| {
                    f.ratio_to_native
                        .map(|r| format!("{r:.2}x ({variant}, section 2)"))
                })
                .unwrap_or_else(|| "not measured".into()),
            target: target.into(),
        });
    }
    for (runtime, draft) in [("wasmtime", "3x"), ("wasm3", "54x")] {
        let ratio = latency.find(runtime).and_then(|f| f.p50_ratio_to_native);
        rows.push(DraftRow {
            what: format!("{runtime} / native, single message"),
            draft: draft.into(),
            ours: ratio,
            ours_text: ratio
                .map(|r| format!("{r:.2}x (p50, section 3)"))
                .unwrap_or_else(|| "not measured".into()),
            target: "-".into(),
        });
    }
    let wasmtime = swapping.rows.iter().find(|r| r.runtime == "wasmtime");
    let recompile = wasmtime.and_then(|r| r.recompile.measured());
    rows.push(DraftRow {
        what: "per swapped message, recompiling (the draft's way), wasmtime".into(),
        draft: "30 ms (31.2 s / 1024)".into(),
        ours: recompile.map(|r| r.per_message_ms.median),
        ours_text: recompile
            .map(|r| format!("{:.1} ms (section 5)", r.per_message_ms.median))
            .unwrap_or_else(|| "not measured".into()),
        target: "-".into(),
    });
    let activation = wasmtime.and_then(|r| r.activation.measured());
    rows.push(DraftRow {
        what: "per swap, activating a prewarmed version, wasmtime".into(),
        draft: "30 ms".into(),
        ours: activation.map(|a| a.first_verdict_us.median / 1000.0),
        ours_text: activation
            .map(|a| {
                format!(
                    "{:.3} ms to the first verdict, verify included (section 5)",
                    a.first_verdict_us.median / 1000.0
                )
            })
            .unwrap_or_else(|| "not measured".into()),
        target: "-".into(),
    });
    for (mode, what, target) in [
        (
            "tiered, wasmtime-winch first",
            "a version never compiled, load → first verdict, tiered (Winch first)",
            "≤ 20 ms",
        ),
        (
            "tiered, wasmi first",
            "a version never compiled, load → first verdict, tiered (wasmi first)",
            "≤ 20 ms",
        ),
        (
            "tiered, wasmtime-winch first",
            "the same, load → first verdict from the Cranelift build",
            "≤ 250 ms",
        ),
        (
            crate::tiered::CRANELIFT_FIRST,
            "a version never compiled, load → first verdict, Cranelift before serving",
            "-",
        ),
    ] {
        let figures = tiered
            .rows
            .iter()
            .find(|row| row.mode == mode)
            .and_then(|row| row.result.measured());
        let ms = figures.map(|f| {
            if what.contains("Cranelift build") {
                f.full_speed_ms.median
            } else {
                f.first_verdict_ms.median
            }
        });
        rows.push(DraftRow {
            what: what.into(),
            draft: "30 ms (a recompile per message)".into(),
            ours: ms,
            ours_text: ms
                .map(|ms| format!("{ms:.1} ms ({} module, section 5)", tiered.variant))
                .unwrap_or_else(|| "not measured".into()),
            target: target.into(),
        });
    }
    let routing = swapping
        .rows
        .iter()
        .find(|r| r.runtime == "wasmtime")
        .and_then(|r| r.routing.measured());
    rows.push(DraftRow {
        what: "mixed schemes / single scheme, wasmtime".into(),
        draft: "~80x (a swap per scheme change)".into(),
        ours: routing.map(|r| r.ratio),
        ours_text: routing
            .map(|r| format!("{:.3} (section 5)", r.ratio))
            .unwrap_or_else(|| "not measured".into()),
        target: "≤ 1.02".into(),
    });
    DraftSection {
        rows,
        why: WHY.into(),
    }
}
