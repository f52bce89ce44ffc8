//! Replies through a results stream of the queue ([`ResultsStreams`]): the
//! client creates its stream and reads it ([`StreamSource`]), servers
//! anywhere publish to it ([`StreamSink`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Arrival, BoxFuture, Inbox, Outbox, ReplyError, ReplySink, ReplySource, WriteError};
use crate::{QueueError, Reply, ReplyKind, ReplyTo, ResultsStreams};

/// Replies read per `read_replies` call.
const READ_BATCH: usize = 1024;
/// How long one read waits, which bounds how long closing waits for it.
const READ_BLOCK: Duration = Duration::from_millis(50);
/// The pause before reading again after a failed read.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// Publishes replies to the results streams of a queue.
pub struct StreamSink<Q> {
    queue: Arc<Q>,
}

impl<Q: ResultsStreams> StreamSink<Q> {
    /// A sink publishing through `queue`.
    pub fn new(queue: Arc<Q>) -> StreamSink<Q> {
        StreamSink { queue }
    }
}

impl<Q: ResultsStreams> ReplySink for StreamSink<Q> {
    fn kind(&self) -> ReplyKind {
        ReplyKind::Stream
    }

    fn write<'a>(
        &'a self,
        name: &'a str,
        replies: Vec<Reply>,
    ) -> BoxFuture<'a, Result<(), WriteError>> {
        // One pipelined publish: it lands whole or not at all as far as the
        // consumer can tell, so a failure acknowledges nothing.
        Box::pin(async move {
            self.queue
                .publish(name, &replies)
                .await
                .map_err(WriteError::nothing)
        })
    }
}

/// Reads replies from this client's results stream, on a task of its own.
/// The stream is created before the source reads and deleted when it is
/// closed.
pub struct StreamSource<Q: ResultsStreams> {
    queue: Arc<Q>,
    address: ReplyTo,
    inbox: Inbox,
    stop: Arc<AtomicBool>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl<Q: ResultsStreams> StreamSource<Q> {
    /// Creates the results stream `key` in `queue` and starts reading it.
    ///
    /// # Errors
    ///
    /// [`QueueError`] when the stream cannot be created.
    pub async fn create(queue: Arc<Q>, key: String) -> Result<StreamSource<Q>, QueueError> {
        queue.create_stream(&key).await?;
        let (outbox, inbox) = Inbox::new();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_stream(
            Arc::clone(&queue),
            key.clone(),
            outbox,
            Arc::clone(&stop),
        ));
        Ok(StreamSource {
            queue,
            address: ReplyTo::Stream(key),
            inbox,
            stop,
            reader: Some(reader),
        })
    }
}

impl<Q: ResultsStreams> ReplySource for StreamSource<Q> {
    fn address(&self) -> &ReplyTo {
        &self.address
    }

    fn recv(&mut self) -> BoxFuture<'_, Option<Vec<Arrival>>> {
        Box::pin(self.inbox.recv())
    }

    fn try_recv(&mut self) -> Option<Vec<Arrival>> {
        self.inbox.try_recv()
    }

    fn close(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        self.stop.store(true, Ordering::Relaxed);
        let reader = self.reader.take();
        let queue = Arc::clone(&self.queue);
        let key = self.address.name().to_string();
        Box::pin(async move {
            if let Some(reader) = reader {
                // Ends within one read's block time.
                let _ = reader.await;
            }
            if let Err(e) = queue.delete_stream(&key).await {
                tracing::warn!("deleting results stream {key}: {e}");
            }
        })
    }
}

impl<Q: ResultsStreams> Drop for StreamSource<Q> {
    fn drop(&mut self) {
        // Abandoned without `close`: stop reading at once; the stream is
        // left for whoever abandoned it to delete.
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
    }
}

/// Reads replies from the results stream until told to stop.
async fn read_stream<Q: ResultsStreams>(
    queue: Arc<Q>,
    key: String,
    arrivals: Outbox,
    stop: Arc<AtomicBool>,
) {
    let mut after = "0".to_string();
    while !stop.load(Ordering::Relaxed) {
        match queue
            .read_replies(&key, &after, READ_BATCH, READ_BLOCK)
            .await
        {
            Ok((replies, next)) => {
                after = next;
                let at = Instant::now();
                let batch: Vec<Arrival> = replies
                    .into_iter()
                    .map(|reply| Arrival {
                        reply: reply.map_err(ReplyError::from),
                        at,
                    })
                    .collect();
                if !batch.is_empty() && arrivals.send(batch).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!("reading verdicts from {key}: {e}; retrying");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}
