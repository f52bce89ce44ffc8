//! Submitting jobs through a queue and collecting their verdicts.
//!
//! Every job gets a sequence number of this run; verdicts come back tagged
//! with it, so ids need not be unique and a malformed job's verdict is still
//! matched. The verdicts are read by one
//! [`ReplySource`](hotwasm_queue::reply::ReplySource) (a shared-memory ring
//! or a results stream), which reads while jobs are still being submitted.
//! A job redelivered after a server died may be answered twice; the first
//! verdict counts, the others are counted as duplicates. Jobs with no verdict after [`SubmitOptions::idle_timeout`]
//! without any progress are reported missing. A results ring found
//! corrupted is named in the summary and fails the run; if it cannot be
//! read any further the client stops waiting at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hotwasm_auth::MacKey;
use hotwasm_jobs::Job;
use hotwasm_queue::reply::{Arrival, ReplyError, ReplySource, RingSource, StreamSource};
use hotwasm_queue::{Envelope, JobQueue, Progress, QueueError, Reply, ResultsStreams};

use crate::ClientError;
use crate::summary::{Mismatch, Summary};

/// Where this client reads its verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultsVia {
    /// A shared-memory ring of this many slots (the servers must run on
    /// this host); any number of jobs fits, the ring wraps around.
    Shm {
        /// Slots in the ring (a power of two).
        slots: u32,
    },
    /// A results stream in the queue, deleted at the end.
    Stream,
}

/// How to submit.
#[derive(Debug, Clone)]
pub struct SubmitOptions {
    /// This client's name: names its results stream or ring. Unique per run.
    pub client: String,
    /// Where verdicts come back.
    pub results: ResultsVia,
    /// Jobs per submission (one round trip each).
    pub batch: usize,
    /// Give up on the remaining jobs after this long without any verdict.
    pub idle_timeout: Duration,
    /// Where rings live on this host.
    pub ring_dir: PathBuf,
    /// The deployment's reply key: a reply not signed with it is counted
    /// as forged and never used (default: none, replies taken unsigned).
    pub reply_key: Option<MacKey>,
    /// A run that can be resumed: [`SubmitOptions::client`] names it (pick
    /// a name, not [`unique_client_name`]), its progress is kept beside
    /// its results stream, and the same run started again after being
    /// killed submits only the jobs not yet submitted and reads the
    /// verdicts already written. Needs [`ResultsVia::Stream`]. An
    /// incomplete run keeps its stream for the next attempt; a complete
    /// one deletes it.
    pub resumable: bool,
    /// Open loop: submit job `i` at `i / rate` seconds after the start
    /// (as many as are due in one round trip, at most `batch`), and time
    /// each verdict from that scheduled moment, not from when the job was
    /// actually sent — a run that falls behind charges the delay to its
    /// latencies instead of hiding it (no coordinated omission, as wrk2
    /// and ghz do). `None`: every job as fast as the queue takes them.
    pub rate: Option<f64>,
}

impl SubmitOptions {
    /// Defaults: a unique name, shared-memory verdicts in a 4096-slot ring,
    /// batches of 256, 60 s idle timeout (longer than a server's default
    /// reclaim delay, so jobs of a server that died are still answered).
    pub fn new() -> SubmitOptions {
        SubmitOptions {
            client: unique_client_name(),
            results: ResultsVia::Shm { slots: 4096 },
            batch: 256,
            idle_timeout: Duration::from_secs(60),
            ring_dir: hotwasm_shm::ring_dir(),
            reply_key: None,
            resumable: false,
            rate: None,
        }
    }
}

impl ResultsVia {
    /// Starts reading verdicts for `options.client` the way this says:
    /// creates its ring, or its results stream in `queue`.
    ///
    /// # Errors
    ///
    /// [`ClientError`] when the ring or the stream cannot be created.
    pub async fn open<Q: ResultsStreams>(
        self,
        queue: &Arc<Q>,
        options: &SubmitOptions,
    ) -> Result<Box<dyn ReplySource>, ClientError> {
        Ok(match self {
            ResultsVia::Shm { slots } => Box::new(RingSource::create(
                &options.ring_dir,
                &options.client,
                slots,
            )?),
            ResultsVia::Stream => Box::new(
                StreamSource::create(Arc::clone(queue), results_stream(&options.client)).await?,
            ),
        })
    }
}

impl Default for SubmitOptions {
    fn default() -> Self {
        SubmitOptions::new()
    }
}

/// `hotwasm-<pid>-<n>`: unique among the clients of this host.
pub fn unique_client_name() -> String {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "hotwasm-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// One job to submit: its JSON line (sent as is, malformed or not) and the
/// verdict it expects.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// One JSON job line.
    pub line: Vec<u8>,
    /// The expected `valid`, when known.
    pub expect: Option<bool>,
}

impl From<&Job> for Outgoing {
    #[allow(
        clippy::expect_used,
        reason = "a job line of strings and a bool always serializes to JSON"
    )]
    fn from(job: &Job) -> Outgoing {
        Outgoing {
            line: serde_json::to_vec(&job.to_line()).expect("a job line serializes to JSON"),
            expect: job.expect,
        }
    }
}

/// Submits `jobs` through `queue`, collects one verdict per job, and
/// compares each with its `expect`. `progress` gets the number of verdicts
/// received so far.
///
/// # Errors
///
/// [`ClientError`] when the results ring cannot be created or the queue
/// refuses the jobs; missing or wrong verdicts are in the [`Summary`].
pub async fn submit<Q: JobQueue + ResultsStreams>(
    queue: Arc<Q>,
    jobs: &[Outgoing],
    options: &SubmitOptions,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Summary, ClientError> {
    let resume = if options.resumable {
        Some(Resume::start(&*queue, jobs, options).await?)
    } else {
        None
    };
    let mut source = options.results.open(&queue, options).await?;
    let reply_to = source.address().clone();

    let started = Instant::now();
    let mut tally = Tally::new(jobs, options.reply_key.as_ref());
    let mut last_progress = Instant::now();
    // Jobs a resumed run submitted before count as submitted; their
    // verdicts are read back from the start of the stream.
    let skip = resume.as_ref().map_or(0, |r| r.progress.submitted as usize);
    let mut submitted = skip;
    let mut submit_error = None;
    let pacing = options.rate.filter(|rate| rate.is_finite() && *rate > 0.0);
    let scheduled = |index: usize| {
        pacing.map(|rate| started + Duration::from_secs_f64((index - skip) as f64 / rate))
    };
    let mut first = skip;
    while first < jobs.len() {
        // Paced: wait for the next job's time, then take every job due.
        let mut count = options.batch.max(1).min(jobs.len() - first);
        if let Some(due) = scheduled(first) {
            tokio::time::sleep_until(due.into()).await;
            let now = Instant::now();
            count = (first..first + count)
                .take_while(|&i| scheduled(i).is_some_and(|at| at <= now))
                .count()
                .max(1);
        }
        let chunk = &jobs[first..first + count];
        let envelopes: Vec<Envelope> = chunk
            .iter()
            .enumerate()
            .map(|(i, job)| Envelope {
                seq: (first + i) as u64,
                job: job.line.clone(),
                reply: reply_to.clone(),
            })
            .collect();
        if let Err(e) = submit_retrying(&*queue, &envelopes, options.idle_timeout).await {
            submit_error = Some(e);
            break;
        }
        let now = Instant::now();
        for (index, slot) in tally.sent_at[first..first + chunk.len()]
            .iter_mut()
            .enumerate()
        {
            *slot = Some(scheduled(first + index).unwrap_or(now));
        }
        submitted += chunk.len();
        first += chunk.len();
        if let Some(resume) = &resume
            && let Err(e) = resume.submitted(&*queue, submitted).await
        {
            // The jobs are in; only a resume would submit them again.
            tracing::warn!("saving the session's progress failed: {e}");
        }
        // Take what has arrived so far, without waiting.
        while let Some(batch) = source.try_recv() {
            tally.record(batch);
            last_progress = Instant::now();
        }
        progress(tally.summary.verdicts);
    }
    // The idle clock starts when everything is submitted.
    last_progress = last_progress.max(Instant::now());
    while tally.summary.verdicts < submitted as u64 {
        let wait = options.idle_timeout.saturating_sub(last_progress.elapsed());
        match tokio::time::timeout(wait, source.recv()).await {
            Ok(Some(batch)) => {
                tally.record(batch);
                last_progress = Instant::now();
                progress(tally.summary.verdicts);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let mut summary = tally.summary;
    summary.elapsed = started.elapsed();
    let complete = submit_error.is_none() && summary.verdicts >= jobs.len() as u64;
    match &resume {
        // Kept for the next attempt: dropping the source stops reading and
        // leaves the stream.
        Some(_) if !complete => {
            drop(source);
            tracing::warn!(
                session = %options.client,
                "run incomplete: its stream and progress are kept; run the same command again to resume"
            );
        }
        Some(resume) => {
            source.close().await;
            if let Err(e) = resume.finish(&*queue).await {
                tracing::warn!("forgetting the session's progress failed: {e}");
            }
        }
        None => source.close().await,
    }
    if let Some(e) = submit_error {
        return Err(ClientError::Queue(e));
    }
    summary.missing = jobs.len() as u64 - summary.verdicts;
    summary.finish();
    Ok(summary)
}

/// A resumable run's progress, kept beside its results stream.
struct Resume {
    stream: String,
    progress: Progress,
}

impl Resume {
    /// Loads the session's progress (or starts it): the same jobs must be
    /// given again.
    async fn start<Q: ResultsStreams>(
        queue: &Q,
        jobs: &[Outgoing],
        options: &SubmitOptions,
    ) -> Result<Resume, ClientError> {
        if options.results != ResultsVia::Stream {
            return Err(ClientError::ResumeNeedsStream);
        }
        let stream = results_stream(&options.client);
        let digest = jobs_digest(jobs);
        let progress = match queue.load_progress(&stream).await? {
            Some(saved) if saved.digest == digest && saved.jobs == jobs.len() as u64 => {
                tracing::info!(
                    session = %options.client,
                    submitted = saved.submitted,
                    jobs = saved.jobs,
                    "resuming: reading the verdicts already written, submitting the rest"
                );
                saved
            }
            Some(saved) => {
                return Err(ClientError::SessionMismatch {
                    session: options.client.clone(),
                    jobs: saved.jobs,
                    digest: saved.digest,
                });
            }
            None => {
                let fresh = Progress {
                    digest,
                    jobs: jobs.len() as u64,
                    submitted: 0,
                };
                queue.save_progress(&stream, &fresh).await?;
                fresh
            }
        };
        Ok(Resume { stream, progress })
    }

    async fn submitted<Q: ResultsStreams>(&self, queue: &Q, n: usize) -> Result<(), QueueError> {
        let progress = Progress {
            submitted: n as u64,
            ..self.progress.clone()
        };
        queue.save_progress(&self.stream, &progress).await
    }

    async fn finish<Q: ResultsStreams>(&self, queue: &Q) -> Result<(), QueueError> {
        queue.delete_progress(&self.stream).await
    }
}

/// SHA-256 over the jobs' lines, each prefixed by its length.
fn jobs_digest(jobs: &[Outgoing]) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    for job in jobs {
        hash.update((job.line.len() as u64).to_le_bytes());
        hash.update(&job.line);
    }
    hex::encode(hash.finalize())
}

/// Submits one chunk; while the transport fails (Redis restarting, say)
/// tries again, 50 ms doubling to 1 s apart, for at most `patience`. A
/// chunk that failed half-way is sent again whole: the jobs Redis already
/// had are answered twice, and the second verdict is counted as a
/// duplicate.
async fn submit_retrying<Q: JobQueue>(
    queue: &Q,
    envelopes: &[Envelope],
    patience: Duration,
) -> Result<(), QueueError> {
    let give_up = Instant::now() + patience;
    let mut pause = Duration::from_millis(50);
    loop {
        match queue.submit(envelopes).await {
            Err(e) if e.is_transient() && Instant::now() + pause < give_up => {
                tracing::warn!("submitting failed, retrying in {pause:?}: {e}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// The results stream of client `client`.
pub fn results_stream(client: &str) -> String {
    format!("hotwasm:results:{client}")
}

/// Verdicts counted so far: the summary, plus what is needed to fill it.
struct Tally<'a> {
    jobs: &'a [Outgoing],
    /// Replies must be signed with this key, when there is one.
    key: Option<&'a MacKey>,
    /// When each job was submitted.
    sent_at: Vec<Option<Instant>>,
    /// Whether each job has its verdict (later ones are duplicates).
    answered: Vec<bool>,
    summary: Summary,
}

impl<'a> Tally<'a> {
    fn new(jobs: &'a [Outgoing], key: Option<&'a MacKey>) -> Tally<'a> {
        Tally {
            jobs,
            key,
            sent_at: vec![None; jobs.len()],
            answered: vec![false; jobs.len()],
            summary: Summary::new(jobs.len() as u64),
        }
    }

    /// Counts a batch of arrivals.
    fn record(&mut self, batch: Vec<Arrival>) {
        for arrival in batch {
            self.record_one(arrival);
        }
    }

    fn record_one(&mut self, arrival: Arrival) {
        let summary = &mut self.summary;
        let reply = match arrival.reply {
            Ok(reply) => reply,
            Err(reason @ ReplyError::RingCorrupted { .. }) => {
                if summary.ring_corrupted.is_none() {
                    tracing::error!("{reason}");
                    summary.ring_corrupted = Some(reason.to_string());
                }
                summary.corrupt += 1;
                return;
            }
            Err(reason) => {
                tracing::warn!("unreadable verdict: {reason}");
                summary.unreadable += 1;
                return;
            }
        };
        if let Some(key) = self.key
            && !reply.verify(key)
        {
            dropped(
                &mut summary.forged,
                &reply,
                "a reply not signed with the reply key was dropped (forged, or a server without the key)",
            );
            return;
        }
        let Some(index) = usize::try_from(reply.seq)
            .ok()
            .filter(|&i| i < self.jobs.len())
        else {
            tracing::warn!(seq = reply.seq, "verdict for a job this client never sent");
            summary.unreadable += 1;
            return;
        };
        // A verdict for another job under this sequence number: a job that
        // named this client's reply address, or a forgery.
        if reply.job_digest.as_deref() != Some(Reply::digest_of(&self.jobs[index].line).as_str()) {
            dropped(
                &mut summary.misdirected,
                &reply,
                "a reply that answers another job than the one sent under its sequence number was dropped",
            );
            return;
        }
        if std::mem::replace(&mut self.answered[index], true) {
            summary.duplicates += 1;
            return;
        }
        if let Some(sent) = self.sent_at[index] {
            summary
                .latencies_micros
                .push(arrival.at.saturating_duration_since(sent).as_secs_f64() * 1e6);
        }
        count(summary, index, self.jobs[index].expect, reply);
    }
}

/// Counts a reply dropped for `why` in `counter`; the first one of its
/// kind is logged, the rest only counted.
fn dropped(counter: &mut u64, reply: &Reply, why: &str) {
    if *counter == 0 {
        tracing::warn!(
            seq = reply.seq,
            server = %reply.server,
            "{why}; more are counted in the summary"
        );
    }
    *counter += 1;
}

fn count(summary: &mut Summary, index: usize, expect: Option<bool>, reply: Reply) {
    let Reply {
        server, verdict, ..
    } = reply;
    summary.verdicts += 1;
    summary.valid += u64::from(verdict.valid);
    *summary.per_server.entry(server).or_default() += 1;
    match &verdict.module {
        Some(module) => *summary.per_module.entry(module.clone()).or_default() += 1,
        None => summary.malformed += 1,
    }
    if let Some(expected) = expect {
        summary.checked += 1;
        if expected != verdict.valid {
            summary.mismatch(Mismatch {
                index: index as u64,
                expected,
                verdict,
            });
        }
    }
}
