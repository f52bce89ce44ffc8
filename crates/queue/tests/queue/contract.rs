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

/// Fencing: a consumer that lost its jobs to a reclaim learns it from
/// `renew` (and so drops its verdicts); the new owner keeps them, and its
/// renewal holds them back from the next reclaim.
pub async fn a_reclaimed_job_is_no_longer_its_first_consumers<Q: JobQueue>(queue: Q) {
    // Long enough that one renewal and one reclaim always fit inside it.
    const IDLE: Duration = Duration::from_secs(1);
    queue
        .submit(&(0..4).map(envelope).collect::<Vec<_>>())
        .await
        .unwrap();
    let stalled = queue.fetch("stalled", 10, Duration::ZERO).await.unwrap();
    assert_eq!(stalled.len(), 4);
    assert_eq!(
        queue.renew("stalled", &ids(&stalled)).await.unwrap(),
        [true; 4],
        "nobody else has them yet"
    );
    tokio::time::sleep(IDLE * 2).await;
    let taken = queue.reclaim("takes-over", IDLE, 5, 2).await.unwrap();
    assert_eq!(taken.len(), 2);
    let owned = queue.renew("stalled", &ids(&stalled)).await.unwrap();
    let lost: Vec<bool> = stalled
        .iter()
        .map(|d| taken.iter().any(|t| t.id == d.id))
        .collect();
    assert_eq!(
        owned,
        lost.iter().map(|lost| !lost).collect::<Vec<_>>(),
        "the stalled consumer owns exactly the jobs not taken over"
    );
    tokio::time::sleep(IDLE * 2).await;
    assert_eq!(
        queue.renew("takes-over", &ids(&taken)).await.unwrap(),
        [true, true]
    );
    // Renewed just now: the next reclaim finds only the stalled consumer's
    // other two, idle all along.
    let again = queue.reclaim("third", IDLE, 5, 10).await.unwrap();
    assert_eq!(again.len(), 2, "{again:?}");
    assert!(again.iter().all(|d| !taken.iter().any(|t| t.id == d.id)));
    queue.ack(&ids(&taken)).await.unwrap();
    assert_eq!(
        queue.renew("takes-over", &ids(&taken)).await.unwrap(),
        [false, false],
        "acknowledged: not pending any more"
    );
    assert!(queue.renew("anyone", &[]).await.unwrap().is_empty());
}

/// A consumer can read back what is pending under its own name (a fetch
/// whose reply it never got), page by page, and nobody else's.
pub async fn a_consumer_reads_back_its_own_pending_jobs<Q: JobQueue>(queue: Q) {
    queue
        .submit(&(0..5).map(envelope).collect::<Vec<_>>())
        .await
        .unwrap();
    let mine = queue.fetch("mine", 3, Duration::ZERO).await.unwrap();
    let theirs = queue.fetch("theirs", 10, Duration::ZERO).await.unwrap();
    assert_eq!((mine.len(), theirs.len()), (3, 2));
    let all = queue.own_pending("mine", "0", 5, 10).await.unwrap();
    assert_eq!(seqs(&all), seqs(&mine));
    let first = queue.own_pending("mine", "0", 5, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    let rest = queue.own_pending("mine", &first[1].id, 5, 2).await.unwrap();
    assert_eq!(seqs(&rest), seqs(&mine[2..]));
    queue.ack(&ids(&mine[..1])).await.unwrap();
    for _ in 0..6 {
        let again = queue.own_pending("mine", "0", 5, 10).await.unwrap();
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|d| d.deliveries == 1), "{again:?}");
    }
    // Looking is not delivering: taken over, they are at their second
    // delivery, not past the limit.
    wait_past_min_idle().await;
    let taken = queue.reclaim("other", MIN_IDLE, 5, 10).await.unwrap();
    let taken: Vec<&Delivery> = taken
        .iter()
        .filter(|d| mine.iter().any(|m| m.id == d.id))
        .collect();
    assert_eq!(taken.len(), 2);
    assert!(taken.iter().all(|d| d.deliveries == 2), "{taken:?}");
    assert!(
        queue
            .own_pending("nobody", "0", 5, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Delivery with acknowledgement in one step: a consumer delivers only the
/// replies of jobs it still owns; a job another consumer reclaimed is
/// neither written nor acknowledged by it; a gone stream takes nothing
/// but the owned jobs are acknowledged.
pub async fn delivery_writes_and_acknowledges_only_owned_jobs<Q: JobQueue + ResultsStreams>(
    queue: Q,
) {
    const IDLE: Duration = Duration::from_secs(1);
    let stream = "hotwasm:results:deliver";
    queue.create_stream(stream).await.unwrap();
    queue
        .submit(&(0..4).map(envelope).collect::<Vec<_>>())
        .await
        .unwrap();
    let stalled = queue.fetch("stalled", 3, Duration::ZERO).await.unwrap();
    assert_eq!(stalled.len(), 3);
    tokio::time::sleep(IDLE * 2).await;
    let taken = queue.reclaim("other", IDLE, 5, 1).await.unwrap();
    assert_eq!(taken.len(), 1);
    let pairs: Vec<(String, Reply)> = stalled
        .iter()
        .map(|d| (d.id.clone(), reply(d.envelope.as_ref().unwrap().seq)))
        .collect();
    let owned = queue.deliver(stream, "stalled", &pairs).await.unwrap();
    assert_eq!(
        owned,
        stalled
            .iter()
            .map(|d| d.id != taken[0].id)
            .collect::<Vec<_>>()
    );
    let (written, _) = queue
        .read_replies(stream, "0", 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(written.len(), 2, "only the owned jobs' replies");
    // The stalled consumer's owned jobs are acknowledged; the reclaimed
    // one is still pending, for its new owner to deliver.
    assert_eq!(queue.stats().await.unwrap().pending, 1);
    let again = queue.deliver(stream, "stalled", &pairs).await.unwrap();
    assert_eq!(again, [false, false, false], "nothing is delivered twice");
    let theirs = [(taken[0].id.clone(), reply(9))];
    assert_eq!(
        queue.deliver(stream, "other", &theirs).await.unwrap(),
        [true]
    );
    assert_eq!(queue.stats().await.unwrap().pending, 0);

    // A stream its client deleted takes nothing; the job is acknowledged.
    let last = queue.fetch("stalled", 1, Duration::ZERO).await.unwrap();
    let gone = [(last[0].id.clone(), reply(3))];
    assert_eq!(
        queue
            .deliver("hotwasm:results:gone", "stalled", &gone)
            .await
            .unwrap(),
        [true]
    );
    assert_eq!(queue.stats().await.unwrap().pending, 0);
    let (nothing, _) = queue
        .read_replies("hotwasm:results:gone", "0", 10, Duration::ZERO)
        .await
        .unwrap();
    assert!(nothing.is_empty());
}

/// A resumable client's progress is saved, read back and forgotten.
pub async fn progress_is_kept_until_forgotten<Q: ResultsStreams>(queue: Q) {
    let stream = "hotwasm:results:session-test";
    assert_eq!(queue.load_progress(stream).await.unwrap(), None);
    let progress = hotwasm_queue::Progress {
        digest: "ab".repeat(32),
        jobs: 10,
        submitted: 4,
    };
    queue.save_progress(stream, &progress).await.unwrap();
    assert_eq!(
        queue.load_progress(stream).await.unwrap(),
        Some(progress.clone())
    );
    let further = hotwasm_queue::Progress {
        submitted: 10,
        ..progress
    };
    queue.save_progress(stream, &further).await.unwrap();
    assert_eq!(queue.load_progress(stream).await.unwrap(), Some(further));
    queue.delete_progress(stream).await.unwrap();
    assert_eq!(queue.load_progress(stream).await.unwrap(), None);
}

/// A reclaim returns a full page whenever that many jobs wait to be taken
/// over, however the pending list mixes them with jobs not idle long
/// enough: pages of 64 take over 200 orphaned jobs among 300 pending, the
/// first three pages full.
pub async fn a_reclaim_fills_its_page_past_young_jobs<Q: JobQueue>(queue: Q) {
    // Long enough that one renewal and one reclaim always fit inside it.
    const IDLE: Duration = Duration::from_secs(1);
    queue
        .submit(&(0..300).map(envelope).collect::<Vec<_>>())
        .await
        .unwrap();
    let orphans = queue.fetch("dies", 300, Duration::ZERO).await.unwrap();
    assert_eq!(orphans.len(), 300);
    tokio::time::sleep(IDLE * 2).await;
    // Every third job is kept young (renewed before each page); the
    // others have been idle past IDLE.
    let young: Vec<String> = orphans
        .iter()
        .filter(|d| d.envelope.as_ref().unwrap().seq % 3 == 0)
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(young.len(), 100);
    let mut pages = Vec::new();
    let mut taken = std::collections::BTreeSet::new();
    for _ in 0..10 {
        assert!(
            queue
                .renew("dies", &young)
                .await
                .unwrap()
                .iter()
                .all(|o| *o)
        );
        let page = queue.reclaim("sweeper", IDLE, 5, 64).await.unwrap();
        pages.push(page.len());
        for delivery in &page {
            assert!(!young.contains(&delivery.id), "a young job was taken");
            taken.insert(delivery.id.clone());
        }
        if page.len() < 64 {
            break;
        }
    }
    assert_eq!(taken.len(), 200, "pages: {pages:?}");
    assert_eq!(pages[..3], [64, 64, 64], "full pages first: {pages:?}");
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
        async fn a_reclaimed_job_is_no_longer_its_first_consumers() {
            let (queue, _guard) = $make.await;
            $crate::contract::a_reclaimed_job_is_no_longer_its_first_consumers(queue).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn delivery_writes_and_acknowledges_only_owned_jobs() {
            let (queue, _guard) = $make.await;
            $crate::contract::delivery_writes_and_acknowledges_only_owned_jobs(queue).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn progress_is_kept_until_forgotten() {
            let (queue, _guard) = $make.await;
            $crate::contract::progress_is_kept_until_forgotten(queue).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_consumer_reads_back_its_own_pending_jobs() {
            let (queue, _guard) = $make.await;
            $crate::contract::a_consumer_reads_back_its_own_pending_jobs(queue).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_reclaim_fills_its_page_past_young_jobs() {
            let (queue, _guard) = $make.await;
            $crate::contract::a_reclaim_fills_its_page_past_young_jobs(queue).await;
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
