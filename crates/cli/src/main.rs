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
    /// Manage modules: the local registry, a running server (`--server`), or every server of a fleet (`--redis`).
    #[command(subcommand)]
    Modules(command::modules::Command),
    /// Keys that sign modules (`hotwasm modules sign`) and that servers trust (`--trusted-key`).
    #[command(subcommand)]
    Keys(command::keys::Command),
    /// Run a server: take jobs from a queue, verify them, send verdicts back; gRPC API.
    Serve(Box<command::serve::Args>),
    /// A running server's counters at a glance (`--watch` to follow them).
    Stats(command::stats::Args),
    /// Submit signed jobs to servers through a queue, collect and check the verdicts.
    Submit(command::submit::Args),
    /// The whole pipeline in one process (embedded queue, shared-memory verdicts), no Redis needed.
    Demo(command::demo::Args),
    /// The evaluation: every runtime against native, written as a report.
    Bench(command::bench::Args),
    /// Make an admin token: the credential module administration over gRPC needs.
    AdminToken(command::admin_token::Args),
    /// Make a reply key: servers sign verdicts with it, clients check them.
    ReplyKey(command::reply_key::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOTWASM_LOG")
                // The audit trail of module administration is on by default.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,audit=info")),
        )
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Generate(args) => command::generate::run(args),
        Command::Verify(args) => command::verify::run(args),
        Command::Modules(command) => command::modules::run(command),
        Command::Keys(command) => command::keys::run(command),
        Command::Serve(args) => command::serve::run(*args),
        Command::Stats(args) => command::stats::run(args),
        Command::Submit(args) => command::submit::run(args),
        Command::Demo(args) => command::demo::run(args),
        Command::Bench(args) => command::bench::run(args),
        Command::AdminToken(args) => command::admin_token::run(args),
        Command::ReplyKey(args) => command::reply_key::run(args),
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
