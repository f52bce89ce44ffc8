//! Single-threaded behaviour: round trips, wrap-around, edge lengths,
//! back-pressure, file ownership.

use std::time::Duration;

use hotwasm_shm::{Ring, ShmError};

use crate::{pop_one, record, scratch};

#[test]
fn push_then_pop_returns_the_record() {
    let (_dir, path) = scratch("round-trip");
    let ring = Ring::create(&path, 4, 100).expect("create");
    assert_eq!(ring.capacity(), 4);
    assert_eq!(ring.max_record(), 100);
    assert_eq!(ring.path(), path);
    ring.push(b"hello", Duration::ZERO).expect("push");
    assert_eq!(pop_one(&ring), b"hello");
}

#[test]
fn pop_on_empty_ring_times_out_with_false_and_clears_out() {
    let (_dir, path) = scratch("empty");
    let ring = Ring::create(&path, 2, 8).expect("create");
    let mut out = b"stale".to_vec();
    assert!(!ring.pop(&mut out, Duration::ZERO).expect("pop"));
    assert!(out.is_empty());
    assert!(!ring.pop(&mut out, Duration::from_millis(1)).expect("pop"));
}

#[test]
fn empty_and_max_length_records_round_trip() {
    let (_dir, path) = scratch("edges");
    let ring = Ring::create(&path, 2, 200).expect("create");
    let full: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
    ring.push(&[], Duration::ZERO).expect("push empty");
    ring.push(&full, Duration::ZERO).expect("push max");
    assert_eq!(pop_one(&ring), Vec::<u8>::new());
    assert_eq!(pop_one(&ring), full);
}

#[test]
fn zero_max_record_ring_carries_empty_records() {
    let (_dir, path) = scratch("zero");
    let ring = Ring::create(&path, 2, 0).expect("create");
    ring.push(&[], Duration::ZERO).expect("push");
    assert!(pop_one(&ring).is_empty());
    assert!(matches!(
        ring.push(&[1], Duration::ZERO),
        Err(ShmError::TooLarge { len: 1, max: 0 })
    ));
}

#[test]
fn oversized_record_is_too_large() {
    let (_dir, path) = scratch("too-large");
    let ring = Ring::create(&path, 2, 16).expect("create");
    match ring.push(&[0; 17], Duration::ZERO) {
        Err(ShmError::TooLarge { len, max }) => assert_eq!((len, max), (17, 16)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn wraps_around_many_times_in_order() {
    let (_dir, path) = scratch("wrap");
    let ring = Ring::create(&path, 8, 64).expect("create");
    let mut next_in = 0u32;
    let mut next_out = 0u32;
    let mut out = Vec::new();
    // Batches of 1..=8 so the ring is sometimes full, sometimes nearly empty.
    while next_out < 10_000 {
        let batch = 1 + next_in % 8;
        for _ in 0..batch {
            ring.push(&record(0, next_in, 64), Duration::ZERO)
                .expect("push");
            next_in += 1;
        }
        for _ in 0..batch {
            assert!(ring.pop(&mut out, Duration::ZERO).expect("pop"));
            assert_eq!(out, record(0, next_out, 64));
            next_out += 1;
        }
    }
    assert!(!ring.pop(&mut out, Duration::ZERO).expect("pop"));
}

#[test]
fn full_ring_pushes_back_until_a_pop() {
    let (_dir, path) = scratch("full");
    let ring = Ring::create(&path, 4, 8).expect("create");
    for n in 0..4u8 {
        ring.push(&[n], Duration::ZERO).expect("push");
    }
    assert!(matches!(
        ring.push(&[9], Duration::ZERO),
        Err(ShmError::Full { .. })
    ));
    assert!(matches!(
        ring.push(&[9], Duration::from_millis(2)),
        Err(ShmError::Full { .. })
    ));
    assert_eq!(crate::pop_one(&ring), [0]);
    ring.push(&[4], Duration::ZERO).expect("push after pop");
    for n in 1..=4u8 {
        assert_eq!(crate::pop_one(&ring), [n]);
    }
}

#[test]
fn writer_sees_the_readers_ring_and_leaves_it_on_drop() {
    let (_dir, path) = scratch("ownership");
    let reader = Ring::create(&path, 2, 32).expect("create");
    let writer = Ring::open(&path).expect("open");
    assert_eq!((writer.capacity(), writer.max_record()), (2, 32));
    writer
        .push(b"from the writer", Duration::ZERO)
        .expect("push");
    drop(writer);
    assert!(path.exists(), "a writer must not delete the ring");
    assert_eq!(pop_one(&reader), b"from the writer");
    drop(reader);
    assert!(!path.exists(), "the creator deletes the ring");
}

#[test]
fn recreating_replaces_the_ring_and_the_old_owner_leaves_the_new_file() {
    let (_dir, path) = scratch("recreate");
    let old = Ring::create(&path, 2, 8).expect("create old");
    let old_writer = Ring::open(&path).expect("open old");
    let new = Ring::create(&path, 4, 8).expect("create new");
    // The old writer still holds the old file: no fault, no cross-talk.
    old_writer.push(b"old", Duration::ZERO).expect("push old");
    assert_eq!(pop_one(&old), b"old");
    drop(old);
    assert!(
        path.exists(),
        "dropping the old ring must not delete the new one"
    );
    assert_eq!(Ring::open(&path).expect("open new").capacity(), 4);
    drop(new);
    assert!(!path.exists());
}

#[test]
fn create_refuses_bad_geometry() {
    let (_dir, path) = scratch("geometry");
    for (slots, max_record) in [(0, 8), (1, 8), (3, 8), (1 << 25, 8), (2, u32::MAX)] {
        assert!(
            matches!(
                Ring::create(&path, slots, max_record),
                Err(ShmError::InvalidGeometry(_))
            ),
            "slots {slots} max_record {max_record}"
        );
    }
    let left = std::fs::read_dir(_dir.path()).expect("read dir").count();
    assert_eq!(left, 0, "no file, temporary or not, is left behind");
}
