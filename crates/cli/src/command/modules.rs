//! `hotwasm modules`: the module registry and the built-in modules, or
//! with `--server URL` a running server's modules over gRPC.

mod remote;

use std::path::PathBuf;
use std::process::ExitCode;

use std::fmt::Write as _;

use anyhow::Context;
use hotwasm_modules::VARIANTS;
use hotwasm_registry::{ModuleRegistry, RegistryError, VersionInfo};
use hotwasm_runtime::RuntimeKind;

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
    /// Validate a module (compile, waPC shape, self-test) and store it.
    ///
    /// The first version of a name becomes active; a module named
    /// `schnorr` or `ecdsa` serves that scheme.
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
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        server: ServerArgs,
    },
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
        Command::Load {
            file,
            name,
            runtime,
            activate,
            registry,
            server,
        } => {
            let wasm =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let name = match name {
                Some(name) => name,
                None => file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .context("the file has no name to use; pass --name")?,
            };
            if server.server.is_some() {
                let operation = remote::Operation::Load {
                    name,
                    wasm,
                    activate,
                };
                remote::run(&server, operation)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut registry = registry.open()?;
            let runtime = runtime.create()?;
            let source = file.display().to_string();
            let mut version = registry.load(&name, &wasm, Some(&source), runtime.as_ref())?;
            if activate {
                version = registry.activate(&format!("{}@{}", version.name, version.hash))?;
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
            let version = registry.open()?.activate(&spec).map_err(|e| match e {
                // The hint suits this command only, not every caller of the registry.
                RegistryError::NotFound(_) => {
                    anyhow::anyhow!("{e} (`hotwasm modules list` shows what is stored)")
                }
                e => e.into(),
            })?;
            crate::print(&format!("activated {}\n", version.id))?;
        }
        Command::Rollback { name, registry, .. } => {
            let version = registry.open()?.rollback(&name)?;
            crate::print(&format!("rolled back {name} to {}\n", version.id))?;
        }
    }
    Ok(ExitCode::SUCCESS)
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
