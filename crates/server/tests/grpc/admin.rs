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
                raw.activate_module(v1::ActivateModuleRequest {
                    version: spec.into(),
                })
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
                raw.rollback_module(v1::RollbackModuleRequest { name: name.into() })
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
            raw.activate_module(v1::ActivateModuleRequest {
                version: "ecdsa@ffffffffffff".into(),
            })
            .await
            .map(drop),
            raw.activate_module(v1::ActivateModuleRequest {
                version: "ecdsa".into(),
            })
            .await
            .map(drop),
            raw.rollback_module(v1::RollbackModuleRequest {
                name: "ecdsa".into(),
            })
            .await
            .map(drop),
            raw.load_module(v1::LoadModuleRequest {
                name: "ecdsa".into(),
                wasm: fast.bytes.to_vec(),
                activate: true,
                ..Default::default()
            })
            .await
            .map(drop),
            raw.load_module(v1::LoadModuleRequest {
                name: "ecdsa".into(),
                wasm: b"\0asm not really".to_vec(),
                activate: true,
                ..Default::default()
            })
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
