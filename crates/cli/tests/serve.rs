//! `hotwasm serve`, `submit` and `demo` as separate processes, with a real
//! `redis-server`.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Output, Stdio};

use hotwasm_tests::RedisServer;

fn hotwasm() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hotwasm"));
    command
        .env_remove("HOTWASM_REDIS")
        .env("HOTWASM_LOG", "warn");
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Reads `hotwasm serve`'s log until the line that says where gRPC
/// listens (`... gRPC on http://<address>; ...`), which it writes once it
/// is ready; lines before it (warnings, say) are kept, not parsed. Returns
/// the address, and the reader positioned after that line.
fn grpc_address(stderr: ChildStderr) -> (String, BufReader<ChildStderr>) {
    let mut reader = BufReader::new(stderr);
    let mut before = String::new();
    loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line).expect("serve logs");
        assert!(
            read > 0,
            "serve exited before it said where gRPC listens:\n{before}"
        );
        if let Some(address) = line
            .split("gRPC on ")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
        {
            return (address.trim().to_string(), reader);
        }
        before.push_str(&line);
    }
}

/// A `hotwasm serve` process, stopped with SIGTERM.
struct Serve {
    child: Child,
    registry: tempfile::TempDir,
    grpc: String,
}

impl Serve {
    fn start(redis: &str, name: &str) -> Serve {
        Serve::start_with(redis, name, &["--workers", "1"])
    }

    /// With flags of its own (`--workers` among them).
    fn start_with(redis: &str, name: &str, flags: &[&str]) -> Serve {
        let registry = tempfile::tempdir().expect("temp dir");
        let mut child = hotwasm()
            .args(["serve", "--redis", redis, "--grpc", "127.0.0.1:0"])
            .args(["--name", name])
            .args(flags)
            .arg("--registry")
            .arg(registry.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hotwasm serve starts");
        let (grpc, reader) = grpc_address(child.stderr.take().expect("piped stderr"));
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || for _ in reader.lines() {});
        Serve {
            child,
            registry,
            grpc,
        }
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        let status = self.child.wait().expect("serve exits");
        drop(self.registry);
        status
    }
}

fn summary(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "summary is not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(output)
        )
    })
}

#[test]
fn two_serve_processes_answer_a_submit_through_shared_memory() {
    let redis = RedisServer::start();
    let a = Serve::start(&redis.url(), "a");
    let b = Serve::start(&redis.url(), "b");
    assert!(a.grpc.starts_with("http://127.0.0.1:"), "{}", a.grpc);
    let output = hotwasm()
        .args(["submit", "--redis", &redis.url(), "--count", "600"])
        .args([
            "--invalid-ratio",
            "0.2",
            "--results",
            "shm",
            "--ring-slots",
            "32",
        ])
        .arg("--json")
        .output()
        .expect("submit runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = summary(&output);
    assert_eq!(summary["verdicts"], 600, "{summary}");
    assert_eq!(summary["missing"], 0, "{summary}");
    assert_eq!(summary["mismatch_count"], 0, "{summary}");
    let per_server = summary["per_server"].as_object().expect("per_server");
    let total: u64 = per_server.values().filter_map(|v| v.as_u64()).sum();
    assert_eq!(total, 600);
    assert!(per_server.keys().all(|k| k == "a" || k == "b"), "{summary}");
    assert!(a.terminate().success(), "serve a exits cleanly on SIGTERM");
    assert!(b.terminate().success(), "serve b exits cleanly on SIGTERM");
}

/// Poison jobs through two servers on one Redis: a module that loops on
/// some inputs (answering the others) is active on both; more poison jobs
/// than the servers have workers cost one call deadline each, come back as
/// error verdicts, and every worker is still there for the jobs around
/// them and after them.
#[test]
fn poison_jobs_cost_a_deadline_each_and_no_worker() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    // The servers trust the key that signed it: signatures say who made a
    // module, not that it is harmless.
    let (_, public) = hotwasm_tests::signing::write_keys(dir.path());
    let public = public.to_string_lossy().into_owned();
    let flags = [
        "--workers",
        "2",
        "--call-timeout",
        "200ms",
        "--trusted-key",
        &public,
    ];
    let servers = [
        Serve::start_with(&redis.url(), "a", &flags),
        Serve::start_with(&redis.url(), "b", &flags),
    ];
    // The real Schnorr module, but looping for ever on a request over 4 KiB.
    let honest = hotwasm_modules::find("schnorr", "fast").expect("fast schnorr");
    let trojan = dir.path().join("schnorr.wasm");
    let trojan_bytes = hotwasm_tests::hostile::trojan_of(honest.bytes);
    std::fs::write(&trojan, hotwasm_tests::signing::signed(&trojan_bytes)).expect("write");
    for server in &servers {
        let load = hotwasm()
            .args(["modules", "load", "--activate", "--server", &server.grpc])
            .arg(&trojan)
            .output()
            .expect("modules load runs");
        assert!(load.status.success(), "{}", stderr(&load));
    }

    // 8 poison jobs (4 workers in all) among 300 honest jobs.
    let generated = hotwasm()
        .args([
            "generate",
            "--scheme",
            "ecdsa",
            "--count",
            "300",
            "--invalid-ratio",
            "0.2",
        ])
        .output()
        .expect("generate runs");
    assert!(generated.status.success(), "{}", stderr(&generated));
    let mut input = String::from_utf8(generated.stdout).expect("UTF-8 jobs");
    let poison = 8;
    for n in 0..poison {
        input.push_str(&format!(
            "{{\"id\":\"poison-{n}\",\"scheme\":\"schnorr\",\"public_key\":\"{}\",\"signature\":\"{}\",\"message\":\"{}\",\"expect\":false}}\n",
            "11".repeat(32),
            "22".repeat(64),
            "33".repeat(5000),
        ));
    }
    let jobs = dir.path().join("jobs.jsonl");
    std::fs::write(&jobs, input).expect("write jobs");
    let submit = |input: &std::path::Path| {
        let output = hotwasm()
            .args(["submit", "--redis", &redis.url(), "--json", "--input"])
            .arg(input)
            .output()
            .expect("submit runs");
        assert!(output.status.success(), "{}", stderr(&output));
        summary(&output)
    };
    let first = submit(&jobs);
    assert_eq!(first["verdicts"], 300 + poison, "{first}");
    assert_eq!(first["missing"], 0, "{first}");
    assert_eq!(first["mismatch_count"], 0, "{first}");

    // Each poison job failed once, on its deadline, on one server.
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let mut failures = 0;
    for server in &servers {
        let stats = runtime.block_on(async {
            let mut client =
                hotwasm_proto::v1::verifier_client::VerifierClient::connect(server.grpc.clone())
                    .await
                    .expect("connects");
            client
                .stats(hotwasm_proto::v1::StatsRequest {})
                .await
                .expect("stats")
                .into_inner()
        });
        assert_eq!(stats.workers, 2, "{stats:?}");
        let schnorr = stats
            .modules
            .iter()
            .find(|m| m.scheme == "schnorr")
            .expect("schnorr serves");
        failures += schnorr.failures;
        if schnorr.failures > 0 {
            assert!(
                schnorr.last_failure.contains("200 ms deadline"),
                "{schnorr:?}"
            );
        }
    }
    assert_eq!(failures, poison, "one deadline per poison job");

    // Every worker is still there: a second run is answered in full.
    let again = submit(&jobs);
    assert_eq!(again["verdicts"], 300 + poison, "{again}");
    assert_eq!(again["missing"], 0, "{again}");
    assert_eq!(again["mismatch_count"], 0, "{again}");
    for server in servers {
        assert!(server.terminate().success());
    }
}

#[test]
fn unreachable_redis_is_a_clear_error() {
    // A socket in a directory of our own that nothing listens on.
    let nowhere = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "redis+unix://{}",
        nowhere.path().join("redis.sock").display()
    );
    let registry = tempfile::tempdir().expect("temp dir");
    let registry = registry.path().to_string_lossy().into_owned();
    for args in [
        vec!["submit", "--redis", &url, "--count", "1"],
        vec![
            "serve",
            "--redis",
            &url,
            "--grpc",
            "127.0.0.1:0",
            "--registry",
            &registry,
        ],
    ] {
        let output = hotwasm().args(&args).output().expect("runs");
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(
            message.contains("cannot reach Redis at"),
            "{args:?}: {message}"
        );
        assert!(message.contains(&url), "{args:?}: {message}");
    }
}

#[test]
fn demo_runs_the_pipeline_without_redis() {
    let output = hotwasm()
        .args(["demo", "--count", "300", "--json", "--ring-slots", "16"])
        .output()
        .expect("demo runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = summary(&output);
    assert_eq!(summary["verdicts"], 300, "{summary}");
    assert_eq!(summary["mismatch_count"], 0, "{summary}");
    // Two swaps by default, each replacing both schemes' modules with
    // another version and the second one swapping back.
    let swaps = summary["swaps"].as_array().expect("swaps listed");
    assert_eq!(swaps.len(), 2, "{summary}");
    for swap in swaps {
        let modules = swap["modules"].as_array().expect("modules of a swap");
        assert_eq!(modules.len(), 2, "{summary}");
        for pair in modules {
            assert_ne!(pair[0], pair[1], "a swap changes the version: {summary}");
        }
    }
    assert_eq!(
        swaps[0]["modules"][0][0], swaps[1]["modules"][0][1],
        "{summary}"
    );
    // Every verdict is attributed to a version that served.
    let per_module: u64 = summary["per_module"]
        .as_object()
        .expect("per-module counts")
        .values()
        .map(|n| n.as_u64().expect("a count"))
        .sum();
    assert_eq!(per_module, 300, "{summary}");
}

#[test]
fn demo_swaps_on_wasm3_out_of_the_box() {
    let output = hotwasm()
        .args(["demo", "--count", "60", "--json", "--runtime", "wasm3"])
        .output()
        .expect("demo runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = summary(&output);
    assert_eq!(summary["mismatch_count"], 0, "{summary}");
    assert_eq!(
        summary["swaps"].as_array().map(Vec::len),
        Some(2),
        "{summary}"
    );
}

#[test]
fn shutdown_is_bounded_by_its_grace_period() {
    // A VerifyStream left open keeps the gRPC drain waiting (up to 30 s);
    // the grace period ends the wait after half a second.
    let mut child = hotwasm()
        .args(["serve", "--grpc", "127.0.0.1:0", "--workers", "1"])
        .args(["--shutdown-grace", "0.5"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hotwasm serve starts");
    let (grpc, reader) = grpc_address(child.stderr.take().expect("piped stderr"));
    let logs = std::thread::spawn(move || reader.lines().map_while(Result::ok).collect::<Vec<_>>());
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let (_keep_open, requests) = tokio::sync::mpsc::channel::<hotwasm_proto::v1::VerifyRequest>(1);
    let _stream = runtime.block_on(async {
        let mut client = hotwasm_proto::v1::verifier_client::VerifierClient::connect(grpc.clone())
            .await
            .expect("connects");
        client
            .verify_stream(tokio_stream::wrappers::ReceiverStream::new(requests))
            .await
            .expect("stream opens")
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    // Generous bound: the drain alone would take 30 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("waits") {
            break exit;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not stop within its grace period");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(1), "{exit:?}");
    let logs = logs.join().expect("log reader").join("\n");
    assert!(logs.contains("shutdown grace period passed"), "{logs}");
}
