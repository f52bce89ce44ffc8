//! Integration tests of the shared-memory ring, one binary (one link) with a
//! module per concern.

mod concurrency;
mod cross_process;
#[cfg(unix)]
mod hostile;
mod names;
mod round_trip;
#[cfg(unix)]
mod sealing;

use std::path::PathBuf;
use std::time::Duration;

use hotwasm_shm::{Ring, ring_path};

/// Long enough never to fire on a healthy run, short enough to end a hung one.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A fresh directory and the path of ring `name` in it.
pub fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = ring_path(dir.path(), name).expect("ring path");
    (dir, path)
}

/// Record number `n` of producer `who`: 1 byte producer, 4 bytes n, then
/// filler derived from both so a wrong payload fails the comparison, of a
/// length that varies between 5 and `max`.
pub fn record(who: u8, n: u32, max: usize) -> Vec<u8> {
    let len = 5 + (n as usize * 7 + who as usize) % (max - 4);
    let mut bytes = Vec::with_capacity(len);
    bytes.push(who);
    bytes.extend_from_slice(&n.to_le_bytes());
    bytes.extend((5..len).map(|i| (i as u32 ^ n).wrapping_mul(31) as u8 ^ who));
    bytes
}

/// The (producer, n) tag of a record made by [`record`].
pub fn tag(record: &[u8]) -> (u8, u32) {
    let n = u32::from_le_bytes(record[1..5].try_into().expect("tagged record"));
    (record[0], n)
}

/// Pops one record, failing the test if none comes.
pub fn pop_one(ring: &Ring) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(
        ring.pop(&mut out, PATIENCE).expect("pop"),
        "ring stayed empty"
    );
    out
}

#[test]
fn ring_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Ring>();
}
