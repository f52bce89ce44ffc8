//! `hotwasm modules`: the module registry and the built-in modules, or
//! with `--server URL` a running server's modules over gRPC.

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

use crate::command::trust::TrustArgs;

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
    /// Make NAME@HASH (a unique hash prefix of 4+ digits) the active version.
    Activate {
        /// `name@hash`.
        spec: String,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Re-activate the version that was active before the current one.
    Rollback {
        /// Module name.
        name: String,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        server: ServerArgs,
    },
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
            let mut wasm =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            if let Some(signature) = signature {
                let detached = std::fs::read(&signature)
                    .with_context(|| format!("reading {}", signature.display()))?;
                wasm = hotwasm_trust::attach_signature(&wasm, &detached)
                    .with_context(|| format!("attaching {}", signature.display()))?;
            }
            let name = match name {
                Some(name) => name,
                None => file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .context("the file has no name to use; pass --name")?,
            };
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
        "  {:<8} {:<14} {:>9}  {:<25} FLAGS",
        "NAME",
        "VARIANT",
        "BYTES",
        "ID"
    );
    for m in built {
        outln!(
            out,
            "  {:<8} {:<14} {:>9}  {:<25} {}",
            m.scheme,
            m.variant.name,
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
