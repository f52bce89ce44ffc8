//! `hotwasm bench` run as a user runs it, on tiny sizes: it exits 0, prints
//! the tables and writes a report that parses. No timing is asserted.

use std::process::{Command, Output};

fn hotwasm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotwasm"))
        .args(args)
        .env_remove("HOTWASM_REDIS")
        .output()
        .expect("hotwasm runs")
}

#[test]
fn bench_writes_markdown_json_and_charts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("report");
    let output = hotwasm(&[
        "bench",
        "--quick",
        "--messages",
        "8",
        "--reps",
        "1",
        "--runtimes",
        "native,wasmtime",
        "--no-progress",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("## 2. Throughput"), "{stdout}");
    assert!(stdout.contains("wasmtime"));

    let markdown = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(markdown.contains("## 8. Method"));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json"),
    )
    .expect("report.json parses");
    assert_eq!(json["runtimes"], serde_json::json!(["native", "wasmtime"]));
    assert_eq!(json["quick"], true);
    assert_eq!(json["method"]["budget"]["compiled"]["messages"], 8);
    assert!(out.join("throughput.svg").exists());
    // The embedded pipeline ran for real: every job came back through the
    // in-process server and the shared-memory ring.
    let embedded = &json["end_to_end"]["pipelines"][0];
    assert_eq!(embedded["transport"], "embedded", "{embedded}");
    assert_eq!(embedded["result"]["status"], "measured", "{embedded}");
    assert_eq!(embedded["result"]["messages"], 8, "{embedded}");
    assert!(
        embedded["result"]["jobs_per_second"]
            .as_f64()
            .is_some_and(|rate| rate > 0.0),
        "{embedded}"
    );
}

#[test]
fn bench_refuses_an_unknown_runtime() {
    let output = hotwasm(&["bench", "--runtimes", "native,v8", "--no-progress"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("v8"));
}
