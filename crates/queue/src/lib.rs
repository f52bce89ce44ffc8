//! Job transport: clients put jobs in, servers take them out, verdicts go
//! back, behind one trait with two implementations.
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
//! goes ([`ReplyTo`]). The verdict travels back as a [`Reply`].
//!
//! # Layout
//!
//! - [`JobQueue`], [`Envelope`], [`Delivery`], [`Reply`], [`ReplyTo`]: the contract (this file).
//! - [`RedisQueue`], [`RedisOptions`]: Redis Streams (`redis_streams.rs`,
//!   and beside it in `redis_streams/`: `options.rs`, `connection.rs`
//!   (first contact, blocking-read pool), `entries.rs` (field layout),
//!   `dead_letter.rs`, `trim.rs`).
//! - [`MemoryQueue`]: in-process (`memory.rs`).

use std::future::Future;
use std::time::Duration;

use hotwasm_jobs::Verdict;
use serde::{Deserialize, Serialize};

pub mod memory;
pub mod redis_streams;

pub use memory::MemoryQueue;
pub use redis_streams::{RedisOptions, RedisQueue, redact_url};

/// Where a job's verdict goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReplyTo {
    /// A results stream of the queue, by key (one per client).
    Stream(String),
    /// A shared-memory verdict ring on the server's host, by ring name
    /// (see `hotwasm-shm`); for clients on the same host as the servers.
    Shm(String),
}

impl ReplyTo {
    /// The field form: `stream:<key>` or `shm:<name>`.
    pub fn to_field(&self) -> String {
        match self {
            ReplyTo::Stream(key) => format!("stream:{key}"),
            ReplyTo::Shm(name) => format!("shm:{name}"),
        }
    }

    /// Parses the field form.
    ///
    /// # Errors
    ///
    /// A message naming the field when it is neither form or names nothing.
    pub fn parse(field: &str) -> Result<ReplyTo, String> {
        let parsed = if let Some(key) = field.strip_prefix("stream:") {
            ReplyTo::Stream(key.to_string())
        } else if let Some(name) = field.strip_prefix("shm:") {
            ReplyTo::Shm(name.to_string())
        } else {
            return Err(format!(
                "reply address {field:?} is neither stream:<key> nor shm:<name>"
            ));
        };
        match &parsed {
            ReplyTo::Stream(s) | ReplyTo::Shm(s) if s.is_empty() => {
                Err(format!("reply address {field:?} names nothing"))
            }
            _ => Ok(parsed),
        }
    }
}

/// A job on its way to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The client's sequence number for the job, echoed in its [`Reply`]
    /// (job ids are the caller's and need not be unique).
    pub seq: u64,
    /// The job as one JSON job line, unparsed: a malformed job must still
    /// get an error verdict, so the server parses it.
    pub job: Vec<u8>,
    /// Where the verdict goes.
    pub reply: ReplyTo,
}

/// A job handed to one consumer, to be acknowledged once its verdict is
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The queue's id of the entry ([`JobQueue::ack`] takes it).
    pub id: String,
    /// How many times the entry has been delivered, this time included.
    pub deliveries: u64,
    /// The envelope, or why the entry is not one (an entry put into the
    /// stream by hand, missing fields): such an entry has no reply address,
    /// so it goes to the dead-letter stream with this reason.
    pub envelope: Result<Envelope, String>,
}

/// A verdict on its way back to the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The [`Envelope::seq`] of the job.
    pub seq: u64,
    /// The server (consumer name) that produced it.
    pub server: String,
    /// The verdict.
    pub verdict: Verdict,
}

impl Reply {
    /// The wire form (JSON), as stored in results streams and shm slots.
    pub fn encode(&self) -> Vec<u8> {
        // A struct of strings, numbers and bools always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses the wire form.
    ///
    /// # Errors
    ///
    /// The JSON error when the bytes are not a reply.
    pub fn decode(bytes: &[u8]) -> Result<Reply, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
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

/// A transport failure. Bad jobs are not errors: they are deliveries with
/// a reason, or error verdicts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// Redis could not be reached (at start, or after retries).
    #[error(
        "cannot reach Redis at {url}: {reason} (is redis-server running there? start it, or pass --redis / HOTWASM_REDIS with the right URL)"
    )]
    Unreachable {
        /// The URL, without a password.
        url: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// A Redis command failed.
    #[error("redis {command}: {source}")]
    Redis {
        /// The command.
        command: &'static str,
        /// The error.
        source: redis::RedisError,
    },
    /// The Redis URL cannot be used (bad syntax, unknown scheme).
    #[error("invalid Redis URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, without a password.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry id passed in (to [`JobQueue::ack`] or as a
    /// [`JobQueue::read_replies`] cursor) is not one this queue hands out;
    /// nothing was done.
    #[error("{id:?} is not a queue entry id")]
    InvalidId {
        /// The id as given.
        id: String,
    },
    /// The queue was closed (in-process queue after shutdown).
    #[error("the queue is closed")]
    Closed,
}

/// The job transport. Clients [`submit`](JobQueue::submit) envelopes and
/// read [`Reply`]s; servers [`fetch`](JobQueue::fetch) deliveries, write
/// the verdicts, then [`ack`](JobQueue::ack). All methods take `&self`:
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
/// transport fails — while Redis is away, for instance; the caller retries
/// and nothing acknowledged is lost. The in-process queue fails only with
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
    /// reason instead, and not returned.
    fn reclaim(
        &self,
        consumer: &str,
        min_idle: Duration,
        max_deliveries: u64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send;

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

    /// Creates the results stream `stream`, empty, for
    /// [`publish`](JobQueue::publish) to append to. A client creates its
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

    /// Replies in `stream` after the entry id `after` (`"0"` from the
    /// start), at most `max`, waiting at most `block` for the first.
    /// Returns them with the id to pass as `after` next time; an entry that
    /// is not a reply comes back as `Err` with the reason. A malformed
    /// `after` is [`QueueError::InvalidId`].
    #[allow(clippy::type_complexity)]
    fn read_replies(
        &self,
        stream: &str,
        after: &str,
        max: usize,
        block: Duration,
    ) -> impl Future<Output = Result<(Vec<Result<Reply, String>>, String), QueueError>> + Send;

    /// Deletes a results stream the client has finished with.
    fn delete_stream(&self, stream: &str) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// The queue's counts.
    fn stats(&self) -> impl Future<Output = Result<QueueStats, QueueError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_addresses_round_trip_and_reject_garbage() {
        for reply in [
            ReplyTo::Stream("hotwasm:results:c1".into()),
            ReplyTo::Shm("hotwasm-c1".into()),
        ] {
            assert_eq!(ReplyTo::parse(&reply.to_field()), Ok(reply));
        }
        assert!(ReplyTo::parse("tcp:1.2.3.4").is_err());
        assert!(ReplyTo::parse("stream:").is_err());
    }
}
