//! The `hotwasm.v1.Verifier` implementation over a shared [`Server`].
//!
//! Jobs go to the server's worker pool with a completion callback; a
//! semaphore bounds the jobs the gRPC API has in the pool at once, so a
//! flood of calls waits here (asynchronously) instead of blocking the async
//! runtime's threads on the pool's full queue. Batches and streams submit
//! in order and collect verdicts in order, so jobs run concurrently on all
//! workers while answers keep the order of the requests.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hotwasm_auth::AdminTokens;
use hotwasm_jobs::{Job, Verdict};
use hotwasm_proto::v1;
use hotwasm_proto::v1::verifier_server::Verifier;
use prost::Message as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::guard::Deadline;
use super::{admin, convert, status};
use hotwasm_host::{AuditLog, HostError, ModuleHost};

use crate::Server;

/// Jobs in the pool per worker thread, at most, from this API: the pool's
/// queue is unbounded, so this is what bounds the work callers can pile up.
const IN_FLIGHT_PER_WORKER: usize = 128;

/// Requests of one stream read ahead of the verdict being awaited.
const STREAM_WINDOW: usize = 64;

/// The service: cheap to clone, shared by every call.
#[derive(Clone)]
pub(crate) struct VerifierService {
    server: Arc<Server>,
    in_flight: Arc<Semaphore>,
    max_message_bytes: usize,
    /// The tokens module administration accepts (none: closed).
    admin_tokens: Arc<AdminTokens>,
}

/// A job's verdict: known already, or coming from a worker.
enum Pending {
    Ready(Verdict),
    Running {
        id: String,
        verdict: oneshot::Receiver<Verdict>,
    },
}

impl VerifierService {
    pub(crate) fn new(
        server: Arc<Server>,
        max_message_bytes: usize,
        admin_tokens: AdminTokens,
    ) -> VerifierService {
        let permits = server.pool().threads().max(1) * IN_FLIGHT_PER_WORKER;
        VerifierService {
            server,
            in_flight: Arc::new(Semaphore::new(permits)),
            max_message_bytes,
            admin_tokens: Arc::new(admin_tokens),
        }
    }

    fn audit(&self) -> &AuditLog {
        self.server.host().audit()
    }

    /// Lets an administration request in, or refuses (and audits) it.
    fn authorize<T>(
        &self,
        request: &Request<T>,
        action: &str,
        target: &str,
    ) -> Result<admin::Caller, Status> {
        admin::authorize(&self.admin_tokens, self.audit(), request, action, target)
    }

    /// Validates `request` and hands the job to the pool; a request that is
    /// not a usable job gets its error verdict at once (counted malformed).
    async fn start(&self, request: v1::VerifyRequest) -> Pending {
        let id = (!request.id.is_empty()).then(|| request.id.clone());
        let job = match convert::job(request, &self.server.config().limits) {
            Ok(job) => job,
            Err(error) => {
                self.server
                    .stats()
                    .malformed
                    .fetch_add(1, Ordering::Relaxed);
                return Pending::Ready(Verdict::error(
                    id,
                    self.server.pool().runtime(),
                    format!("malformed job: {error}"),
                ));
            }
        };
        self.submit(job).await
    }

    async fn submit(&self, job: Job) -> Pending {
        // The semaphore is never closed; without a permit the job still runs.
        let permit: Option<OwnedSemaphorePermit> =
            Arc::clone(&self.in_flight).acquire_owned().await.ok();
        let (sender, verdict) = oneshot::channel();
        let id = job.id.clone();
        self.server.pool().submit(job, move |verdict| {
            drop(permit);
            let _ = sender.send(verdict);
        });
        Pending::Running { id, verdict }
    }

    async fn finish(&self, pending: Pending) -> v1::Verdict {
        let verdict = match pending {
            Pending::Ready(verdict) => verdict,
            Pending::Running { id, verdict } => verdict.await.unwrap_or_else(|_| {
                Verdict::error(
                    Some(id),
                    self.server.pool().runtime(),
                    "the worker stopped before answering",
                )
            }),
        };
        convert::verdict(verdict, self.server.name())
    }

    /// Back-pressure for unary calls: when every in-flight slot is taken
    /// (the workers are [`IN_FLIGHT_PER_WORKER`] jobs deep each), a new
    /// `Verify` or `SubmitBatch` is refused at once with
    /// `RESOURCE_EXHAUSTED`, rather than parked in memory without bound.
    /// A batch that gets in waits for slots as its jobs go; a stream waits
    /// too, its window bounded by HTTP/2 flow control.
    fn refuse_when_full(&self) -> Result<(), Status> {
        if self.in_flight.available_permits() > 0 {
            return Ok(());
        }
        self.server.stats().refused.fetch_add(1, Ordering::Relaxed);
        Err(Status::resource_exhausted(format!(
            "the server is at capacity ({} jobs in flight on {} workers); retry with backoff",
            self.server.pool().threads().max(1) * IN_FLIGHT_PER_WORKER,
            self.server.pool().threads()
        )))
    }

    /// Runs blocking module administration off the async threads.
    async fn admin<T: Send + 'static>(
        &self,
        what: &'static str,
        call: impl FnOnce(&ModuleHost) -> Result<T, HostError> + Send + 'static,
    ) -> Result<T, Status> {
        let host = Arc::clone(self.server.host());
        let outcome = tokio::task::spawn_blocking(move || call(&host))
            .await
            .map_err(|e| status::task_failed(&e))?;
        outcome.map_err(|error| {
            tracing::warn!(%error, "{what} refused");
            status::admin(&error)
        })
    }
}

#[tonic::async_trait]
impl Verifier for VerifierService {
    async fn verify(
        &self,
        request: Request<v1::VerifyRequest>,
    ) -> Result<Response<v1::Verdict>, Status> {
        self.refuse_when_full()?;
        let pending = self.start(request.into_inner()).await;
        Ok(Response::new(self.finish(pending).await))
    }

    type VerifyStreamStream = ReceiverStream<Result<v1::Verdict, Status>>;

    async fn verify_stream(
        &self,
        request: Request<Streaming<v1::VerifyRequest>>,
    ) -> Result<Response<Self::VerifyStreamStream>, Status> {
        let deadline = request.extensions().get::<Deadline>().copied();
        let mut inbound = request.into_inner();
        let (order, mut ordered) = mpsc::channel::<Result<Pending, Status>>(STREAM_WINDOW);
        let (answers, outbound) = mpsc::channel::<Result<v1::Verdict, Status>>(STREAM_WINDOW);

        // Reader: submit each request as it arrives, in order.
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                let item = match inbound.message().await {
                    Ok(Some(request)) => Ok(service.start(request).await),
                    Ok(None) => break,
                    Err(error) => Err(status::inbound(error)),
                };
                let last = item.is_err();
                if order.send(item).await.is_err() || last {
                    break;
                }
            }
        });

        // Writer: answer in the order of the requests, within the deadline.
        let service = self.clone();
        tokio::spawn(async move {
            let forward = async {
                while let Some(item) = ordered.recv().await {
                    let answer = match item {
                        Ok(pending) => Ok(service.finish(pending).await),
                        Err(error) => Err(error),
                    };
                    let last = answer.is_err();
                    if answers.send(answer).await.is_err() || last {
                        return;
                    }
                }
            };
            match deadline {
                Some(Deadline(at)) => {
                    if tokio::time::timeout_at(at, forward).await.is_err() {
                        let _ = answers.send(Err(status::deadline_exceeded())).await;
                    }
                }
                None => forward.await,
            }
        });
        Ok(Response::new(ReceiverStream::new(outbound)))
    }

    async fn submit_batch(
        &self,
        request: Request<v1::SubmitBatchRequest>,
    ) -> Result<Response<v1::SubmitBatchResponse>, Status> {
        self.refuse_when_full()?;
        let jobs = request.into_inner().jobs;
        let mut pending = Vec::with_capacity(jobs.len());
        for job in jobs {
            pending.push(self.start(job).await);
        }
        let mut verdicts = Vec::with_capacity(pending.len());
        for job in pending {
            verdicts.push(self.finish(job).await);
        }
        let response = v1::SubmitBatchResponse { verdicts };
        let len = response.encoded_len();
        if len > self.max_message_bytes {
            return Err(status::response_too_large(len, self.max_message_bytes));
        }
        Ok(Response::new(response))
    }

    async fn load_module(
        &self,
        request: Request<v1::LoadModuleRequest>,
    ) -> Result<Response<v1::ModuleVersion>, Status> {
        let target = format!(
            "{} ({} bytes)",
            request.get_ref().name,
            request.get_ref().wasm.len()
        );
        let caller = self.authorize(&request, "load", &target)?;
        let v1::LoadModuleRequest {
            name,
            mut wasm,
            activate,
            signature,
        } = request.into_inner();
        tracing::info!(%name, bytes = wasm.len(), activate, who = %caller.who, "load module");
        if !signature.is_empty() {
            let attached = hotwasm_trust::attach_signature(&wasm, &signature)
                .map_err(|e| Status::invalid_argument(format!("signature: {e}")));
            if let Err(status) = &attached {
                caller.audit(self.audit(), "load", &target, &attached, |_| String::new());
                return Err(status.clone());
            }
            wasm = attached?;
        }
        let outcome = self
            .admin("load module", move |host| {
                host.load(&name, wasm, "grpc", activate)
            })
            .await;
        caller.audit(self.audit(), "load", &target, &outcome, |v| {
            let v = convert::version(v);
            format!("{} {}", v.id, v.state)
        });
        let version = outcome?;
        tracing::info!(module = %version.id, "loaded");
        Ok(Response::new(convert::version(&version)))
    }

    async fn activate_module(
        &self,
        request: Request<v1::ActivateModuleRequest>,
    ) -> Result<Response<v1::ModuleVersion>, Status> {
        let caller = self.authorize(&request, "activate", &request.get_ref().version)?;
        let spec = request.into_inner().version;
        tracing::info!(%spec, who = %caller.who, "activate module");
        let target = spec.clone();
        let outcome = self
            .admin("activate module", move |host| host.activate(&spec))
            .await;
        caller.audit(self.audit(), "activate", &target, &outcome, |v| {
            let v = convert::version(v);
            format!("{} {}", v.id, v.state)
        });
        let version = outcome?;
        Ok(Response::new(convert::version(&version)))
    }

    async fn rollback_module(
        &self,
        request: Request<v1::RollbackModuleRequest>,
    ) -> Result<Response<v1::ModuleVersion>, Status> {
        let caller = self.authorize(&request, "rollback", &request.get_ref().name)?;
        let name = request.into_inner().name;
        tracing::info!(%name, who = %caller.who, "roll back module");
        let target = name.clone();
        let outcome = self
            .admin("roll back module", move |host| host.rollback(&name))
            .await;
        caller.audit(self.audit(), "rollback", &target, &outcome, |v| {
            let v = convert::version(v);
            format!("{} {}", v.id, v.state)
        });
        let version = outcome?;
        Ok(Response::new(convert::version(&version)))
    }

    async fn list_modules(
        &self,
        _request: Request<v1::ListModulesRequest>,
    ) -> Result<Response<v1::ListModulesResponse>, Status> {
        // Without a registry there are no stored versions, but the modules
        // serving each scheme are still worth listing.
        let versions = self
            .admin("list modules", |host| match host.list() {
                Err(HostError::NoRegistry) => Ok(Vec::new()),
                other => other,
            })
            .await?;
        // The built-in modules are listed too, since activating one by its
        // id serves it again.
        Ok(Response::new(v1::ListModulesResponse {
            versions: versions.iter().map(convert::version).collect(),
            serving: self.server.host().serving().into_iter().collect(),
            built_in: hotwasm_modules::built()
                .iter()
                .map(convert::built_in)
                .collect(),
            health: self
                .server
                .host()
                .health()
                .into_iter()
                .map(convert::health)
                .collect(),
        }))
    }

    async fn stats(
        &self,
        _request: Request<v1::StatsRequest>,
    ) -> Result<Response<v1::StatsResponse>, Status> {
        let server = &self.server;
        let pool = server.pool();
        let counters = pool.counters();
        let stats = server.stats();
        Ok(Response::new(v1::StatsResponse {
            server: server.name().to_string(),
            runtime: pool.runtime().to_string(),
            workers: u32::try_from(pool.threads()).unwrap_or(u32::MAX),
            verdicts: counters.verdicts.load(Ordering::Relaxed),
            valid: counters.valid.load(Ordering::Relaxed),
            malformed: stats.malformed.load(Ordering::Relaxed),
            dead_lettered: stats.dead_lettered.load(Ordering::Relaxed),
            reclaimed: stats.reclaimed.load(Ordering::Relaxed),
            fenced: stats.fenced.load(Ordering::Relaxed),
            refused: stats.refused.load(Ordering::Relaxed),
            swaps: server.host().swaps(),
            uptime_seconds: server.started().elapsed().as_secs_f64(),
            modules: server
                .host()
                .health()
                .into_iter()
                .map(convert::health)
                .collect(),
        }))
    }
}
