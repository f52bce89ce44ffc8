//! The bench on tiny sizes: the report files exist and parse, hold every
//! section and every runtime, and every ratio is computed from figures in
//! the same file. No timing is asserted.

use hotwasm_bench::progress::Silent;
use hotwasm_bench::{BenchOptions, Budget};
use hotwasm_runtime::RuntimeKind;
use serde_json::Value;

const SECTIONS: [&str; 13] = [
    "machine",
    "throughput",
    "limit",
    "official_wapc",
    "latency",
    "cold_start",
    "swapping",
    "tiered",
    "end_to_end",
    "open_loop",
    "scale",
    "draft",
    "method",
];

fn tiny(runtimes: Vec<RuntimeKind>) -> BenchOptions {
    BenchOptions {
        runtimes,
        budget: Budget::standard().with_overrides(Some(8), Some(1)),
        workers: 2,
        ..BenchOptions::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
}

fn num(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer} in {v}"))
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn measured(cell: &Value) -> Option<&Value> {
    (cell["status"] == "measured").then_some(cell)
}

fn rows<'a>(report: &'a Value, section: &str) -> &'a Vec<Value> {
    report[section]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{section} has rows"))
}

#[test]
fn tiny_run_writes_a_consistent_report_for_every_runtime() {
    // The embedded pipeline runs for real: an in-process server and client.
    let mut options = tiny(RuntimeKind::ALL.to_vec());
    options.budget.tiered = 2;
    let report = hotwasm_bench::run(&options, &Silent).expect("bench runs");
    let dir = tempfile::tempdir().expect("tempdir");
    let written = hotwasm_bench::report::write(&report, dir.path()).expect("report written");

    let markdown = std::fs::read_to_string(&written.markdown).expect("report.md");
    for heading in [
        "## 1. Machine and build",
        "## 2. Throughput",
        "### The limit: libsecp256k1",
        "### Our host against the official waPC host",
        "### Latency under load (open loop, gRPC `Verify`)",
        "## 3. Single-message latency",
        "## 4. Cold start",
        "## 5. Module swapping",
        "### Tiered activation",
        "## 6. End to end",
        "## 7. Against the draft",
        "## 8. Method",
    ] {
        assert!(markdown.contains(heading), "report.md lacks {heading}");
    }
    // Every table set names the machine and its CPU family.
    let family = hotwasm_bench::machine::describe().cpu_family;
    assert_eq!(
        markdown.matches(&format!("— {family},")).count(),
        6,
        "sections 2–7 each say where they were measured"
    );
    for chart in [
        "throughput.svg",
        "latency.svg",
        "swapping.svg",
        "open_loop.svg",
    ] {
        let svg = std::fs::read_to_string(dir.path().join(chart)).expect(chart);
        assert!(svg.contains("<svg") && svg.contains("<text"), "{chart}");
        assert!(markdown.contains(chart), "report.md links {chart}");
    }

    assert!(
        markdown.contains("| load → serving, ms | load → first verdict, ms |"),
        "the tiered table times the load call"
    );
    assert!(
        markdown.contains("| wasm3 | libsecp256k1-compat | mixed |")
            && markdown.contains("| wasmtime | libsecp256k1 | mixed |"),
        "the libsecp256k1 family's rows"
    );

    let text = std::fs::read_to_string(&written.json).expect("report.json");
    let json: Value = serde_json::from_str(&text).expect("report.json parses");
    for section in SECTIONS {
        assert!(json.get(section).is_some(), "report.json lacks {section}");
    }
    for kind in RuntimeKind::ALL {
        let name = kind.name();
        assert!(markdown.contains(name), "report.md lacks {name}");
        for section in ["throughput", "latency", "cold_start", "swapping"] {
            assert!(
                rows(&json, section).iter().any(|r| r["runtime"] == name),
                "{section} lacks {name}"
            );
        }
    }

    check_throughput(&json);
    check_limit(&json);
    check_limit_modules(&json);
    check_official_wapc(&json);
    check_latency(&json);
    check_swapping(&json);
    check_tiered(&json);
    check_end_to_end(&json, true);
    check_open_loop(&json);
    check_scale(&json["scale"], false);
    check_draft(&json);
}

/// Every mode measured; a version reaches full speed no sooner than its
/// first verdict, at the same moment without tiering; each tiered row's
/// speed-up is the ratio of the medians.
fn check_tiered(json: &Value) {
    let tiered = rows(json, "tiered");
    let modes: Vec<&str> = tiered.iter().filter_map(|r| r["mode"].as_str()).collect();
    assert_eq!(
        modes,
        [
            "tiered, wasmtime-winch first",
            "tiered, wasmi first",
            "cranelift-first"
        ]
    );
    let untiered = rows_of_tiered(json, "cranelift-first");
    assert_eq!(
        untiered["first_verdict_ms"], untiered["full_speed_ms"],
        "without tiering the first verdict is Cranelift's"
    );
    for row in tiered {
        let f = measured(&row["result"]).unwrap_or_else(|| panic!("{row}"));
        assert_eq!(num(f, "/samples"), 2.0, "{f}");
        assert!(
            num(f, "/full_speed_ms/min") >= num(f, "/first_verdict_ms/min"),
            "{f}"
        );
        let serving = &f["serving_ms"];
        assert!(
            num(serving, "/min") <= num(serving, "/median")
                && num(serving, "/median") <= num(serving, "/max"),
            "{f}"
        );
        if row["first_tier"].is_null() {
            assert!(row["first_verdict_speedup"].is_null());
        } else {
            assert!(close(
                num(row, "/first_verdict_speedup"),
                num(untiered, "/first_verdict_ms/median") / num(f, "/first_verdict_ms/median")
            ));
        }
    }
}

/// libsecp256k1 on every scheme; its ratios recomputable from the
/// figures: k256 over it, and the best wasmtime row of the throughput
/// table over it.
fn check_limit(json: &Value) {
    let limit = rows(json, "limit");
    assert_eq!(limit.len(), 3, "{limit:?}");
    for row in limit {
        let libsecp = num(row, "/libsecp256k1_us/median");
        assert!(libsecp > 0.0, "{row}");
        assert!(close(
            num(row, "/k256_over_libsecp256k1"),
            num(row, "/k256_us/median") / libsecp
        ));
        let scheme = row["scheme"].as_str().expect("scheme");
        let best = rows(json, "throughput")
            .iter()
            .filter(|r| r["runtime"] == "wasmtime" && r["scheme"] == scheme)
            // The same code as native: the k256 family.
            .filter(|r| !is_libsecp256k1(r))
            .filter_map(|r| measured(&r["result"]))
            .min_by(|a, b| num(a, "/micros_per_verify").total_cmp(&num(b, "/micros_per_verify")));
        if let Some(best) = best {
            let expected = num(best, "/ratio_to_native") * num(row, "/k256_over_libsecp256k1");
            assert!(
                close(num(row, "/wasmtime_over_libsecp256k1"), expected),
                "{row}"
            );
        }
    }
}

fn is_libsecp256k1(row: &Value) -> bool {
    row["variant"]
        .as_str()
        .is_some_and(|v| v.starts_with("libsecp256k1"))
}

/// The libsecp256k1 module family on every runtime, one build each (the
/// MVP one on wasm3), every scheme; its ratios recomputable from the
/// throughput table and the limit rows.
fn check_limit_modules(json: &Value) {
    let modules = json["limit"]["modules"].as_array().expect("limit.modules");
    for kind in RuntimeKind::ALL
        .iter()
        .filter(|k| **k != RuntimeKind::Native)
    {
        let variant = if *kind == RuntimeKind::Wasm3 {
            "libsecp256k1-compat"
        } else {
            "libsecp256k1"
        };
        let ran: Vec<&Value> = modules
            .iter()
            .filter(|m| m["runtime"] == kind.name())
            .collect();
        assert_eq!(ran.len(), 3, "{kind}: {ran:?}");
        for module in ran {
            assert_eq!(module["variant"], variant, "{module}");
            let scheme = module["scheme"].as_str().expect("scheme");
            let find = |variant: &str| {
                rows(json, "throughput")
                    .iter()
                    .find(|r| {
                        r["runtime"] == kind.name()
                            && r["variant"] == variant
                            && r["scheme"] == scheme
                    })
                    .and_then(|r| measured(&r["result"]))
                    .unwrap_or_else(|| panic!("{kind}/{variant} {scheme} measured"))
            };
            let own = find(variant);
            let k256 = find(kind.preferred_variant());
            assert_eq!(module["k256_variant"], kind.preferred_variant());
            assert!(close(
                num(module, "/micros_per_verify"),
                num(own, "/micros_per_verify")
            ));
            assert!(close(
                num(module, "/over_k256_module"),
                num(own, "/micros_per_verify") / num(k256, "/micros_per_verify")
            ));
            let limit = rows(json, "limit")
                .iter()
                .find(|r| r["scheme"] == scheme)
                .expect("limit row");
            assert!(close(
                num(module, "/over_native_libsecp256k1"),
                num(own, "/ratio_to_native") * num(limit, "/k256_over_libsecp256k1")
            ));
        }
    }
    // Other builds of the family are not run where the preferred one loads.
    assert!(
        !rows(json, "throughput")
            .iter()
            .any(|r| r["runtime"] == "wasmtime" && r["variant"] == "libsecp256k1-compat")
    );
}

/// Both schemes through both hosts; the ratio recomputable. (Built
/// alone, this crate has no official host: the `hotwasm` binary's
/// `wasmtime` feature brings it, as in a workspace test run.)
fn check_official_wapc(json: &Value) {
    let rows = rows(json, "official_wapc");
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in rows {
        if row["result"]["status"] == "not_built" {
            continue;
        }
        let f = measured(&row["result"]).unwrap_or_else(|| panic!("measured: {row}"));
        assert!(close(
            num(f, "/official_over_ours"),
            num(f, "/official_us/median") / num(f, "/ours_us/median")
        ));
    }
}

/// Four loads, rates as shares of the capacity, percentiles in order, the
/// ratio at 50% recomputable.
fn check_open_loop(json: &Value) {
    let f = measured(&json["open_loop"]["result"]).expect("open loop measured");
    let capacity = num(f, "/capacity_per_s");
    let rows = f["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 4);
    for row in rows {
        let load = num(row, "/load_percent");
        assert!(
            close(num(row, "/rate_per_s"), capacity * load / 100.0),
            "{row}"
        );
        let refused = num(row, "/refused");
        assert!(refused <= num(row, "/requests"), "{row}");
        if refused == num(row, "/requests") {
            continue; // every request refused (a full server): no percentiles
        }
        assert!(num(row, "/p50_us") <= num(row, "/p99_us"), "{row}");
        assert!(num(row, "/p99_us") <= num(row, "/p999_us"), "{row}");
        assert!(num(row, "/p999_us") <= num(row, "/max_us"), "{row}");
    }
    assert_eq!(json["open_loop"]["redis"]["status"], "not_run");
    let half = rows.iter().find(|r| r["load_percent"] == 50).expect("50%");
    if half["p99_us"].is_null() {
        return;
    }
    assert!(close(
        num(f, "/p99_at_half_over_unloaded"),
        num(half, "/p99_us") / num(f, "/unloaded_p99_us")
    ));
}

fn check_throughput(json: &Value) {
    let rows = rows(json, "throughput");
    let native = |scheme: &str| {
        rows.iter()
            .find(|r| r["runtime"] == "native" && r["scheme"] == scheme)
            .and_then(|r| measured(&r["result"]))
            .map(|f| num(f, "/micros_per_verify"))
            .expect("native measured")
    };
    let mut measured_rows = 0;
    for row in rows {
        let Some(f) = measured(&row["result"]) else {
            let status = row["result"]["status"].as_str().expect("status");
            assert!(
                ["not_built", "refused"].contains(&status),
                "unexpected {status} in {row}"
            );
            assert!(row["result"]["reason"].is_string());
            continue;
        };
        measured_rows += 1;
        let us = num(f, "/run_ms/median") * 1000.0 / num(f, "/messages");
        assert!(close(us, num(f, "/micros_per_verify")), "{row}");
        let scheme = row["scheme"].as_str().expect("scheme");
        assert!(
            close(num(f, "/ratio_to_native"), us / native(scheme)),
            "{row}"
        );
        assert!(num(f, "/run_ms/min") <= num(f, "/run_ms/median"));
        assert!(num(f, "/run_ms/median") <= num(f, "/run_ms/max"));
    }
    // native 3 + wasmtime 3x3 + wasmi 3x3 + wasm3 compat 3, at least.
    assert!(measured_rows >= 24, "{measured_rows} measured rows");
    // wasm3 refuses the non-MVP variants, and says so.
    assert!(rows.iter().any(|r| r["runtime"] == "wasm3"
        && r["variant"] == "fast"
        && r["result"]["status"] == "refused"));
}

fn check_latency(json: &Value) {
    let rows = rows(json, "latency");
    let native = rows
        .iter()
        .find(|r| r["runtime"] == "native")
        .map(|r| num(r, "/result/latency/p50_us"))
        .expect("native latency");
    for row in rows {
        let f = measured(&row["result"]).expect("latency measured");
        assert!(close(
            num(f, "/p50_ratio_to_native"),
            num(f, "/latency/p50_us") / native
        ));
        assert!(num(f, "/latency/p50_us") <= num(f, "/latency/p99_us"));
        assert!(num(f, "/latency/p99_us") <= num(f, "/latency/max_us"));
    }
}

fn check_swapping(json: &Value) {
    for row in rows(json, "swapping") {
        let routing = measured(&row["routing"]).expect("routing measured");
        let ratios: Vec<f64> = routing["ratios"]
            .as_array()
            .expect("ratios")
            .iter()
            .map(|r| r.as_f64().expect("number"))
            .collect();
        assert_eq!(ratios.len() as f64, num(routing, "/reps"));
        assert!(close(num(routing, "/ratio"), median(&ratios)));
        match measured(&row["recompile"]) {
            Some(r) => {
                let steady = num(routing, "/mixed_ms/median") * 1000.0 / num(routing, "/messages");
                assert!(close(num(r, "/steady_us"), steady));
                assert!(close(
                    num(r, "/ratio_to_steady"),
                    num(r, "/per_message_ms/median") * 1000.0 / steady
                ));
            }
            None => assert_eq!(row["runtime"], "native", "{row}"),
        }
        assert!(measured(&row["activation"]).is_some(), "{row}");
        let u = measured(&row["under_swaps"]).expect("under swaps measured");
        assert!(close(
            num(u, "/p99_ratio"),
            num(u, "/swapping/p99_us") / num(u, "/steady/p99_us")
        ));
    }
}

fn check_end_to_end(json: &Value, with_runner: bool) {
    let e = &json["end_to_end"];
    let in_process = measured(&e["in_process"]).expect("in-process measured");
    let per_second = num(in_process, "/messages") / (num(in_process, "/run_ms/median") / 1000.0);
    assert!(close(num(in_process, "/jobs_per_second"), per_second));
    let pipelines = e["pipelines"].as_array().expect("pipelines");
    assert_eq!(pipelines.len(), 3);
    let embedded = &pipelines[0];
    assert_eq!(embedded["transport"], "embedded");
    assert_eq!(embedded["results"], "shm");
    if with_runner {
        let f = measured(&embedded["result"]).expect("embedded pipeline measured");
        let jobs_per_second = num(f, "/messages") / (num(f, "/run_ms/median") / 1000.0);
        assert!(close(num(f, "/jobs_per_second"), jobs_per_second));
        assert!(close(
            num(f, "/ratio_to_in_process"),
            jobs_per_second / per_second
        ));
    } else {
        assert_eq!(embedded["result"]["status"], "not_run");
    }
    // No --redis: the Redis rows are there, saying why they did not run.
    for row in &pipelines[1..] {
        assert_eq!(row["transport"], "redis");
        assert_eq!(row["result"]["status"], "not_run");
        assert!(
            row["result"]["reason"]
                .as_str()
                .expect("reason")
                .contains("--redis")
        );
    }
}

/// Every point measured; speed-up and efficiency recomputable from the
/// jobs/s medians; the servers sweep only with Redis.
fn check_scale(scale: &Value, with_redis: bool) {
    let workers = measured(&scale["workers"]).expect("workers sweep measured");
    check_sweep(workers);
    if with_redis {
        let servers = measured(&scale["servers"]).expect("servers sweep measured");
        check_sweep(servers);
        for row in servers["rows"].as_array().expect("rows") {
            assert!(row["rss_per_server_mib"].is_number(), "{row}");
        }
    } else {
        assert_eq!(scale["servers"]["status"], "not_run");
    }
    let memory = scale["instance_memory_kib"].as_array().expect("memory");
    assert_eq!(memory.len(), 2, "one per scheme");
}

fn check_sweep(sweep: &Value) {
    let rows = sweep["rows"].as_array().expect("rows");
    assert!(!rows.is_empty());
    let first = num(&rows[0], "/jobs_per_second/median");
    let first_count = num(&rows[0], "/count");
    for row in rows {
        let speedup = num(row, "/jobs_per_second/median") / first;
        assert!(close(num(row, "/speedup"), speedup), "{row}");
        assert!(
            close(
                num(row, "/efficiency"),
                speedup / (num(row, "/count") / first_count)
            ),
            "{row}"
        );
        assert!(num(row, "/cpu_us_per_job") > 0.0, "{row}");
    }
}

/// The servers sweep and the open-loop rates through a real redis-server:
/// every run's verdicts complete and right (checked inside), each point
/// measured.
#[test]
fn scale_and_open_loop_through_redis() {
    let redis = hotwasm_tests::RedisServer::start();
    let mut options = tiny(vec![RuntimeKind::Wasmtime]);
    options.redis = Some(redis.url());
    options.scale = hotwasm_bench::ScaleSweep {
        workers: vec![1, 2],
        servers: vec![1, 2],
    };
    let section = hotwasm_bench::scale::measure(&options, &Silent).expect("scale runs");
    let json = serde_json::to_value(&section).expect("serializes");
    check_scale(&json, true);
    let counts: Vec<f64> = json["servers"]["rows"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|row| num(row, "/count"))
        .collect();
    assert_eq!(counts, [1.0, 2.0]);

    // The open-loop rates through the same Redis.
    options.quick = true;
    let cell = hotwasm_bench::open_loop::redis_rows(&options, &Silent).expect("open loop runs");
    let json = serde_json::to_value(&cell).expect("serializes");
    let f = measured(&json).expect("measured");
    let capacity = num(f, "/capacity_per_s");
    let rows = f["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 4);
    for row in rows {
        assert!(
            close(
                num(row, "/rate_per_s"),
                capacity * num(row, "/load_percent") / 100.0
            ),
            "{row}"
        );
        assert!(num(row, "/p50_us") <= num(row, "/p99_us"), "{row}");
        assert!(num(row, "/p99_us") <= num(row, "/max_us"), "{row}");
    }
    let half = rows.iter().find(|r| r["load_percent"] == 50).expect("50%");
    assert!(close(
        num(f, "/p99_at_half_over_unloaded"),
        num(half, "/p99_us") / num(f, "/unloaded_p99_us")
    ));
}

/// The measured figures of the tiered section's `mode` row.
fn rows_of_tiered<'a>(json: &'a Value, mode: &str) -> &'a Value {
    rows(json, "tiered")
        .iter()
        .find(|r| r["mode"] == mode)
        .and_then(|r| measured(&r["result"]))
        .expect("tiered row measured")
}

fn check_draft(json: &Value) {
    let best_wasmtime = rows(json, "throughput")
        .iter()
        .filter(|r| r["runtime"] == "wasmtime" && r["scheme"] == "mixed")
        // The draft's ratio is of the same code natively and in wasm.
        .filter(|r| !is_libsecp256k1(r))
        .filter_map(|r| measured(&r["result"]))
        .map(|f| num(f, "/ratio_to_native"))
        .fold(f64::INFINITY, f64::min);
    let rows = json["draft"]["rows"].as_array().expect("draft rows");
    let wasmtime = rows
        .iter()
        .find(|r| {
            r["what"]
                .as_str()
                .is_some_and(|w| w.starts_with("wasmtime / native, throughput"))
        })
        .expect("draft wasmtime row");
    assert!(close(num(wasmtime, "/ours"), best_wasmtime));
    let tiered = rows
        .iter()
        .find(|r| {
            r["what"]
                .as_str()
                .is_some_and(|w| w.ends_with("tiered (Winch first)"))
        })
        .expect("draft tiered row");
    let tiered_section = rows_of_tiered(json, "tiered, wasmtime-winch first");
    assert!(close(
        num(tiered, "/ours"),
        num(tiered_section, "/first_verdict_ms/median")
    ));
    assert!(
        json["draft"]["why"]
            .as_str()
            .expect("why")
            .contains("console")
    );
}

#[test]
fn without_pipelines_the_pipeline_rows_say_not_run() {
    let options = BenchOptions {
        pipelines: false,
        ..tiny(vec![RuntimeKind::Native])
    };
    let report = hotwasm_bench::run(&options, &Silent).expect("bench runs");
    let json = serde_json::to_value(&report).expect("serialises");
    check_end_to_end(&json, false);
    assert!(json["runtimes"] == serde_json::json!(["native"]));
}

#[test]
fn overrides_set_every_size_and_cap_samples() {
    let budget = Budget::standard().with_overrides(Some(8), Some(1));
    assert_eq!(budget.compiled.messages, 8);
    assert_eq!(budget.interpreter_other.reps, 1);
    assert_eq!(budget.end_to_end.messages, 8);
    assert!(budget.latency_compiled <= 8 && budget.activations <= 8);
    assert_eq!(Budget::quick().with_overrides(None, None), Budget::quick());
}
