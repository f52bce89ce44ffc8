//! `hotwasm modules`: the module registry and the built-in modules, or
//! with `--server URL` a running server's modules over gRPC.

pub mod fleet;
pub mod remote;
mod sign;

use std::path::PathBuf;
use std::process::ExitCode;

use std::fmt::Write as _;

use anyhow::Context;
use hotwasm_host::{AuditEntry, AuditLog};
use hotwasm_modules::VARIANTS;
use hotwasm_registry::{ModuleRegistry, RegistryError, VersionInfo};
use hotwasm_runtime::RuntimeKind;

use crate::command::modules::fleet::FleetArgs;
use crate::command::seconds::Seconds;
use crate::command::trust::TrustArgs;
use hotwasm_rollout::commands::TrialParams;
use hotwasm_rollout::state::Mode;

/// `writeln!` into a `String`, which cannot fail.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {
        let _ = writeln!($out, $($arg)*);
    };
}

/// Where the registry lives.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// Registry directory [default: $XDG_DATA_HOME/hotwasm or ~/.local/share/hotwasm].
    #[arg(long, env = "HOTWASM_REGISTRY", global = true)]
    pub registry: Option<PathBuf>,
}

impl RegistryArgs {
    /// The registry directory in force.
    pub fn dir(&self) -> PathBuf {
        self.registry
            .clone()
            .unwrap_or_else(ModuleRegistry::default_dir)
    }

    /// Opens (creating) the registry.
    pub fn open(&self) -> anyhow::Result<ModuleRegistry> {
        let dir = self.dir();
        ModuleRegistry::open(&dir)
            .with_context(|| format!("opening the registry {}", dir.display()))
    }

    /// Whether a registry exists there.
    pub fn exists(&self) -> bool {
        self.dir().join("registry.json").exists()
    }

    /// Opens the registry only if it exists.
    pub fn open_existing(&self) -> anyhow::Result<Option<ModuleRegistry>> {
        if self.exists() {
            self.open().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Which server to administer instead of the local registry.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Act on a running server's modules over gRPC (e.g. http://127.0.0.1:50051)
    /// instead of the local registry.
    #[arg(long, env = "HOTWASM_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// The admin token (a NAME:SECRET file, mode 0600; `hotwasm
    /// admin-token` makes one) that load, activate and rollback send.
    #[arg(long, env = "HOTWASM_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The CA certificate (PEM) that signs the server's TLS certificate,
    /// for an https:// server URL.
    #[arg(long, env = "HOTWASM_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
}

/// Subcommands of `hotwasm modules`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List registry versions and the modules built into this binary.
    List {
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Validate a module (signed by a trusted key, compile, waPC shape,
    /// self-test) and store it.
    ///
    /// The first version of a name becomes active; a module named
    /// `schnorr` or `ecdsa` serves that scheme. The module must carry a
    /// signature by a key the registry's user trusts (--trusted-key), or
    /// the server's (with --server): `hotwasm modules sign` makes one.
    Load {
        /// The .wasm file.
        file: PathBuf,
        /// Module name [default: the file stem].
        #[arg(long)]
        name: Option<String>,
        /// Runtime to validate on (with --server: the server's runtime).
        #[arg(long, default_value = "wasmtime")]
        runtime: RuntimeKind,
        /// Also make it the active version.
        #[arg(long)]
        activate: bool,
        /// A detached signature of FILE (`hotwasm modules sign --detached`,
        /// `wasmsign2 sign -S`), embedded into the module before it is
        /// sent or stored, so the stored version carries it.
        #[arg(long, value_name = "SIG")]
        signature: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Sign a module with a secret key (`hotwasm keys generate`), in the
    /// WebAssembly tool-conventions format that `wasmsign2` reads and writes.
    Sign(sign::SignArgs),
    /// Tell whether a module's signature verifies with the trusted keys.
    VerifySignature(sign::VerifyArgs),
    /// Make NAME@HASH (a unique hash prefix of 4+ digits) the active version
    /// (with --redis: on every server of the fleet).
    ///
    /// With --redis, on every server of the fleet at once (a version
    /// published with `modules publish`, or a built-in one).
    Activate {
        /// `name@hash`.
        spec: String,
        /// With --redis: wait until every live server serves it, at most
        /// SECONDS, and say how long the last one took.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<Seconds>,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// Re-activate the version that was active before the current one
    /// (with --redis: the fleet's previous version, on every server).
    Rollback {
        /// Module name.
        name: String,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// Store a module in the fleet's Redis, under its SHA-256, for
    /// `activate`, `shadow` and `canary --redis`. Servers compile it ahead.
    Publish {
        /// The .wasm file (signed, if the servers trust keys).
        file: PathBuf,
        /// Module name [default: the file stem].
        #[arg(long)]
        name: Option<String>,
        /// A detached signature of FILE, embedded before publishing.
        #[arg(long, value_name = "SIG")]
        signature: Option<PathBuf>,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// Run a candidate after the active version on a sample of live jobs
    /// on every server, comparing verdicts; the delivered verdicts stay the
    /// active version's. Any disagreement or failed call stops it; after
    /// --promote-after agreeing jobs it becomes active everywhere.
    Shadow {
        /// `name@hash` of the candidate (published or built in).
        spec: String,
        /// Fraction of jobs compared (0 < S ≤ 1).
        #[arg(long, default_value_t = 1.0, value_parser = fraction)]
        sample: f64,
        /// Agreeing jobs (fleet-wide) after which it is promoted.
        #[arg(long, default_value_t = 100_000)]
        promote_after: u64,
        /// Also count two invalid verdicts with different reasons as a
        /// disagreement.
        #[arg(long)]
        compare_reason: bool,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// Serve a share of jobs (chosen by job id, so a retried job goes the
    /// same way) with a candidate on every server; a failed candidate call
    /// falls back to the active version. Rolled back by itself past its
    /// error budget or p99 bound; promoted after --promote-after jobs.
    Canary {
        /// `name@hash` of the candidate (published or built in).
        spec: String,
        /// Percent of jobs it serves (0 < P ≤ 100).
        #[arg(long, default_value_t = 5.0, value_parser = percent)]
        percent: f64,
        /// Largest share of its calls that may fail over the window
        /// (--promote-after jobs); past it, rolled back at once.
        #[arg(long, default_value_t = 0.001)]
        max_error_rate: f64,
        /// Largest p99 of its calls on any server, in milliseconds (after
        /// 100 calls there); past it, rolled back.
        #[arg(long, value_name = "MS")]
        max_p99_ms: Option<f64>,
        /// Jobs it serves (fleet-wide) before it is promoted.
        #[arg(long, default_value_t = 100_000)]
        promote_after: u64,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// End the shadow or canary of NAME on every server; the active
    /// version stays.
    Abort {
        /// Module name.
        name: String,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// The fleet: each scheme's active version and trial, and each server's
    /// versions, trial counts, last swap and refusals.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// The jobs on which a candidate and the active version disagreed,
    /// with both verdicts (the fleet keeps about the last 1,000).
    Disagreements {
        /// How many, newest.
        #[arg(long, default_value_t = 20)]
        count: usize,
        /// JSON lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// Every change of the fleet's modules: who, when, from and to which
    /// version, why (the fleet keeps about the last 10,000).
    History {
        /// How many, newest.
        #[arg(long, default_value_t = 50)]
        count: usize,
        /// JSON lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        fleet: FleetArgs,
    },
}

/// A fraction in (0, 1].
fn fraction(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(format!("{value} is not in (0, 1]"))
    }
}

/// A percentage in (0, 100].
fn percent(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if value > 0.0 && value <= 100.0 {
        Ok(value)
    } else {
        Err(format!("{value} is not in (0, 100]"))
    }
}

/// Reads a module file, with a detached signature embedded if given.
fn read_module(
    file: &std::path::Path,
    signature: Option<&std::path::Path>,
) -> anyhow::Result<Vec<u8>> {
    let mut wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    if let Some(signature) = signature {
        let detached =
            std::fs::read(signature).with_context(|| format!("reading {}", signature.display()))?;
        wasm = hotwasm_trust::attach_signature(&wasm, &detached)
            .with_context(|| format!("attaching {}", signature.display()))?;
    }
    Ok(wasm)
}

/// The name a module file gives, unless `--name` says otherwise.
fn module_name(file: &std::path::Path, name: Option<String>) -> anyhow::Result<String> {
    match name {
        Some(name) => Ok(name),
        None => file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .context("the file has no name to use; pass --name"),
    }
}

/// Runs a `modules` subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::List {
            json,
            server: server @ ServerArgs {
                server: Some(_), ..
            },
            ..
        } => remote::run(&server, remote::Operation::List { json })?,
        Command::List { json, registry, .. } => list(json, &registry)?,
        Command::Sign(args) => return sign::sign(args),
        Command::VerifySignature(args) => return sign::verify(args),
        Command::Load {
            file,
            name,
            runtime,
            activate,
            signature,
            registry,
            server,
            trust,
        } => {
            let wasm = read_module(&file, signature.as_deref())?;
            let name = module_name(&file, name)?;
            if server.server.is_some() {
                anyhow::ensure!(
                    !trust.allow_unsigned,
                    "--allow-unsigned is the server's choice: start `hotwasm serve` with it"
                );
                let operation = remote::Operation::Load {
                    name,
                    wasm,
                    activate,
                };
                remote::run(&server, operation)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut registry = registry.open()?;
            let audit = local_audit(registry.dir())?;
            let runtime = runtime.create()?;
            let source = file.display().to_string();
            let trust = trust.trust("modules load")?;
            let loaded = registry.load(&name, &wasm, Some(&source), runtime.as_ref(), &trust);
            audit.record("load", &source, &loaded);
            let mut version = loaded.map_err(|e| match e {
                RegistryError::Untrusted { .. } => {
                    anyhow::anyhow!("{e} ({})", hotwasm_trust::HINT)
                }
                e => e.into(),
            })?;
            if activate {
                let spec = format!("{}@{}", version.name, version.hash);
                let activated = registry.activate(&spec);
                audit.record("activate", &spec, &activated);
                version = activated?;
            }
            crate::print(&format!(
                "loaded {} ({} bytes, {})\n",
                version.id,
                version.size,
                state(&version)
            ))?;
        }
        Command::Activate {
            spec, wait, fleet, ..
        } if fleet.given() => {
            let wait = wait.map(|seconds| seconds.0);
            fleet::run(&fleet, fleet::Operation::Activate { spec, wait })?;
        }
        Command::Rollback { name, fleet, .. } if fleet.given() => {
            fleet::run(&fleet, fleet::Operation::Rollback { name })?;
        }
        Command::Publish {
            file,
            name,
            signature,
            fleet,
        } => {
            let wasm = read_module(&file, signature.as_deref())?;
            let name = module_name(&file, name)?;
            fleet::run(&fleet, fleet::Operation::Publish { name, wasm })?;
        }
        Command::Shadow {
            spec,
            sample,
            promote_after,
            compare_reason,
            fleet,
        } => {
            let params = TrialParams {
                mode: Mode::Shadow { sample },
                promote_after: promote_after.max(1),
                max_error_rate: 0.0,
                max_p99_ms: None,
                compare_reason,
            };
            fleet::run(&fleet, fleet::Operation::Trial { spec, params })?;
        }
        Command::Canary {
            spec,
            percent,
            max_error_rate,
            max_p99_ms,
            promote_after,
            fleet,
        } => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&max_error_rate),
                "--max-error-rate is a share of calls, in [0, 1]"
            );
            let params = TrialParams {
                mode: Mode::Canary {
                    fraction: percent / 100.0,
                },
                promote_after: promote_after.max(1),
                max_error_rate,
                max_p99_ms,
                compare_reason: false,
            };
            fleet::run(&fleet, fleet::Operation::Trial { spec, params })?;
        }
        Command::Abort { name, fleet } => fleet::run(&fleet, fleet::Operation::Abort { name })?,
        Command::Status { json, fleet } => fleet::run(&fleet, fleet::Operation::Status { json })?,
        Command::Disagreements { count, json, fleet } => {
            fleet::run(&fleet, fleet::Operation::Disagreements { count, json })?;
        }
        Command::History { count, json, fleet } => {
            fleet::run(&fleet, fleet::Operation::History { count, json })?;
        }
        Command::Activate {
            spec,
            server: server @ ServerArgs {
                server: Some(_), ..
            },
            ..
        } => remote::run(&server, remote::Operation::Activate { spec })?,
        Command::Rollback {
            name,
            server: server @ ServerArgs {
                server: Some(_), ..
            },
            ..
        } => remote::run(&server, remote::Operation::Rollback { name })?,
        Command::Activate { spec, registry, .. } => {
            let mut registry = registry.open()?;
            let activated = registry.activate(&spec);
            local_audit(registry.dir())?.record("activate", &spec, &activated);
            let version = activated.map_err(|e| match e {
                // The hint suits this command only, not every caller of the registry.
                RegistryError::NotFound(_) => {
                    anyhow::anyhow!("{e} (`hotwasm modules list` shows what is stored)")
                }
                e => e.into(),
            })?;
            crate::print(&format!("activated {}\n", version.id))?;
        }
        Command::Rollback { name, registry, .. } => {
            let mut registry = registry.open()?;
            let rolled_back = registry.rollback(&name);
            local_audit(registry.dir())?.record("rollback", &name, &rolled_back);
            let version = rolled_back?;
            crate::print(&format!("rolled back {name} to {}\n", version.id))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The local registry's audit trail (`<registry>/audit.jsonl`), as the
/// effective user, through `cli`.
struct LocalAudit {
    log: AuditLog,
    who: String,
}

fn local_audit(dir: &std::path::Path) -> anyhow::Result<LocalAudit> {
    let log = AuditLog::of_registry(dir).with_context(|| {
        format!(
            "opening the audit trail {}",
            dir.join(AuditLog::REGISTRY_FILE).display()
        )
    })?;
    Ok(LocalAudit {
        log,
        who: AuditLog::local_user(),
    })
}

impl LocalAudit {
    fn record<E: std::fmt::Display>(
        &self,
        action: &str,
        target: &str,
        outcome: &Result<VersionInfo, E>,
    ) {
        self.log.record(&AuditEntry {
            who: &self.who,
            via: "cli",
            action,
            target,
            outcome: match outcome {
                Ok(version) => Ok(format!("{} {}", version.id, state(version))),
                Err(e) => Err(e.to_string()),
            },
        });
    }
}

fn state(version: &VersionInfo) -> &'static str {
    match version.state {
        hotwasm_registry::VersionState::Active => "active",
        hotwasm_registry::VersionState::Previous => "previous",
        hotwasm_registry::VersionState::Available => "available",
    }
}

fn list(json: bool, registry: &RegistryArgs) -> anyhow::Result<()> {
    let mut out = String::new();
    let versions = registry
        .open_existing()?
        .map(|r| r.list())
        .unwrap_or_default();
    let built = hotwasm_modules::built();
    if json {
        let built: Vec<serde_json::Value> = built
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.id(),
                    "name": m.scheme,
                    "variant": m.variant.name,
                    "family": m.variant.family.name(),
                    "bytes": m.bytes.len(),
                    "sha256": m.hash(),
                    "flags": m.variant.describe_flags(),
                })
            })
            .collect();
        let json = serde_json::json!({ "registry": versions, "built": built });
        outln!(out, "{json}");
        return crate::print(&out);
    }
    outln!(out, "registry {}:", registry.dir().display());
    if versions.is_empty() {
        outln!(out, "  (empty: `hotwasm modules load FILE` adds a version)");
    }
    for v in &versions {
        outln!(
            out,
            "  {:<26} {:>9} bytes  {:<9}  {}",
            v.id,
            v.size,
            state(v),
            v.source.as_deref().unwrap_or("")
        );
    }
    outln!(out, "\nbuilt into this binary:");
    outln!(
        out,
        "  {:<8} {:<20} {:<13} {:>9}  {:<25} FLAGS",
        "NAME",
        "VARIANT",
        "FAMILY",
        "BYTES",
        "ID"
    );
    for m in built {
        outln!(
            out,
            "  {:<8} {:<20} {:<13} {:>9}  {:<25} {}",
            m.scheme,
            m.variant.name,
            m.variant.family.name(),
            m.bytes.len(),
            m.id(),
            m.variant.describe_flags()
        );
    }
    let missing: Vec<&str> = VARIANTS
        .iter()
        .filter(|v| !built.iter().any(|m| m.variant.name == v.name))
        .map(|v| v.name)
        .collect();
    if !missing.is_empty() {
        outln!(
            out,
            "\nnot built: {} (build with HOTWASM_ALL_VARIANTS=1 to include them)",
            missing.join(", ")
        );
    }
    crate::print(&out)
}
