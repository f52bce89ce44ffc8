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
    assert!(path.exists(), "the ring's socket is published");
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
    assert!(!path.exists(), "closing removed the ring's socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ring_takes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sink = RingSink::new(dir.path().to_path_buf(), PATIENCE);
    let failure = sink.write("nobody", vec![reply(1)]).await.unwrap_err();
    assert_eq!(failure.written, 0);
    // No reader can ever take it: the consumer dead-letters such jobs.
    assert!(
        matches!(failure.reason, ReplyError::NoSuchRing { ref name, .. } if name == "nobody"),
        "{failure}"
    );
    assert!(failure.reason.is_permanent());
    // Names come from jobs: one that could leave the directory is refused.
    let failure = sink.write("../etc", vec![reply(1)]).await.unwrap_err();
    assert!(
        matches!(failure.reason, ReplyError::Shm(ShmError::BadName(_))),
        "{failure}"
    );
    assert!(failure.reason.is_permanent());
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

/// Writes into a ring's memory as a hostile process holding it could.
fn scribble(ring: &Ring, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::from(
        ring.fd()
            .try_clone_to_owned()
            .expect("dup the ring's descriptor"),
    );
    file.write_all_at(bytes, offset)
        .expect("write into the ring");
}

/// The first batch that holds an error, and everything before it.
async fn until_error(source: &mut dyn ReplySource) -> (usize, ReplyError) {
    let mut good = 0;
    loop {
        let batch = tokio::time::timeout(PATIENCE, source.recv())
            .await
            .expect("an arrival in time")
            .expect("the source reads");
        for arrival in batch {
            match arrival.reply {
                Ok(_) => good += 1,
                Err(e) => return (good, e),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_a_bad_checksum_is_reported_as_the_ring_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = RingSource::create(dir.path(), "crc", 4).unwrap();
    let path = ring_path(dir.path(), "crc").unwrap();
    let hostile = Ring::open(&path).unwrap();
    // Slot 0 (after the 256-byte header): length 5, a wrong CRC, a
    // payload, then published (seq 1) and claimed on the producer cursor.
    scribble(&hostile, 256 + 8, &5u32.to_le_bytes());
    scribble(&hostile, 256 + 12, &0xdead_beef_u32.to_le_bytes());
    scribble(&hostile, 256 + 16, b"forge");
    scribble(&hostile, 64, &1u64.to_ne_bytes());
    scribble(&hostile, 256, &1u64.to_ne_bytes());
    let (good, error) = until_error(&mut source).await;
    assert_eq!(good, 0);
    match &error {
        ReplyError::RingCorrupted {
            ring,
            source: ShmError::Corrupt { .. },
        } => assert_eq!(ring, &path.display().to_string()),
        other => panic!("expected RingCorrupted, got {other:?}"),
    }
    // The reader goes on: replies written properly still arrive.
    let sink = RingSink::new(dir.path().to_path_buf(), PATIENCE);
    sink.write("crc", vec![reply(1)]).await.unwrap();
    let batch = source.recv().await.expect("still reading");
    assert_eq!(batch[0].reply.as_ref().unwrap(), &reply(1));
    Box::new(source).close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_that_jumps_ends_the_reading_with_the_ring_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = RingSource::create(dir.path(), "jump", 4).unwrap();
    let path = ring_path(dir.path(), "jump").unwrap();
    let sink = RingSink::new(dir.path().to_path_buf(), PATIENCE);
    sink.write("jump", vec![reply(0)]).await.unwrap();
    // A lap ahead of where the reader is.
    scribble(&Ring::open(&path).unwrap(), 128, &6u64.to_ne_bytes());
    let (good, error) = until_error(&mut source).await;
    assert!(good <= 1);
    assert!(
        matches!(
            error,
            ReplyError::RingCorrupted {
                source: ShmError::Broken { .. },
                ..
            }
        ),
        "{error}"
    );
    assert!(
        source.recv().await.is_none(),
        "reading ends: nothing more can come"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_that_never_completes_is_reported_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut source =
        RingSource::create_with_stall_limit(dir.path(), "stall", 4, Duration::from_millis(200))
            .unwrap();
    let path = ring_path(dir.path(), "stall").unwrap();
    // A writer that claimed slot 0 and died before publishing it.
    scribble(&Ring::open(&path).unwrap(), 64, &1u64.to_ne_bytes());
    let (_, error) = until_error(&mut source).await;
    match error {
        ReplyError::RingCorrupted {
            source: ShmError::Broken { reason },
            ..
        } => assert!(reason.contains("none published"), "{reason}"),
        other => panic!("expected a stalled ring, got {other:?}"),
    }
    assert!(source.recv().await.is_none());
}
