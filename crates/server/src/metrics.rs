//! Prometheus metrics: `hotwasm serve --metrics ADDR` answers
//! `GET /metrics` with the OpenMetrics text of the server's state.
//!
//! Everything is read at scrape time from counters the server keeps
//! anyway (the worker pool's, each serving version's [`CallHealth`],
//! the consumer's, the audit trail's), plus one `XINFO GROUPS` for the
//! queue gauges; the verify path pays one histogram observation per call,
//! whether metrics are served or not. A version's series start when it
//! starts serving and end when another replaces it, so a dashboard shows
//! the versions side by side through a swap. [`METRICS`] lists every name
//! exported; `dashboards/grafana/hotwasm.json` uses them, and a test
//! checks that it uses no other.
//!
//! [`CallHealth`]: hotwasm_worker::CallHealth

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;

use hotwasm_queue::{GroupStats, RedisQueue};
use hotwasm_worker::FAILURE_KINDS;

use crate::Server;

/// Every metric name exported, as it appears in the exposition (counters
/// with `_total`, histograms as their base name).
pub const METRICS: &[&str] = &[
    "hotwasm_build_info",
    "hotwasm_uptime_seconds",
    "hotwasm_workers",
    "hotwasm_jobs_total",
    "hotwasm_jobs_malformed_total",
    "hotwasm_module_calls_total",
    "hotwasm_module_failures_total",
    "hotwasm_module_failing",
    "hotwasm_verify_duration_seconds",
    "hotwasm_module_swaps_total",
    "hotwasm_trial_jobs_total",
    "hotwasm_module_admin_total",
    "hotwasm_jobs_reclaimed_total",
    "hotwasm_jobs_dead_lettered_total",
    "hotwasm_verdicts_fenced_total",
    "hotwasm_grpc_in_flight_calls",
    "hotwasm_grpc_refused_total",
    "hotwasm_queue_lag_entries",
    "hotwasm_queue_pending_entries",
    "hotwasm_queue_consumers",
    "hotwasm_queue_dead_letter_entries",
];

/// The OpenMetrics content type Prometheus asks for.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The longest a scrape waits for Redis before it answers without the
/// queue gauges.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the metrics read: the server, and its queue when it has one.
#[derive(Clone)]
pub struct Metrics {
    server: Arc<Server>,
    queue: Option<Arc<RedisQueue>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("server", &self.server.name())
            .field("queue", &self.queue.is_some())
            .finish()
    }
}

impl Metrics {
    /// Metrics of `server`, with the queue gauges of `queue`.
    pub fn new(server: Arc<Server>, queue: Option<Arc<RedisQueue>>) -> Metrics {
        Metrics { server, queue }
    }

    /// The exposition text now (OpenMetrics); asks Redis for the queue
    /// gauges first, which are left out when it does not answer in time.
    pub async fn render(&self) -> String {
        let group = match &self.queue {
            Some(queue) => match tokio::time::timeout(QUEUE_TIMEOUT, queue.group_stats()).await {
                Ok(Ok(group)) => Some(group),
                Ok(Err(e)) => {
                    tracing::debug!("metrics without queue gauges: {e}");
                    None
                }
                Err(_) => None,
            },
            None => None,
        };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Snapshot {
            server: Arc::clone(&self.server),
            group,
        }));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }

    /// Serves `GET /metrics` on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!("metrics: accepting a connection failed: {e}");
                        continue;
                    }
                },
                () = &mut shutdown => return,
            };
            let metrics = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(metrics.answer(&request, peer).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                // A scrape is one request: bound how long a connection may
                // sit idle or trickle.
                if tokio::time::timeout(Duration::from_secs(30), connection)
                    .await
                    .is_err()
                {
                    tracing::debug!(%peer, "metrics connection closed after 30 s");
                }
            });
        }
    }

    async fn answer(&self, request: &Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let plain = |status: StatusCode, text: &'static str| {
            let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
            *response.status_mut() = status;
            response
        };
        if request.uri().path() != "/metrics" {
            return plain(StatusCode::NOT_FOUND, "hotwasm: metrics are at /metrics\n");
        }
        if request.method() != hyper::Method::GET && request.method() != hyper::Method::HEAD {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
        }
        tracing::trace!(%peer, "metrics scraped");
        let mut response = Response::new(Full::new(Bytes::from(self.render().await)));
        if let Ok(value) = CONTENT_TYPE.parse() {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    }
}

/// The server's state at one scrape.
struct Snapshot {
    server: Arc<Server>,
    group: Option<GroupStats>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("server", &self.server.name())
            .field("group", &self.group)
            .finish()
    }
}

/// One metric family written through a [`DescriptorEncoder`].
fn family<'a>(
    encoder: &'a mut DescriptorEncoder<'_>,
    name: &'a str,
    help: &str,
    unit: Option<&'a Unit>,
    kind: MetricType,
) -> Result<prometheus_client::encoding::MetricEncoder<'a>, std::fmt::Error> {
    encoder.encode_descriptor(name, help, unit, kind)
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(value).encode(family(encoder, name, help, None, MetricType::Counter)?)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(value).encode(family(encoder, name, help, None, MetricType::Gauge)?)
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let server = &self.server;
        let pool = server.pool();
        let runtime = pool.runtime().to_string();
        let stats = server.stats();

        {
            let info = family(
                &mut encoder,
                "hotwasm_build",
                "The hotwasm version and the runtime this server runs modules on.",
                None,
                MetricType::Info,
            )?;
            let labels = [
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("runtime", runtime.clone()),
                ("server", server.name().to_string()),
            ];
            prometheus_client::metrics::info::Info::new(labels).encode(info)?;
        }
        ConstGauge::new(server.started().elapsed().as_secs_f64()).encode(family(
            &mut encoder,
            "hotwasm_uptime",
            "Time since the server started.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?)?;
        gauge(
            &mut encoder,
            "hotwasm_workers",
            "Worker threads verifying jobs.",
            signed(pool.threads() as u64),
        )?;

        let counters = pool.counters();
        let verdicts = counters.verdicts.load(Ordering::Relaxed);
        let valid = counters.valid.load(Ordering::Relaxed);
        {
            let mut jobs = family(
                &mut encoder,
                "hotwasm_jobs",
                "Verdicts given, by whether the signature was found valid \
                 (invalid includes jobs that could not be verified).",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(valid).encode(jobs.encode_family(&[("verdict", "valid")])?)?;
            ConstCounter::new(verdicts.saturating_sub(valid))
                .encode(jobs.encode_family(&[("verdict", "invalid")])?)?;
        }
        counter(
            &mut encoder,
            "hotwasm_jobs_malformed",
            "Jobs that could not be read as jobs (malformed entries, bad fields).",
            stats.malformed.load(Ordering::Relaxed),
        )?;

        let serving = server.host().serving_modules();
        {
            let mut calls = family(
                &mut encoder,
                "hotwasm_module_calls",
                "Guest calls of each serving module version, by outcome: valid, \
                 invalid (answered), failed (no answer).",
                None,
                MetricType::Counter,
            )?;
            for (scheme, module) in &serving {
                let report = module.health.report();
                let answered_invalid = report
                    .calls
                    .saturating_sub(report.failures)
                    .saturating_sub(report.valid);
                for (outcome, n) in [
                    ("valid", report.valid),
                    ("invalid", answered_invalid),
                    ("failed", report.failures),
                ] {
                    let labels = [
                        ("scheme", scheme.to_string()),
                        ("module", module.id.clone()),
                        ("runtime", runtime.clone()),
                        ("outcome", outcome.to_string()),
                    ];
                    ConstCounter::new(n).encode(calls.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut failures = family(
                &mut encoder,
                "hotwasm_module_failures",
                "Guest calls that gave no answer, by kind (deadline, trap, ...).",
                None,
                MetricType::Counter,
            )?;
            for (scheme, module) in &serving {
                let report = module.health.report();
                for (kind, n) in FAILURE_KINDS.iter().zip(report.failures_by_kind) {
                    let labels = [
                        ("scheme", scheme.to_string()),
                        ("module", module.id.clone()),
                        ("runtime", runtime.clone()),
                        ("kind", (*kind).to_string()),
                    ];
                    ConstCounter::new(n).encode(failures.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut failing = family(
                &mut encoder,
                "hotwasm_module_failing",
                "1 while a serving version's recent calls all failed (16 in a row).",
                None,
                MetricType::Gauge,
            )?;
            for (scheme, module) in &serving {
                let labels = [
                    ("scheme", scheme.to_string()),
                    ("module", module.id.clone()),
                ];
                ConstGauge::new(i64::from(module.health.report().failing()))
                    .encode(failing.encode_family(&labels)?)?;
            }
        }
        {
            let mut duration = family(
                &mut encoder,
                "hotwasm_verify_duration",
                "How long each guest call of a serving version took.",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (scheme, module) in &serving {
                let labels = [
                    ("scheme", scheme.to_string()),
                    ("module", module.id.clone()),
                    ("runtime", runtime.clone()),
                ];
                module
                    .health
                    .durations()
                    .encode(duration.encode_family(&labels)?)?;
            }
        }
        {
            let mut trials = family(
                &mut encoder,
                "hotwasm_trial_jobs",
                "Jobs of a shadow or canary trial on this server, by outcome: \
                 agreed, disagreed, skipped (shadow), served, fell_back (canary), \
                 failed (candidate calls that gave no answer).",
                None,
                MetricType::Counter,
            )?;
            for scheme in hotwasm_abi::Scheme::ALL {
                let Some(trial) = server.host().modules().trial(scheme) else {
                    continue;
                };
                let counts = trial.snapshot();
                let mode = if trial.is_shadow() {
                    "shadow"
                } else {
                    "canary"
                };
                for (outcome, n) in [
                    ("agreed", counts.agreed),
                    ("disagreed", counts.disagreed),
                    ("failed", counts.errors),
                    ("served", counts.served),
                    ("fell_back", counts.fell_back),
                    ("skipped", counts.skipped),
                ] {
                    let labels = [
                        ("scheme", scheme.to_string()),
                        ("candidate", trial.candidate.id.clone()),
                        ("mode", mode.to_string()),
                        ("outcome", outcome.to_string()),
                    ];
                    ConstCounter::new(n).encode(trials.encode_family(&labels)?)?;
                }
            }
        }
        counter(
            &mut encoder,
            "hotwasm_module_swaps",
            "Module activations since the server started.",
            server.host().swaps(),
        )?;
        {
            let mut admin = family(
                &mut encoder,
                "hotwasm_module_admin",
                "Module administration attempts (load, activate, rollback) by result \
                 (ok, refused), as in the audit trail.",
                None,
                MetricType::Counter,
            )?;
            for (action, result, n) in server.host().audit().counts() {
                let labels = [("action", action), ("result", result.to_string())];
                ConstCounter::new(n).encode(admin.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut encoder,
            "hotwasm_jobs_reclaimed",
            "Jobs taken over from other servers (a dead or stalled server's).",
            stats.reclaimed.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "hotwasm_jobs_dead_lettered",
            "Jobs this server moved to the dead-letter stream.",
            stats.dead_lettered.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "hotwasm_verdicts_fenced",
            "Verdicts not delivered because another server had taken the job over.",
            stats.fenced.load(Ordering::Relaxed),
        )?;
        gauge(
            &mut encoder,
            "hotwasm_grpc_in_flight_calls",
            "gRPC calls being handled.",
            signed(stats.grpc_in_flight.load(Ordering::Relaxed)),
        )?;

        counter(
            &mut encoder,
            "hotwasm_grpc_refused",
            "gRPC calls refused at capacity (RESOURCE_EXHAUSTED).",
            stats.refused.load(Ordering::Relaxed),
        )?;

        if let Some(group) = &self.group {
            if let Some(lag) = group.lag {
                gauge(
                    &mut encoder,
                    "hotwasm_queue_lag_entries",
                    "Jobs in the stream not yet delivered to any server of the group.",
                    signed(lag),
                )?;
            }
            gauge(
                &mut encoder,
                "hotwasm_queue_pending_entries",
                "Jobs delivered to a server of the group and not yet acknowledged.",
                signed(group.pending),
            )?;
            gauge(
                &mut encoder,
                "hotwasm_queue_consumers",
                "Servers (consumers) in the group.",
                signed(group.consumers),
            )?;
            gauge(
                &mut encoder,
                "hotwasm_queue_dead_letter_entries",
                "Entries in the dead-letter stream.",
                signed(group.dead_letters),
            )?;
        }
        Ok(())
    }
}
