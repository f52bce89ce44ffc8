//! `hotwasm serve`: a server. Takes jobs from Redis (when `--redis` is
//! given), verifies them in the worker pool, writes each verdict where its
//! client reads, and serves the gRPC API, until SIGINT or SIGTERM; then it
//! stops taking work, finishes what it has, and exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hotwasm_auth::AdminTokens;
use hotwasm_jobs::JobLimits;
use hotwasm_queue::{RedisOptions, RedisQueue};
use hotwasm_runtime::RuntimeKind;
use hotwasm_server::consume::ConsumeOptions;
use hotwasm_server::grpc::{GrpcOptions, TlsIdentity};
use hotwasm_server::{Server, ServerConfig};

use crate::command::limits::LimitArgs;

use crate::command::modules::RegistryArgs;
use crate::command::redis_auth::RedisAuthArgs;
use crate::command::reply_key::ReplyKeyArgs;
use crate::command::seconds::Seconds;
use crate::command::shutdown::Shutdown;
use crate::command::trust::TrustArgs;

/// Arguments of `hotwasm serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Redis to take jobs from (`redis://host:port`); without it the server
    /// only answers gRPC.
    #[arg(long, env = "HOTWASM_REDIS")]
    redis: Option<String>,
    /// Address of the gRPC API (port 0 picks a free port; the address is logged).
    #[arg(long, env = "HOTWASM_GRPC", default_value = "127.0.0.1:50051")]
    grpc: SocketAddr,
    /// native, wasmtime, wasmtime-winch, wasmtime-pulley, wasmi or wasm3.
    #[arg(long, default_value = "wasmtime", env = "HOTWASM_RUNTIME")]
    runtime: RuntimeKind,
    /// Built-in module variant for schemes the registry has no active
    /// module for [default: the runtime's fastest that loads].
    #[arg(long)]
    variant: Option<String>,
    /// Tiered activation (--runtime wasmtime only): a new version serves
    /// first as compiled by RUNTIME — wasmtime-winch (the default),
    /// wasmtime's baseline compiler, or wasmi, whose compile is lazy —
    /// and is swapped for its Cranelift build once that is compiled and
    /// prewarmed. Versions RUNTIME refuses (Winch: the `fast` variant's
    /// wide-arithmetic) are compiled by Cranelift first, as without it.
    #[arg(
        long,
        env = "HOTWASM_TIERED",
        value_name = "RUNTIME",
        num_args = 0..=1,
        default_missing_value = "wasmtime-winch"
    )]
    tiered: Option<RuntimeKind>,
    /// Worker threads [default: one per core].
    #[arg(long, env = "HOTWASM_WORKERS")]
    workers: Option<usize>,
    /// This server's consumer name in the group [default: <hostname>-<pid>].
    #[arg(long, env = "HOTWASM_NAME")]
    name: Option<String>,
    /// Watch DIR: a new or changed NAME.wasm is validated and activated.
    #[arg(long, value_name = "DIR")]
    modules_dir: Option<PathBuf>,
    /// The job stream.
    #[arg(long, default_value = "hotwasm:jobs", env = "HOTWASM_STREAM")]
    stream: String,
    /// The consumer group.
    #[arg(long, default_value = "hotwasm", env = "HOTWASM_GROUP")]
    group: String,
    /// Most jobs taken from the stream at once.
    #[arg(long, default_value_t = ConsumeOptions::default().batch)]
    batch: usize,
    /// Seconds a job may stay unacknowledged before another server takes it over.
    #[arg(long, value_name = "SECONDS", default_value_t = Seconds(ConsumeOptions::default().min_idle))]
    reclaim_after: Seconds,
    /// Seconds after which a consumer of the group that has done nothing
    /// and holds no job is removed from the group (a server that is gone);
    /// `0` keeps them.
    #[arg(long, value_name = "SECONDS", default_value = "600")]
    forget_consumers_after: Seconds,
    /// After SIGINT/SIGTERM, how long work in flight may take to finish
    /// before the server exits anyway (its unacknowledged jobs stay pending
    /// for another server).
    #[arg(long, value_name = "SECONDS", default_value = "10")]
    shutdown_grace: Seconds,
    /// Deliveries after which a job goes to the dead-letter stream.
    #[arg(long, default_value_t = ConsumeOptions::default().max_deliveries)]
    max_deliveries: u64,
    /// Largest message a job may carry, in bytes.
    #[arg(long, default_value_t = JobLimits::default().max_message_bytes)]
    max_message_bytes: usize,
    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, default_value_t = GrpcOptions::default().max_message_bytes)]
    grpc_max_message_bytes: usize,
    /// An admin token file (NAME:SECRET, mode 0600; `hotwasm admin-token`
    /// makes one) whose holder may load, activate and roll back modules
    /// over gRPC; repeat for several operators. Without one, module
    /// administration over gRPC is closed.
    #[arg(
        long,
        value_name = "FILE",
        env = "HOTWASM_ADMIN_TOKENS",
        value_delimiter = ','
    )]
    admin_token: Vec<PathBuf>,
    /// Append the audit trail of module administration (who, what, the
    /// outcome) to FILE as JSON lines, besides the log.
    #[arg(long, value_name = "FILE", env = "HOTWASM_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
    /// The gRPC API's TLS certificate chain (PEM); with --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve gRPC on an address other than loopback without TLS (admin
    /// tokens and verdicts in clear text on the network).
    #[arg(long)]
    insecure: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g.
    /// 127.0.0.1:9100; port 0 picks one). Off by default.
    #[arg(long, value_name = "ADDR", env = "HOTWASM_METRICS")]
    metrics: Option<std::net::SocketAddr>,
    /// The key prefix of the fleet's module records in Redis: with
    /// --redis, the server follows the fleet's module changes (`hotwasm
    /// modules activate|shadow|canary --redis`) and reports to it.
    #[arg(long, value_name = "PREFIX", default_value = hotwasm_rollout::DEFAULT_PREFIX, env = "HOTWASM_FLEET")]
    fleet: String,
    /// With --redis, do not follow the fleet's module changes: this
    /// server's modules change only through its own registry, gRPC and
    /// --modules-dir.
    #[arg(long)]
    no_fleet: bool,
    #[command(flatten)]
    reply_key: ReplyKeyArgs,
    #[command(flatten)]
    redis_auth: RedisAuthArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    guest: LimitArgs,
    #[command(flatten)]
    trust: TrustArgs,
}

/// Runs the server until a signal stops it.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(first) = args.tiered {
        if args.runtime != RuntimeKind::Wasmtime {
            anyhow::bail!(
                "--tiered starts new versions on a faster-compiling runtime and moves them to Cranelift: it needs --runtime wasmtime, not {}",
                args.runtime
            );
        }
        if matches!(first, RuntimeKind::Native | RuntimeKind::Wasmtime) {
            anyhow::bail!(
                "--tiered {first}: the first tier must be another wasm runtime (wasmtime-winch, wasmi, wasmtime-pulley)"
            );
        }
    }
    let runtime = hotwasm_server::async_runtime().context("starting the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let grpc_options = grpc_options(&args)?;
    // Replies travel only through Redis and rings: without --redis there
    // are none to sign.
    let reply_key = match &args.redis {
        Some(_) => args.reply_key.key("serve --redis")?,
        None => None,
    };
    let shutdown = Shutdown::on_signals(args.shutdown_grace.0);
    let queue = match &args.redis {
        Some(url) => {
            let mut options = RedisOptions::new(url);
            options.stream = args.stream.clone();
            options.group = args.group.clone();
            args.redis_auth.apply(&mut options)?;
            options.forget_consumers_after = Some(args.forget_consumers_after.0)
                .filter(|after| !after.is_zero())
                // Never before a stalled server's jobs could be reclaimed.
                .map(|after| after.max(args.reclaim_after.0));
            // The longest job line within the job limits, plus the other
            // fields: anything larger cannot be a job and is never read.
            let limits = JobLimits {
                max_message_bytes: args.max_message_bytes,
                ..JobLimits::default()
            };
            options.max_entry_bytes = u64::try_from(limits.max_line_bytes())
                .unwrap_or(u64::MAX)
                .saturating_add(4096);
            Some(Arc::new(RedisQueue::connect(options).await?))
        }
        None => None,
    };
    let mut config = ServerConfig::new(args.runtime);
    config.modules.variant = args.variant.clone();
    config.modules.first_tier = args.tiered;
    config.modules.registry = Some(args.registry.dir());
    config.modules.limits = args.guest.limits();
    config.modules.audit_log = args.audit_log.clone();
    config.modules.trust = args.trust.trust("serve")?;
    config.limits.max_message_bytes = args.max_message_bytes;
    if let Some(workers) = args.workers {
        config.workers = workers.max(1);
    }
    if let Some(name) = &args.name {
        config.name = name.clone();
    }
    let server = tokio::task::spawn_blocking(move || Server::start(config))
        .await
        .context("starting the server")??;
    let listener = tokio::net::TcpListener::bind(args.grpc)
        .await
        .with_context(|| {
            format!(
                "binding the gRPC API to {} (is another server using it? pick another with --grpc ADDR)",
                args.grpc
            )
        })?;
    let address = listener.local_addr().context("reading the gRPC address")?;
    let metrics = match args.metrics {
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(at).await.with_context(|| {
                format!("binding the metrics endpoint to {at} (pick another with --metrics ADDR)")
            })?;
            if !at.ip().is_loopback() {
                tracing::warn!(
                    "metrics on a network address ({at}): whoever reaches it reads the server's counters and module ids"
                );
            }
            let bound = listener
                .local_addr()
                .context("reading the metrics address")?;
            let metrics = hotwasm_server::metrics::Metrics::new(Arc::clone(&server), queue.clone());
            tokio::spawn(metrics.serve(listener, shutdown.wait()));
            Some(bound)
        }
        None => None,
    };
    let _watcher = match &args.modules_dir {
        Some(dir) => Some(
            hotwasm_host::watch::watch(dir, Arc::clone(server.host()), None)
                .with_context(|| format!("watching {}", dir.display()))?,
        ),
        None => None,
    };
    let scheme = if args.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let serving = server
        .host()
        .serving()
        .into_values()
        .collect::<Vec<_>>()
        .join(", ");
    eprintln!(
        "hotwasm serve: {} on {} with {} workers ({serving}; {}); gRPC on {scheme}://{address}; {}{}",
        server.name(),
        args.runtime,
        server.pool().threads(),
        args.trust.describe(),
        match &args.redis {
            Some(url) => format!(
                "jobs from {} stream {} group {}",
                hotwasm_queue::redact_url(url),
                args.stream,
                args.group
            ),
            None => "no queue (pass --redis to take jobs from Redis)".to_string(),
        },
        match metrics {
            Some(at) => format!("; metrics on http://{at}/metrics"),
            None => String::new(),
        }
    );

    let fleet = match &queue {
        Some(queue) if !args.no_fleet => {
            if args.trust.allow_unsigned {
                tracing::warn!(
                    "INSECURE: --allow-unsigned with the fleet on: whoever can write the fleet's records in Redis can make this server run code of their own (--no-fleet turns the fleet off)"
                );
            }
            let fleet = hotwasm_rollout::Fleet::connect(queue.options(), &args.fleet)
                .await
                .context("connecting to the fleet's records (--no-fleet runs without them)")?;
            let agent = hotwasm_rollout::AgentConfig::new(server.name());
            Some(tokio::spawn(hotwasm_rollout::agent::run(
                fleet,
                Arc::clone(server.host()),
                agent,
                shutdown.wait(),
            )))
        }
        _ => None,
    };
    let grpc = tokio::spawn(hotwasm_server::grpc::serve(
        Arc::clone(&server),
        listener,
        grpc_options,
        shutdown.wait(),
    ));
    if let Some(queue) = queue {
        let min_idle = args.reclaim_after.at_least(Duration::from_millis(1));
        let defaults = ConsumeOptions::default();
        let options = ConsumeOptions {
            batch: args.batch.max(1),
            // Look for abandoned jobs at least twice per idle period.
            reclaim_every: defaults.reclaim_every.min(min_idle / 2),
            min_idle,
            max_deliveries: args.max_deliveries.max(1),
            reply_key,
            ..defaults
        };
        hotwasm_server::consume::consume(Arc::clone(&server), queue, options, shutdown.wait())
            .await;
    }
    grpc.await.context("the gRPC server stopped")??;
    if let Some(fleet) = fleet {
        let _ = fleet.await;
    }
    eprintln!(
        "hotwasm serve: {} stopped after {} verdicts",
        server.name(),
        server
            .pool()
            .counters()
            .verdicts
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(())
}

/// The gRPC options from the flags: admin tokens, TLS, and the refusal to
/// serve a network address in clear text unless told `--insecure`.
fn grpc_options(args: &Args) -> anyhow::Result<GrpcOptions> {
    let admin_tokens = AdminTokens::read(&args.admin_token)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsIdentity {
            cert_pem: std::fs::read(cert)
                .with_context(|| format!("reading the TLS certificate {}", cert.display()))?,
            key_pem: hotwasm_auth::file::read_secret(key, "TLS key")?.into_bytes(),
        }),
        _ => None,
    };
    if !args.grpc.ip().is_loopback() && tls.is_none() {
        if !args.insecure {
            anyhow::bail!(
                "refusing to serve gRPC on {} without TLS: admin tokens and verdicts would cross the network in clear text; pass --tls-cert and --tls-key, bind a loopback address, or pass --insecure",
                args.grpc
            );
        }
        tracing::warn!(
            address = %args.grpc,
            "INSECURE: gRPC on a network address without TLS (--insecure): admin tokens and verdicts cross the network in clear text"
        );
    }
    if admin_tokens.is_empty() {
        tracing::info!("module administration over gRPC is closed (no --admin-token)");
    } else {
        let names: Vec<&str> = admin_tokens.names().collect();
        tracing::info!(operators = %names.join(", "), "module administration over gRPC open to these admin tokens");
    }
    Ok(GrpcOptions {
        max_message_bytes: args.grpc_max_message_bytes,
        admin_tokens,
        tls,
        ..GrpcOptions::default()
    })
}
