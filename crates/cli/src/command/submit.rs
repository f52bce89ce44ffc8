//! `hotwasm submit`: the client. Generates signed jobs (or reads them),
//! submits them to the servers through Redis, collects the verdicts from a
//! shared-memory ring or a results stream, checks them against `expect`,
//! and prints a summary.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hotwasm_client::{Outgoing, ResultsVia, SubmitOptions, Summary};
use hotwasm_jobs::{JobLimits, SchemeChoice};
use hotwasm_queue::{RedisOptions, RedisQueue};
use indicatif::{ProgressBar, ProgressStyle};

use crate::command::redis_auth::RedisAuthArgs;
use crate::command::reply_key::ReplyKeyArgs;
use crate::command::seconds::Seconds;

/// Where verdicts come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Results {
    /// A results stream in Redis: works wherever the servers run.
    Redis,
    /// A shared-memory ring: the servers must run on this host.
    Shm,
}

/// What to submit: generated or read jobs.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// Number of jobs to generate.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// schnorr, ecdsa or mixed.
    #[arg(long, default_value = "mixed")]
    pub scheme: SchemeChoice,
    /// Fraction of generated jobs made deliberately invalid.
    #[arg(long, default_value_t = 0.1, value_parser = crate::command::generate::ratio)]
    pub invalid_ratio: f64,
    /// Seed; the same seed gives the same jobs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Submit the jobs of this JSON Lines file instead of generating them.
    #[arg(long, short)]
    pub input: Option<PathBuf>,
}

impl JobArgs {
    /// The jobs, with a progress bar while they are signed.
    pub fn jobs(&self) -> anyhow::Result<Vec<Outgoing>> {
        if let Some(path) = &self.input {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            return hotwasm_client::jobs::read(BufReader::new(file), &JobLimits::default())
                .with_context(|| format!("reading {}", path.display()));
        }
        let bar = bar(self.count, "signing");
        let jobs = hotwasm_client::jobs::generate(
            self.count,
            self.scheme,
            self.invalid_ratio,
            self.seed,
            &|made| bar.set_position(made),
        );
        bar.finish_and_clear();
        Ok(jobs)
    }
}

/// Arguments of `hotwasm submit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Redis the servers take jobs from (`redis://host:port`).
    #[arg(long, env = "HOTWASM_REDIS")]
    redis: String,
    #[command(flatten)]
    jobs: JobArgs,
    /// Where verdicts come back.
    #[arg(long, value_enum, default_value_t = Results::Redis)]
    results: Results,
    /// Slots of the shared-memory ring (a power of two; any number of jobs fits).
    #[arg(long, default_value_t = 4096, value_parser = ring_slots)]
    ring_slots: u32,
    /// Jobs per submission round trip.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Open loop: submit JOBS_PER_SECOND on a fixed schedule and time each
    /// verdict from its job's scheduled moment (a run that falls behind
    /// shows it in its latencies, as wrk2 does) [default: as fast as
    /// Redis takes them].
    #[arg(long, value_name = "JOBS_PER_SECOND", value_parser = rate)]
    rate: Option<f64>,
    /// Give up on the remaining verdicts after this many seconds without any.
    #[arg(long, value_name = "SECONDS", default_value_t = Seconds(Duration::from_secs(60)))]
    timeout: Seconds,
    /// The job stream.
    #[arg(long, default_value = "hotwasm:jobs", env = "HOTWASM_STREAM")]
    stream: String,
    /// The consumer group the servers read in.
    #[arg(long, default_value = "hotwasm", env = "HOTWASM_GROUP")]
    group: String,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    json: bool,
    /// Make the run resumable under NAME (letters, digits, `_`, `-`): if
    /// this client is killed, the same command started again submits only
    /// the jobs not yet submitted and reads the verdicts already written
    /// (needs --results redis and the same jobs).
    #[arg(long, value_name = "NAME", value_parser = session_name)]
    session: Option<String>,
    #[command(flatten)]
    reply_key: ReplyKeyArgs,
    #[command(flatten)]
    redis_auth: RedisAuthArgs,
}

/// A submission rate: a finite number of jobs per second above zero.
fn rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a rate in jobs per second (a number above 0)"
        )),
    }
}

/// A session name: 1 to 64 of A-Z a-z 0-9 _ -.
fn session_name(text: &str) -> Result<String, String> {
    if (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not a session name: 1 to 64 of A-Z a-z 0-9 _ -"
        ))
    }
}

/// A ring size: a power of two from 2 to 2^24.
pub fn ring_slots(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if n.is_power_of_two() && (2..=1 << 24).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a power of two between 2 and 16777216"
        )),
    }
}

/// Submits and checks; exits 1 when a verdict is wrong or missing, or the
/// results ring was corrupted.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reply_key = args.reply_key.key("submit")?;
    let jobs = args.jobs.jobs()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = runtime.block_on(async {
        let mut options = RedisOptions::new(&args.redis);
        options.stream = args.stream.clone();
        options.group = args.group.clone();
        args.redis_auth.apply(&mut options)?;
        let queue = Arc::new(RedisQueue::connect(options).await?);
        let options = SubmitOptions {
            results: match args.results {
                Results::Redis => ResultsVia::Stream,
                Results::Shm => ResultsVia::Shm {
                    slots: args.ring_slots,
                },
            },
            batch: args.batch.max(1),
            rate: args.rate,
            idle_timeout: args.timeout.at_least(Duration::from_millis(1)),
            reply_key,
            resumable: args.session.is_some(),
            client: args
                .session
                .clone()
                .map_or_else(hotwasm_client::submit::unique_client_name, |name| {
                    format!("session-{name}")
                }),
            ..SubmitOptions::new()
        };
        let bar = bar(jobs.len() as u64, "verdicts");
        let progress = |n| bar.set_position(n);
        let submission =
            hotwasm_client::submit::submit(Arc::clone(&queue), &jobs, &options, &progress);
        let summary = tokio::select! {
            summary = submission => summary,
            _ = tokio::signal::ctrl_c() => {
                bar.finish_and_clear();
                if options.resumable {
                    anyhow::bail!(
                        "interrupted: run the same command again to resume session {}",
                        args.session.as_deref().unwrap_or_default()
                    );
                }
                // The abandoned submission removed its ring; the results
                // stream needs a word with Redis.
                let stream = hotwasm_client::submit::results_stream(&options.client);
                let _ = queue.delete_stream(&stream).await;
                anyhow::bail!("interrupted: jobs already submitted will still be verified, their verdicts dropped");
            }
        };
        bar.finish_and_clear();
        anyhow::Ok(summary?)
    })?;
    if let Some(reason) = &summary.ring_corrupted {
        eprintln!("hotwasm submit: {reason}");
    } else if args.results == Results::Shm && summary.verdicts == 0 && summary.jobs > 0 {
        eprintln!(
            "hotwasm submit: no verdict came back through shared memory: the servers must run on \
             this host, as this user, with the same ring directory ({}, HOTWASM_SHM_DIR); \
             or use --results redis",
            hotwasm_shm::ring_dir().display()
        );
    }
    report(&summary, args.json)
}

/// Prints `summary` (JSON on stdout with `json`, text on stderr) and picks
/// the exit code: 1 when any verdict is wrong or missing.
pub fn report(summary: &Summary, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        crate::print(&format!("{}\n", serde_json::to_string_pretty(summary)?))?;
    } else {
        eprint!("{summary}");
    }
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A progress bar that shows itself only for work longer than a moment
/// (indicatif draws at most every 100 ms and nothing when not a terminal).
pub fn bar(length: u64, what: &str) -> ProgressBar {
    ProgressBar::new(length).with_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} {{per_sec}} eta {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    )
}
