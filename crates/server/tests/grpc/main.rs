//! The gRPC API over real sockets: a server bound to `127.0.0.1:0`, started
//! with a shutdown signal, driven by the real tonic client and
//! `hotwasm_client::admin`.
//!
//! # Layout
//!
//! - `main.rs`: the running server and the helpers every test shares.
//! - `verify.rs`: verification calls, their limits and deadlines.
//! - `admin.rs`: module administration and the status codes it promises.
//! - `signed.rs`: only modules signed by a trusted key load.
//! - `service.rs`: health, reflection, shutdown, connecting.
//! - `load.rs`: many clients at once, and refusal past capacity.
//! - `metrics.rs`: the Prometheus endpoint beside the API, and the
//!   Grafana dashboard that reads it.

mod admin;
mod load;
mod metrics;
mod service;
mod signed;
mod verify;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hotwasm_auth::{AdminToken, AdminTokens};
use hotwasm_client::admin::{AdminClient, AdminError, ConnectOptions, verify_request};
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
    /// The admin token the server accepts (the setup's operator).
    token: AdminToken,
    /// The audit trail's file.
    audit_log: std::path::PathBuf,
    _audit_dir: tempfile::TempDir,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<Result<(), GrpcError>>,
    _registry: Option<tempfile::TempDir>,
    _turn: Turn,
}

/// Tests that measure the whole process (its resident memory) must not
/// share it with other tests' servers: every server holds a shared turn,
/// a server started [`Setup::alone`] the only one.
static TURNS: std::sync::LazyLock<Arc<tokio::sync::RwLock<()>>> =
    std::sync::LazyLock::new(Arc::default);

/// A server's turn (see [`TURNS`]).
enum Turn {
    Shared(#[allow(dead_code, reason = "held, not read")] tokio::sync::OwnedRwLockReadGuard<()>),
    Alone(#[allow(dead_code, reason = "held, not read")] tokio::sync::OwnedRwLockWriteGuard<()>),
}

struct Setup {
    runtime: RuntimeKind,
    workers: usize,
    registry: bool,
    options: GrpcOptions,
    /// Accepted for administration, unless the test sets
    /// `options.admin_tokens` itself.
    token: AdminToken,
    trust: hotwasm_trust::Trust,
    alone: bool,
}

impl Setup {
    /// Runs while no other test of this binary has a server.
    fn alone(mut self) -> Setup {
        self.alone = true;
        self
    }

    fn new(runtime: RuntimeKind) -> Setup {
        let operator = AdminToken::generate("operator").expect("token");
        Setup {
            runtime,
            workers: 2,
            registry: false,
            options: GrpcOptions {
                admin_tokens: AdminTokens::new([&operator]),
                ..GrpcOptions::default()
            },
            token: operator,
            trust: hotwasm_trust::Trust::default(),
            alone: false,
        }
    }

    async fn start(self) -> Running {
        let turns = Arc::clone(&TURNS);
        let turn = if self.alone {
            Turn::Alone(turns.write_owned().await)
        } else {
            Turn::Shared(turns.read_owned().await)
        };
        let registry = self
            .registry
            .then(|| tempfile::tempdir().expect("temporary registry"));
        let mut config = ServerConfig::new(self.runtime);
        config.name = SERVER_NAME.to_string();
        config.workers = self.workers;
        config.modules.registry = registry.as_ref().map(|dir| dir.path().to_path_buf());
        let audit_dir = tempfile::tempdir().expect("temporary audit dir");
        let audit_log = audit_dir.path().join("audit.jsonl");
        config.modules.audit_log = Some(audit_log.clone());
        config.modules.trust = self.trust;
        // Honest calls and self-tests never come near these on a loaded
        // machine; no test here is about guest deadlines.
        config.modules.limits = hotwasm_runtime::Limits {
            call_timeout: Duration::from_secs(10),
            init_timeout: Duration::from_secs(10),
            ..hotwasm_runtime::Limits::default()
        };
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
            token: self.token,
            audit_log,
            _audit_dir: audit_dir,
            stop,
            serving,
            _registry: registry,
            _turn: turn,
        }
    }
}

impl Running {
    /// A client holding the operator's admin token.
    async fn client(&self) -> AdminClient {
        self.client_with(Some(self.token.clone())).await
    }

    /// A client holding `token`, or none.
    async fn client_with(&self, token: Option<AdminToken>) -> AdminClient {
        let options = ConnectOptions {
            token,
            ..ConnectOptions::default()
        };
        AdminClient::connect_with(&self.url, &options)
            .await
            .expect("connect")
    }

    /// `message` as a request carrying the operator's admin token, for
    /// the raw client.
    fn authorized<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            self.token.bearer().parse().expect("ASCII token"),
        );
        request
    }

    /// The audit trail so far, one JSON value per entry.
    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("audit lines are JSON"))
            .collect()
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

/// Holds a server's worker busy until opened (or dropped): it gives the
/// worker a job whose verdict callback waits for the gate, so with one
/// worker nothing queued behind it finishes while the gate is shut. What
/// the tests then see at a stop or a deadline is settled by construction,
/// not by how long verifying takes.
struct WorkerGate {
    /// Dropping it wakes the waiting callback.
    _shut: std::sync::mpsc::Sender<()>,
}

impl WorkerGate {
    /// Returns once the worker is held.
    async fn hold(server: &Server) -> WorkerGate {
        let (gate, opened) = std::sync::mpsc::channel::<()>();
        let (held, holding) = oneshot::channel::<()>();
        let job = jobs(99, SchemeChoice::Schnorr, 1).remove(0);
        server.pool().submit(job, move |_verdict| {
            let _ = held.send(());
            // Returns when the gate's sender is dropped.
            let _ = opened.recv();
        });
        holding.await.expect("the worker takes the gate's job");
        WorkerGate { _shut: gate }
    }

    /// Lets the worker go on.
    fn open(self) {}
}

/// Waits until `condition` holds, looking every few milliseconds; fails
/// the test, naming `what`, if it still does not after 30 s (a hang, not
/// a slow machine).
async fn wait_until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 30 s for this in vain: {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
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
