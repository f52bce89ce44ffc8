//! The contract every [`JobQueue`] (and its [`ResultsStreams`]) keeps, as
//! generic tests each backend's module runs.

// Helpers called by the tests: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use hotwasm_jobs::Verdict;
use hotwasm_queue::reply::{ReplySink, ReplySource, StreamSink, StreamSource};
use hotwasm_queue::{Delivery, Envelope, JobQueue, Reply, ReplyTo, ResultsStreams};

/// An idle time short enough for tests; they wait past it, they never
/// assert how long anything took.
pub const MIN_IDLE: Duration = Duration::from_millis(50);

pub fn envelope(seq: u64) -> Envelope {
    Envelope {
        seq,
        job: format!(r#"{{"id":"{seq}","scheme":"schnorr"}}"#).into_bytes(),
        reply: ReplyTo::Stream("hotwasm:results:test".into()),
    }
}

pub fn reply(seq: u64) -> Reply {
    Reply {
        seq,
        server: "server-1".into(),
        verdict: Verdict::error(Some(seq.to_string()), "native", "test"),
        job_digest: None,
        tag: None,
    }
}

fn seqs(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries
        .iter()
        .map(|d| d.envelope.as_ref().expect("an envelope").seq)
        .collect()
}

fn ids(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.id.clone()).collect()
}

async fn wait_past_min_idle() {
    tokio::time::sleep(MIN_IDLE * 3).await;
}

/// 1,000 jobs, two consumers fetching concurrently: each job reaches
/// exactly one of them exactly once.
pub async fn two_consumers_get_each_job_exactly_once<Q: JobQueue>(queue: Q) {
    let queue = Arc::new(queue);
    let jobs: Vec<Envelope> = (0..1_000).map(envelope).collect();
    for batch in jobs.chunks(128) {
        queue.submit(batch).await.unwrap();
    }
    let consume = |name: &'static str| {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = queue
                    .fetch(name, 37, Duration::from_millis(100))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return got;
                }
                assert!(batch.iter().all(|d| d.deliveries == 1));
                queue.ack(&ids(&batch)).await.unwrap();
                got.extend(seqs(&batch));
            }
        })
    };
    let (a, b) = (consume("a"), consume("b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let mut all: Vec<u64> = a.iter().chain(&b).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..1_000).collect::<Vec<_>>(), "each job exactly once");
    let stats = queue.stats().await.unwrap();
    assert_eq!(stats.pending, 0);
    assert_eq!(stats.dead_letters, 0);
}

/// A consumer that fetches and dies: after the idle time another one
/// reclaims its jobs, delivered for the second time.
pub async fn dead_consumers_jobs_are_reclaimed<Q: JobQueue>(queue: Q) {
    queue
        .submit(&(0..10).map(envelope).collect::<Vec<_>>())
        .await
        .unwrap();
    let taken = queue.fetch("dies", 100, Duration::ZERO).await.unwrap();
    assert_eq!(seqs(&taken), (0..10).collect::<Vec<_>>());
    assert_eq!(queue.stats().await.unwrap().pending, 10);

    wait_past_min_idle().await;
    let reclaimed = queue.reclaim("lives", MIN_IDLE, 5, 100).await.unwrap();
    assert_eq!(seqs(&reclaimed), (0..10).collect::<Vec<_>>());
    assert!(reclaimed.iter().all(|d| d.deliveries == 2), "{reclaimed:?}");
    // Not idle any more: nobody else takes them now.
    assert!(
        queue
            .reclaim("third", Duration::from_secs(3600), 5, 100)
            .await
            .unwrap()
            .is_empty()
    );
    queue.ack(&ids(&reclaimed)).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().pending, 0);
}

/// A job delivered more than `max_deliveries` times goes to the dead
/// letters and is not handed out again.
pub async fn jobs_past_the_delivery_limit_are_dead_lettered<Q: JobQueue>(queue: Q) {
    queue.submit(&[envelope(1), envelope(2)]).await.unwrap();
    assert_eq!(queue.fetch("a", 10, Duration::ZERO).await.unwrap().len(), 2);
    wait_past_min_idle().await;
    let second = queue.reclaim("b", MIN_IDLE, 2, 10).await.unwrap();
    assert_eq!(seqs(&second), [1, 2]);
    assert!(second.iter().all(|d| d.deliveries == 2));

    wait_past_min_idle().await;
    let third = queue.reclaim("c", MIN_IDLE, 2, 10).await.unwrap();
    assert!(third.is_empty(), "past the limit: {third:?}");
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (0, 2));
    wait_past_min_idle().await;
    assert!(
        queue
            .reclaim("d", MIN_IDLE, 2, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        queue
            .fetch("d", 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}

/// `dead_letter` moves a delivery and acknowledges it.
pub async fn dead_letter_acknowledges<Q: JobQueue>(queue: Q) {
    queue.submit(&[envelope(1), envelope(2)]).await.unwrap();
    let got = queue.fetch("a", 10, Duration::ZERO).await.unwrap();
    queue
        .dead_letter(&got[0], "operator said so")
        .await
        .unwrap();
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (1, 1));
    queue.ack(&[got[1].id.clone()]).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().pending, 0);
}

/// Replies come back in order, batch by batch with the cursor; an empty
/// wait returns the same cursor; a deleted stream is empty.
pub async fn replies_round_trip_in_order<Q: ResultsStreams>(queue: Q) {
    let stream = "hotwasm:results:c1";
    queue.create_stream(stream).await.unwrap();
    queue.create_stream(stream).await.unwrap();
    queue.publish(stream, &[reply(0), reply(1)]).await.unwrap();
    queue
        .publish(stream, &[reply(2), reply(3), reply(4)])
        .await
        .unwrap();
    let (first, cursor) = queue
        .read_replies(stream, "0", 3, Duration::ZERO)
        .await
        .unwrap();
    let (rest, cursor) = queue
        .read_replies(stream, &cursor, 10, Duration::from_millis(10))
        .await
        .unwrap();
    let got: Vec<Reply> = first.into_iter().chain(rest).map(Result::unwrap).collect();
    assert_eq!(got, (0..5).map(reply).collect::<Vec<_>>());
    let (none, same) = queue
        .read_replies(stream, &cursor, 10, Duration::from_millis(20))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(same, cursor);

    // A reader blocked on the stream wakes for a publish.
    let queue = Arc::new(queue);
    let reader = {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move {
            queue
                .read_replies(stream, &cursor, 10, Duration::from_secs(30))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    queue.publish(stream, &[reply(5)]).await.unwrap();
    let (late, _) = reader.await.unwrap().unwrap();
    assert_eq!(late, [Ok(reply(5))]);

    queue.delete_stream(stream).await.unwrap();
    // A late reply (a redelivered job) does not bring the stream back.
    queue.publish(stream, &[reply(6)]).await.unwrap();
    let (gone, _) = queue
        .read_replies(stream, "0", 10, Duration::ZERO)
        .await
        .unwrap();
    assert!(gone.is_empty());
}

/// An id the queue never handed out is refused, nothing is acknowledged.
pub async fn bad_ids_are_refused<Q: JobQueue + ResultsStreams>(queue: Q) {
    queue.submit(&[envelope(1)]).await.unwrap();
    let got = queue.fetch("a", 10, Duration::ZERO).await.unwrap();
    let err = queue
        .ack(&[got[0].id.clone(), "not-an-id".into()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, hotwasm_queue::QueueError::InvalidId { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("not-an-id"));
    assert_eq!(queue.stats().await.unwrap().pending, 1);
    assert!(
        queue
            .read_replies("r", "garbage", 10, Duration::ZERO)
            .await
            .is_err()
    );
}

/// What a stream sink writes, a stream source on the same address reads,
/// in order; closing the source deletes the stream, so later replies are
/// dropped.
pub async fn a_stream_sinks_replies_reach_the_stream_source<Q: ResultsStreams>(queue: Q) {
    let queue = Arc::new(queue);
    let mut source: Box<dyn ReplySource> = Box::new(
        StreamSource::create(Arc::clone(&queue), "hotwasm:results:sink".into())
            .await
            .unwrap(),
    );
    let address = source.address().clone();
    assert_eq!(address, ReplyTo::Stream("hotwasm:results:sink".into()));
    let sink = StreamSink::new(Arc::clone(&queue));
    sink.write(address.name(), (0..3).map(reply).collect())
        .await
        .unwrap();
    sink.write(address.name(), vec![reply(3)]).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        let batch = source.recv().await.expect("the source reads");
        got.extend(batch.into_iter().map(|arrival| arrival.reply.unwrap()));
    }
    assert_eq!(got, (0..4).map(reply).collect::<Vec<_>>());
    source.close().await;
    let (gone, _) = queue
        .read_replies(address.name(), "0", 10, Duration::ZERO)
        .await
        .unwrap();
    assert!(gone.is_empty(), "closing deleted the stream: {gone:?}");
}

/// The contract tests as plain tests of one backend: `$make` is an async
/// expression giving a fresh queue (and whatever must live as long).
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn two_consumers_get_each_job_exactly_once() {
            let (queue, _guard) = $make.await;
            $crate::contract::two_consumers_get_each_job_exactly_once(queue).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn dead_consumers_jobs_are_reclaimed() {
            let (queue, _guard) = $make.await;
            $crate::contract::dead_consumers_jobs_are_reclaimed(queue).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn jobs_past_the_delivery_limit_are_dead_lettered() {
            let (queue, _guard) = $make.await;
            $crate::contract::jobs_past_the_delivery_limit_are_dead_lettered(queue).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn dead_letter_acknowledges() {
            let (queue, _guard) = $make.await;
            $crate::contract::dead_letter_acknowledges(queue).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn replies_round_trip_in_order() {
            let (queue, _guard) = $make.await;
            $crate::contract::replies_round_trip_in_order(queue).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_stream_sinks_replies_reach_the_stream_source() {
            let (queue, _guard) = $make.await;
            $crate::contract::a_stream_sinks_replies_reach_the_stream_source(queue).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn bad_ids_are_refused() {
            let (queue, _guard) = $make.await;
            $crate::contract::bad_ids_are_refused(queue).await;
        }
    };
}
