//! `hotwasm bench compare`: committed reports side by side — typically one
//! run per CPU family, since the interpreters' ratios to native differ
//! about 2.5x between them. Reads `report.json` files as JSON (any report
//! of format 1, older ones included: fields a report lacks show as `-`)
//! and writes Markdown; every figure is copied from a report or is a
//! ratio of two figures from the same report.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::BenchError;

/// One report, read.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its JSON.
    pub json: Value,
}

/// Reads `report.json` files (or directories holding one).
///
/// # Errors
///
/// [`BenchError::Io`] when a file cannot be read; [`BenchError::Options`]
/// when it is not a hotwasm report of a format this build reads.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Loaded>, BenchError> {
    paths
        .iter()
        .map(|path| {
            let file = if path.is_dir() {
                path.join("report.json")
            } else {
                path.clone()
            };
            let text = std::fs::read_to_string(&file).map_err(|source| BenchError::Io {
                path: file.clone(),
                source,
            })?;
            let json: Value = serde_json::from_str(&text)
                .map_err(|e| BenchError::Options(format!("{} is not JSON: {e}", file.display())))?;
            if json["format"].as_u64() != Some(u64::from(crate::report::FORMAT)) {
                return Err(BenchError::Options(format!(
                    "{} is not a hotwasm bench report of format {}",
                    file.display(),
                    crate::report::FORMAT
                )));
            }
            Ok(Loaded { path: file, json })
        })
        .collect()
}

/// The comparison as Markdown. With exactly two reports, ratio columns
/// also get the second's over the first's.
pub fn render(reports: &[Loaded]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Bench reports compared\n");
    machines(&mut out, reports);
    throughput(&mut out, reports);
    per_runtime(
        &mut out,
        reports,
        "Cold start: compile ms (median), preferred variant, Schnorr",
        "cold_start",
        |row| row["scheme"] == "schnorr",
        |row| measured(&row["result"]).and_then(|f| f["compile_ms"]["median"].as_f64()),
        false,
    );
    per_runtime(
        &mut out,
        reports,
        "Single-message latency: p99 µs",
        "latency",
        |_| true,
        |row| measured(&row["result"]).and_then(|f| f["latency"]["p99_us"].as_f64()),
        false,
    );
    per_runtime(
        &mut out,
        reports,
        "p99 with a new version every 10 ms ÷ steady p99",
        "swapping",
        |_| true,
        |row| measured(&row["under_swaps"]).and_then(|f| f["p99_ratio"].as_f64()),
        true,
    );
    out
}

/// Writes [`render`] to `path`.
///
/// # Errors
///
/// [`BenchError::Io`].
pub fn write(reports: &[Loaded], path: &Path) -> Result<(), BenchError> {
    crate::report::write_file(path, render(reports).as_bytes())
}

fn measured(cell: &Value) -> Option<&Value> {
    (cell["status"] == "measured").then_some(cell)
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

fn machines(out: &mut String, reports: &[Loaded]) {
    let _ = writeln!(
        out,
        "| report | date | CPU | CPU family | cores | build | plan |\n|---|---|---|---|---|---|---|"
    );
    for (index, report) in reports.iter().enumerate() {
        let m = &report.json["machine"];
        let _ = writeln!(
            out,
            "| {} `{}` | {} | {} | {} | {} | {} | {} |",
            column(index),
            report.path.display(),
            text(&report.json["generated"]),
            text(&m["cpu"]),
            text(&m["cpu_family"]),
            m["cores"].as_u64().map_or("-".into(), |c| c.to_string()),
            text(&m["profile"]),
            text(&report.json["method"]["budget"]["name"]),
        );
    }
    out.push('\n');
}

/// `A`, `B`, ... for the reports' columns.
fn column(index: usize) -> String {
    u8::try_from(index).ok().filter(|i| *i < 26).map_or_else(
        || format!("#{}", index + 1),
        |i| char::from(b'A' + i).to_string(),
    )
}

/// Ratio to native of every runtime and variant on the mixed jobs, per
/// report, with native's µs per verify.
fn throughput(out: &mut String, reports: &[Loaded]) {
    let _ = writeln!(
        out,
        "### Throughput, mixed jobs: ratio to native (µs per verify)\n"
    );
    let keys = keys(
        reports,
        "throughput",
        |row| row["scheme"] == "mixed",
        |row| format!("{} / {}", text(&row["runtime"]), text(&row["variant"])),
    );
    header(out, "runtime / variant", reports);
    for key in keys {
        let cells: Vec<Option<(f64, f64)>> = reports
            .iter()
            .map(|report| {
                rows(&report.json, "throughput")
                    .iter()
                    .filter(|row| row["scheme"] == "mixed")
                    .find(|row| {
                        format!("{} / {}", text(&row["runtime"]), text(&row["variant"])) == key
                    })
                    .and_then(|row| measured(&row["result"]))
                    .and_then(|f| {
                        Some((
                            f["ratio_to_native"].as_f64()?,
                            f["micros_per_verify"].as_f64()?,
                        ))
                    })
            })
            .collect();
        let shown: Vec<String> = cells
            .iter()
            .map(|cell| cell.map_or("-".into(), |(ratio, us)| format!("{ratio:.2}x ({us:.1})")))
            .collect();
        let ratios: Vec<Option<f64>> = cells.iter().map(|c| c.map(|(r, _)| r)).collect();
        if ratios.iter().all(Option::is_none) {
            continue; // measured in no report (not built, refused): no row
        }
        row_out(out, &key, &shown, &ratios, reports.len());
    }
    out.push('\n');
}

/// One figure per runtime (its first row matching `filter`), per report.
fn per_runtime(
    out: &mut String,
    reports: &[Loaded],
    title: &str,
    section: &str,
    filter: impl Fn(&Value) -> bool + Copy,
    figure: impl Fn(&Value) -> Option<f64>,
    is_ratio: bool,
) {
    let _ = writeln!(out, "### {title}\n");
    let keys = keys(reports, section, filter, |row| {
        text(&row["runtime"]).to_string()
    });
    header(out, "runtime", reports);
    for key in keys {
        let values: Vec<Option<f64>> = reports
            .iter()
            .map(|report| {
                rows(&report.json, section)
                    .iter()
                    .filter(|row| filter(row))
                    .find(|row| text(&row["runtime"]) == key)
                    .and_then(&figure)
            })
            .collect();
        let shown: Vec<String> = values
            .iter()
            .map(|v| {
                v.map_or("-".into(), |v| {
                    if is_ratio {
                        format!("{v:.2}x")
                    } else {
                        format!("{v:.3}")
                    }
                })
            })
            .collect();
        if values.iter().all(Option::is_none) {
            continue;
        }
        row_out(out, &key, &shown, &values, reports.len());
    }
    out.push('\n');
}

fn rows<'a>(json: &'a Value, section: &str) -> &'a [Value] {
    json[section]["rows"].as_array().map_or(&[], Vec::as_slice)
}

/// The row keys of `section` over every report, in first-seen order.
fn keys(
    reports: &[Loaded],
    section: &str,
    filter: impl Fn(&Value) -> bool,
    key: impl Fn(&Value) -> String,
) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for report in reports {
        for row in rows(&report.json, section).iter().filter(|row| filter(row)) {
            let key = key(row);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

fn header(out: &mut String, first: &str, reports: &[Loaded]) {
    let mut columns: Vec<String> = (0..reports.len()).map(column).collect();
    if reports.len() == 2 {
        columns.push("B ÷ A".into());
    }
    let _ = writeln!(
        out,
        "| {first} | {} |\n|---|{}",
        columns.join(" | "),
        "---|".repeat(columns.len())
    );
}

fn row_out(out: &mut String, key: &str, shown: &[String], values: &[Option<f64>], reports: usize) {
    let mut cells = shown.to_vec();
    if reports == 2 {
        cells.push(match (values[0], values[1]) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.2}", b / a),
            _ => "-".into(),
        });
    }
    let _ = writeln!(out, "| {key} | {} |", cells.join(" | "));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(cpu: &str, wasm3: f64, native_us: f64) -> Loaded {
        let json = serde_json::json!({
            "format": 1,
            "generated": "2026-12-01",
            "machine": {"cpu": cpu, "cpu_family": format!("{cpu} family"), "cores": 2, "profile": "release"},
            "method": {"budget": {"name": "default"}},
            "throughput": {"rows": [
                {"runtime": "native", "variant": "built-in", "scheme": "mixed",
                 "result": {"status": "measured", "ratio_to_native": 1.0, "micros_per_verify": native_us}},
                {"runtime": "wasm3", "variant": "compat", "scheme": "mixed",
                 "result": {"status": "measured", "ratio_to_native": wasm3, "micros_per_verify": native_us * wasm3}},
                {"runtime": "wasm3", "variant": "fast", "scheme": "mixed",
                 "result": {"status": "refused", "reason": "MVP only"}},
            ]},
            "cold_start": {"rows": []},
            "latency": {"rows": []},
            "swapping": {"rows": [
                {"runtime": "wasm3", "under_swaps": {"status": "measured", "p99_ratio": 1.05}},
            ]},
        });
        Loaded {
            path: PathBuf::from(format!("{cpu}/report.json")),
            json,
        }
    }

    #[test]
    fn two_reports_side_by_side_with_the_ratio_of_their_ratios() {
        let text = render(&[report("Intel", 20.0, 70.0), report("AMD", 50.0, 80.0)]);
        assert!(
            text.contains("| A `Intel/report.json` | 2026-12-01 | Intel | Intel family | 2 |"),
            "{text}"
        );
        assert!(
            text.contains("| wasm3 / compat | 20.00x (1400.0) | 50.00x (4000.0) | 2.50 |"),
            "{text}"
        );
        assert!(
            !text.contains("| wasm3 / fast |"),
            "measured nowhere: {text}"
        );
        assert!(text.contains("| wasm3 | 1.05x | 1.05x | 1.00 |"), "{text}");
    }

    #[test]
    fn a_file_that_is_not_a_report_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("report.json");
        std::fs::write(&path, r#"{"format": 99}"#).expect("write");
        let error = load(&[dir.path().to_path_buf()]).expect_err("refused");
        assert!(
            error.to_string().contains("not a hotwasm bench report"),
            "{error}"
        );
    }
}
