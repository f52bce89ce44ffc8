//! `hotwasm generate`: signed jobs as JSON Lines on stdout.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;
use hotwasm_jobs::adversarial::{self, Kind};
use hotwasm_jobs::{Adversarial, Generator, Job, SchemeChoice};

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
    /// Hard cases instead: every adversarial kind of --scheme in turn (edge
    /// keys, r and s out of range, the low-S boundary, every non-strict DER
    /// form, SEC1-invalid key prefixes, hex text for bytes), each with the
    /// verdict it must get.
    #[arg(long, conflicts_with = "invalid_ratio")]
    adversarial: bool,
    /// Only these adversarial kinds, comma-separated (implies
    /// --adversarial); `--kinds list` prints them.
    #[arg(long, value_name = "KIND,...", conflicts_with = "invalid_ratio")]
    kinds: Option<String>,
}

pub(crate) fn ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("{text:?} is not a ratio between 0 and 1")),
    }
}

/// Writes the jobs.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let count = usize::try_from(args.count).unwrap_or(usize::MAX);
    if args.kinds.as_deref() == Some("list") {
        let mut text = String::new();
        for kind in adversarial::KINDS {
            text.push_str(&format!(
                "{:<40} {:<8} expect {}\n",
                kind.name, kind.scheme, kind.expect
            ));
        }
        crate::print(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let jobs: Box<dyn Iterator<Item = Job>> = match (&args.kinds, args.adversarial) {
        (Some(list), _) => Box::new(Adversarial::new(args.seed, adversarial::parse_kinds(list)?)),
        (None, true) => {
            let kinds: Vec<&'static Kind> = adversarial::kinds_of(args.scheme);
            Box::new(Adversarial::new(args.seed, kinds))
        }
        (None, false) => Box::new(Generator::new(args.seed, args.scheme, args.invalid_ratio)),
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    for job in jobs.take(count) {
        serde_json::to_writer(&mut out, &job.to_line()).context("writing jobs")?;
        out.write_all(b"\n").context("writing jobs")?;
    }
    out.flush().context("writing jobs")?;
    Ok(ExitCode::SUCCESS)
}
