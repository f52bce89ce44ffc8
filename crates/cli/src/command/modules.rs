//! `hotwasm modules`: the guest modules this binary carries.

use std::process::ExitCode;

use hotwasm_modules::{GUESTS, VARIANTS};

/// Subcommands of `hotwasm modules`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the built modules: name, variant, size, hash, build flags.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `modules` subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::List { json } => list(json),
    }
    Ok(ExitCode::SUCCESS)
}

fn list(json: bool) {
    let built = hotwasm_modules::built();
    if json {
        let rows: Vec<serde_json::Value> = built
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
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    println!(
        "{:<8} {:<14} {:>9}  {:<25} FLAGS",
        "NAME", "VARIANT", "BYTES", "ID"
    );
    for m in built {
        println!(
            "{:<8} {:<14} {:>9}  {:<25} {}",
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
        println!(
            "\nnot built: {} (build with HOTWASM_ALL_VARIANTS=1 to include them)",
            missing.join(", ")
        );
    }
    debug_assert_eq!(built.len() % GUESTS.len(), 0);
}
