//! The `hotwasm` binary, run as a user runs it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use hotwasm_jobs::Verdict;

/// An empty registry, so no test sees the user's own.
fn empty_registry() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

fn hotwasm(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotwasm"))
        .args(args)
        .env("HOTWASM_REGISTRY", empty_registry())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hotwasm starts");
    let mut pipe = child.stdin.take().expect("piped stdin");
    let input = stdin.unwrap_or_default().to_vec();
    let writer = std::thread::spawn(move || {
        // The child may exit before reading everything (bad arguments).
        let _ = pipe.write_all(&input);
    });
    let output = child.wait_with_output().expect("hotwasm runs");
    writer.join().expect("writer thread");
    output
}

fn verdicts(output: &Output) -> Vec<Verdict> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| Verdict::parse(line).unwrap_or_else(|e| panic!("not a verdict: {line}: {e}")))
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn generated_jobs_pass_check_on_every_runtime() {
    let jobs = hotwasm(
        &[
            "generate",
            "--count",
            "120",
            "--scheme",
            "mixed",
            "--invalid-ratio",
            "0.3",
        ],
        None,
    );
    assert!(jobs.status.success(), "{}", stderr(&jobs));
    assert_eq!(String::from_utf8_lossy(&jobs.stdout).lines().count(), 120);
    for runtime in ["native", "wasmtime", "wasmi", "wasm3"] {
        let out = hotwasm(
            &["verify", "--runtime", runtime, "--check"],
            Some(&jobs.stdout),
        );
        assert!(out.status.success(), "{runtime}: {}", stderr(&out));
        let verdicts = verdicts(&out);
        assert_eq!(verdicts.len(), 120, "{runtime}");
        assert!(verdicts.iter().all(|v| v.runtime == runtime));
        assert!(verdicts.iter().any(|v| v.valid) && verdicts.iter().any(|v| !v.valid));
        if runtime != "native" {
            let module = verdicts[0].module.as_deref().unwrap_or_default();
            assert!(
                module.starts_with("schnorr@") || module.starts_with("ecdsa@"),
                "{module}"
            );
        }
    }
}

#[test]
fn input_file_and_variant_are_honoured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.jsonl");
    let jobs = hotwasm(&["generate", "--count", "20", "--scheme", "ecdsa"], None);
    std::fs::write(&path, &jobs.stdout).expect("write jobs");
    let path = path.to_string_lossy().into_owned();
    let out = hotwasm(
        &[
            "verify",
            "--runtime",
            "wasm3",
            "--variant",
            "compat",
            "--input",
            &path,
            "--check",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let compat = hotwasm_modules::find("ecdsa", "compat")
        .expect("built")
        .id();
    assert!(
        verdicts(&out)
            .iter()
            .all(|v| v.module.as_deref() == Some(compat.as_str()))
    );
}

#[test]
fn check_fails_on_a_wrong_expectation() {
    let jobs = hotwasm(&["generate", "--count", "5", "--invalid-ratio", "0"], None);
    let flipped =
        String::from_utf8_lossy(&jobs.stdout).replacen("\"expect\":true", "\"expect\":false", 1);
    let out = hotwasm(
        &["verify", "--runtime", "native", "--check"],
        Some(flipped.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("expected valid=false, got valid=true"),
        "{}",
        stderr(&out)
    );
    // Without --check the same run succeeds: verdicts are the product.
    let out = hotwasm(&["verify", "--runtime", "native"], Some(flipped.as_bytes()));
    assert!(out.status.success());
}

#[test]
fn malformed_jobs_get_error_verdicts_and_the_batch_goes_on() {
    let good = String::from_utf8_lossy(
        &hotwasm(
            &[
                "generate",
                "--count",
                "2",
                "--scheme",
                "schnorr",
                "--invalid-ratio",
                "0",
            ],
            None,
        )
        .stdout,
    )
    .into_owned();
    let mut good_lines = good.lines();
    let first = good_lines.next().expect("a job");
    let last = good_lines.next().expect("a job");
    let ten_mib = "00".repeat(10 * 1024 * 1024);
    let input = [
        first.to_string(),
        r#"{"id":"bad-hex","scheme":"schnorr","public_key":"zz","signature":"00","message":"00"}"#.into(),
        r#"{"id":"short-key","scheme":"schnorr","public_key":"0102","signature":"00","message":"00","expect":false}"#.into(),
        r#"{"id":"short-ecdsa","scheme":"ecdsa","public_key":"02","signature":"3000","message":""}"#.into(),
        r#"{"id":"rsa","scheme":"rsa","public_key":"00","signature":"00","message":"00"}"#.into(),
        r#"{"id":"empty","scheme":"schnorr","public_key":"","signature":"","message":""}"#.into(),
        r#"{"id":"","scheme":"schnorr","public_key":"00","signature":"00","message":"00"}"#.into(),
        format!(r#"{{"id":"huge","scheme":"schnorr","public_key":"00","signature":"00","message":"{ten_mib}"}}"#),
        String::new(),
        r#"{"id":"truncated","scheme":"schno"#.into(),
        r#"[1, 2, 3]"#.into(),
        last.to_string(),
    ]
    .join("\n");
    for runtime in ["native", "wasmtime", "wasmi", "wasm3"] {
        let out = hotwasm(&["verify", "--runtime", runtime], Some(input.as_bytes()));
        assert!(out.status.success(), "{runtime}: {}", stderr(&out));
        let verdicts = verdicts(&out);
        // One verdict per non-blank line, in order.
        assert_eq!(verdicts.len(), 11, "{runtime}");
        assert!(
            verdicts[0].valid && verdicts[10].valid,
            "{runtime}: the good jobs still pass"
        );
        let reason = |i: usize| verdicts[i].reason.clone().unwrap_or_default();
        assert!(verdicts[1..10].iter().all(|v| !v.valid), "{runtime}");
        assert!(
            reason(1).contains("line 2") && reason(1).contains("public_key is not valid hex"),
            "{}",
            reason(1)
        );
        assert!(reason(2).contains("public key is 2 bytes"), "{}", reason(2));
        assert!(reason(3).contains("public key is 1 bytes"), "{}", reason(3));
        assert!(reason(4).contains("unknown scheme"), "{}", reason(4));
        assert!(reason(5).contains("public key is 0 bytes"), "{}", reason(5));
        assert!(reason(6).contains("id is empty"), "{}", reason(6));
        assert!(
            reason(7).contains("line 8") && reason(7).contains("--max-message-bytes"),
            "{}",
            reason(7)
        );
        assert!(
            reason(8).contains("line 10") && reason(8).contains("EOF"),
            "{}",
            reason(8)
        );
        assert!(reason(9).contains("line 11"), "{}", reason(9));
        assert_eq!(verdicts[8].id, None);
        assert!(verdicts[1].module.is_none() && verdicts[2].module.is_some());

        let checked = hotwasm(
            &["verify", "--runtime", runtime, "--check"],
            Some(input.as_bytes()),
        );
        assert_eq!(
            checked.status.code(),
            Some(1),
            "{runtime}: unreadable lines fail --check"
        );
    }
}

#[test]
fn a_bigger_limit_lets_a_ten_mib_message_through() {
    let message = "ab".repeat(10 * 1024 * 1024);
    let job = format!(
        r#"{{"id":"huge","scheme":"ecdsa","public_key":"0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798","signature":"3006020101020101","message":"{message}","expect":false}}"#
    );
    let out = hotwasm(
        &[
            "verify",
            "--runtime",
            "wasmtime",
            "--max-message-bytes",
            "20000000",
            "--check",
        ],
        Some(job.as_bytes()),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let verdicts = verdicts(&out);
    assert_eq!(verdicts.len(), 1);
    assert!(verdicts[0].module.is_some(), "the job reached the module");
}

#[test]
fn modules_list_shows_every_built_module() {
    let out = hotwasm(&["modules", "list"], None);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    for module in hotwasm_modules::built() {
        assert!(table.contains(&module.id()), "{table}");
    }
    let out = hotwasm(&["modules", "list", "--json"], None);
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(listing["registry"].as_array().map(Vec::len), Some(0));
    let rows = listing["built"].as_array().expect("an array");
    assert_eq!(rows.len(), hotwasm_modules::built().len());
    assert!(rows.iter().all(|r| r["bytes"].as_u64().unwrap_or(0) > 1000));
}

#[test]
fn bad_arguments_are_clear_errors() {
    let out = hotwasm(&["verify", "--runtime", "v8"], Some(b""));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown runtime"), "{}", stderr(&out));
    let out = hotwasm(&["verify", "--variant", "turbo"], Some(b""));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no schnorr module in variant \"turbo\""),
        "{}",
        stderr(&out)
    );
    let out = hotwasm(&["verify", "--input", "/nonexistent/jobs.jsonl"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/jobs.jsonl"),
        "{}",
        stderr(&out)
    );
    let out = hotwasm(&["generate", "--invalid-ratio", "2"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn adversarial_jobs_pass_check_on_every_runtime() {
    let kinds = hotwasm_jobs::adversarial::KINDS.len();
    let count = (2 * kinds).to_string();
    let jobs = hotwasm(&["generate", "--adversarial", "--count", &count], None);
    assert!(jobs.status.success(), "{}", stderr(&jobs));
    let text = String::from_utf8_lossy(&jobs.stdout);
    assert_eq!(text.lines().count(), 2 * kinds);
    assert!(text.contains("ecdsa-key-prefix-05-even-y"), "{text}");
    for runtime in ["native", "wasmtime", "wasmi", "wasm3"] {
        let out = hotwasm(
            &["verify", "--runtime", runtime, "--check"],
            Some(&jobs.stdout),
        );
        assert!(out.status.success(), "{runtime}: {}", stderr(&out));
        assert_eq!(verdicts(&out).len(), 2 * kinds, "{runtime}");
    }
    let some = hotwasm(
        &[
            "generate",
            "--kinds",
            "schnorr-s-eq-n,ecdsa-der-indefinite-length",
            "--count",
            "4",
        ],
        None,
    );
    assert!(some.status.success(), "{}", stderr(&some));
    let ids: Vec<String> = String::from_utf8_lossy(&some.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("json")["id"].to_string()
        })
        .collect();
    assert!(
        ids[0].contains("schnorr-s-eq-n") && ids[1].contains("indefinite"),
        "{ids:?}"
    );
    let unknown = hotwasm(&["generate", "--kinds", "nope"], None);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("unknown adversarial kind"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn reclaim_after_inf_is_a_clear_error_not_a_panic() {
    // `--reclaim-after inf` used to reach Duration::from_secs_f64 and panic.
    let commands: [&[&str]; 6] = [
        &[
            "serve",
            "--redis",
            "redis://127.0.0.1:1",
            "--reclaim-after",
            "inf",
        ],
        &[
            "serve",
            "--redis",
            "redis://127.0.0.1:1",
            "--reclaim-after",
            "NaN",
        ],
        &[
            "serve",
            "--redis",
            "redis://127.0.0.1:1",
            "--reclaim-after=-1",
        ],
        &[
            "submit",
            "--redis",
            "redis://127.0.0.1:1",
            "--timeout",
            "inf",
        ],
        &["submit", "--redis", "redis://127.0.0.1:1", "--timeout=-0.5"],
        &[
            "submit",
            "--redis",
            "redis://127.0.0.1:1",
            "--timeout",
            "1e300",
        ],
    ];
    for args in commands {
        let out = hotwasm(args, None);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            text.contains("is not a duration: give seconds"),
            "{args:?}: {text}"
        );
        assert!(!text.contains("panicked"), "{args:?}: {text}");
    }
}

#[test]
fn registry_commands_load_activate_rollback_and_verify_uses_them() {
    let registry = tempfile::tempdir().expect("temp dir");
    let files = tempfile::tempdir().expect("temp dir");
    let reg = registry.path().to_string_lossy().into_owned();
    let write = |name: &str, bytes: &[u8]| {
        let path = files.path().join(name);
        std::fs::write(&path, bytes).expect("write module");
        path.to_string_lossy().into_owned()
    };
    let v1 = hotwasm_modules::find("schnorr", "fast").expect("built");
    let v2 = hotwasm_modules::find("schnorr", "default").expect("built");
    let v1_path = write("schnorr.wasm", v1.bytes);
    let v2_path = write("other.wasm", v2.bytes);

    let out = hotwasm(&["modules", "load", &v1_path, "--registry", &reg], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&v1.id()));
    let out = hotwasm(
        &[
            "modules",
            "load",
            &v2_path,
            "--name",
            "schnorr",
            "--registry",
            &reg,
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let broken = write("broken.wasm", b"\0asm\x01\0\0\0junk");
    let out = hotwasm(
        &[
            "modules",
            "load",
            &broken,
            "--name",
            "schnorr",
            "--registry",
            &reg,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));

    let jobs = hotwasm(&["generate", "--count", "30", "--scheme", "schnorr"], None).stdout;
    let module_of = |out: &Output| verdicts(out)[0].module.clone().unwrap_or_default();
    let out = hotwasm(&["verify", "--check", "--registry", &reg], Some(&jobs));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        module_of(&out),
        v1.id(),
        "the first loaded version is active"
    );

    let spec = format!("schnorr@{}", &v2.hash()[..6]);
    let out = hotwasm(&["modules", "activate", &spec, "--registry", &reg], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = hotwasm(&["verify", "--check", "--registry", &reg], Some(&jobs));
    assert_eq!(module_of(&out), v2.id());

    // Swapping every 10 jobs alternates the two versions.
    let out = hotwasm(
        &[
            "verify",
            "--check",
            "--swap-every",
            "10",
            "--registry",
            &reg,
        ],
        Some(&jobs),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let ids: Vec<String> = verdicts(&out)
        .into_iter()
        .filter_map(|v| v.module)
        .collect();
    assert_eq!(ids[9], v2.id());
    assert_eq!(ids[10], v1.id());
    assert_eq!(ids[20], v2.id());

    let out = hotwasm(
        &["modules", "rollback", "schnorr", "--registry", &reg],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = hotwasm(&["verify", "--registry", &reg], Some(&jobs));
    assert_eq!(module_of(&out), v1.id());
    let out = hotwasm(
        &["modules", "rollback", "schnorr", "--registry", &reg],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "no history left");

    let out = hotwasm(&["modules", "list", "--json", "--registry", &reg], None);
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let states: Vec<&str> = listing["registry"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["state"].as_str())
        .collect();
    assert_eq!(states.len(), 2);
    assert!(states.contains(&"active"));

    // Every local action, refusals included, is in the registry's trail.
    let trail = std::fs::read_to_string(registry.path().join("audit.jsonl")).expect("trail");
    let entries: Vec<serde_json::Value> = trail
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let summary: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default(),
                e["result"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("load", "ok"),
            ("load", "ok"),
            ("load", "refused"),
            ("activate", "ok"),
            ("rollback", "ok"),
            ("rollback", "refused"),
        ],
        "{trail}"
    );
    assert!(
        entries
            .iter()
            .all(|e| e["via"] == "cli"
                && e["who"].as_str().is_some_and(|who| who.starts_with("uid ")))
    );
    assert_eq!(entries[3]["target"], spec.as_str());
    assert!(
        entries[2]["target"]
            .as_str()
            .is_some_and(|t| t.ends_with("broken.wasm"))
    );
    use std::os::unix::fs::MetadataExt as _;
    let mode = std::fs::metadata(registry.path().join("audit.jsonl"))
        .expect("trail")
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// `hotwasm` with `HOTWASM_TRUSTED_KEYS` set (or removed), warnings logged.
fn hotwasm_trusting(args: &[&str], trusted: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hotwasm"));
    command
        .args(args)
        .env("HOTWASM_REGISTRY", empty_registry())
        .env("HOTWASM_LOG", "warn")
        .env_remove("HOTWASM_TRUSTED_KEYS");
    if let Some(keys) = trusted {
        command.env("HOTWASM_TRUSTED_KEYS", keys);
    }
    command.output().expect("hotwasm runs")
}

#[test]
fn modules_load_takes_only_signed_modules_unless_unsigned_are_allowed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = dir.path().join("registry").to_string_lossy().into_owned();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let run = |args: &[&str]| hotwasm_trusting(args, None);

    // Keys: a secret file only its owner reads, never overwritten.
    let out = run(&["keys", "generate", &path("mine")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let key_id = printed
        .lines()
        .find_map(|line| line.strip_prefix("key id "))
        .expect("the key id is printed")
        .to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path("mine.key"))
            .expect("secret key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = run(&["keys", "generate", &path("mine")]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(run(&["keys", "generate", &path("other")]).status.success());

    let built = hotwasm_modules::find("schnorr", "fast").expect("built");
    let v2 = hotwasm_tests::second_version(built.bytes, "v2");
    std::fs::write(path("v2.wasm"), &v2).expect("write");
    for (key, out) in [("mine.key", "signed.wasm"), ("other.key", "other.wasm")] {
        let signed = run(&[
            "modules",
            "sign",
            &path("v2.wasm"),
            "--key",
            &path(key),
            "--out",
            &path(out),
        ]);
        assert!(signed.status.success(), "{}", stderr(&signed));
    }
    let mut tampered = std::fs::read(path("signed.wasm")).expect("read");
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    std::fs::write(path("tampered.wasm"), &tampered).expect("write");
    let load = |file: &str, extra: &[&str], trusted: Option<&str>| {
        let mut args = vec![
            "modules",
            "load",
            file,
            "--name",
            "schnorr",
            "--registry",
            &registry,
        ];
        args.extend_from_slice(extra);
        hotwasm_trusting(&args, trusted)
    };
    let mine = path("mine.pub");
    let trusting_mine = ["--trusted-key", mine.as_str()];

    // No key trusted: refused, with what to do about it.
    let out = load(&path("signed.wasm"), &[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no key is trusted"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("hotwasm modules sign"),
        "{}",
        stderr(&out)
    );
    for (file, says) in [
        ("v2.wasm", "it is not signed"),
        ("tampered.wasm", "changed after key"),
        ("other.wasm", "signed by a key that is not trusted"),
    ] {
        let out = load(&path(file), &trusting_mine, None);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{file}: {}", stderr(&out));
        assert!(stderr(&out).contains("refused"), "{file}: {}", stderr(&out));
    }
    let listed = run(&["modules", "list", "--json", "--registry", &registry]);
    let listing: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(listing["registry"].as_array().map(Vec::len), Some(0));

    // Trusted by flag, or by the environment.
    let out = load(&path("signed.wasm"), &trusting_mine, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = hotwasm_trusting(
        &["modules", "verify-signature", &path("signed.wasm")],
        Some(&mine),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&key_id));

    // A detached signature, embedded on the way in.
    let v3 = hotwasm_tests::second_version(built.bytes, "v3");
    std::fs::write(path("v3.wasm"), &v3).expect("write");
    let signed = run(&[
        "modules",
        "sign",
        &path("v3.wasm"),
        "--key",
        &path("mine.key"),
        "--detached",
        &path("v3.sig"),
    ]);
    assert!(signed.status.success(), "{}", stderr(&signed));
    assert_eq!(
        std::fs::read(path("v3.wasm")).expect("read"),
        v3,
        "left as it was"
    );
    let out = load(
        &path("v3.wasm"),
        &["--signature", &path("v3.sig")],
        Some(&mine),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // --allow-unsigned: loaded, said loudly at start and for the module.
    let out = load(&path("other.wasm"), &["--allow-unsigned"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("WARNING: --allow-unsigned"), "{log}");
    let id =
        hotwasm_modules::module_id("schnorr", &std::fs::read(path("other.wasm")).expect("read"));
    assert!(
        log.lines().any(|line| line.contains("WARN")
            && line.contains("NOT TRUSTED")
            && line.contains(&id)),
        "{log}"
    );
}

#[test]
fn tiered_serving_needs_wasmtime_and_another_wasm_runtime_first() {
    let on_wasmi = hotwasm(&["serve", "--runtime", "wasmi", "--tiered"], None);
    assert_eq!(on_wasmi.status.code(), Some(2), "{}", stderr(&on_wasmi));
    assert!(
        stderr(&on_wasmi).contains("needs --runtime wasmtime"),
        "{}",
        stderr(&on_wasmi)
    );
    let native_first = hotwasm(&["serve", "--tiered", "native"], None);
    assert_eq!(
        native_first.status.code(),
        Some(2),
        "{}",
        stderr(&native_first)
    );
    assert!(
        stderr(&native_first).contains("must be another wasm runtime"),
        "{}",
        stderr(&native_first)
    );
}
