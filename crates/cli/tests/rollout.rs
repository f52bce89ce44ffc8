//! Fleet-wide rollout with real processes: `hotwasm serve` servers on one
//! real `redis-server`, changed with `hotwasm modules … --redis`.
//!
//! The candidates are the real Schnorr guest, re-encoded: a second
//! version with the same behaviour (a custom section apart), one that
//! answers `valid: true` to every job with a long message without looking
//! at it (a shadow must catch it), and one that traps on those jobs (a
//! canary must roll it back). The tests wait for states, never for times.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Serve, hotwasm, serving, signal, stderr, summary, wait_until};
use hotwasm_tests::RedisServer;

/// Long enough for anything these tests wait for on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

fn honest() -> &'static [u8] {
    hotwasm_modules::find("schnorr", "fast")
        .expect("the fast variant is built")
        .bytes
}

/// A job whose message is 5,000 bytes and whose signature is wrong: every
/// honest module answers it invalid; the liar says valid.
fn long_invalid_job(n: usize) -> String {
    format!(
        "{{\"id\":\"long-{n}\",\"scheme\":\"schnorr\",\"public_key\":\"{}\",\"signature\":\"{}\",\"message\":\"{}\",\"expect\":false}}\n",
        "11".repeat(32),
        "22".repeat(64),
        "33".repeat(5000),
    )
}

/// `count` generated Schnorr jobs, then `long` long invalid ones spread
/// among them.
fn jobs_file(dir: &Path, count: u64, long: usize) -> PathBuf {
    let generated = hotwasm()
        .args(["generate", "--scheme", "schnorr", "--invalid-ratio", "0.3"])
        .args(["--count", &count.to_string()])
        .output()
        .expect("generate runs");
    assert!(generated.status.success(), "{}", stderr(&generated));
    let lines: Vec<&str> = std::str::from_utf8(&generated.stdout)
        .expect("UTF-8 jobs")
        .lines()
        .collect();
    let every = (lines.len() / long.max(1)).max(1);
    let mut input = String::new();
    for (i, line) in lines.iter().enumerate() {
        if long > 0 && i % every == 0 && i / every < long {
            input.push_str(&long_invalid_job(i / every));
        }
        input.push_str(line);
        input.push('\n');
    }
    let path = dir.join("jobs.jsonl");
    std::fs::write(&path, input).expect("write jobs");
    path
}

/// `hotwasm submit` of a jobs file; its summary.
fn submit(redis: &str, jobs: &Path) -> serde_json::Value {
    let output = hotwasm()
        .args(["submit", "--redis", redis, "--json", "--timeout", "120"])
        .arg("--input")
        .arg(jobs)
        .output()
        .expect("submit runs");
    assert!(output.status.success(), "{}", stderr(&output));
    summary(&output)
}

/// Every job answered once, rightly.
fn assert_every_job_answered(summary: &serde_json::Value, jobs: u64) {
    assert_eq!(summary["verdicts"], jobs, "{summary}");
    assert_eq!(summary["missing"], 0, "{summary}");
    assert_eq!(summary["mismatch_count"], 0, "{summary}");
}

/// `hotwasm modules ARGS --redis URL --by test`, which must succeed.
fn fleet(redis: &str, args: &[&str]) -> String {
    let output = fleet_output(redis, args);
    assert!(
        output.status.success(),
        "modules {args:?} failed: {}",
        stderr(&output)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn fleet_output(redis: &str, args: &[&str]) -> Output {
    hotwasm()
        .arg("modules")
        .args(args)
        .args(["--redis", redis, "--by", "test-operator"])
        .output()
        .expect("modules runs")
}

/// `modules status --json`.
fn status(redis: &str) -> serde_json::Value {
    serde_json::from_str(&fleet(redis, &["status", "--json"])).expect("status is JSON")
}

/// The fleet's history, oldest first.
fn history(redis: &str) -> Vec<serde_json::Value> {
    fleet(redis, &["history", "--json", "--count", "1000"])
        .lines()
        .map(|line| serde_json::from_str(line).expect("history is JSON lines"))
        .collect()
}

/// Signs `wasm` with the tests' key, writes it into `dir` and publishes
/// it; returns its `schnorr@sha256`.
fn publish(redis: &str, dir: &Path, file: &str, wasm: &[u8]) -> String {
    let path = dir.join(file);
    std::fs::write(&path, hotwasm_tests::signing::signed(wasm)).expect("write module");
    let out = fleet(
        redis,
        &[
            "publish",
            "--name",
            "schnorr",
            path.to_str().expect("UTF-8 path"),
        ],
    );
    let spec = out
        .split_whitespace()
        .find(|word| word.starts_with("schnorr@"))
        .unwrap_or_else(|| panic!("publish names the version: {out}"))
        .to_string();
    assert_eq!(spec.len(), "schnorr@".len() + 64, "{spec}");
    spec
}

/// Whether the module id `id` (`name@16 digits`) is the version `spec`.
fn is_version(id: &str, spec: &str) -> bool {
    let (Some((name, short)), Some((spec_name, sha))) = (id.split_once('@'), spec.split_once('@'))
    else {
        return false;
    };
    name == spec_name && sha.starts_with(short)
}

/// A server that trusts the tests' signing key, with one worker.
fn server(redis: &str, name: &str, key: &str) -> Serve {
    Serve::start_with(redis, name, &["--workers", "1", "--trusted-key", key])
}

/// What every test here starts from: a redis-server, a folder for
/// modules, and the public key (in that folder) the servers trust.
struct Setup {
    _redis: RedisServer,
    url: String,
    dir: tempfile::TempDir,
    key: String,
}

impl Setup {
    fn new() -> Setup {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let (_, public) = hotwasm_tests::signing::write_keys(dir.path());
        Setup {
            url: redis.url(),
            _redis: redis,
            dir,
            key: public.to_string_lossy().into_owned(),
        }
    }
}

/// One `activate --redis` swaps three servers; a fourth started afterwards
/// serves the fleet's version too; a version no server trusts is refused
/// by each, recorded, and the version before keeps serving.
#[test]
fn one_activate_swaps_every_server_and_a_late_server_converges() {
    let setup = Setup::new();
    let (url, dir, key) = (setup.url.clone(), setup.dir.path(), setup.key.clone());
    let servers: Vec<Serve> = ["a", "b", "c"]
        .iter()
        .map(|name| server(&url, name, &key))
        .collect();
    let v2 = publish(
        &url,
        dir,
        "v2.wasm",
        &hotwasm_tests::second_version(honest(), "v2"),
    );

    wait_until("three servers report", PATIENCE, || {
        status(&url)["servers"].as_array().map_or(0, Vec::len) == 3
    });
    let started = Instant::now();
    let out = fleet(&url, &["activate", &v2[..16], "--wait", "60"]);
    println!("activate --wait: {out}(wall {:?})", started.elapsed());
    assert!(out.contains("3 servers serve it"), "{out}");
    for serve in &servers {
        assert!(is_version(&serving(&serve.grpc, "schnorr"), &v2));
    }

    let late = server(&url, "d", &key);
    wait_until(
        "the late server serves the fleet's version",
        PATIENCE,
        || is_version(&serving(&late.grpc, "schnorr"), &v2),
    );

    // Unsigned: no server trusts it; each refuses and keeps v2.
    let unsigned = hotwasm_tests::second_version(honest(), "unsigned");
    let path = dir.join("unsigned.wasm");
    std::fs::write(&path, &unsigned).expect("write");
    fleet(
        &url,
        &[
            "publish",
            "--name",
            "schnorr",
            path.to_str().expect("UTF-8"),
        ],
    );
    let sha = hotwasm_modules::content_hash(&unsigned);
    fleet(&url, &["activate", &format!("schnorr@{sha}")]);
    wait_until("four refusals are recorded", PATIENCE, || {
        history(&url)
            .iter()
            .filter(|entry| entry["why"] == "refused")
            .count()
            == 4
    });
    let refusal = history(&url)
        .into_iter()
        .find(|entry| entry["why"] == "refused")
        .expect("a refusal");
    assert!(
        refusal["detail"]
            .as_str()
            .is_some_and(|d| d.contains("sign")),
        "{refusal}"
    );
    for serve in servers.iter().chain([&late]) {
        assert!(is_version(&serving(&serve.grpc, "schnorr"), &v2));
    }
    let manual: Vec<_> = history(&url)
        .into_iter()
        .filter(|entry| entry["why"] == "manual")
        .collect();
    assert_eq!(manual.len(), 2, "{manual:?}");
    assert_eq!(manual[0]["by"], "test-operator");
    assert_eq!(manual[0]["to"], v2.as_str());

    for serve in servers.into_iter().chain([late]) {
        assert!(serve.terminate().success());
    }
}

/// A shadow candidate that lies on jobs with long messages: the lie is
/// found, stored with both verdicts, the shadow stops, the active version
/// stays — and every delivered verdict is right throughout.
#[test]
fn a_shadow_that_disagrees_is_stopped_and_recorded_and_verdicts_stay_right() {
    let setup = Setup::new();
    let (url, dir, key) = (setup.url.clone(), setup.dir.path(), setup.key.clone());
    let servers = [server(&url, "a", &key), server(&url, "b", &key)];
    let before = serving(&servers[0].grpc, "schnorr");
    let liar = publish(
        &url,
        dir,
        "liar.wasm",
        &hotwasm_tests::hostile::liar_of(honest()),
    );
    fleet(
        &url,
        &[
            "shadow",
            &liar,
            "--sample",
            "1",
            "--promote-after",
            "1000000",
        ],
    );
    wait_until("both servers run the shadow", PATIENCE, || {
        status(&url)["servers"].as_array().is_some_and(|s| {
            s.len() == 2
                && s.iter()
                    .all(|s| s["trials"].as_array().is_some_and(|t| t.len() == 1))
        })
    });

    let jobs = jobs_file(dir, 400, 8);
    assert_every_job_answered(&submit(&url, &jobs), 408);

    wait_until("the shadow is aborted", PATIENCE, || {
        history(&url).iter().any(|entry| entry["why"] == "aborted")
    });
    let state = status(&url);
    assert!(state["schemes"]["schnorr"]["rollout"].is_null(), "{state}");
    let aborted = history(&url)
        .into_iter()
        .find(|entry| entry["why"] == "aborted")
        .expect("aborted");
    assert!(
        aborted["by"]
            .as_str()
            .is_some_and(|by| by.starts_with("server ")),
        "{aborted}"
    );

    let lines = fleet(&url, &["disagreements", "--json"]);
    let first: serde_json::Value =
        serde_json::from_str(lines.lines().next().expect("a disagreement")).expect("JSON");
    assert!(
        first["job"]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("long-")),
        "{first}"
    );
    assert_eq!(first["active"]["valid"], false, "{first}");
    assert_eq!(first["candidate"]["valid"], true, "{first}");
    assert!(
        first["candidate"]["module"]
            .as_str()
            .is_some_and(|m| is_version(m, &liar))
    );

    for serve in &servers {
        assert_eq!(serving(&serve.grpc, "schnorr"), before);
    }
    // Still right after the shadow ended.
    assert_every_job_answered(&submit(&url, &jobs), 408);
    for serve in servers {
        assert!(serve.terminate().success());
    }
}

/// A candidate that behaves as the active version does is promoted on
/// every server after N agreeing jobs, while jobs flow: runs of jobs are
/// submitted one after another from before the promotion until after it,
/// and each run gets every verdict, right and once.
#[test]
fn an_agreeing_shadow_is_promoted_everywhere_without_losing_a_verdict() {
    let setup = Setup::new();
    let (url, dir, key) = (setup.url.clone(), setup.dir.path(), setup.key.clone());
    let servers = [
        server(&url, "a", &key),
        server(&url, "b", &key),
        server(&url, "c", &key),
    ];
    let v1 = serving(&servers[0].grpc, "schnorr");
    let v2 = publish(
        &url,
        dir,
        "v2.wasm",
        &hotwasm_tests::second_version(honest(), "v2"),
    );
    fleet(
        &url,
        &["shadow", &v2, "--sample", "1", "--promote-after", "500"],
    );
    wait_until("all three servers run the shadow", PATIENCE, || {
        servers_with_trials(&url, 3)
    });

    let jobs = jobs_file(dir, 200, 0);
    let promoted = || history(&url).iter().any(|entry| entry["why"] == "promoted");
    let mut modules = std::collections::BTreeSet::new();
    let mut runs = 0;
    let started = Instant::now();
    // Until the promotion, then one run more: the versions' verdicts
    // before and after it all arrive.
    let mut after = false;
    loop {
        let done = promoted();
        let summary = submit(&url, &jobs);
        assert_every_job_answered(&summary, 200);
        assert_eq!(summary["duplicates"], 0, "{summary}");
        modules.extend(
            summary["per_module"]
                .as_object()
                .expect("per_module")
                .keys()
                .cloned(),
        );
        runs += 1;
        if after {
            break;
        }
        after = done;
        assert!(
            started.elapsed() < PATIENCE,
            "no promotion after {runs} runs"
        );
    }
    println!("{runs} runs of 200 jobs; verdicts from {modules:?}");
    for serve in &servers {
        let grpc = serve.grpc.clone();
        wait_until("every server serves the promoted version", PATIENCE, || {
            is_version(&serving(&grpc, "schnorr"), &v2)
        });
    }
    assert!(modules.contains(&v1), "{modules:?}");
    assert!(modules.iter().any(|m| is_version(m, &v2)), "{modules:?}");
    let state = status(&url);
    assert_eq!(
        state["schemes"]["schnorr"]["active"],
        v2.as_str(),
        "{state}"
    );
    assert!(state["schemes"]["schnorr"]["rollout"].is_null(), "{state}");
    for serve in servers {
        assert!(serve.terminate().success());
    }
}

/// Whether `count` servers report a trial each.
fn servers_with_trials(url: &str, count: usize) -> bool {
    status(url)["servers"].as_array().is_some_and(|servers| {
        servers
            .iter()
            .filter(|s| s["trials"].as_array().is_some_and(|t| t.len() == 1))
            .count()
            == count
    })
}

/// A canary that traps on some jobs rolls back by itself; the client gets
/// a right verdict for every job, the trapped ones included.
#[test]
fn a_canary_that_traps_rolls_back_by_itself_and_every_job_is_answered_right() {
    let setup = Setup::new();
    let (url, dir, key) = (setup.url.clone(), setup.dir.path(), setup.key.clone());
    let servers = [server(&url, "a", &key), server(&url, "b", &key)];
    let before = serving(&servers[0].grpc, "schnorr");
    let trapping = publish(
        &url,
        dir,
        "trapping.wasm",
        &hotwasm_tests::hostile::trapping_of(honest()),
    );
    fleet(
        &url,
        &[
            "canary",
            &trapping,
            "--percent",
            "100",
            "--max-error-rate",
            "0.0001",
            "--promote-after",
            "100000",
        ],
    );
    wait_until("both servers run the canary", PATIENCE, || {
        status(&url)["servers"].as_array().is_some_and(|s| {
            s.len() == 2
                && s.iter()
                    .all(|s| s["trials"].as_array().is_some_and(|t| t.len() == 1))
        })
    });

    let jobs = jobs_file(dir, 300, 30);
    let summary = submit(&url, &jobs);
    assert_every_job_answered(&summary, 330);

    wait_until("the canary is rolled back", PATIENCE, || {
        history(&url)
            .iter()
            .any(|entry| entry["why"] == "rolled-back")
    });
    let state = status(&url);
    assert!(state["schemes"]["schnorr"]["rollout"].is_null(), "{state}");
    for serve in &servers {
        let grpc = serve.grpc.clone();
        wait_until("the canary is gone from every server", PATIENCE, || {
            status(&url)["servers"].as_array().is_some_and(|s| {
                s.iter()
                    .all(|s| s["trials"].as_array().is_some_and(Vec::is_empty))
            })
        });
        assert_eq!(serving(&grpc, "schnorr"), before);
    }
    // The candidate served the jobs it could: some verdicts are its own.
    let per_module = summary["per_module"].as_object().expect("per_module");
    assert!(
        per_module
            .keys()
            .any(|module| is_version(module, &trapping)),
        "{per_module:?}"
    );
    for serve in servers {
        assert!(serve.terminate().success());
    }
}

/// A server killed (SIGKILL) during a shadow, and started again after the
/// fleet moved on: it converges to the fleet's version, and takes part in
/// the next trial.
#[test]
fn a_server_killed_during_a_rollout_converges_when_restarted() {
    let setup = Setup::new();
    let (url, dir, key) = (setup.url.clone(), setup.dir.path(), setup.key.clone());
    let a = server(&url, "a", &key);
    let b = server(&url, "b", &key);
    let v2 = publish(
        &url,
        dir,
        "v2.wasm",
        &hotwasm_tests::second_version(honest(), "v2"),
    );
    let v3 = publish(
        &url,
        dir,
        "v3.wasm",
        &hotwasm_tests::second_version(honest(), "v3"),
    );
    fleet(&url, &["shadow", &v2, "--promote-after", "1000000"]);
    wait_until("b runs the shadow", PATIENCE, || {
        status(&url)["servers"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["name"] == "b" && s["trials"].as_array().is_some_and(|t| t.len() == 1))
        })
    });

    let Serve {
        mut child,
        registry,
        ..
    } = b;
    signal(child.id(), "-KILL");
    let _ = child.wait();
    // The fleet moves on while b is down.
    fleet(&url, &["activate", &v3]);
    fleet(&url, &["shadow", &v2, "--promote-after", "1000000"]);
    wait_until("a serves v3", PATIENCE, || {
        is_version(&serving(&a.grpc, "schnorr"), &v3)
    });

    let b = Serve::start_in(
        registry,
        &url,
        "b",
        &["--workers", "1", "--trusted-key", &key],
    );
    wait_until(
        "the restarted server serves the fleet's version",
        PATIENCE,
        || is_version(&serving(&b.grpc, "schnorr"), &v3),
    );
    let rollout = status(&url)["schemes"]["schnorr"]["rollout"]["id"]
        .as_str()
        .expect("a shadow runs")
        .to_string();
    wait_until(
        "the restarted server runs the fleet's new trial",
        PATIENCE,
        || {
            status(&url)["servers"].as_array().is_some_and(|s| {
                s.iter().any(|s| {
                    s["name"] == "b"
                        && s["trials"].as_array().is_some_and(|t| {
                            t.len() == 1
                                && t[0]["rollout"] == rollout.as_str()
                                && is_version(t[0]["candidate"].as_str().unwrap_or(""), &v2)
                        })
                })
            })
        },
    );
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}
