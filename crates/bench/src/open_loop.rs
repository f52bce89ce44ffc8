//! Section 6b, latency under load without coordinated omission: a server
//! in this process answering gRPC `Verify` on a loopback socket, requests
//! sent on a fixed schedule (open loop, as wrk2 and ghz do) at shares of
//! the capacity measured first, each request's latency taken from the
//! time it was *scheduled* to be sent, so a stalled server is charged for
//! the requests it held up.
//!
//! Capacity: 2 × workers clients calling back to back for a fixed time.
//! Rates: 25, 50, 75 and 90% of it, one after another, each for the plan's
//! duration; p50, p99 and p99.9 per rate, and the p99 at 50% over the p99
//! of single calls made one after another on the same path (nothing
//! queued); the call alone (latency section) is given beside.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotwasm_client::admin::AdminClient;
use hotwasm_jobs::{Job, SchemeChoice};
use hotwasm_runtime::RuntimeKind;
use hotwasm_server::grpc::GrpcOptions;
use hotwasm_server::{Server, ServerConfig};
use serde::Serialize;

use crate::end_to_end::{BenchStream, check_run};
use crate::latency::LatencySection;
use crate::measure::jobs;
use crate::options::BenchOptions;
use crate::report::Cell;
use crate::{BenchError, Progress};

/// The shares of capacity measured, in percent.
pub const LOADS: [u32; 4] = [25, 50, 75, 90];

/// The section.
#[derive(Debug, Clone, Serialize)]
pub struct OpenLoopSection {
    /// The runtime and variant the server ran.
    pub runtime: String,
    /// Worker threads of the server.
    pub workers: usize,
    /// The figures, or why there are none.
    pub result: Cell<OpenLoopFigures>,
    /// The same rates through Redis: jobs `XADD`ed on schedule by the real
    /// client, a server's consumer group, verdicts back in a shared-memory
    /// ring.
    pub redis: Cell<RedisOpenLoop>,
}

/// Open-loop rates through the Redis pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct RedisOpenLoop {
    /// Jobs per second with every job submitted at once.
    pub capacity_per_s: f64,
    /// Seconds each rate ran.
    pub seconds_per_rate: f64,
    /// p99 at a trickle ([`TRICKLE_PER_S`] jobs/s): the same path with
    /// nothing queued, µs.
    pub unloaded_p99_us: f64,
    /// One row per share of capacity (`refused` is always 0: the stream
    /// queues).
    pub rows: Vec<OpenLoopRow>,
    /// p99 at 50% of capacity over `unloaded_p99_us`.
    pub p99_at_half_over_unloaded: Option<f64>,
}

/// The trickle rate of the Redis reference run, jobs per second.
pub const TRICKLE_PER_S: f64 = 100.0;

/// Capacity and one row per load.
#[derive(Debug, Clone, Serialize)]
pub struct OpenLoopFigures {
    /// Verifies per second with clients calling back to back.
    pub capacity_per_s: f64,
    /// Seconds each rate ran.
    pub seconds_per_rate: f64,
    /// One row per share of capacity.
    pub rows: Vec<OpenLoopRow>,
    /// A single verify's p99 on the same runtime, the call alone
    /// (latency section), µs.
    pub single_verify_p99_us: Option<f64>,
    /// p99 of single `Verify` calls one after another through the same
    /// gRPC path, nothing queued, µs.
    pub unloaded_p99_us: f64,
    /// p99 at 50% of capacity over `unloaded_p99_us`.
    pub p99_at_half_over_unloaded: Option<f64>,
}

/// One rate.
#[derive(Debug, Clone, Serialize)]
pub struct OpenLoopRow {
    /// Percent of capacity.
    pub load_percent: u32,
    /// Requests per second scheduled.
    pub rate_per_s: f64,
    /// Requests sent.
    pub requests: usize,
    /// Requests the server refused at once with `RESOURCE_EXHAUSTED` (every
    /// in-flight slot taken): back-pressure, not errors; not in the
    /// percentiles, which are of the answered requests.
    pub refused: usize,
    /// Latency from the scheduled send time, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Largest, µs.
    pub max_us: f64,
}

/// Measures the section on wasmtime (else native), with `latency` for the
/// single-verify reference.
///
/// # Errors
///
/// [`BenchError::Pipeline`] when the server cannot start or a call fails;
/// [`BenchError::WrongVerdict`] on a wrong verdict.
pub fn measure(
    options: &BenchOptions,
    latency: &LatencySection,
    progress: &dyn Progress,
) -> Result<OpenLoopSection, BenchError> {
    let kind = if options.runtimes.contains(&RuntimeKind::Wasmtime) {
        RuntimeKind::Wasmtime
    } else {
        RuntimeKind::Native
    };
    let section = |result, redis| OpenLoopSection {
        runtime: format!("{kind}/{}", kind.preferred_variant()),
        workers: options.workers,
        result,
        redis,
    };
    if !options.pipelines {
        let reason = || "pipelines not run (--no-pipelines)".to_string();
        return Ok(section(
            Cell::NotRun { reason: reason() },
            Cell::NotRun { reason: reason() },
        ));
    }
    let seconds = if options.quick { 0.5 } else { 2.0 };
    let pool = jobs(
        options.seed + 200,
        SchemeChoice::Mixed,
        options.invalid_ratio,
        512,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| pipeline_error(format!("async runtime: {e}")))?;
    let mut config = ServerConfig::new(kind);
    config.workers = options.workers.max(1);
    config.modules.limits = crate::measure::limits();
    let figures = runtime.block_on(run(config, &pool, seconds, progress))?;
    let single = latency.find(kind.name()).map(|f| f.latency.p99_us);
    let at_half = figures
        .rows
        .iter()
        .find(|row| row.load_percent == 50)
        .map(|row| row.p99_us)
        .filter(|p99| p99.is_finite());
    let (capacity, unloaded, rows) = (figures.capacity, figures.unloaded, figures.rows);
    let redis = redis_rows(options, progress)?;
    Ok(section(
        Cell::Measured(OpenLoopFigures {
            capacity_per_s: capacity,
            seconds_per_rate: seconds,
            p99_at_half_over_unloaded: at_half.map(|half| half / unloaded),
            unloaded_p99_us: unloaded,
            single_verify_p99_us: single,
            rows,
        }),
        redis,
    ))
}

/// The open-loop rates through Redis (`options.redis`): capacity with
/// every job submitted at once, a trickle for reference, then the shares
/// of capacity, each verdict timed from its job's scheduled moment.
///
/// # Errors
///
/// [`BenchError::Pipeline`] when the server or a run fails, or a run's
/// verdicts are incomplete or wrong.
pub fn redis_rows(
    options: &BenchOptions,
    progress: &dyn Progress,
) -> Result<Cell<RedisOpenLoop>, BenchError> {
    let Some(url) = options.redis.clone() else {
        return Ok(Cell::NotRun {
            reason: "no --redis URL given".into(),
        });
    };
    if !options.pipelines {
        return Ok(Cell::NotRun {
            reason: "pipelines not run (--no-pipelines)".into(),
        });
    }
    let kind = options.end_to_end_kind();
    // One second per rate (the gRPC rows take two): the Redis rows come on
    // top of them in the same three-minute plan.
    let seconds = if options.quick { 0.5 } else { 1.0 };
    let pool = jobs(
        options.seed + 201,
        SchemeChoice::Mixed,
        options.invalid_ratio,
        512,
    );
    let runtime = hotwasm_server::async_runtime()
        .map_err(|e| pipeline_error(format!("async runtime: {e}")))?;
    runtime.block_on(async {
        let mut config = ServerConfig::new(kind);
        config.workers = options.workers.max(1);
        config.modules.limits = crate::measure::limits();
        let server = hotwasm_pipeline::start(config)
            .await
            .map_err(|e| pipeline_error(e.to_string()))?;
        let pipeline = hotwasm_pipeline::PipelineOptions {
            server: ServerConfig::new(kind),
            consume: hotwasm_server::consume::ConsumeOptions::default(),
            submit: hotwasm_client::SubmitOptions::new(),
        }
        .with_fresh_reply_key();
        let stream = BenchStream::connect(&url, &format!("{}:open-loop", pipeline.submit.client))
            .await
            .map_err(pipeline_error)?;
        progress.start("open-loop latency, Redis", 2 + LOADS.len() as u64);
        let run = |rate: Option<f64>, count: usize| {
            let (server, queue, pipeline, pool) = (&server, &stream.queue, &pipeline, &pool);
            async move {
                let jobs: Vec<hotwasm_client::Outgoing> = (0..count)
                    .map(|i| {
                        let mut job = pool[i % pool.len()].clone();
                        job.id = format!("{}-{i}", job.id);
                        hotwasm_client::Outgoing::from(&job)
                    })
                    .collect();
                let mut options = pipeline.clone();
                options.submit.rate = rate;
                let summary = hotwasm_pipeline::run_group(
                    vec![Arc::clone(server)],
                    Arc::clone(queue),
                    &jobs,
                    &options,
                    &|_| {},
                )
                .await
                .map_err(|e| pipeline_error(e.to_string()))?;
                check_run(count, &summary).map_err(|message| {
                    pipeline_error(format!("open loop through Redis: {message}"))
                })?;
                Ok::<_, BenchError>(summary)
            }
        };
        progress.step("capacity");
        let closed = run(None, 4096).await?;
        let capacity = 4096.0 / closed.elapsed.as_secs_f64();
        progress.step("trickle");
        // 200 jobs (2 s): enough for a p99 of the reference.
        let trickle_jobs = if options.quick { 50 } else { 200 };
        let trickle = run(Some(TRICKLE_PER_S), trickle_jobs).await?;
        let unloaded = percentile_of(trickle.latencies_micros, 0.99);
        let mut rows = Vec::new();
        for load in LOADS {
            progress.step(&format!("{load}% of capacity"));
            let rate = capacity * f64::from(load) / 100.0;
            let count = ((rate * seconds) as usize).max(1);
            let summary = run(Some(rate), count).await?;
            rows.push(OpenLoopRow::of(
                load,
                rate,
                count,
                0,
                summary.latencies_micros,
            ));
        }
        progress.finish();
        stream.remove().await;
        let at_half = rows
            .iter()
            .find(|row| row.load_percent == 50)
            .map(|row| row.p99_us / unloaded)
            .filter(|ratio| ratio.is_finite());
        Ok(Cell::Measured(RedisOpenLoop {
            capacity_per_s: capacity,
            seconds_per_rate: seconds,
            unloaded_p99_us: unloaded,
            rows,
            p99_at_half_over_unloaded: at_half,
        }))
    })
}

fn percentile_of(mut samples: Vec<f64>, q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    hotwasm_jobs::stats::percentile(&samples, q).unwrap_or(f64::NAN)
}

struct Measured {
    capacity: f64,
    unloaded: f64,
    rows: Vec<OpenLoopRow>,
}

fn pipeline_error(reason: String) -> BenchError {
    BenchError::Pipeline {
        config: "open-loop latency over gRPC".into(),
        message: reason,
    }
}

async fn run(
    config: ServerConfig,
    pool: &[Job],
    seconds: f64,
    progress: &dyn Progress,
) -> Result<Measured, BenchError> {
    let workers = config.workers;
    let server = tokio::task::spawn_blocking(move || Server::start(config))
        .await
        .map_err(|e| pipeline_error(e.to_string()))?
        .map_err(|e| pipeline_error(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| pipeline_error(format!("binding a port: {e}")))?;
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| pipeline_error(e.to_string()))?
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(hotwasm_server::grpc::serve(
        Arc::clone(&server),
        listener,
        GrpcOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let clients = 2 * workers;
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(
            AdminClient::connect(&url)
                .await
                .map_err(|e| pipeline_error(e.to_string()))?,
        );
    }
    let pool: Arc<Vec<Job>> = Arc::new(pool.to_vec());
    progress.start("open-loop latency", 1 + LOADS.len() as u64);
    progress.step("capacity");
    let capacity = closed_loop(&connections, &pool, seconds).await?;
    let unloaded = unloaded_p99(&connections[0], &pool).await?;
    let mut rows = Vec::new();
    for load in LOADS {
        progress.step(&format!("{load}% of capacity"));
        let rate = capacity * f64::from(load) / 100.0;
        rows.push(open_loop(&connections, &pool, rate, seconds, load).await?);
    }
    progress.finish();
    let _ = stop.send(());
    let _ = serving.await;
    Ok(Measured {
        capacity,
        unloaded,
        rows,
    })
}

/// p99 of single `Verify` calls made one after another by one client: the
/// same path with nothing queued, µs.
async fn unloaded_p99(connection: &AdminClient, pool: &Arc<Vec<Job>>) -> Result<f64, BenchError> {
    let mut connection = connection.clone();
    let mut latencies = Vec::with_capacity(UNLOADED_CALLS);
    for i in 0..UNLOADED_CALLS {
        let sent = Instant::now();
        // One call at a time is never refused for capacity.
        if call(&mut connection, &pool[i % pool.len()]).await? {
            latencies.push(sent.elapsed().as_secs_f64() * 1e6);
        }
    }
    latencies.sort_by(f64::total_cmp);
    Ok(hotwasm_jobs::stats::percentile(&latencies, 0.99).unwrap_or(f64::NAN))
}

/// Calls of the unloaded reference.
const UNLOADED_CALLS: usize = 300;

/// Verifies per second with every client calling back to back.
async fn closed_loop(
    connections: &[AdminClient],
    pool: &Arc<Vec<Job>>,
    seconds: f64,
) -> Result<f64, BenchError> {
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for (index, connection) in connections.iter().enumerate() {
        let mut connection = connection.clone();
        let pool = Arc::clone(pool);
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            let mut next = index;
            while Instant::now() < until {
                let job = &pool[next % pool.len()];
                // A refusal (a full server) is not a verify done.
                done += usize::from(call(&mut connection, job).await?);
                next += STRIDE;
            }
            Ok::<usize, BenchError>(done)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.map_err(|e| pipeline_error(e.to_string()))??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// The stride between the jobs one client takes from the pool.
const STRIDE: usize = 7;

/// Requests at `rate` per second for `seconds`, each charged from its
/// scheduled send time.
async fn open_loop(
    connections: &[AdminClient],
    pool: &Arc<Vec<Job>>,
    rate: f64,
    seconds: f64,
    load: u32,
) -> Result<OpenLoopRow, BenchError> {
    let count = ((rate * seconds) as usize).max(1);
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    // Paced by a thread of its own with the OS's sleep (tens of µs late),
    // not the async timer (1 ms ticks, which would charge every request
    // up to a millisecond of the sender's lateness).
    let handle = tokio::runtime::Handle::current();
    let connections = connections.to_vec();
    let pool = Arc::clone(pool);
    let tasks = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(count);
        for i in 0..count {
            let scheduled = start + interval.mul_f64(i as f64);
            let now = Instant::now();
            if scheduled > now {
                std::thread::sleep(scheduled - now);
            }
            let mut connection = connections[i % connections.len()].clone();
            let pool = Arc::clone(&pool);
            tasks.push(handle.spawn(async move {
                let answered = call(&mut connection, &pool[i % pool.len()]).await?;
                Ok::<Option<f64>, BenchError>(
                    answered.then(|| scheduled.elapsed().as_secs_f64() * 1e6),
                )
            }));
        }
        tasks
    })
    .await
    .map_err(|e| pipeline_error(e.to_string()))?;
    let mut latencies = Vec::with_capacity(count);
    let mut refused = 0;
    for task in tasks {
        match task.await.map_err(|e| pipeline_error(e.to_string()))?? {
            Some(latency) => latencies.push(latency),
            None => refused += 1,
        }
    }
    Ok(OpenLoopRow::of(load, rate, count, refused, latencies))
}

impl OpenLoopRow {
    /// The row of one rate from its answered requests' latencies, µs.
    fn of(
        load_percent: u32,
        rate_per_s: f64,
        requests: usize,
        refused: usize,
        mut latencies: Vec<f64>,
    ) -> OpenLoopRow {
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| hotwasm_jobs::stats::percentile(&latencies, q).unwrap_or(f64::NAN);
        OpenLoopRow {
            load_percent,
            rate_per_s,
            requests,
            refused,
            p50_us: at(0.50),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: latencies.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// One `Verify`, its verdict checked against the job's `expect`: `true`
/// when answered, `false` when the server refused it for capacity
/// (`RESOURCE_EXHAUSTED`, its back-pressure).
async fn call(connection: &mut AdminClient, job: &Job) -> Result<bool, BenchError> {
    let verdict = match connection.verify(job).await {
        Ok(verdict) => verdict,
        Err(e) if e.code() == Some(tonic::Code::ResourceExhausted) => return Ok(false),
        Err(e) => return Err(pipeline_error(e.to_string())),
    };
    match job.expect {
        Some(expected) if expected != verdict.valid => Err(BenchError::WrongVerdict {
            context: "open-loop latency".into(),
            id: job.id.clone(),
            expected,
            got: verdict.valid,
            reason: verdict.reason.clone().unwrap_or_else(|| "-".into()),
        }),
        _ => Ok(true),
    }
}
