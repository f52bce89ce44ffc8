//! Module administration over gRPC and the status codes it promises.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_swap_and_roll_back_over_grpc() {
    let mut setup = Setup::new(RuntimeKind::Wasmtime);
    setup.registry = true;
    let running = setup.start().await;
    let mut client = running.client().await;
    let fast = hotwasm_modules::find("schnorr", "fast").expect("fast schnorr");
    let default = hotwasm_modules::find("schnorr", "default").expect("default schnorr");
    let jobs = jobs(6, SchemeChoice::Schnorr, 8);
    let module_of = |verdicts: &[v1::Verdict]| {
        let modules: Vec<_> = verdicts.iter().map(|v| v.module.clone()).collect();
        assert!(modules.windows(2).all(|w| w[0] == w[1]), "{modules:?}");
        modules[0].clone().expect("a module")
    };
    let serving = client.list_modules().await.expect("list").serving;
    assert_eq!(serving["schnorr"], fast.id());

    // The first version of a name becomes active.
    let first = client
        .load_module("schnorr", fast.bytes.to_vec(), false)
        .await
        .expect("load fast");
    assert_eq!(
        (first.id.as_str(), first.state.as_str()),
        (fast.id().as_str(), "active")
    );
    let second = client
        .load_module("schnorr", default.bytes.to_vec(), false)
        .await
        .expect("load default");
    assert_eq!(second.state, "available");
    assert_eq!(second.sha256, default.hash());

    let active = client.activate_module(&second.id).await.expect("activate");
    assert_eq!(active.id, default.id());
    let verdicts = client.submit_batch(&jobs).await.expect("batch");
    assert_eq!(module_of(&verdicts), default.id());
    for (job, verdict) in jobs.iter().zip(&verdicts) {
        assert_verdict(job, verdict, "wasmtime");
    }

    let back = client.rollback_module("schnorr").await.expect("rollback");
    assert_eq!(back.id, fast.id());
    let verdicts = client.submit_batch(&jobs).await.expect("batch");
    assert_eq!(module_of(&verdicts), fast.id());

    // Refused requests leave the serving version alone.
    let garbage = client
        .load_module("schnorr", b"\0asm not really".to_vec(), true)
        .await
        .expect_err("garbage is refused");
    assert!(
        matches!(
            garbage.code(),
            Some(Code::InvalidArgument | Code::FailedPrecondition)
        ),
        "{garbage}"
    );
    let unknown = client
        .activate_module("schnorr@ffffffffffff")
        .await
        .expect_err("unknown version");
    assert_eq!(unknown.code(), Some(Code::NotFound), "{unknown}");
    let no_history = client
        .rollback_module("ecdsa")
        .await
        .expect_err("nothing to roll back to");
    assert_eq!(
        no_history.code(),
        Some(Code::FailedPrecondition),
        "{no_history}"
    );
    let list = client.list_modules().await.expect("list");
    assert_eq!(list.serving["schnorr"], fast.id());
    let states: Vec<(&str, &str)> = list
        .versions
        .iter()
        .map(|v| (v.id.as_str(), v.state.as_str()))
        .collect();
    assert!(
        states.contains(&(first.id.as_str(), "active")),
        "{states:?}"
    );
    // Rolled past: available again, not a rollback target.
    assert!(
        states.contains(&(second.id.as_str(), "available")),
        "{states:?}"
    );
    let verdicts = client.submit_batch(&jobs).await.expect("batch");
    assert_eq!(module_of(&verdicts), fast.id());

    let stats = client.stats().await.expect("stats");
    assert!(stats.swaps >= 3, "{stats:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_without_a_registry_is_failed_precondition() {
    let running = Setup::new(RuntimeKind::Native).start().await;
    let mut client = running.client().await;
    let module = hotwasm_modules::find("ecdsa", "fast").expect("fast ecdsa");
    let error = client
        .load_module("ecdsa", module.bytes.to_vec(), true)
        .await
        .expect_err("no registry");
    assert_eq!(error.code(), Some(Code::FailedPrecondition), "{error}");
    let list = client
        .list_modules()
        .await
        .expect("list without a registry");
    assert!(list.versions.is_empty());
    assert_eq!(list.serving.len(), 2, "{:?}", list.serving);
    running.shutdown().await;
}

/// The status of a failed call made with the raw client.
fn status_of<T: std::fmt::Debug>(outcome: Result<T, tonic::Status>) -> tonic::Status {
    outcome.expect_err("the call is refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_version_specs_and_empty_names_are_invalid_argument() {
    // Used to be NOT_FOUND (no `@`, an unknown name with a short prefix)
    // and FAILED_PRECONDITION (an empty name to roll back).
    for registry in [true, false] {
        let mut setup = Setup::new(RuntimeKind::Native);
        setup.registry = registry;
        let running = setup.start().await;
        let mut raw = running.client().await.raw();
        for spec in [
            "",
            "schnorr",
            "schnorr@",
            "@3f1c",
            "schnorr@12",
            "nosuchmodule@12",
            "schnorr@not-hex",
            "../evil@3f1c",
        ] {
            let status = status_of(
                raw.activate_module(running.authorized(v1::ActivateModuleRequest {
                    version: spec.into(),
                }))
                .await,
            );
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "registry {registry}, {spec:?}: {status:?}"
            );
        }
        for name in ["", "a b", "../evil"] {
            let status = status_of(
                raw.rollback_module(
                    running.authorized(v1::RollbackModuleRequest { name: name.into() }),
                )
                .await,
            );
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "registry {registry}, rollback {name:?}: {status:?}"
            );
        }
        running.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_modules_listed_as_serving_can_be_activated() {
    // ListModules showed the built-in ids as serving, but activating one
    // answered NOT_FOUND with advice to run a CLI command.
    let mut setup = Setup::new(RuntimeKind::Wasmtime);
    setup.registry = true;
    let running = setup.start().await;
    let mut client = running.client().await;
    let fast = hotwasm_modules::find("schnorr", "fast").expect("fast schnorr");
    let default = hotwasm_modules::find("schnorr", "default").expect("default schnorr");
    let jobs = jobs(11, SchemeChoice::Schnorr, 6);
    let list = client.list_modules().await.expect("list");
    assert_eq!(list.serving["schnorr"], fast.id());
    let built: Vec<(&str, &str)> = list
        .built_in
        .iter()
        .map(|v| (v.id.as_str(), v.state.as_str()))
        .collect();
    for module in hotwasm_modules::built() {
        assert!(
            built.contains(&(module.id().as_str(), "built-in")),
            "{} missing from {built:?}",
            module.id()
        );
    }

    // Another built-in, by id or by a hash prefix: stored, then serving.
    let active = client
        .activate_module(&default.id())
        .await
        .expect("activate a built-in");
    assert_eq!(
        (active.id.as_str(), active.state.as_str()),
        (default.id().as_str(), "active")
    );
    for (job, verdict) in jobs
        .iter()
        .zip(client.submit_batch(&jobs).await.expect("batch"))
    {
        assert_verdict(job, &verdict, "wasmtime");
        assert_eq!(verdict.module.as_deref(), Some(default.id().as_str()));
    }
    // Back to the built-in that served at start, by a prefix of its hash.
    let back = client
        .activate_module(&format!("schnorr@{}", &fast.hash()[..6]))
        .await
        .expect("back to the first built-in");
    assert_eq!(back.id, fast.id());
    assert_eq!(
        client.list_modules().await.expect("list").serving["schnorr"],
        fast.id()
    );
    // Both are stored versions now, so a rollback works like any other.
    let rolled = client.rollback_module("schnorr").await.expect("rollback");
    assert_eq!(rolled.id, default.id());
    running.shutdown().await;

    // Without a registry the built-ins are still addressable, and on the
    // native runtime `name@native`, the id it serves under, is too.
    let running = Setup::new(RuntimeKind::Native).start().await;
    let mut client = running.client().await;
    let serving = client.list_modules().await.expect("list").serving;
    assert_eq!(serving["ecdsa"], "ecdsa@native");
    let active = client
        .activate_module("ecdsa@native")
        .await
        .expect("the serving id activates");
    assert_eq!(active.name, "ecdsa");
    let compat = hotwasm_modules::find("ecdsa", "compat").expect("compat ecdsa");
    let active = client
        .activate_module(&compat.id())
        .await
        .expect("a built-in id activates without a registry");
    assert_eq!(active.id, compat.id());
    let unknown = client
        .activate_module("ecdsa@ffffffffffff")
        .await
        .expect_err("nothing stored without a registry");
    assert_eq!(unknown.code(), Some(Code::FailedPrecondition), "{unknown}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_grpc_error_tells_a_remote_client_to_run_a_local_command() {
    let mut messages = Vec::new();
    for registry in [true, false] {
        let mut setup = Setup::new(RuntimeKind::Native);
        setup.registry = registry;
        let running = setup.start().await;
        let mut raw = running.client().await.raw();
        let fast = hotwasm_modules::find("ecdsa", "fast").expect("fast ecdsa");
        let calls = [
            raw.activate_module(running.authorized(v1::ActivateModuleRequest {
                version: "ecdsa@ffffffffffff".into(),
            }))
            .await
            .map(drop),
            raw.activate_module(running.authorized(v1::ActivateModuleRequest {
                version: "ecdsa".into(),
            }))
            .await
            .map(drop),
            raw.rollback_module(running.authorized(v1::RollbackModuleRequest {
                name: "ecdsa".into(),
            }))
            .await
            .map(drop),
            raw.load_module(running.authorized(v1::LoadModuleRequest {
                name: "ecdsa".into(),
                wasm: fast.bytes.to_vec(),
                activate: true,
                ..Default::default()
            }))
            .await
            .map(drop),
            raw.load_module(running.authorized(v1::LoadModuleRequest {
                name: "ecdsa".into(),
                wasm: b"\0asm not really".to_vec(),
                activate: true,
                ..Default::default()
            }))
            .await
            .map(drop),
        ];
        for outcome in calls {
            if let Err(status) = outcome {
                messages.push(format!("{:?}: {}", status.code(), status.message()));
            }
        }
        running.shutdown().await;
    }
    assert!(messages.len() >= 7, "{messages:#?}");
    for message in &messages {
        assert!(
            !message.contains("hotwasm ") && !message.contains("--"),
            "a remote client cannot run this: {message}"
        );
    }
}

/// A caller without the operator's token — another user on the machine
/// reaching the loopback port — administers nothing, and every attempt is
/// in the audit trail; the operator's own calls are too, by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_needs_an_admin_token_and_is_audited() {
    let mut setup = Setup::new(RuntimeKind::Wasmtime);
    setup.registry = true;
    let running = setup.start().await;
    let default = hotwasm_modules::find("schnorr", "default").expect("default schnorr");
    let serving = running
        .client()
        .await
        .list_modules()
        .await
        .expect("list")
        .serving["schnorr"]
        .clone();

    let stranger = AdminToken::generate("operator").expect("token");
    for (token, expected) in [
        (None, "needs an admin token"),
        (Some(stranger), "not one this server accepts"),
    ] {
        let mut client = running.client_with(token).await;
        let refusals = [
            client
                .load_module("schnorr", default.bytes.to_vec(), true)
                .await
                .expect_err("load refused"),
            client
                .activate_module(&default.id())
                .await
                .expect_err("activate refused"),
            client
                .rollback_module("schnorr")
                .await
                .expect_err("rollback refused"),
        ];
        for refusal in refusals {
            assert_eq!(refusal.code(), Some(Code::Unauthenticated), "{refusal}");
            assert!(refusal.to_string().contains(expected), "{refusal}");
        }
        // Reading stays open, and nothing changed.
        let list = client.list_modules().await.expect("list is open");
        assert_eq!(list.serving["schnorr"], serving);
        assert!(list.versions.is_empty(), "{:?}", list.versions);
    }

    let version = running
        .client()
        .await
        .activate_module(&default.id())
        .await
        .expect("the operator activates");
    assert_eq!(version.id, default.id());

    let audit = running.audit();
    assert_eq!(audit.len(), 7, "{audit:#?}");
    for entry in &audit[..6] {
        assert_eq!(entry["who"], "unauthenticated", "{entry}");
        assert_eq!(entry["result"], "refused", "{entry}");
        assert!(
            entry["via"]
                .as_str()
                .unwrap_or("")
                .starts_with("grpc 127.0.0.1:"),
            "{entry}"
        );
    }
    let actions: Vec<&str> = audit[..3]
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["load", "activate", "rollback"]);
    let granted = &audit[6];
    assert_eq!(granted["who"], "operator", "{granted}");
    assert_eq!(granted["action"], "activate", "{granted}");
    assert_eq!(granted["result"], "ok", "{granted}");
    assert!(
        granted["detail"]
            .as_str()
            .unwrap_or("")
            .contains(&default.id()),
        "{granted}"
    );
    // The token itself never reaches the trail.
    let text = std::fs::read_to_string(&running.audit_log).expect("audit file");
    assert!(!text.contains(&running.token.text()), "{text}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_admin_tokens_refuses_all_administration() {
    let mut setup = Setup::new(RuntimeKind::Wasmtime);
    setup.registry = true;
    setup.options.admin_tokens = hotwasm_auth::AdminTokens::default();
    let running = setup.start().await;
    let default = hotwasm_modules::find("schnorr", "default").expect("default schnorr");
    let refusal = running
        .client()
        .await
        .activate_module(&default.id())
        .await
        .expect_err("closed");
    assert_eq!(refusal.code(), Some(Code::PermissionDenied), "{refusal}");
    assert!(refusal.to_string().contains("no admin tokens"), "{refusal}");
    running.shutdown().await;
}

/// TLS with a certificate the client trusts through its CA file; the same
/// port refuses a plain-text client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_over_tls_with_a_trusted_ca() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("self-signed certificate");
    let cert_pem = certified.cert.pem();
    let mut setup = Setup::new(RuntimeKind::Wasmtime);
    setup.registry = true;
    setup.options.tls = Some(grpc::TlsIdentity {
        cert_pem: cert_pem.clone().into_bytes(),
        key_pem: certified.signing_key.serialize_pem().into_bytes(),
    });
    let running = setup.start().await;
    let port = running.url.rsplit(':').next().expect("port").to_string();
    let url = format!("https://localhost:{port}");
    let options = ConnectOptions {
        token: Some(running.token.clone()),
        tls_ca_pem: Some(cert_pem.into_bytes()),
        ..ConnectOptions::default()
    };
    let mut client = AdminClient::connect_with(&url, &options)
        .await
        .expect("TLS connection");
    let default = hotwasm_modules::find("schnorr", "default").expect("default schnorr");
    let version = client
        .activate_module(&default.id())
        .await
        .expect("activate over TLS");
    assert_eq!(version.id, default.id());

    let no_ca = match AdminClient::connect_with(
        &url,
        &ConnectOptions {
            token: Some(running.token.clone()),
            ..ConnectOptions::default()
        },
    )
    .await
    {
        Ok(_) => panic!("https without a CA is refused"),
        Err(e) => e,
    };
    assert!(no_ca.to_string().contains("--tls-ca"), "{no_ca}");
    let mut plain = running.client().await;
    assert!(
        plain.list_modules().await.is_err(),
        "plain text on a TLS port"
    );
    running.shutdown().await;
}
