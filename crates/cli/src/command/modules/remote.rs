//! `hotwasm modules ... --server URL`: the same operations on a running
//! server over gRPC, through `hotwasm_client::admin`.

use std::fmt::Write as _;

use anyhow::Context;
use hotwasm_auth::AdminToken;
use hotwasm_client::admin::{AdminClient, AdminError, ConnectOptions, ModuleVersion};

use crate::command::modules::ServerArgs;

/// An operation on a server's modules.
#[derive(Debug)]
pub enum Operation {
    /// List stored versions and what serves each scheme.
    List {
        /// JSON instead of a table.
        json: bool,
    },
    /// Validate and store a module.
    Load {
        /// Module name.
        name: String,
        /// The .wasm bytes.
        wasm: Vec<u8>,
        /// Also activate it.
        activate: bool,
    },
    /// Activate `name@hash`.
    Activate {
        /// `name@hash`.
        spec: String,
    },
    /// Roll a name back.
    Rollback {
        /// Module name.
        name: String,
    },
}

/// How to reach a server: with the admin token in `token_file`, and
/// trusting the CA certificate in `tls_ca` for an `https://` URL.
pub fn connect_options(
    token_file: Option<&std::path::Path>,
    tls_ca: Option<&std::path::Path>,
) -> anyhow::Result<ConnectOptions> {
    let mut options = ConnectOptions::default();
    if let Some(path) = token_file {
        options.token = Some(AdminToken::read(path)?);
    }
    if let Some(path) = tls_ca {
        options.tls_ca_pem = Some(
            std::fs::read(path)
                .with_context(|| format!("reading the TLS CA {}", path.display()))?,
        );
    }
    Ok(options)
}

/// Performs `operation` on the server `args` name and prints the outcome.
pub fn run(args: &ServerArgs, operation: Operation) -> anyhow::Result<()> {
    let url = args.server.as_deref().context("no server URL")?;
    let options = connect_options(args.token_file.as_deref(), args.tls_ca.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let out = runtime
        .block_on(call(url, &options, operation))
        .map_err(|error| match error.downcast_ref::<AdminError>() {
            Some(AdminError::Call {
                code: tonic::Code::Unauthenticated,
                ..
            }) => anyhow::anyhow!(
                "{error:#} (pass an admin token the server accepts: --token-file FILE or HOTWASM_TOKEN_FILE)"
            ),
            _ => error,
        })?;
    crate::print(&out)
}

async fn call(url: &str, options: &ConnectOptions, operation: Operation) -> anyhow::Result<String> {
    let mut server = AdminClient::connect_with(url, options).await?;
    let mut out = String::new();
    match operation {
        Operation::List { json } => {
            let list = server.list_modules().await?;
            if json {
                let versions: Vec<serde_json::Value> = list.versions.iter().map(to_json).collect();
                let built: Vec<serde_json::Value> = list.built_in.iter().map(to_json).collect();
                let json = serde_json::json!({
                    "server": url,
                    "registry": versions,
                    "serving": list.serving,
                    "built": built,
                    "health": list.health.iter().map(|h| serde_json::json!({
                        "scheme": h.scheme,
                        "id": h.id,
                        "calls": h.calls,
                        "failures": h.failures,
                        "failures_in_a_row": h.failures_in_a_row,
                        "last_failure": h.last_failure,
                        "failing": h.failing,
                    })).collect::<Vec<_>>(),
                });
                let _ = writeln!(out, "{json}");
                return Ok(out);
            }
            let _ = writeln!(out, "server {url}:");
            let _ = writeln!(out, "  serving:");
            let mut serving: Vec<_> = list.serving.into_iter().collect();
            serving.sort();
            for (scheme, module) in serving {
                let _ = write!(out, "    {scheme:<8} {module}");
                if let Some(h) = list.health.iter().find(|h| h.scheme == scheme) {
                    let _ = write!(out, "  {} calls, {} failed", h.calls, h.failures);
                    if h.failing {
                        let _ = write!(
                            out,
                            "  FAILING: the last {} calls gave no answer (last: {})",
                            h.failures_in_a_row, h.last_failure
                        );
                    }
                }
                let _ = writeln!(out);
            }
            let _ = writeln!(out, "  registry:");
            if list.versions.is_empty() {
                let _ = writeln!(
                    out,
                    "    (empty: `hotwasm modules load FILE --server {url}` adds a version)"
                );
            }
            for v in &list.versions {
                let _ = writeln!(out, "    {:<26} {:>9} bytes  {}", v.id, v.size, v.state);
            }
            let _ = writeln!(out, "  built in (activate an id to serve it again):");
            for v in &list.built_in {
                let _ = writeln!(out, "    {:<26} {:>9} bytes", v.id, v.size);
            }
        }
        Operation::Load {
            name,
            wasm,
            activate,
        } => {
            let version = server
                .load_module(&name, wasm, activate)
                .await
                .map_err(|e| match e.code() {
                    Some(tonic::Code::PermissionDenied) => anyhow::anyhow!(
                        "{e}: sign the module with `hotwasm modules sign FILE --key KEY`, with a \
                         key the server trusts (its --trusted-key)"
                    ),
                    _ => e.into(),
                })?;
            let _ = writeln!(
                out,
                "loaded {} ({} bytes, {}) on {url}",
                version.id, version.size, version.state
            );
        }
        Operation::Activate { spec } => {
            let version = server.activate_module(&spec).await?;
            let _ = writeln!(out, "activated {} on {url}", version.id);
        }
        Operation::Rollback { name } => {
            let version = server.rollback_module(&name).await?;
            let _ = writeln!(out, "rolled back {name} to {} on {url}", version.id);
        }
    }
    Ok(out)
}

fn to_json(version: &ModuleVersion) -> serde_json::Value {
    serde_json::json!({
        "id": version.id,
        "name": version.name,
        "hash": version.sha256,
        "size": version.size,
        "state": version.state,
    })
}
