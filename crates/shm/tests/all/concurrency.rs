//! Threads: many producers at once, and a producer racing the reader
//! through a small ring.

use std::collections::HashMap;
use std::sync::Arc;

use hotwasm_shm::Ring;

use crate::{PATIENCE, pop_one, record, scratch, tag};

#[test]
fn four_producers_each_record_once_in_producer_order() {
    const PRODUCERS: u8 = 4;
    const PER_PRODUCER: u32 = 5_000;
    const MAX: usize = 40;
    let (_dir, path) = scratch("multi-producer");
    let reader = Ring::create(&path, 16, MAX as u32).expect("create");
    let writer = Arc::new(Ring::open(&path).expect("open"));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|who| {
            let writer = Arc::clone(&writer);
            std::thread::spawn(move || {
                for n in 0..PER_PRODUCER {
                    writer.push(&record(who, n, MAX), PATIENCE).expect("push");
                }
            })
        })
        .collect();
    let mut next: HashMap<u8, u32> = HashMap::new();
    for _ in 0..u32::from(PRODUCERS) * PER_PRODUCER {
        let got = pop_one(&reader);
        let (who, n) = tag(&got);
        let expected = next.entry(who).or_insert(0);
        assert_eq!(n, *expected, "producer {who} out of order");
        assert_eq!(got, record(who, n, MAX));
        *expected += 1;
    }
    for producer in producers {
        producer.join().expect("producer thread");
    }
    assert_eq!(next.len(), usize::from(PRODUCERS));
    assert!(next.values().all(|&n| n == PER_PRODUCER));
    let mut out = Vec::new();
    assert!(
        !reader
            .pop(&mut out, std::time::Duration::ZERO)
            .expect("pop")
    );
}

#[test]
fn producer_racing_reader_through_eight_slots() {
    const MAX: usize = 64;
    let (_dir, path) = scratch("race");
    let reader = Ring::create(&path, 8, MAX as u32).expect("create");
    // The reader's own mapping may push too: same file, same protocol.
    let reader = Arc::new(reader);
    let writer = Arc::clone(&reader);
    let producer = std::thread::spawn(move || {
        for n in 0..10_000 {
            writer.push(&record(7, n, MAX), PATIENCE).expect("push");
        }
    });
    for n in 0..10_000 {
        assert_eq!(pop_one(&reader), record(7, n, MAX));
    }
    producer.join().expect("producer thread");
}
