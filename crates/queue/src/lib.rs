//! Job transport: clients put jobs in, servers take them out, verdicts go
//! back, behind one trait with two implementations; and the one reply path
//! by which verdicts return.
//!
//! [`JobQueue`] is the contract. [`RedisQueue`] is Redis Streams with a
//! consumer group: any number of servers on any hosts share the work, a job
//! is acknowledged only after its verdict is written, jobs left pending by a
//! dead server are reclaimed, and a job that keeps failing goes to a
//! dead-letter stream. [`MemoryQueue`] is the same contract inside one
//! process, the embedded default when no Redis is configured.
//!
//! A job travels as an [`Envelope`]: the client's sequence number, the job
//! as one JSON job line (the command-line format), and where its verdict
//! goes ([`ReplyTo`]). The verdict travels back as a [`Reply`], written by
//! a [`ReplySink`](reply::ReplySink) and read by a
//! [`ReplySource`](reply::ReplySource): a shared-memory ring, or a results
//! stream of the queue ([`ResultsStreams`]).
//!
//! # Layout
//!
//! - [`JobQueue`], [`ResultsStreams`], [`QueueStats`]: the contracts (this file).
//! - [`Envelope`], [`Delivery`], [`Reply`], [`ReplyTo`], [`ReplyKind`]: what travels (`envelope.rs`).
//! - [`QueueError`], [`EntryError`], [`ReplyToError`]: what goes wrong (`error.rs`).
//! - [`RedisQueue`], [`RedisOptions`]: Redis Streams (`redis_streams.rs`,
//!   and beside it in `redis_streams/`: `options.rs`, `connection.rs`
//!   (first contact, blocking-read pool), `entries.rs` (field layout),
//!   `results.rs` (results streams), `dead_letter.rs`, `trim.rs`).
//! - [`MemoryQueue`]: in-process (`memory.rs`).
//! - [`reply`]: the reply path, sinks and sources (`reply.rs`, and in
//!   `reply/`: `ring.rs` (shared memory), `stream.rs` (results streams)).

use std::future::Future;
use std::time::Duration;

mod envelope;
mod error;
pub mod memory;
pub mod redis_streams;
pub mod reply;

pub use envelope::{Delivery, Envelope, Reply, ReplyKind, ReplyTo};
pub use error::{EntryError, QueueError, ReplyToError};
pub use memory::MemoryQueue;
pub use redis_streams::{GroupStats, Password, RedisOptions, RedisQueue, redact_url};

/// How far a resumable client got (`hotwasm submit --session`): which jobs
/// (their digest and count) and how many of them it has submitted. Kept
/// beside its results stream until the run completes, so a client killed
/// mid-run and started again submits only the rest and reads the verdicts
/// already written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// SHA-256 over the jobs' lines, in order, in hex.
    pub digest: String,
    /// How many jobs the run has.
    pub jobs: u64,
    /// How many of them are in the job stream.
    pub submitted: u64,
}

/// Counts a queue reports (for `Stats` and summaries).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Entries in the job stream (acknowledged ones not yet trimmed included).
    pub length: u64,
    /// Delivered and not yet acknowledged.
    pub pending: u64,
    /// Entries in the dead-letter stream.
    pub dead_letters: u64,
}

/// The job transport. Clients [`submit`](JobQueue::submit) envelopes;
/// servers [`fetch`](JobQueue::fetch) deliveries, write the verdicts (see
/// [`reply`]), then [`ack`](JobQueue::ack). All methods take `&self`:
/// one queue is shared by the tasks of a process.
///
/// Delivery is at least once: a job whose consumer dies before
/// [`ack`](JobQueue::ack) is delivered again by
/// [`reclaim`](JobQueue::reclaim), so a verdict can arrive twice (same
/// `seq`); readers keep the first.
///
/// # Errors
///
/// Every method fails with [`QueueError::Redis`] (Redis queue) when the
/// transport fails — while Redis is away, for instance — or
/// [`QueueError::NoAnswer`] when a blocking read's server went silent; the
/// caller retries and nothing acknowledged is lost. The in-process queue fails only with
/// [`QueueError::Closed`] after [`MemoryQueue::close`]. Ids that the queue
/// never handed out give [`QueueError::InvalidId`] and change nothing.
pub trait JobQueue: Send + Sync + 'static {
    /// Appends jobs (Redis: pipelined `XADD`s, one round trip per call).
    fn submit(&self, jobs: &[Envelope]) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Up to `max` new jobs for `consumer`, waiting at most `block` for the
    /// first; empty when none arrived in time.
    fn fetch(
        &self,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send;

    /// Takes over jobs that other consumers left unacknowledged for longer
    /// than `min_idle` (a dead server's). A job already delivered
    /// `max_deliveries` times is moved to the dead-letter stream with the
    /// reason instead, and not returned. Returns `max` jobs unless fewer
    /// are waiting to be taken over (Redis: it pages through the pending
    /// list until it has `max` or has seen it all), so a caller that got a
    /// full page asks again at once and a dead server's thousands of jobs
    /// are taken over in one sweep.
    fn reclaim(
        &self,
        consumer: &str,
        min_idle: Duration,
        max_deliveries: u64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send;

    /// Jobs delivered to `consumer` and not yet acknowledged, with entry
    /// ids after `after` (`"0"` from the start), at most `max`, oldest
    /// first. A server asks after an outage: a fetch whose reply was lost
    /// on the way left jobs pending under its name that nobody works on,
    /// and they need not wait for another server's reclaim. As in
    /// [`reclaim`](JobQueue::reclaim), one past `max_deliveries` goes to
    /// the dead letters instead.
    fn own_pending(
        &self,
        consumer: &str,
        after: &str,
        max_deliveries: u64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send;

    /// Which of `ids`, delivered to `consumer`, it still owns: `false` for
    /// each one another consumer has reclaimed, or that is no longer
    /// pending. The owned ones are kept from [`reclaim`](JobQueue::reclaim)
    /// for another `min_idle` from now (Redis: their idle time restarts,
    /// their delivery count does not grow). A server asks just before it
    /// writes a batch's verdicts and drops those of the jobs it lost: their
    /// new owner answers them (fencing; see `redis_streams/lease.rs`).
    fn renew(
        &self,
        consumer: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<bool>, QueueError>> + Send;

    /// Acknowledges jobs whose verdicts are written. Trimming of the job
    /// stream happens here and never drops an unacknowledged entry. Ids
    /// that are not pending (acknowledged already) are ignored; if any id
    /// is malformed, none is acknowledged ([`QueueError::InvalidId`]).
    fn ack(&self, ids: &[String]) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Moves an entry to the dead-letter stream with `reason`, and
    /// acknowledges it.
    fn dead_letter(
        &self,
        delivery: &Delivery,
        reason: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// The queue's counts.
    fn stats(&self) -> impl Future<Output = Result<QueueStats, QueueError>> + Send;
}

/// Results streams: one per client, in the same store as the jobs, for
/// replies that travel back through the queue (servers anywhere). Servers
/// [`publish`](ResultsStreams::publish) through a
/// [`StreamSink`](reply::StreamSink); a client reads its own stream
/// through a [`StreamSource`](reply::StreamSource), which creates it first
/// and deletes it at the end.
///
/// # Errors
///
/// As [`JobQueue`]: [`QueueError::Redis`] when the transport fails,
/// [`QueueError::Closed`] for a closed in-process queue,
/// [`QueueError::InvalidId`] for a cursor the queue never handed out.
pub trait ResultsStreams: Send + Sync + 'static {
    /// Creates the results stream `stream`, empty, for
    /// [`publish`](ResultsStreams::publish) to append to. A client creates its
    /// stream before it submits.
    fn create_stream(&self, stream: &str) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Appends replies to the results stream `stream`. A stream that does
    /// not exist (deleted by a client that has finished or given up) takes
    /// nothing: the replies are dropped, as nobody would read them, and
    /// the stream is not created again.
    fn publish(
        &self,
        stream: &str,
        replies: &[Reply],
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Delivers the replies of jobs that `consumer` still owns to the
    /// results stream `stream` and acknowledges those jobs, as one step:
    /// each pair is a job's entry id and its reply. A job another consumer
    /// has reclaimed gets neither (fencing), so a stalled server cannot
    /// deliver late, and a server killed mid-way leaves no verdict
    /// delivered and unacknowledged. A stream that no longer exists takes
    /// nothing, and the owned jobs are acknowledged all the same (nobody
    /// reads their verdicts). Returns, per pair, whether it was the
    /// consumer's.
    fn deliver(
        &self,
        stream: &str,
        consumer: &str,
        replies: &[(String, Reply)],
    ) -> impl Future<Output = Result<Vec<bool>, QueueError>> + Send;

    /// Replies in `stream` after the entry id `after` (`"0"` from the
    /// start), at most `max`, waiting at most `block` for the first.
    /// Returns them with the id to pass as `after` next time; an entry that
    /// is not a reply comes back as `Err` with the reason ([`EntryError`]). A malformed
    /// `after` is [`QueueError::InvalidId`].
    #[allow(clippy::type_complexity)]
    fn read_replies(
        &self,
        stream: &str,
        after: &str,
        max: usize,
        block: Duration,
    ) -> impl Future<Output = Result<(Vec<Result<Reply, EntryError>>, String), QueueError>> + Send;

    /// Deletes a results stream the client has finished with.
    fn delete_stream(&self, stream: &str) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// The progress saved under `stream` (a resumable client's results
    /// stream), if any.
    fn load_progress(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<Progress>, QueueError>> + Send;

    /// Saves `progress` under `stream`.
    fn save_progress(
        &self,
        stream: &str,
        progress: &Progress,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Forgets the progress saved under `stream` (the run completed).
    fn delete_progress(&self, stream: &str) -> impl Future<Output = Result<(), QueueError>> + Send;
}
