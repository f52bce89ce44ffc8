//! The `hotwasm` command: parses arguments and calls the libraries.
//!
//! # Layout
//!
//! - `main.rs`: the argument grammar (clap) and dispatch.
//! - `command/`: one file per subcommand, each a thin call into a library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod command;

/// Verify secp256k1 signatures in hot-swappable WebAssembly modules.
#[derive(Debug, Parser)]
#[command(name = "hotwasm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write signed jobs (valid and deliberately invalid) as JSON Lines.
    Generate(command::generate::Args),
    /// Verify JSON Lines jobs and write one verdict line per job.
    Verify(command::verify::Args),
    /// Inspect the guest modules.
    #[command(subcommand)]
    Modules(command::modules::Command),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOTWASM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Generate(args) => command::generate::run(args),
        Command::Verify(args) => command::verify::run(args),
        Command::Modules(command) => command::modules::run(command),
    };
    match outcome {
        Ok(code) => code,
        // The reader went away (`| head`): not an error of ours.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hotwasm: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes `text` to stdout; a closed pipe ends the program quietly.
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
