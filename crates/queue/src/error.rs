//! What can go wrong: a transport failure ([`QueueError`]), a stream entry
//! that is not what its stream should hold ([`EntryError`]), and a reply
//! address that does not parse ([`ReplyToError`]).
//!
//! Only [`QueueError`] fails an operation. The other two describe outside
//! data: a delivery or a read carries them beside the good entries, so one
//! bad entry never stops a batch.

/// A transport failure. Bad jobs are not errors: they are deliveries with
/// a reason ([`EntryError`]), or error verdicts.
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
    /// A blocking read got no answer in its block time plus the response
    /// timeout: the server went silent (the connection is dropped).
    #[error("redis {command}: no answer within {waited:?}")]
    NoAnswer {
        /// The command.
        command: &'static str,
        /// How long the read waited.
        waited: std::time::Duration,
    },
    /// Redis answered a command with a reply of a shape the command does
    /// not document (a different server, or a protocol this client does
    /// not speak).
    #[error("redis {command}: unexpected reply: {detail}")]
    UnexpectedReply {
        /// The command.
        command: &'static str,
        /// What was wrong with the reply.
        detail: String,
    },
    /// The Redis URL cannot be used (bad syntax, unknown scheme).
    #[error("invalid Redis URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, without a password.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry id passed in (to [`JobQueue::ack`](crate::JobQueue::ack) or
    /// as a [`ResultsStreams::read_replies`](crate::ResultsStreams::read_replies)
    /// cursor) is not one this queue hands out; nothing was done.
    #[error("{id:?} is not a queue entry id")]
    InvalidId {
        /// The id as given.
        id: String,
    },
    /// The queue was closed (in-process queue after shutdown).
    #[error("the queue is closed")]
    Closed,
}

impl QueueError {
    /// Whether trying again later can succeed: the transport failed
    /// (Redis away, restarting, silent), as opposed to a request that is
    /// wrong in itself or a queue that is closed.
    pub fn is_transient(&self) -> bool {
        match self {
            QueueError::Unreachable { .. } | QueueError::NoAnswer { .. } => true,
            // Redis's own refusals carry a code; an error without one is
            // the client's side of the conversation failing (I/O, a
            // timeout, a dropped or refused connection, a reconnect that
            // gave up).
            QueueError::Redis { source, .. } => match source.code() {
                None => true,
                Some(code) => matches!(code, "LOADING" | "TRYAGAIN" | "BUSY" | "MASTERDOWN"),
            },
            QueueError::UnexpectedReply { .. }
            | QueueError::InvalidUrl { .. }
            | QueueError::InvalidId { .. }
            | QueueError::Closed => false,
        }
    }
}

/// Why a stream entry is not a job envelope (in the job stream) or not a
/// reply (in a results stream). Such entries come from outside — added by
/// hand, or by another program — so they are data to report, not failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// A job entry lacks one of its fields.
    #[error("stream entry {id} is not a job: it has no `{field}` field (fields: {fields})")]
    NotAJob {
        /// The entry id.
        id: String,
        /// The missing field.
        field: &'static str,
        /// The fields it has, for the reader.
        fields: String,
    },
    /// A job entry larger than the queue takes
    /// ([`RedisOptions::max_entry_bytes`](crate::RedisOptions::max_entry_bytes)):
    /// refused by its size, before it was read.
    #[error(
        "stream entry {id} is not a job: it is {bytes} bytes, over the limit of {limit} (no job within the server's limits is that large)"
    )]
    TooLarge {
        /// The entry id.
        id: String,
        /// Its size: field names and values together.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// A job entry's `seq` is not a decimal `u64`.
    #[error("stream entry {id} is not a job: `seq` is {seq:?}, not a decimal number")]
    BadSeq {
        /// The entry id.
        id: String,
        /// The field as found (lossy UTF-8).
        seq: String,
    },
    /// A job entry's `reply` field is not UTF-8.
    #[error("stream entry {id}: `reply` is not UTF-8")]
    ReplyNotUtf8 {
        /// The entry id.
        id: String,
    },
    /// A job entry's `reply` field is not a reply address.
    #[error("stream entry {id}: {source}")]
    BadReplyAddress {
        /// The entry id.
        id: String,
        /// Why the address does not parse.
        source: ReplyToError,
    },
    /// A results entry lacks the `reply` field.
    #[error("results entry {id} is not a reply: it has no `reply` field (fields: {fields})")]
    NotAReply {
        /// The entry id.
        id: String,
        /// The fields it has, for the reader.
        fields: String,
    },
    /// A results entry's `reply` field does not decode.
    #[error("results entry {id} is not a reply: {reason}")]
    UndecodableReply {
        /// The entry id.
        id: String,
        /// The decoder's message.
        reason: String,
    },
}

/// Why a reply address field does not parse
/// ([`ReplyTo::parse`](crate::ReplyTo::parse)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyToError {
    /// Neither `stream:<key>` nor `shm:<name>`.
    #[error("reply address {field:?} is neither stream:<key> nor shm:<name>")]
    UnknownForm {
        /// The field as given.
        field: String,
    },
    /// `stream:` or `shm:` with nothing after it.
    #[error("reply address {field:?} names nothing")]
    Empty {
        /// The field as given.
        field: String,
    },
}
