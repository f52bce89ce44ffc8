//! SVG charts (plotters): throughput ratio to native, single-message
//! latency, the cost of a swap, and latency under open-loop load.
//! Horizontal bars on a log scale, so a 1.06x and a 60x runtime are both
//! readable in one picture.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::BenchError;
use crate::report::Report;
use crate::report::markdown::number;

/// Colour per runtime (colour-blind-safe palette).
fn runtime_color(runtime: &str) -> RGBColor {
    match runtime {
        "native" => RGBColor(0x55, 0x55, 0x55),
        "wasmtime" => RGBColor(0x00, 0x72, 0xb2),
        "wasmtime-winch" => RGBColor(0x56, 0xb4, 0xe9),
        "wasmi" => RGBColor(0x00, 0x9e, 0x73),
        "wasm3" => RGBColor(0xd5, 0x5e, 0x00),
        _ => RGBColor(0xcc, 0x79, 0xa7),
    }
}

const SECOND: RGBColor = RGBColor(0xe6, 0x9f, 0x00);

/// One bar.
struct Bar {
    label: String,
    value: f64,
    text: String,
    color: RGBColor,
}

/// Writes the charts into `dir`; returns their paths.
///
/// # Errors
///
/// [`BenchError::Chart`] when drawing fails.
pub fn write(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    let mut charts = Charts {
        dir,
        written: Vec::new(),
    };
    let throughput: Vec<Bar> = report
        .throughput
        .rows
        .iter()
        .filter(|r| r.scheme == "mixed" && r.runtime != "native")
        .filter_map(|r| {
            let f = r.result.measured()?;
            let ratio = f.ratio_to_native?;
            Some(Bar {
                label: format!("{} / {}", r.runtime, r.variant),
                value: ratio,
                text: format!("{ratio:.2}x"),
                color: runtime_color(&r.runtime),
            })
        })
        .collect();
    charts.draw(
        "throughput.svg",
        "Time per verify / native (mixed schemes, log scale)",
        "times native (1 = as fast as native)",
        throughput,
        Some(1.0),
    )?;

    let mut latency = Vec::new();
    for row in &report.latency.rows {
        if let Some(f) = row.result.measured() {
            latency.push(Bar {
                label: format!("{} p50", row.runtime),
                value: f.latency.p50_us,
                text: format!("{} µs", number(f.latency.p50_us)),
                color: runtime_color(&row.runtime),
            });
            latency.push(Bar {
                label: format!("{} p99", row.runtime),
                value: f.latency.p99_us,
                text: format!("{} µs", number(f.latency.p99_us)),
                color: SECOND,
            });
        }
    }
    charts.draw(
        "latency.svg",
        "Single-message latency, warm instance (log scale)",
        "microseconds",
        latency,
        None,
    )?;

    let mut swap = Vec::new();
    for row in &report.swapping.rows {
        if let Some(r) = row.recompile.measured() {
            swap.push(Bar {
                label: format!("{} recompile", row.runtime),
                value: r.per_message_ms.median * 1000.0,
                text: format!("{} ms", number(r.per_message_ms.median)),
                color: SECOND,
            });
        }
        if let Some(a) = row.activation.measured() {
            swap.push(Bar {
                label: format!("{} activate", row.runtime),
                value: a.first_verdict_us.median,
                text: format!("{} µs", number(a.first_verdict_us.median)),
                color: runtime_color(&row.runtime),
            });
        }
    }
    charts.draw(
        "swapping.svg",
        "A new module version to its first verdict (log scale)",
        "microseconds (recompile: the draft's way; activate: ours)",
        swap,
        None,
    )?;

    let mut open_loop = Vec::new();
    let grpc = report.open_loop.result.measured().map(|f| &f.rows);
    let redis = report.open_loop.redis.measured().map(|f| &f.rows);
    for (path_name, rows, color) in [
        ("gRPC", grpc, runtime_color("wasmtime")),
        ("Redis", redis, runtime_color("wasm3")),
    ] {
        for row in rows.into_iter().flatten() {
            // `bars` leaves out values that cannot be drawn (NaN, 0).
            for (what, value, bar_color) in
                [("p50", row.p50_us, color), ("p99", row.p99_us, SECOND)]
            {
                open_loop.push(Bar {
                    label: format!("{path_name} {}% {what}", row.load_percent),
                    value,
                    text: format!("{} µs", number(value)),
                    color: bar_color,
                });
            }
        }
    }
    charts.draw(
        "open_loop.svg",
        "Latency from the scheduled send time, by share of capacity (log scale)",
        "microseconds",
        open_loop,
        None,
    )?;
    Ok(charts.written)
}

/// Where the charts go, and those written so far.
struct Charts<'a> {
    dir: &'a Path,
    written: Vec<PathBuf>,
}

impl Charts<'_> {
    /// Draws `file` (see [`bars`]) and keeps its path if it was written.
    fn draw(
        &mut self,
        file: &str,
        title: &str,
        x_desc: &str,
        bars_of: Vec<Bar>,
        reference: Option<f64>,
    ) -> Result<(), BenchError> {
        let path = self.dir.join(file);
        if bars(&path, title, x_desc, bars_of, reference)? {
            self.written.push(path);
        }
        Ok(())
    }
}

/// Draws horizontal bars on a log axis, first bar on top; `false` when
/// there is nothing to draw.
fn bars(
    path: &Path,
    title: &str,
    x_desc: &str,
    mut bars: Vec<Bar>,
    reference: Option<f64>,
) -> Result<bool, BenchError> {
    bars.retain(|b| b.value.is_finite() && b.value > 0.0);
    if bars.is_empty() {
        return Ok(false);
    }
    bars.reverse();
    let fail = |e: &dyn std::fmt::Display| BenchError::Chart {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let lowest = bars.iter().map(|b| b.value).fold(f64::INFINITY, f64::min);
    let highest = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let lo = reference.map_or(lowest, |r| r.min(lowest)) / 1.5;
    // Room on the right for the value labels.
    let hi = highest * 4.0;
    let n = bars.len();
    let label_chars = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(8);
    let height = (90 + 28 * n) as u32;
    let root = SVGBackend::new(path, (860, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size((label_chars * 8 + 10) as u32)
        .build_cartesian_2d((lo..hi).log_scale(), (0..n).into_segmented())
        .map_err(|e| fail(&e))?;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let y_label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let x_label = |x: &f64| {
        if *x >= 1.0 && x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            number(*x)
        }
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&y_label)
        .x_label_formatter(&x_label)
        .x_desc(x_desc)
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .draw()
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, bar)| {
            let mut rect = Rectangle::new(
                [
                    (lo, SegmentValue::Exact(i)),
                    (bar.value, SegmentValue::Exact(i + 1)),
                ],
                bar.color.filled(),
            );
            rect.set_margin(4, 4, 0, 0);
            rect
        }))
        .map_err(|e| fail(&e))?;
    let text_style = TextStyle::from(("sans-serif", 12).into_font())
        .pos(Pos::new(HPos::Left, VPos::Center))
        .color(&BLACK);
    chart
        .draw_series(bars.iter().enumerate().map(|(i, bar)| {
            Text::new(
                format!(" {}", bar.text),
                (bar.value, SegmentValue::CenterOf(i)),
                text_style.clone(),
            )
        }))
        .map_err(|e| fail(&e))?;
    if let Some(x) = reference {
        chart
            .draw_series(LineSeries::new(
                [(x, SegmentValue::Exact(0)), (x, SegmentValue::Exact(n))],
                BLACK.stroke_width(1),
            ))
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(true)
}
