//! Records, at build time, what the report's "Machine and build" section
//! cannot learn at run time: the rustc that built the bench and the
//! versions of the runtime crates, read from the workspace's `Cargo.lock`.

use std::path::Path;
use std::process::Command;

/// Crates whose resolved versions the report names.
const CRATES: &[&str] = &["wasmtime", "wasmi", "wasm3", "k256"];

fn main() {
    let lock = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    println!("cargo:rerun-if-changed=build.rs");
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let versions: Vec<String> = CRATES
        .iter()
        .map(|name| {
            format!(
                "{name}={}",
                locked_version(&text, name).unwrap_or("unknown")
            )
        })
        .collect();
    println!(
        "cargo:rustc-env=HOTWASM_BENCH_CRATE_VERSIONS={}",
        versions.join(",")
    );

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HOTWASM_BENCH_RUSTC={version}");
}

/// The version of the first `[[package]]` named `name` in a lock file.
fn locked_version<'a>(lock: &'a str, name: &str) -> Option<&'a str> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let next = lines.next()?.trim();
            return next
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'));
        }
    }
    None
}
