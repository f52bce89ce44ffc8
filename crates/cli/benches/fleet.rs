//! Fleet-wide activation: the time from `hotwasm modules activate --redis`
//! to the last of three `hotwasm serve` servers serving the new version,
//! on one machine with a real redis-server. Two built-in versions of the
//! Schnorr module alternate; each server has compiled both before (the
//! first activations, which compile, are shown apart), as a published
//! module is compiled when it is announced.
//!
//! `cargo bench -p hotwasm --bench fleet`; `HOTWASM_FLEET_ROUNDS`
//! (default 20) activations. Each server's swap time is its own clock's,
//! on the same machine as the command's.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hotwasm_tests::RedisServer;

fn hotwasm() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hotwasm"));
    command.env("HOTWASM_LOG", "warn");
    command
}

fn serve(redis: &str, name: &str, registry: &std::path::Path, key: &std::path::Path) -> Child {
    let mut child = hotwasm()
        .args([
            "serve",
            "--redis",
            redis,
            "--grpc",
            "127.0.0.1:0",
            "--workers",
            "1",
        ])
        .args(["--name", name])
        .arg("--registry")
        .arg(registry)
        .arg("--reply-key")
        .arg(key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut reader = BufReader::new(child.stderr.take().expect("piped"));
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).expect("log") > 0,
            "serve exited"
        );
        if line.contains("gRPC on ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in reader.lines() {});
    child
}

fn activate(redis: &str, spec: &str) -> (Duration, u64) {
    let started = Instant::now();
    let output = hotwasm()
        .args([
            "modules", "activate", spec, "--redis", redis, "--wait", "30", "--by", "bench",
        ])
        .output()
        .expect("activate runs");
    let wall = started.elapsed();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let millis = text
        .split("the last swapped ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("activate says when the last server swapped: {text}"));
    (wall, millis)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds: usize = std::env::var("HOTWASM_FLEET_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let redis = RedisServer::start();
    let url = redis.url();
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("reply.key");
    let made = hotwasm()
        .args(["reply-key", "--out"])
        .arg(&key)
        .output()
        .expect("reply-key");
    assert!(made.status.success());
    let mut servers: Vec<Child> = ["a", "b", "c"]
        .iter()
        .map(|name| serve(&url, name, &dir.path().join(name), &key))
        .collect();
    let versions = ["fast", "fast-opt-s"].map(|variant| {
        let module = hotwasm_modules::find("schnorr", variant).expect("variant built");
        format!("schnorr@{}", module.hash())
    });
    // The servers start on the first version (compiled outside the
    // artifact cache); the first activation of each version through the
    // fleet compiles it there. Those are shown, not counted.
    let cold = 3;
    let mut times = Vec::new();
    for round in 0..rounds + cold {
        let (wall, last) = activate(&url, &versions[round % 2]);
        if round < cold {
            println!(
                "  first activation of {} on these servers (compiles unless already serving): {last} ms (command wall {wall:?})",
                versions[round % 2]
            );
        } else {
            println!(
                "  activation {}: last server swapped {last} ms after the command (command wall {wall:?})",
                round - cold + 1
            );
            times.push(last);
        }
    }
    times.sort_unstable();
    println!(
        "fleet activation, 3 servers: median {} ms, min {} ms, max {} ms over {} activations",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
    for server in &mut servers {
        let _ = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status();
        let _ = server.wait();
    }
}
