//! `hotwasm serve`, `submit` and `demo` as separate processes, with a real
//! `redis-server`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Serve, grpc_address, hotwasm, stderr, summary};
use hotwasm_tests::RedisServer;

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
            .arg("--token-file")
            .arg(server.token())
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

/// Administration from the command line: refused without the token, with
/// a hint; accepted with it; a token file others can read is refused by
/// `serve` before it starts.
#[test]
fn modules_over_grpc_need_the_admin_token() {
    let redis = RedisServer::start();
    let server = Serve::start_with(&redis.url(), "admin", &["--workers", "1"]);
    let refused = hotwasm()
        .args([
            "modules",
            "activate",
            "schnorr@native",
            "--server",
            &server.grpc,
        ])
        .output()
        .expect("modules runs");
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--token-file"),
        "{}",
        stderr(&refused)
    );
    let listed = hotwasm()
        .args(["modules", "list", "--server", &server.grpc])
        .output()
        .expect("modules runs");
    assert!(
        listed.status.success(),
        "listing stays open: {}",
        stderr(&listed)
    );
    let fast = hotwasm_modules::find("schnorr", "fast").expect("fast schnorr");
    let activated = hotwasm()
        .args(["modules", "activate", &fast.id(), "--server", &server.grpc])
        .arg("--token-file")
        .arg(server.token())
        .output()
        .expect("modules runs");
    assert!(activated.status.success(), "{}", stderr(&activated));
    another_user_cannot_administer(&server, &fast.id());
    assert!(server.terminate().success());

    let dir = tempfile::tempdir().expect("temp dir");
    let token = dir.path().join("open.token");
    let made = hotwasm()
        .args(["admin-token", "someone", "--out"])
        .arg(&token)
        .output()
        .expect("admin-token runs");
    assert!(made.status.success(), "{}", stderr(&made));
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let serve = hotwasm()
        .args(["serve", "--grpc", "127.0.0.1:0", "--admin-token"])
        .arg(&token)
        .output()
        .expect("serve runs");
    assert_eq!(serve.status.code(), Some(2));
    assert!(stderr(&serve).contains("chmod 600"), "{}", stderr(&serve));
}

/// As root (CI), the attack the admin token exists for: a second,
/// unprivileged user (uid 65534) on the machine tries to swap the root
/// server's module — with no token, and pointing at the operator's token
/// file — and the active version stays `active`. Elsewhere a note says why
/// it did not run.
fn another_user_cannot_administer(server: &Serve, active: &str) {
    let euid =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc"));
    if euid != 0 || !std::path::Path::new("/usr/bin/setpriv").exists() {
        eprintln!("not root or no setpriv: the second-user case needs both");
        return;
    }
    let other = hotwasm_modules::find("schnorr", "default").expect("default schnorr");
    let as_nobody = |extra: &[&std::ffi::OsStr]| {
        Command::new("/usr/bin/setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_hotwasm"))
            .args(["modules", "activate", &other.id(), "--server", &server.grpc])
            .args(extra)
            .env("HOME", "/nonexistent")
            .env_remove("HOTWASM_TOKEN_FILE")
            .output()
            .expect("setpriv runs")
    };
    let bare = as_nobody(&[]);
    assert_eq!(bare.status.code(), Some(2), "{}", stderr(&bare));
    assert!(stderr(&bare).contains("--token-file"), "{}", stderr(&bare));
    let token = server.token();
    let stolen = as_nobody(&["--token-file".as_ref(), token.as_os_str()]);
    assert_eq!(stolen.status.code(), Some(2), "{}", stderr(&stolen));
    assert!(
        stderr(&stolen).contains("ermission denied"),
        "the operator's token is not readable by others: {}",
        stderr(&stolen)
    );
    let listed = hotwasm()
        .args(["modules", "list", "--json", "--server", &server.grpc])
        .output()
        .expect("modules runs");
    let listing: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(listing["serving"]["schnorr"], active, "{listing}");
}

/// A network address without TLS is refused unless `--insecure`.
#[test]
fn serving_a_network_address_in_clear_text_needs_insecure() {
    let refused = hotwasm()
        .args(["serve", "--grpc", "0.0.0.0:0"])
        .output()
        .expect("serve runs");
    assert_eq!(refused.status.code(), Some(2));
    let message = stderr(&refused);
    assert!(
        message.contains("without TLS") && message.contains("--insecure"),
        "{message}"
    );

    let mut child = hotwasm()
        .args([
            "serve",
            "--grpc",
            "0.0.0.0:0",
            "--insecure",
            "--workers",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut reader = BufReader::new(stderr);
    let mut logs = String::new();
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).expect("logs") > 0, "{logs}");
        logs.push_str(&line);
        if line.contains("gRPC on ") {
            break;
        }
    }
    assert!(logs.contains("INSECURE"), "{logs}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Without a reply key, `serve --redis` and `submit` refuse to start
/// unless told `--insecure-replies`, and say how to make one.
#[test]
fn verdicts_travel_signed_unless_insecure_replies() {
    let redis = RedisServer::start();
    for args in [
        vec!["submit", "--redis", &redis.url(), "--count", "1"],
        vec!["serve", "--redis", &redis.url(), "--grpc", "127.0.0.1:0"],
    ] {
        let output = hotwasm()
            .env_remove("HOTWASM_REPLY_KEY")
            .args(&args)
            .output()
            .expect("runs");
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(
            message.contains("--reply-key") && message.contains("hotwasm reply-key"),
            "{args:?}: {message}"
        );
    }
    let server = Serve::start(&redis.url(), "signing");
    let output = hotwasm()
        .env_remove("HOTWASM_REPLY_KEY")
        .args(["submit", "--redis", &redis.url(), "--count", "20", "--json"])
        .arg("--insecure-replies")
        .output()
        .expect("submit runs");
    // The server signs; a client without the key cannot tell its verdicts
    // from forgeries, but takes them (that is what the flag says).
    let insecure = summary(&output);
    assert_eq!(insecure["verdicts"], 20, "{insecure}");
    assert!(stderr(&output).contains("INSECURE"), "{}", stderr(&output));
    let other_key = tempfile::tempdir().expect("temp dir");
    let other = other_key.path().join("other.key");
    assert!(
        hotwasm()
            .args(["reply-key", "--out"])
            .arg(&other)
            .status()
            .expect("reply-key runs")
            .success()
    );
    let output = hotwasm()
        .env("HOTWASM_REPLY_KEY", &other)
        .args(["submit", "--redis", &redis.url(), "--count", "20", "--json"])
        .args(["--timeout", "3"])
        .output()
        .expect("submit runs");
    let summary = summary(&output);
    assert_eq!(
        summary["forged"], 20,
        "another key's client trusts none: {summary}"
    );
    assert_eq!(summary["missing"], 20, "{summary}");
    assert!(server.terminate().success());
}

/// A password-protected Redis end to end: the password comes from an
/// owner-only file, never the URL.
#[test]
fn serve_and_submit_through_a_password_protected_redis() {
    let redis = RedisServer::start_with(vec!["--requirepass".into(), "pw-from-a-file".into()]);
    let dir = tempfile::tempdir().expect("temp dir");
    let password = dir.path().join("redis.password");
    std::fs::write(&password, "pw-from-a-file\n").expect("write");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let password = password.display().to_string();
    let server = Serve::start_with(
        &redis.url(),
        "pw",
        &["--workers", "1", "--redis-password-file", &password],
    );
    let output = hotwasm()
        .args(["submit", "--redis", &redis.url(), "--count", "50", "--json"])
        .args(["--redis-password-file", &password])
        .output()
        .expect("submit runs");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(summary(&output)["verdicts"], 50);
    let refused = hotwasm()
        .args(["submit", "--redis", &redis.url(), "--count", "1"])
        .output()
        .expect("submit runs");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("NOAUTH") || stderr(&refused).contains("uthentication"),
        "{}",
        stderr(&refused)
    );
    assert!(server.terminate().success());
}

/// The first descriptor of process `pid` that is a ring's memory file.
fn ring_memfd(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|fd| {
            std::fs::read_link(fd)
                .is_ok_and(|target| target.to_string_lossy().contains("memfd:hotwasm-ring"))
        })
}

/// Truncates the ring `pid` holds, through its descriptor: refused.
/// Returns the descriptor. A server drops a ring it could not write in
/// time and opens it again, so a descriptor may close between finding it
/// and truncating it: then the ring is found again.
fn truncating_is_refused(pid: u32) -> std::path::PathBuf {
    for _ in 0..100 {
        let fd = wait_for_ring(pid);
        let truncate = Command::new("truncate")
            .args(["-s", "0"])
            .arg(&fd)
            .output()
            .expect("truncate runs");
        assert!(
            !truncate.status.success(),
            "truncating {} worked",
            fd.display()
        );
        let said = stderr(&truncate);
        if said.contains("No such file or directory") {
            continue;
        }
        assert!(said.contains("Operation not permitted"), "{said}");
        return fd;
    }
    panic!("the ring of process {pid} kept closing before it could be truncated");
}

/// Waits up to 30 s for `pid` to hold a ring's memory file.
fn wait_for_ring(pid: u32) -> std::path::PathBuf {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(fd) = ring_memfd(pid) {
            return fd;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ring in process {pid}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A hostile process of the same user attacks a client's ring while a
/// server writes into it: truncating it (through the server's own
/// descriptor and the client's) fails, so the server keeps running and
/// answers the next client; moving the ring's cursor makes that client
/// fail, saying its ring is corrupted, instead of counting thousands of
/// missing verdicts.
#[test]
fn a_truncated_ring_leaves_the_server_running() {
    let redis = RedisServer::start();
    let mut serve = Serve::start(&redis.url(), "target");
    let victim = hotwasm()
        .args(["submit", "--redis", &redis.url(), "--count", "20000"])
        .args(["--results", "shm", "--ring-slots", "64", "--timeout", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("submit starts");
    // The server holds the ring once it has answered into it.
    truncating_is_refused(serve.child.id());
    let clients_ring = truncating_is_refused(victim.id());
    // Move the client's read cursor far ahead, through its descriptor.
    let memory = std::fs::OpenOptions::new()
        .write(true)
        .open(&clients_ring)
        .expect("open the ring's memory");
    std::os::unix::fs::FileExt::write_all_at(&memory, &(1u64 << 40).to_ne_bytes(), 128)
        .expect("plant the cursor");
    let output = victim.wait_with_output().expect("submit ends");
    let said = stderr(&output);
    assert!(
        !output.status.success(),
        "a corrupted ring fails the run:\n{said}"
    );
    assert!(said.contains("RING CORRUPTED"), "{said}");
    assert!(
        said.contains(".ring is corrupted"),
        "the ring is named:\n{said}"
    );
    assert!(
        serve.child.try_wait().expect("server status").is_none(),
        "the server died"
    );
    // The server still answers another client through shared memory.
    let output = hotwasm()
        .args(["submit", "--redis", &redis.url(), "--count", "200"])
        .args(["--results", "shm", "--json"])
        .output()
        .expect("submit runs");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(summary(&output)["verdicts"], 200);
    assert!(
        serve.terminate().success(),
        "serve exits cleanly on SIGTERM"
    );
}
