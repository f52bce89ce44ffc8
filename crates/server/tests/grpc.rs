//! The gRPC API over real sockets: a server bound to `127.0.0.1:0`, started
//! with a shutdown signal, driven by the real tonic client and
//! `hotwasm_client::admin`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hotwasm_client::admin::{AdminClient, AdminError, verify_request};
use hotwasm_jobs::{Generator, Job, SchemeChoice};
use hotwasm_proto::v1;
use hotwasm_runtime::RuntimeKind;
use hotwasm_server::grpc::{self, GrpcError, GrpcOptions};
use hotwasm_server::{Server, ServerConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SERVER_NAME: &str = "grpc-test";

/// A server running on a free port until [`Running::shutdown`].
struct Running {
    server: Arc<Server>,
    url: String,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<Result<(), GrpcError>>,
    _registry: Option<tempfile::TempDir>,
}

struct Setup {
    runtime: RuntimeKind,
    workers: usize,
    registry: bool,
    options: GrpcOptions,
}

impl Setup {
    fn new(runtime: RuntimeKind) -> Setup {
        Setup {
            runtime,
            workers: 2,
            registry: false,
            options: GrpcOptions::default(),
        }
    }

    async fn start(self) -> Running {
        let registry = self
            .registry
            .then(|| tempfile::tempdir().expect("temporary registry"));
        let mut config = ServerConfig::new(self.runtime);
        config.name = SERVER_NAME.to_string();
        config.workers = self.workers;
        config.registry = registry.as_ref().map(|dir| dir.path().to_path_buf());
        let server = tokio::task::spawn_blocking(move || Server::start(config))
            .await
            .expect("start task")
            .expect("server starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(grpc::serve(
            Arc::clone(&server),
            listener,
            self.options,
            async {
                let _ = stopped.await;
            },
        ));
        Running {
            server,
            url,
            stop,
            serving,
            _registry: registry,
        }
    }
}

impl Running {
    async fn client(&self) -> AdminClient {
        AdminClient::connect(&self.url).await.expect("connect")
    }

    async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    async fn shutdown(self) {
        let _ = self.stop.send(());
        self.serving
            .await
            .expect("serve task")
            .expect("serve ends cleanly");
    }
}

fn jobs(seed: u64, scheme: SchemeChoice, count: usize) -> Vec<Job> {
    let mut generator = Generator::new(seed, scheme, 0.3);
    (0..count).map(|_| generator.job()).collect()
}

fn assert_verdict(job: &Job, verdict: &v1::Verdict, runtime: &str) {
    assert_eq!(verdict.id, job.id);
    assert_eq!(
        Some(verdict.valid),
        job.expect,
        "job {}: {:?}",
        job.id,
        verdict.reason
    );
    assert_eq!(verdict.runtime, runtime);
    assert_eq!(verdict.server, SERVER_NAME);
    let module = verdict.module.as_deref().expect("a module ran");
    assert!(module.starts_with(job.scheme.as_str()), "{module}");
}

fn bad_requests() -> Vec<(v1::VerifyRequest, &'static str)> {
    let valid = verify_request(&jobs(9, SchemeChoice::Schnorr, 1)[0]);
    vec![
        (
            v1::VerifyRequest {
                scheme: "rsa".into(),
                ..valid.clone()
            },
            "unknown scheme",
        ),
        (
            v1::VerifyRequest {
                id: String::new(),
                ..valid.clone()
            },
            "id is empty",
        ),
        (
            v1::VerifyRequest {
                message: vec![0; 1024 * 1024 + 1],
                ..valid.clone()
            },
            "more than the limit",
        ),
        (
            v1::VerifyRequest {
                public_key: vec![7; 4096],
                ..valid
            },
            "public_key",
        ),
    ]
}

fn assert_error_verdict(verdict: &v1::Verdict, request: &v1::VerifyRequest, reason: &str) {
    assert!(!verdict.valid);
    assert_eq!(verdict.id, request.id);
    assert_eq!(verdict.module, None);
    assert_eq!(verdict.server, SERVER_NAME);
    let text = verdict.reason.as_deref().unwrap_or_default();
    assert!(text.contains(reason), "{text:?} lacks {reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_verify_answers_valid_invalid_and_malformed_jobs() {
    let running = Setup::new(RuntimeKind::Wasmtime).start().await;
    let mut client = running.client().await;
    for job in jobs(1, SchemeChoice::Mixed, 60) {
        let verdict = client.verify(&job).await.expect("verify");
        assert_verdict(&job, &verdict, "wasmtime");
    }
    let mut raw = client.raw();
    let bad = bad_requests();
    for (request, reason) in &bad {
        let verdict = raw
            .verify(request.clone())
            .await
            .expect("a verdict, not an error");
        assert_error_verdict(verdict.get_ref(), request, reason);
    }
    let stats = client.stats().await.expect("stats");
    assert_eq!(stats.server, SERVER_NAME);
    assert_eq!(stats.runtime, "wasmtime");
    assert_eq!(stats.workers, 2);
    assert_eq!(stats.verdicts, 60);
    assert_eq!(stats.malformed, bad.len() as u64);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_answers_every_request_in_order_and_goes_on_after_bad_ones() {
    let running = Setup::new(RuntimeKind::Wasmtime).start().await;
    let jobs = jobs(2, SchemeChoice::Mixed, 200);
    let bad = bad_requests();
    // Every 40th request is a bad one; the stream must go on past it.
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for (index, job) in jobs.iter().enumerate() {
        if index % 40 == 7 {
            let (request, reason) = &bad[(index / 40) % bad.len()];
            requests.push(request.clone());
            expected.push(Err((request.clone(), *reason)));
        }
        requests.push(verify_request(job));
        expected.push(Ok(job));
    }
    let mut answers = running
        .client()
        .await
        .raw()
        .verify_stream(tokio_stream::iter(requests))
        .await
        .expect("stream opens")
        .into_inner();
    let mut received = 0;
    while let Some(verdict) = answers.message().await.expect("no stream error") {
        match &expected[received] {
            Ok(job) => assert_verdict(job, &verdict, "wasmtime"),
            Err((request, reason)) => assert_error_verdict(&verdict, request, reason),
        }
        received += 1;
    }
    assert_eq!(received, expected.len());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_batch_answers_in_the_order_of_the_jobs() {
    let running = Setup::new(RuntimeKind::Native).start().await;
    let jobs = jobs(3, SchemeChoice::Mixed, 300);
    let verdicts = running
        .client()
        .await
        .submit_batch(&jobs)
        .await
        .expect("batch");
    assert_eq!(verdicts.len(), jobs.len());
    for (job, verdict) in jobs.iter().zip(&verdicts) {
        assert_verdict(job, verdict, "native");
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_serving_then_not_serving_during_shutdown() {
    let running = Setup::new(RuntimeKind::Native).start().await;
    let mut health = HealthClient::new(running.channel().await);
    for service in ["", grpc::SERVICE_NAME] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("check");
        assert_eq!(
            answer.get_ref().status(),
            ServingStatus::Serving,
            "{service:?}"
        );
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope.v1.Nothing".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), Code::NotFound);

    let mut watch = health
        .watch(HealthCheckRequest {
            service: grpc::SERVICE_NAME.into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("watch").expect("a status");
    assert_eq!(first.status(), ServingStatus::Serving);
    let _ = running.stop.send(());
    let next = watch.message().await.expect("watch").expect("a status");
    assert_eq!(next.status(), ServingStatus::NotServing);
    // A watch never ends by itself; the client going away lets the drain finish.
    drop(watch);
    drop(health);
    running
        .serving
        .await
        .expect("serve task")
        .expect("serve ends cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let running = Setup::new(RuntimeKind::Native).start().await;
    let mut reflection = ServerReflectionClient::new(running.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("answer")
        .expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&grpc::SERVICE_NAME), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    drop(answers);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_get_resource_exhausted() {
    let limit = 64 * 1024;
    let mut setup = Setup::new(RuntimeKind::Native);
    setup.options.max_message_bytes = limit;
    let running = setup.start().await;
    let mut client = running.client().await;
    let job = &jobs(4, SchemeChoice::Ecdsa, 1)[0];
    let big = v1::VerifyRequest {
        message: vec![1; limit + 1],
        ..verify_request(job)
    };

    let unary = client
        .raw()
        .verify(big.clone())
        .await
        .expect_err("too large");
    assert_eq!(unary.code(), Code::ResourceExhausted, "{unary:?}");

    let batch = v1::SubmitBatchRequest {
        jobs: vec![big.clone()],
    };
    let batch = client
        .raw()
        .submit_batch(batch)
        .await
        .expect_err("too large");
    assert_eq!(batch.code(), Code::ResourceExhausted, "{batch:?}");

    let small = verify_request(job);
    let mut stream = client
        .raw()
        .verify_stream(tokio_stream::iter([small, big]))
        .await
        .expect("stream opens")
        .into_inner();
    let first = stream.message().await.expect("first verdict").expect("one");
    assert_eq!(Some(first.valid), job.expect);
    let error = stream.message().await.expect_err("too large");
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");

    // The server goes on serving.
    let verdict = client.verify(job).await.expect("verify");
    assert_verdict(job, &verdict, "native");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_past_the_client_deadline_gets_deadline_exceeded() {
    // wasmi on one worker: 200 ECDSA verifies take far longer than the
    // server's share of the deadline (deadline minus margin), and the margin
    // leaves the answer ample time to beat the tonic client's own timer
    // (which would report CANCELLED).
    let mut setup = Setup::new(RuntimeKind::Wasmi);
    setup.workers = 1;
    setup.options.deadline_margin = Duration::from_millis(400);
    let running = setup.start().await;
    let client = running.client().await;
    let jobs = jobs(5, SchemeChoice::Ecdsa, 200);
    let deadline = Duration::from_millis(450);

    let mut batch = tonic::Request::new(v1::SubmitBatchRequest {
        jobs: jobs.iter().map(verify_request).collect(),
    });
    batch.set_timeout(deadline);
    let error = client
        .raw()
        .submit_batch(batch)
        .await
        .expect_err("deadline");
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error:?}");

    let mut stream = tonic::Request::new(tokio_stream::iter(
        jobs.iter().map(verify_request).collect::<Vec<_>>(),
    ));
    stream.set_timeout(deadline);
    let mut answers = client
        .raw()
        .verify_stream(stream)
        .await
        .expect("stream opens")
        .into_inner();
    let error = loop {
        match answers.message().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream finished within the deadline"),
            Err(error) => break error,
        }
    };
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error:?}");
    drop(answers);
    running.shutdown().await;
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_an_in_flight_batch() {
    let mut setup = Setup::new(RuntimeKind::Native);
    setup.workers = 1;
    let running = setup.start().await;
    let mut client = running.client().await;
    let jobs = jobs(7, SchemeChoice::Mixed, 400);
    let batch = {
        let jobs = jobs.clone();
        tokio::spawn(async move { client.submit_batch(&jobs).await })
    };
    // Shut down once the batch is being worked on.
    let counters = running.server.pool().counters();
    while counters.verdicts.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let _ = running.stop.send(());
    let verdicts = batch
        .await
        .expect("batch task")
        .expect("the batch completes");
    assert_eq!(verdicts.len(), jobs.len());
    for (job, verdict) in jobs.iter().zip(&verdicts) {
        assert_verdict(job, verdict, "native");
    }
    running
        .serving
        .await
        .expect("serve task")
        .expect("serve ends cleanly");
    // Stopped: new connections are refused with a clear error.
    let error = AdminClient::connect(&running.url)
        .await
        .expect_err("stopped");
    assert!(matches!(error, AdminError::Connect { .. }), "{error}");
    assert!(error.to_string().contains(&running.url), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_nothing_is_a_clear_error() {
    for bad in [
        "not a url",
        "127.0.0.1:50051",
        "nonsense",
        "https://127.0.0.1:1",
    ] {
        let error = AdminClient::connect(bad).await.expect_err("bad url");
        assert!(matches!(error, AdminError::BadUrl { .. }), "{bad}: {error}");
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let error = AdminClient::connect(&url).await.expect_err("nothing there");
    assert!(matches!(error, AdminError::Connect { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&url) && text.contains("hotwasm serve"),
        "{text}"
    );
}
