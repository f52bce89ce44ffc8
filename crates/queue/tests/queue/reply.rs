//! The reply path through shared memory, and the lookup that picks a sink
//! by address: real rings in a temporary directory, as a client and a
//! server on one host use them. (The results-stream sink and source run in
//! the contract tests, on both queues.)

use std::time::Duration;

use hotwasm_queue::reply::{
    ReplyError, ReplySink, ReplySinks, ReplySource, RingSink, RingSource, WriteError,
};
use hotwasm_queue::{ReplyKind, ReplyTo};
use hotwasm_shm::{Ring, ShmError, ring_path};

use crate::contract::reply;

/// Long enough never to run out on a healthy run.
const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_sinks_replies_reach_the_ring_source_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut source: Box<dyn ReplySource> =
        Box::new(RingSource::create(dir.path(), "client-1", 4).unwrap());
    assert_eq!(source.address(), &ReplyTo::Shm("client-1".into()));
    let path = ring_path(dir.path(), "client-1").unwrap();
    assert!(path.exists());
    // Five times the ring's slots: the source reads while the sink writes.
    let sinks = ReplySinks::new().with(RingSink::new(dir.path().to_path_buf(), PATIENCE));
    let sent: Vec<_> = (0..20).map(reply).collect();
    let address = source.address().clone();
    let (written, got) = tokio::join!(sinks.write(&address, sent.clone()), async {
        let mut got = Vec::new();
        while got.len() < 20 {
            let batch = source.recv().await.expect("the source reads");
            got.extend(batch.into_iter().map(|arrival| arrival.reply.unwrap()));
        }
        got
    });
    written.unwrap();
    assert_eq!(got, sent);
    source.close().await;
    assert!(!path.exists(), "closing removed the ring");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ring_takes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sink = RingSink::new(dir.path().to_path_buf(), PATIENCE);
    let failure = sink.write("nobody", vec![reply(1)]).await.unwrap_err();
    assert_eq!(failure.written, 0);
    assert!(
        matches!(failure.reason, ReplyError::Shm(ShmError::Io { .. })),
        "{failure}"
    );
    // Names come from jobs: one that could leave the directory is refused.
    let failure = sink.write("../etc", vec![reply(1)]).await.unwrap_err();
    assert!(
        matches!(failure.reason, ReplyError::Shm(ShmError::BadName(_))),
        "{failure}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_ring_takes_a_prefix_and_is_then_refused_for_a_while() {
    let dir = tempfile::tempdir().unwrap();
    // A reader that never reads: two slots, then the ring is full.
    let path = ring_path(dir.path(), "stalled").unwrap();
    let _ring = Ring::create(&path, 2, 1024).unwrap();
    let sink = RingSink::new(dir.path().to_path_buf(), Duration::from_millis(50));
    let WriteError { written, reason } = sink
        .write("stalled", (0..5).map(reply).collect())
        .await
        .unwrap_err();
    assert_eq!(written, 2, "the two that fit were written");
    assert!(
        matches!(reason, ReplyError::Shm(ShmError::Full { .. })),
        "{reason}"
    );
    let failure = sink.write("stalled", vec![reply(5)]).await.unwrap_err();
    assert_eq!(failure.written, 0);
    assert!(
        matches!(failure.reason, ReplyError::RingCoolingDown { .. }),
        "{failure}"
    );
}

#[tokio::test]
async fn an_address_of_a_kind_without_a_sink_takes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sinks = ReplySinks::new().with(RingSink::new(dir.path().to_path_buf(), PATIENCE));
    assert!(sinks.get(ReplyKind::Shm).is_some());
    assert!(sinks.get(ReplyKind::Stream).is_none());
    let failure = sinks
        .write(&ReplyTo::Stream("hotwasm:results:c".into()), vec![reply(1)])
        .await
        .unwrap_err();
    assert_eq!(failure.written, 0);
    assert!(
        matches!(
            failure.reason,
            ReplyError::NoSink {
                kind: ReplyKind::Stream
            }
        ),
        "{failure}"
    );
}
