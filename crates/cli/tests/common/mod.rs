//! What the process tests share: `hotwasm` with the tests' reply key, and
//! `hotwasm serve` as a child process.

#![allow(dead_code, reason = "each test binary uses its own part")]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Output, Stdio};

/// `hotwasm`, with the reply key every server and client of these tests
/// shares (`HOTWASM_REPLY_KEY`).
pub fn hotwasm() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hotwasm"));
    command
        .env_remove("HOTWASM_REDIS")
        .env("HOTWASM_LOG", "warn")
        .env("HOTWASM_REPLY_KEY", reply_key());
    command
}

/// A reply key made once per test process.
pub fn reply_key() -> &'static std::path::Path {
    static KEY: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    &KEY.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("reply.key");
        let made = Command::new(env!("CARGO_BIN_EXE_hotwasm"))
            .args(["reply-key", "--out"])
            .arg(&path)
            .output()
            .expect("reply-key runs");
        assert!(made.status.success(), "{}", stderr(&made));
        (dir, path)
    })
    .1
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Reads `hotwasm serve`'s log until the line that says where gRPC
/// listens (`... gRPC on http://<address>; ...`), which it writes once it
/// is ready; lines before it (warnings, say) are kept, not parsed. Returns
/// the address, and the reader positioned after that line.
pub fn grpc_address(stderr: ChildStderr) -> (String, BufReader<ChildStderr>) {
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
pub struct Serve {
    pub child: Child,
    pub registry: tempfile::TempDir,
    pub grpc: String,
}

impl Serve {
    pub fn start(redis: &str, name: &str) -> Serve {
        Serve::start_with(redis, name, &["--workers", "1"])
    }

    /// With flags of its own (`--workers` among them). Module
    /// administration takes the token in [`Serve::token`].
    pub fn start_with(redis: &str, name: &str, flags: &[&str]) -> Serve {
        Serve::start_in(tempfile::tempdir().expect("temp dir"), redis, name, flags)
    }

    /// With a registry prepared beforehand (modules loaded and active
    /// before the server takes its first job).
    pub fn start_in(registry: tempfile::TempDir, redis: &str, name: &str, flags: &[&str]) -> Serve {
        let token = registry.path().join("operator.token");
        // A server started again on its registry keeps its token.
        if !token.exists() {
            let made = hotwasm()
                .args(["admin-token", "operator", "--out"])
                .arg(&token)
                .output()
                .expect("admin-token runs");
            assert!(made.status.success(), "{}", stderr(&made));
        }
        // HOTWASM_TEST_SERVER_LOGS=DIR keeps each server's log there, at
        // debug for the server, to look into a run afterwards.
        let keep_logs = std::env::var_os("HOTWASM_TEST_SERVER_LOGS").map(std::path::PathBuf::from);
        let mut command = hotwasm();
        if keep_logs.is_some() {
            command.env(
                "HOTWASM_LOG",
                "info,hotwasm_server=debug,hotwasm_queue=debug",
            );
        }
        let mut child = command
            .args(["serve", "--redis", redis, "--grpc", "127.0.0.1:0"])
            .args(["--name", name])
            .arg("--admin-token")
            .arg(&token)
            .args(flags)
            .arg("--registry")
            .arg(registry.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hotwasm serve starts");
        let (grpc, reader) = grpc_address(child.stderr.take().expect("piped stderr"));
        // Keep draining stderr so the server never blocks on it.
        let log = keep_logs.map(|dir| dir.join(format!("{name}-{}.log", child.id())));
        std::thread::spawn(move || {
            let mut file = log.and_then(|path| std::fs::File::create(path).ok());
            for line in reader.lines() {
                if let (Some(file), Ok(line)) = (file.as_mut(), line) {
                    use std::io::Write as _;
                    let _ = writeln!(file, "{line}");
                }
            }
        });
        Serve {
            child,
            registry,
            grpc,
        }
    }

    /// The admin token file this server accepts.
    pub fn token(&self) -> std::path::PathBuf {
        self.registry.path().join("operator.token")
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
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

pub fn summary(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "summary is not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(output)
        )
    })
}

/// A server's `Stats` over gRPC.
pub fn stats(grpc: &str) -> hotwasm_proto::v1::StatsResponse {
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let mut client =
            hotwasm_proto::v1::verifier_client::VerifierClient::connect(grpc.to_string())
                .await
                .expect("connects");
        client
            .stats(hotwasm_proto::v1::StatsRequest {})
            .await
            .expect("stats")
            .into_inner()
    })
}

/// The module id serving `scheme` on a server (`ListModules`).
pub fn serving(grpc: &str, scheme: &str) -> String {
    let listed = hotwasm()
        .args(["modules", "list", "--json", "--server", grpc])
        .output()
        .expect("modules runs");
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listing: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    listing["serving"][scheme]
        .as_str()
        .unwrap_or_else(|| panic!("nothing serves {scheme}: {listing}"))
        .to_string()
}

/// Sends `signal` (`-STOP`, `-CONT`, `-KILL`, ...) to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill {signal} {pid}");
}

/// Waits (polling every 10 ms, at most `limit`) until `ready` holds;
/// panics with `what` otherwise.
pub fn wait_until(what: &str, limit: std::time::Duration, mut ready: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < limit,
            "gave up after {limit:?} waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A connection to the Redis at `redis_url`, for the tests' own queries.
pub fn redis_connection(redis_url: &str) -> redis::Connection {
    redis::Client::open(redis_url)
        .expect("Redis URL")
        .get_connection()
        .expect("connects to Redis")
}

/// The consumers of the default group, with how many jobs each holds
/// (`XINFO CONSUMERS`; none before the group exists).
pub fn consumers(redis_url: &str) -> Vec<(String, u64)> {
    let infos: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg("hotwasm:jobs")
        .arg("hotwasm")
        .query(&mut redis_connection(redis_url))
        .unwrap_or_default();
    infos
        .into_iter()
        .filter_map(|info| {
            let field = |name: &str| info.get(name).cloned();
            let name: String = redis::from_redis_value(field("name")?).ok()?;
            let pending: u64 = redis::from_redis_value(field("pending")?).ok()?;
            Some((name, pending))
        })
        .collect()
}

/// How many jobs of the default group `consumer` holds.
pub fn pending_of(redis_url: &str, consumer: &str) -> u64 {
    consumers(redis_url)
        .into_iter()
        .find_map(|(name, pending)| (name == consumer).then_some(pending))
        .unwrap_or(0)
}
