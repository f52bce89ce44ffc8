//! `hotwasm generate`: signed jobs as JSON Lines on stdout.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;
use hotwasm_jobs::{Generator, SchemeChoice};

/// Arguments of `hotwasm generate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of jobs.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// schnorr, ecdsa or mixed.
    #[arg(long, default_value = "mixed")]
    scheme: SchemeChoice,
    /// Fraction of jobs made deliberately invalid (tampered message or
    /// signature, wrong key, malformed encodings, high-S).
    #[arg(long, default_value_t = 0.2, value_parser = ratio)]
    invalid_ratio: f64,
    /// Seed; the same seed gives the same jobs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub(crate) fn ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("{text:?} is not a ratio between 0 and 1")),
    }
}

/// Writes the jobs.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    let generator = Generator::new(args.seed, args.scheme, args.invalid_ratio);
    for job in generator.take(usize::try_from(args.count).unwrap_or(usize::MAX)) {
        serde_json::to_writer(&mut out, &job.to_line()).context("writing jobs")?;
        out.write_all(b"\n").context("writing jobs")?;
    }
    out.flush().context("writing jobs")?;
    Ok(ExitCode::SUCCESS)
}
