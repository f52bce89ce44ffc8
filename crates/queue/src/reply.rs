//! The reply path: how a verdict gets from the server that produced it to
//! the client that asked, whatever the transport.
//!
//! A job's [`Envelope`](crate::Envelope) names its [`ReplyTo`] address. On
//! the server, a [`ReplySink`] writes a batch of replies to one address of
//! its kind, and [`ReplySinks`] picks the sink for an address by its
//! [`ReplyKind`] — one lookup, so a new transport is one more sink, not
//! one more `match` arm in the consumer. On the client, one
//! [`ReplySource`] reads the replies for its address as they arrive.
//!
//! | kind | sink (server) | source (client) |
//! |---|---|---|
//! | [`ReplyKind::Shm`] | [`RingSink`]: pushes into the client's ring on this host | [`RingSource`]: creates the ring, pops on a thread |
//! | [`ReplyKind::Stream`] | [`StreamSink`]: publishes to the client's results stream | [`StreamSource`]: creates the stream, reads it, deletes it |
//!
//! A sink reports how many replies it wrote (always a prefix of the
//! batch), so the consumer acknowledges exactly the jobs whose verdicts
//! were written and leaves the rest pending for redelivery: at least once.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::{EntryError, QueueError, Reply, ReplyKind, ReplyTo};

mod ring;
mod stream;

pub use ring::{REPLY_RECORD_BYTES, RING_COOL_DOWN, RingSink, RingSource, STALL_LIMIT};
pub use stream::{StreamSink, StreamSource};

/// A boxed future, so sinks and sources can sit behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a reply was not written or could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The queue holding results streams failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The shared-memory ring could not be opened, stayed full, or held a
    /// corrupt record.
    #[error(transparent)]
    Shm(#[from] hotwasm_shm::ShmError),
    /// The client's ring held a corrupt record, or cannot be read any
    /// further (cursors that jumped, a slot never published): someone wrote
    /// into it who does not follow the protocol.
    #[error("ring {ring} is corrupted: {source}")]
    RingCorrupted {
        /// The ring's path.
        ring: String,
        /// What was found.
        #[source]
        source: hotwasm_shm::ShmError,
    },
    /// The ring failed a write a moment ago and is refused for
    /// [`RING_COOL_DOWN`], so a reader that went away does not cost every
    /// batch the full ring timeout.
    #[error("ring {name} failed a write less than {RING_COOL_DOWN:?} ago; refused until then")]
    RingCoolingDown {
        /// The ring's name.
        name: String,
    },
    /// No reader can ever take these replies: the ring directory of this
    /// host has no ring of that name, or nothing listens on it any more
    /// (its client is gone). The jobs are dead-lettered at once with this
    /// reason rather than retried through every reclaim.
    #[error("no reader for ring {name}: {reason}")]
    NoSuchRing {
        /// The ring's name, as the job gave it.
        name: String,
        /// What opening it met.
        reason: String,
    },
    /// This server has no sink for the address's kind.
    #[error("this server writes no replies to {kind} addresses")]
    NoSink {
        /// The kind of the address.
        kind: ReplyKind,
    },
    /// The thread writing to a ring stopped (panicked or was cancelled).
    #[error("ring writer stopped: {0}")]
    WriterStopped(#[from] tokio::task::JoinError),
    /// A results-stream entry is not a reply.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// A ring record is not a reply.
    #[error("not a reply: {0}")]
    Decode(#[from] serde_json::Error),
}

impl ReplyError {
    /// Whether no later attempt can write these replies, anywhere: a ring
    /// name no ring can have, or a ring with no reader. The consumer
    /// dead-letters such jobs at once with the reason; every other failure
    /// leaves them pending, to be tried again.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ReplyError::NoSuchRing { .. } | ReplyError::Shm(hotwasm_shm::ShmError::BadName(_))
        )
    }
}

/// A batch not written in full: the first [`written`](WriteError::written)
/// replies were, the rest were not, for [`reason`](WriteError::reason).
#[derive(Debug, thiserror::Error)]
#[error("{written} replies written, the rest not: {reason}")]
pub struct WriteError {
    /// How many replies, from the start of the batch, were written.
    pub written: usize,
    /// Why the next one was not.
    pub reason: ReplyError,
}

impl WriteError {
    /// Nothing of the batch was written.
    pub fn nothing(reason: impl Into<ReplyError>) -> WriteError {
        WriteError {
            written: 0,
            reason: reason.into(),
        }
    }
}

/// Writes replies to addresses of one [`ReplyKind`] (server side).
pub trait ReplySink: Send + Sync {
    /// The kind of address this sink writes to.
    fn kind(&self) -> ReplyKind;

    /// Writes `replies`, in order, to the address `name` of this sink's
    /// kind (a stream key, a ring name: [`ReplyTo::name`]).
    ///
    /// # Errors
    ///
    /// [`WriteError`] with how many replies were written (a prefix) and
    /// why the next was not; those not written stay unacknowledged.
    fn write<'a>(
        &'a self,
        name: &'a str,
        replies: Vec<Reply>,
    ) -> BoxFuture<'a, Result<(), WriteError>>;
}

/// The sinks of a server, one per [`ReplyKind`]: the one lookup from a
/// reply address to the code that writes to it.
///
/// ```
/// # use std::sync::Arc;
/// # use hotwasm_queue::MemoryQueue;
/// # use hotwasm_queue::reply::{ReplySinks, StreamSink};
/// let sinks = ReplySinks::new().with(StreamSink::new(Arc::new(MemoryQueue::new())));
/// ```
#[derive(Clone, Default)]
pub struct ReplySinks {
    sinks: HashMap<ReplyKind, Arc<dyn ReplySink>>,
}

impl std::fmt::Debug for ReplySinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.sinks.keys()).finish()
    }
}

impl ReplySinks {
    /// No sinks: every write fails with [`ReplyError::NoSink`].
    pub fn new() -> ReplySinks {
        ReplySinks::default()
    }

    /// Adds `sink` for its kind, replacing any sink of that kind.
    #[must_use]
    pub fn with(mut self, sink: impl ReplySink + 'static) -> ReplySinks {
        self.sinks.insert(sink.kind(), Arc::new(sink));
        self
    }

    /// The sink for addresses of `kind`, if this server has one.
    pub fn get(&self, kind: ReplyKind) -> Option<&dyn ReplySink> {
        self.sinks.get(&kind).map(|sink| &**sink)
    }

    /// Writes `replies`, in order, to `to` through the sink of its kind.
    ///
    /// # Errors
    ///
    /// [`WriteError`] as [`ReplySink::write`]; with nothing written and
    /// [`ReplyError::NoSink`] when no sink serves the address's kind.
    pub async fn write(&self, to: &ReplyTo, replies: Vec<Reply>) -> Result<(), WriteError> {
        match self.get(to.kind()) {
            Some(sink) => sink.write(to.name(), replies).await,
            None => Err(WriteError::nothing(ReplyError::NoSink { kind: to.kind() })),
        }
    }
}

/// A reply as it reached the client, or why what arrived is not one.
#[derive(Debug)]
pub struct Arrival {
    /// The reply (or why the record or entry was unreadable).
    pub reply: Result<Reply, ReplyError>,
    /// When the client took it off the ring or the stream.
    pub at: Instant,
}

/// Reads the replies for one address (client side). A source starts
/// reading when it is created, before the first job is submitted, and
/// keeps reading in the background while the client submits.
pub trait ReplySource: Send {
    /// The address to put in envelopes so servers reply here.
    fn address(&self) -> &ReplyTo;

    /// The next batch of arrivals, waiting for one; `None` once the
    /// source has stopped reading.
    fn recv(&mut self) -> BoxFuture<'_, Option<Vec<Arrival>>>;

    /// The next batch if one has arrived already, without waiting.
    fn try_recv(&mut self) -> Option<Vec<Arrival>>;

    /// Stops reading and releases the address (removes the ring's socket,
    /// deletes the results stream). Dropping a source without closing it
    /// stops the reading too, but a results stream is left behind.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// The channel a source's background reader fills, in batches (one wake-up
/// of the client per batch, not per reply).
#[derive(Debug)]
struct Inbox(mpsc::UnboundedReceiver<Vec<Arrival>>);

/// The sending half of an [`Inbox`], for the background reader.
type Outbox = mpsc::UnboundedSender<Vec<Arrival>>;

impl Inbox {
    fn new() -> (Outbox, Inbox) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (sender, Inbox(receiver))
    }

    async fn recv(&mut self) -> Option<Vec<Arrival>> {
        self.0.recv().await
    }

    fn try_recv(&mut self) -> Option<Vec<Arrival>> {
        self.0.try_recv().ok()
    }
}
