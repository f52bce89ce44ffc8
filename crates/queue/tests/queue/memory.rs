//! The contract on the in-process queue, and its dead-letter list.

use std::time::Duration;

use hotwasm_queue::{JobQueue, MemoryQueue};

use crate::contract::{MIN_IDLE, envelope};

async fn fresh() -> (MemoryQueue, ()) {
    (MemoryQueue::new(), ())
}

crate::contract_tests!(fresh());

#[tokio::test]
async fn dead_letters_keep_envelope_and_reason() {
    let queue = MemoryQueue::new();
    queue.submit(&[envelope(9)]).await.unwrap();
    queue.fetch("a", 1, Duration::ZERO).await.unwrap();
    tokio::time::sleep(MIN_IDLE * 3).await;
    assert!(
        queue
            .reclaim("b", MIN_IDLE, 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let dead = queue.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].deliveries, 2);
    assert_eq!(dead[0].envelope, Ok(envelope(9)));
    assert!(dead[0].reason.contains("limit of 1"), "{}", dead[0].reason);
}
