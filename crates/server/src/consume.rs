//! The queue consumer: jobs from a [`JobQueue`], verdicts back to where each
//! client reads, then acknowledgement.
//!
//! The loop fetches a batch (at most [`ConsumeOptions::batch`] jobs, so a
//! quiet queue gives small batches and low latency), hands it to a task and
//! fetches the next while the workers verify, keeping at most
//! [`ConsumeOptions::in_flight`] batches in flight. A batch task waits for
//! its verdicts and sends each where its job's reply address says: into a
//! results stream together with the job's acknowledgement, in one step
//! that also checks this server still owns the job
//! ([`ResultsStreams::deliver`]), or into a shared-memory ring through its
//! [`ReplySinks`] sink, then acknowledging exactly the jobs whose verdicts
//! were written. A job
//! whose verdict could not be written stays pending; after
//! [`ConsumeOptions::min_idle`] any server reclaims it, and after
//! [`ConsumeOptions::max_deliveries`] it goes to the dead-letter stream. So
//! a killed server, an unreachable ring or a Redis outage delays a verdict
//! but loses no job.
//!
//! Ownership is checked before anything is written (fencing): a batch asks
//! the queue which of its jobs this server still owns
//! ([`JobQueue::renew`]) and drops the verdicts of jobs another server
//! took over while this one was stalled; a batch that takes longer than a
//! third of [`ConsumeOptions::min_idle`] renews its lease meanwhile. A
//! reclaim that returns a full page is followed by another at once, so a
//! dead server's jobs are taken over in one sweep.
//!
//! An entry that is not an envelope (put into the stream by hand) has no
//! reply address: it goes to the dead-letter stream with the reason, and
//! so does a job whose reply address can never work (a ring this host has
//! no reader for, a name no ring can have). A job line that is not a job
//! gets an error verdict like any other.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use hotwasm_auth::MacKey;
use hotwasm_jobs::Verdict;
use hotwasm_queue::reply::{ReplySinks, RingSink};
use hotwasm_queue::{Delivery, EntryError, JobQueue, Reply, ReplyKind, ReplyTo, ResultsStreams};
use tokio::sync::{Notify, Semaphore, watch};
use tracing::Instrument as _;

use crate::Server;

/// Waits between retries of a failed fetch or reclaim: 50 ms doubling to
/// 5 s, started over after a success.
const RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(50))
    .with_max_delay(Duration::from_secs(5))
    .without_max_times();

/// How the consumer batches, retries and gives up.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// Most jobs fetched at once.
    pub batch: usize,
    /// How long one fetch waits for jobs; also the longest a shutdown waits
    /// for the fetch in progress.
    pub block: Duration,
    /// Batches verified and written concurrently.
    pub in_flight: usize,
    /// How often to look for jobs other consumers left pending.
    pub reclaim_every: Duration,
    /// How long a job must be pending before another consumer takes it.
    pub min_idle: Duration,
    /// Deliveries after which a job goes to the dead-letter stream.
    pub max_deliveries: u64,
    /// How long to wait for room in a full shared-memory ring.
    pub ring_timeout: Duration,
    /// Where shared-memory rings live on this host.
    pub ring_dir: PathBuf,
    /// The deployment's reply key: every reply is signed with it, so
    /// clients can tell a server's verdicts from anyone else's (default:
    /// none, replies unsigned).
    pub reply_key: Option<MacKey>,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            batch: 64,
            block: Duration::from_millis(200),
            in_flight: 4,
            reclaim_every: Duration::from_secs(5),
            min_idle: Duration::from_secs(30),
            max_deliveries: 5,
            ring_timeout: Duration::from_secs(10),
            ring_dir: hotwasm_shm::ring_dir(),
            reply_key: None,
        }
    }
}

/// Consumes jobs from `queue` until `shutdown` completes, then finishes
/// the batches in flight (their verdicts written and acknowledged) and
/// returns. Verdicts go to results streams of `queue` or to shared-memory
/// rings in [`ConsumeOptions::ring_dir`], as each job asks. Transport
/// errors are logged and retried with backoff: a Redis outage pauses the
/// loop, it does not end it.
pub async fn consume<Q: JobQueue + ResultsStreams>(
    server: Arc<Server>,
    queue: Arc<Q>,
    options: ConsumeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let permits = Arc::new(Semaphore::new(options.in_flight.max(1)));
    let sinks = Arc::new(
        // Results streams are written with their acknowledgements in one
        // step (`Batch::deliver_to_stream`); only rings go through a sink.
        ReplySinks::new().with(
            RingSink::new(options.ring_dir.clone(), options.ring_timeout)
                .signing(options.reply_key.clone()),
        ),
    );
    let reply_key = options.reply_key.clone().map(Arc::new);
    let mut backoff = RETRY.build();
    let mut last_reclaim = Instant::now();
    // A reclaim that returned a full page is followed by another at once,
    // so a dead server's jobs are all taken over in one sweep.
    let mut sweeping = false;
    let mut swept = 0usize;
    // At start, after an outage and before every reclaim, this server
    // takes back what is pending under its own name and not being worked
    // on here: a fetch whose reply was lost on the way left such jobs, and
    // nobody else would touch them before the reclaim time. (Looking
    // before every reclaim too: Redis can execute a lost fetch after the
    // look that followed its error, from a dropped connection's buffer.)
    // The cursor pages through them.
    let mut recovering: Option<String> = Some("0".to_string());
    let mut looked_before_reclaim = false;
    let working = Arc::new(Working::default());
    while !*stop.borrow() {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let due = last_reclaim.elapsed() >= options.reclaim_every;
        if due && !sweeping && recovering.is_none() && !looked_before_reclaim {
            recovering = Some("0".to_string());
            looked_before_reclaim = true;
        }
        let reclaiming = recovering.is_none() && (sweeping || due);
        if reclaiming {
            looked_before_reclaim = false;
        }
        let fetched = if let Some(after) = &recovering {
            queue
                .own_pending(server.name(), after, options.max_deliveries, options.batch)
                .await
        } else if reclaiming {
            last_reclaim = Instant::now();
            queue
                .reclaim(
                    server.name(),
                    options.min_idle,
                    options.max_deliveries,
                    options.batch,
                )
                .await
        } else {
            queue
                .fetch(server.name(), options.batch, options.block)
                .await
        };
        let mut deliveries = match fetched {
            Ok(deliveries) => {
                backoff = RETRY.build();
                deliveries
            }
            Err(e) => {
                // Never runs out: the backoff has no maximum of attempts.
                let wait = backoff.next().unwrap_or(Duration::from_secs(5));
                tracing::warn!(
                    "{} failed, retrying in {wait:?}: {e}",
                    match (&recovering, reclaiming) {
                        (Some(_), _) => "reading this server's own pending jobs",
                        (None, true) => "reclaim",
                        (None, false) => "fetch",
                    }
                );
                recovering = Some("0".to_string());
                let mut stop = stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|stopped| *stopped) => {}
                }
                continue;
            }
        };
        if recovering.is_some() {
            recovering = (deliveries.len() >= options.batch)
                .then(|| deliveries.last().map(|d| d.id.clone()))
                .flatten();
            deliveries.retain(|d| !working.contains(&d.id));
            if !deliveries.is_empty() {
                tracing::info!(
                    jobs = deliveries.len(),
                    "taking back jobs pending under this server's name that nothing works on"
                );
            }
        }
        if reclaiming {
            sweeping = deliveries.len() >= options.batch;
            // This server's own jobs, idle because it was stalled, are
            // being worked on here already: not taken over twice.
            deliveries.retain(|d| !working.contains(&d.id));
            swept += deliveries.len();
            server
                .stats()
                .reclaimed
                .fetch_add(deliveries.len() as u64, Ordering::Relaxed);
            if !sweeping && swept > 0 {
                tracing::info!(jobs = swept, "took over jobs other servers left pending");
                swept = 0;
            }
        }
        if deliveries.is_empty() {
            continue;
        }
        let batch = Batch {
            server: Arc::clone(&server),
            queue: Arc::clone(&queue),
            sinks: Arc::clone(&sinks),
            reply_key: reply_key.clone(),
            renew_every: (options.min_idle / 3).max(Duration::from_millis(50)),
            retry_for: options.min_idle / 2,
        };
        // Every log line of the batch carries its entries: the first and
        // last id (entry ids grow with time) and how many.
        let span = tracing::info_span!(
            "batch",
            jobs = deliveries.len(),
            first = %deliveries.first().map_or("", |d| d.id.as_str()),
            last = %deliveries.last().map_or("", |d| d.id.as_str()),
            reclaimed = reclaiming,
        );
        let ids = working.add(&deliveries);
        let working = Arc::clone(&working);
        tokio::spawn(
            async move {
                batch.run(deliveries).await;
                working.remove(&ids);
                drop(permit);
            }
            .instrument(span),
        );
    }
    // Wait for every batch in flight: their jobs are fetched, so they are
    // answered and acknowledged before the server goes.
    let _ = permits.acquire_many(options.in_flight.max(1) as u32).await;
}

/// The entry ids of the jobs this server's batches are working on.
#[derive(Debug, Default)]
struct Working(Mutex<std::collections::HashSet<String>>);

impl Working {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes a batch's jobs; returns their ids, to remove when it is done.
    fn add(&self, deliveries: &[Delivery]) -> Vec<String> {
        let ids: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
        self.lock().extend(ids.iter().cloned());
        ids
    }

    fn remove(&self, ids: &[String]) {
        let mut working = self.lock();
        for id in ids {
            working.remove(id);
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.lock().contains(id)
    }
}

/// A batch's verdicts by where they go, with the jobs they answer.
type Groups = BTreeMap<ReplyTo, (Vec<Reply>, Vec<Delivery>)>;

/// One batch's work and what it needs.
struct Batch<Q> {
    server: Arc<Server>,
    queue: Arc<Q>,
    sinks: Arc<ReplySinks>,
    reply_key: Option<Arc<MacKey>>,
    /// How often a batch still being verified renews its jobs' lease, so
    /// no server (this one included) takes over jobs that are merely slow.
    renew_every: Duration,
    /// How long a batch keeps trying to write and acknowledge its verdicts
    /// while the transport fails (half a reclaim period).
    retry_for: Duration,
}

impl<Q: JobQueue + ResultsStreams> Batch<Q> {
    async fn run(&self, deliveries: Vec<Delivery>) {
        let collector = Collector::new();
        let mut out: Vec<Option<Answer>> = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let envelope = match &delivery.envelope {
                Ok(envelope) => envelope,
                Err(reason) => {
                    self.dead_letter(&delivery, reason).await;
                    out.push(None);
                    continue;
                }
            };
            let index = out.len();
            let verdict = match self.server.parse_job(&envelope.job) {
                Ok(job) => {
                    let slot = collector.slot(index);
                    let queued = self
                        .server
                        .pool()
                        .try_submit(job, move |verdict| slot.fill(verdict));
                    if queued.is_err() {
                        // No worker takes it: leave it pending for another
                        // server (not pushed to `out`, so not acknowledged).
                        tracing::warn!(entry = %delivery.id, "the worker pool takes no more work");
                        out.push(None);
                        continue;
                    }
                    None
                }
                Err(verdict) => Some(verdict),
            };
            let (seq, reply, job_digest) = (
                envelope.seq,
                envelope.reply.clone(),
                Reply::digest_of(&envelope.job),
            );
            out.push(Some(Answer {
                delivery,
                seq,
                reply,
                job_digest,
                verdict,
            }));
        }
        let in_flight: Vec<String> = out
            .iter()
            .flatten()
            .map(|answer| answer.delivery.id.clone())
            .collect();
        for (index, verdict) in self.wait_renewing(collector, &in_flight).await {
            if let Some(Some(answer)) = out.get_mut(index) {
                answer.verdict = Some(verdict);
            }
        }

        // The pool stopped before answering some: leave those pending.
        let (to_streams, to_rings): (Vec<Answer>, Vec<Answer>) = out
            .into_iter()
            .flatten()
            .filter(|answer| answer.verdict.is_some())
            .partition(|answer| answer.reply.kind() == ReplyKind::Stream);
        // A results stream's delivery checks ownership itself; a ring's
        // write is preceded by the check.
        let mut answered = to_streams;
        answered.extend(self.still_owned(to_rings).await);

        // Group by reply address, write, and acknowledge what was written.
        let mut by_reply: Groups = BTreeMap::new();
        for answer in answered {
            let Some(verdict) = answer.verdict else {
                continue;
            };
            let (replies, ids) = by_reply.entry(answer.reply).or_default();
            let mut reply = Reply {
                seq: answer.seq,
                server: self.server.name().to_string(),
                verdict,
                job_digest: Some(answer.job_digest),
                tag: None,
            };
            if let Some(key) = &self.reply_key {
                reply.sign(key);
            }
            replies.push(reply);
            ids.push(answer.delivery);
        }
        // Each client's verdicts are written concurrently, so a slow or
        // gone reader delays only its own jobs' acknowledgements. While the
        // transport is away (Redis restarting) the server keeps the
        // verdicts and tries again (only results streams fail that way,
        // and their delivery checks ownership each time), for half a
        // reclaim period: a short outage then costs no re-verification.
        let give_up = Instant::now() + self.retry_for;
        let mut pause = Duration::from_millis(50);
        let mut to_write: Groups = by_reply;
        let mut written: Vec<String> = Vec::new();
        loop {
            let outcomes = futures::future::join_all(
                to_write
                    .into_iter()
                    .map(|(to, (replies, deliveries))| self.write_group(to, replies, deliveries)),
            )
            .await;
            let mut retry: Groups = BTreeMap::new();
            for (done, again) in outcomes {
                written.extend(done);
                if let Some((to, replies, deliveries)) = again {
                    retry.insert(to, (replies, deliveries));
                }
            }
            if retry.is_empty() {
                break;
            }
            if Instant::now() + pause >= give_up {
                let jobs: usize = retry.values().map(|(_, d)| d.len()).sum();
                tracing::warn!(
                    jobs,
                    "verdicts not written, jobs left pending for redelivery"
                );
                break;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
            to_write = retry;
        }
        self.ack_retrying(&written, give_up).await;
    }
    /// Writes one client's verdicts. Returns the ids of the jobs written
    /// that still need their acknowledgement, and what is left to try
    /// again when the transport failed (Redis away). A results stream's
    /// verdicts go with their acknowledgements in one step
    /// ([`ResultsStreams::deliver`]); a ring's are written, then
    /// acknowledged. Jobs no write can ever deliver are dead-lettered, and
    /// the others (a full or stalled ring) stay pending for redelivery.
    async fn write_group(
        &self,
        to: ReplyTo,
        replies: Vec<Reply>,
        mut deliveries: Vec<Delivery>,
    ) -> (Vec<String>, Option<(ReplyTo, Vec<Reply>, Vec<Delivery>)>) {
        if to.kind() == ReplyKind::Stream {
            return self.deliver_to_stream(to, replies, deliveries).await;
        }
        let Err(failure) = self.sinks.write(&to, replies).await else {
            return (deliveries.into_iter().map(|d| d.id).collect(), None);
        };
        let rest = deliveries.split_off(failure.written.min(deliveries.len()));
        let done = deliveries.into_iter().map(|d| d.id).collect();
        if failure.reason.is_permanent() {
            // No retry can succeed: dead-letter them now, with the reason,
            // instead of at every reclaim.
            let reason = format!(
                "verdict cannot be delivered to {}: {}",
                to.to_field(),
                failure.reason
            );
            tracing::warn!(jobs = rest.len(), "{reason}; moved to dead letters");
            for delivery in &rest {
                self.move_to_dead_letters(delivery, &reason).await;
            }
            return (done, None);
        }
        tracing::warn!(
            to = %to.to_field(),
            jobs = rest.len(),
            "verdicts not written, jobs left pending for redelivery: {}",
            failure.reason
        );
        (done, None)
    }

    /// A results stream's verdicts, delivered with their acknowledgements
    /// in one step for the jobs this server still owns; the others are
    /// fenced. Nothing is left to acknowledge afterwards.
    async fn deliver_to_stream(
        &self,
        to: ReplyTo,
        replies: Vec<Reply>,
        deliveries: Vec<Delivery>,
    ) -> (Vec<String>, Option<(ReplyTo, Vec<Reply>, Vec<Delivery>)>) {
        let pairs: Vec<(String, Reply)> = deliveries
            .iter()
            .map(|d| d.id.clone())
            .zip(replies)
            .collect();
        match self
            .queue
            .deliver(to.name(), self.server.name(), &pairs)
            .await
        {
            Ok(owned) => {
                let fenced = owned.iter().filter(|owned| !**owned).count();
                if fenced > 0 {
                    tracing::warn!(
                        jobs = fenced,
                        "verdicts dropped: another server took these jobs over and answers them"
                    );
                    self.server
                        .stats()
                        .fenced
                        .fetch_add(fenced as u64, Ordering::Relaxed);
                }
                (Vec::new(), None)
            }
            Err(e) if e.is_transient() => {
                tracing::debug!(to = %to.to_field(), jobs = pairs.len(), "delivering verdicts failed, trying again: {e}");
                let replies = pairs.into_iter().map(|(_, reply)| reply).collect();
                (Vec::new(), Some((to, replies, deliveries)))
            }
            Err(e) => {
                tracing::warn!(
                    to = %to.to_field(),
                    jobs = pairs.len(),
                    "verdicts not delivered, jobs left pending for redelivery: {e}"
                );
                (Vec::new(), None)
            }
        }
    }

    /// Acknowledges the jobs whose verdicts were written, trying again
    /// while the transport fails until `give_up`; jobs left unacknowledged
    /// are redelivered, and the client drops the duplicate verdicts.
    async fn ack_retrying(&self, written: &[String], give_up: Instant) {
        if written.is_empty() {
            return;
        }
        let mut pause = Duration::from_millis(50);
        loop {
            match self.queue.ack(written).await {
                Ok(()) => return,
                Err(e) if e.is_transient() && Instant::now() + pause < give_up => {
                    tracing::debug!(
                        jobs = written.len(),
                        "acknowledging failed, trying again: {e}"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    tracing::warn!(jobs = written.len(), "acknowledging failed: {e}");
                    return;
                }
            }
        }
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &EntryError) {
        tracing::warn!(entry = %delivery.id, "not a job envelope, moved to dead letters: {reason}");
        if self
            .move_to_dead_letters(delivery, &reason.to_string())
            .await
        {
            self.server
                .stats()
                .malformed
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Dead-letters one job; whether it worked (a failure leaves it
    /// pending, to be tried again).
    async fn move_to_dead_letters(&self, delivery: &Delivery, reason: &str) -> bool {
        match self.queue.dead_letter(delivery, reason).await {
            Ok(()) => {
                self.server
                    .stats()
                    .dead_lettered
                    .fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::warn!(entry = %delivery.id, "dead-lettering failed: {e}");
                false
            }
        }
    }

    /// The batch's verdicts; while they take longer than
    /// [`Batch::renew_every`], the lease of its jobs is renewed each time
    /// (a server stopped meanwhile renews nothing, and loses them).
    async fn wait_renewing(&self, collector: Collector, ids: &[String]) -> Vec<(usize, Verdict)> {
        let verdicts = collector.wait();
        tokio::pin!(verdicts);
        loop {
            tokio::select! {
                verdicts = &mut verdicts => return verdicts,
                () = tokio::time::sleep(self.renew_every) => {
                    if let Err(e) = self.queue.renew(self.server.name(), ids).await {
                        tracing::warn!(jobs = ids.len(), "renewing the lease of slow jobs failed: {e}");
                    }
                }
            }
        }
    }

    /// Fencing before a ring write: of a batch's answered jobs, the ones
    /// this server still owns, their lease renewed (`JobQueue::renew`). A job another server
    /// has reclaimed while this one was stalled gets its verdict from that
    /// server; this one's is dropped and counted. While the check itself
    /// fails (Redis away) it is tried again for [`Batch::retry_for`]; then
    /// no verdict is written and the jobs stay pending.
    async fn still_owned(&self, answered: Vec<Answer>) -> Vec<Answer> {
        let ids: Vec<String> = answered.iter().map(|a| a.delivery.id.clone()).collect();
        // While Redis is away, ask again (50 ms doubling to 1 s) for half a
        // reclaim period before giving the verdicts up.
        let give_up = Instant::now() + self.retry_for;
        let mut pause = Duration::from_millis(50);
        let owned = loop {
            match self.queue.renew(self.server.name(), &ids).await {
                Ok(owned) => break owned,
                Err(e) if e.is_transient() && Instant::now() + pause < give_up => {
                    tracing::debug!(
                        jobs = ids.len(),
                        "confirming ownership failed, trying again: {e}"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    tracing::warn!(
                        jobs = ids.len(),
                        "could not confirm this server still owns its jobs, verdicts held back \
                         (the jobs stay pending): {e}"
                    );
                    return Vec::new();
                }
            }
        };
        let before = answered.len();
        let kept: Vec<Answer> = answered
            .into_iter()
            .zip(owned)
            .filter_map(|(answer, owned)| owned.then_some(answer))
            .collect();
        let fenced = before - kept.len();
        if fenced > 0 {
            tracing::warn!(
                jobs = fenced,
                "verdicts dropped: another server took these jobs over while this one \
                 was stalled, and answers them"
            );
            self.server
                .stats()
                .fenced
                .fetch_add(fenced as u64, Ordering::Relaxed);
        }
        kept
    }
}

/// Collects a batch's verdicts from the worker threads and wakes the batch
/// task once, when the last one is in (not once per verdict).
struct Collector(Arc<Collected>);

struct Collected {
    verdicts: Mutex<Vec<(usize, Verdict)>>,
    /// Slots not yet filled or dropped, plus one while slots are handed out.
    remaining: AtomicUsize,
    done: Notify,
}

/// One job's place in a [`Collector`]. Dropped without a verdict (a worker
/// thread that died holding it), it still counts down, so the batch never
/// waits forever; that job just gets no verdict and stays pending.
struct CollectorSlot {
    collected: Arc<Collected>,
    index: usize,
}

impl Collector {
    fn new() -> Collector {
        Collector(Arc::new(Collected {
            verdicts: Mutex::new(Vec::new()),
            remaining: AtomicUsize::new(1),
            done: Notify::new(),
        }))
    }

    fn slot(&self, index: usize) -> CollectorSlot {
        self.0.remaining.fetch_add(1, Ordering::AcqRel);
        CollectorSlot {
            collected: Arc::clone(&self.0),
            index,
        }
    }

    /// Waits for every slot handed out, and returns the verdicts.
    async fn wait(self) -> Vec<(usize, Verdict)> {
        if self.0.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            self.0.done.notified().await;
        }
        std::mem::take(
            &mut *self
                .0
                .verdicts
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

impl CollectorSlot {
    fn fill(self, verdict: Verdict) {
        self.collected
            .verdicts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((self.index, verdict));
        // Drop counts down.
    }
}

impl Drop for CollectorSlot {
    fn drop(&mut self) {
        if self.collected.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.collected.done.notify_one();
        }
    }
}

/// A job of the batch on its way back: its entry, where its verdict goes,
/// and the verdict once the pool has answered.
struct Answer {
    /// The job as the queue delivered it (kept for a dead letter).
    delivery: Delivery,
    seq: u64,
    reply: ReplyTo,
    /// SHA-256 of the job bytes, for the client to match the reply.
    job_digest: String,
    verdict: Option<Verdict>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_doubling_to_a_ceiling_and_start_over() {
        // backon multiplies in f32: compare whole milliseconds.
        let millis = |wait: Option<Duration>| wait.map(|w| w.as_secs_f64() * 1e3).map(f64::round);
        let mut backoff = RETRY.build();
        let waits: Vec<_> = (0..10).map(|_| millis(backoff.next())).collect();
        assert_eq!(waits[0], Some(50.0));
        assert_eq!(waits[1], Some(100.0));
        assert_eq!(waits[9], Some(5_000.0));
        let mut backoff = RETRY.build();
        assert_eq!(millis(backoff.next()), Some(50.0));
    }
}
