//! Memory files and sockets another process may have made or written:
//! anything that is not exactly a sealed ring is refused with `NotARing`
//! (never a panic, an out-of-bounds read or a mapping that can fault), and
//! a published slot that fails validation is reported once and skipped.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use hotwasm_shm::{HEADER_LEN, MAGIC, Ring, SLOT_HEADER_LEN, ShmError};
use rustix::fs::{MemfdFlags, SealFlags};

use crate::{pop_one, scratch};

/// Slot size for `max_record = 16`: 16 + 16 rounded up to 64.
const SLOT_SIZE: u32 = 64;

/// A header as the layout documents it.
fn header(magic: &[u8; 8], version: u32, slots: u32, slot_size: u32, max_record: u32) -> Vec<u8> {
    let mut bytes = vec![0u8; HEADER_LEN];
    bytes[..8].copy_from_slice(magic);
    bytes[8..12].copy_from_slice(&version.to_le_bytes());
    bytes[12..16].copy_from_slice(&slots.to_le_bytes());
    bytes[16..20].copy_from_slice(&slot_size.to_le_bytes());
    bytes[20..24].copy_from_slice(&max_record.to_le_bytes());
    bytes
}

/// `header` followed by `body_slots` zeroed slots of `SLOT_SIZE` bytes.
fn file_with(header: Vec<u8>, body_slots: usize) -> Vec<u8> {
    let mut bytes = header;
    bytes.resize(HEADER_LEN + body_slots * SLOT_SIZE as usize, 0);
    bytes
}

/// A memory file holding `bytes`, sealed against shrinking when `sealed`:
/// what a hostile reader could hand a writer.
pub fn memory_file(bytes: &[u8], sealed: bool) -> OwnedFd {
    let fd = rustix::fs::memfd_create("test-ring", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .expect("memfd");
    let file = File::from(fd);
    file.write_all_at(bytes, 0).expect("fill memfd");
    if sealed {
        rustix::fs::fcntl_add_seals(&file, SealFlags::SHRINK).expect("seal");
    }
    file.into()
}

fn assert_not_a_ring(bytes: &[u8], what: &str) {
    match Ring::from_fd(memory_file(bytes, true), Path::new(what)) {
        Err(ShmError::NotARing { reason, .. }) => assert!(!reason.is_empty()),
        other => panic!("{what}: expected NotARing, got {other:?}"),
    }
}

/// Writes into the ring's memory through its descriptor, not the mapping.
fn write_at(ring: &Ring, offset: u64, bytes: &[u8]) {
    let file = File::from(ring.fd().try_clone_to_owned().expect("dup"));
    file.write_all_at(bytes, offset).expect("write_at");
}

#[test]
fn a_well_formed_hand_written_file_opens() {
    // Guards the helpers: the refusals below are for the reason stated.
    let bytes = file_with(header(&MAGIC, 1, 8, SLOT_SIZE, 16), 8);
    let ring = Ring::from_fd(memory_file(&bytes, true), Path::new("hand-written")).expect("open");
    assert_eq!((ring.capacity(), ring.max_record()), (8, 16));
}

#[test]
fn refuses_wrong_magic_and_version() {
    assert_not_a_ring(
        &file_with(header(b"HWRING02", 1, 8, SLOT_SIZE, 16), 8),
        "magic",
    );
    assert_not_a_ring(&file_with(header(&[0; 8], 1, 8, SLOT_SIZE, 16), 8), "zeros");
    assert_not_a_ring(
        &file_with(header(&MAGIC, 2, 8, SLOT_SIZE, 16), 8),
        "version",
    );
}

#[test]
fn refuses_truncated_files() {
    assert_not_a_ring(&[], "empty");
    assert_not_a_ring(&MAGIC, "magic only");
    let full = file_with(header(&MAGIC, 1, 8, SLOT_SIZE, 16), 8);
    assert_not_a_ring(&full[..HEADER_LEN], "header only");
    assert_not_a_ring(&full[..full.len() - 1], "one byte short");
    let mut long = full.clone();
    long.push(0);
    assert_not_a_ring(&long, "one byte long");
}

#[test]
fn refuses_absurd_slot_counts() {
    for slots in [0, 1, 3, 7, 1 << 30, u32::MAX] {
        let bytes = file_with(header(&MAGIC, 1, slots, SLOT_SIZE, 16), 8);
        assert_not_a_ring(&bytes, &format!("{slots} slots"));
    }
}

#[test]
fn refuses_a_header_promising_more_than_the_file_holds() {
    let bytes = file_with(header(&MAGIC, 1, 1024, SLOT_SIZE, 16), 8);
    assert_not_a_ring(&bytes, "1024 slots in a file of 8");
    let bytes = file_with(header(&MAGIC, 1, 8, SLOT_SIZE, 1 << 20), 8);
    assert_not_a_ring(&bytes, "max_record larger than the slot");
}

#[test]
fn refuses_inconsistent_slot_size() {
    for slot_size in [0, 32, 63, 65, 128, u32::MAX] {
        let bytes = file_with(header(&MAGIC, 1, 8, slot_size, 16), 8);
        assert_not_a_ring(&bytes, &format!("slot size {slot_size}"));
    }
}

#[test]
fn refuses_symlinks_and_non_sockets() {
    let (dir, path) = scratch("target");
    let _ring = Ring::create(&path, 2, 16).expect("create");
    let link = dir.path().join("link.ring");
    std::os::unix::fs::symlink(&path, &link).expect("symlink");
    assert!(matches!(Ring::open(&link), Err(ShmError::NotARing { .. })));
    assert!(Ring::open(dir.path()).is_err(), "a directory is not a ring");
    assert!(matches!(
        Ring::open(&dir.path().join("missing.ring")),
        Err(ShmError::Io { .. })
    ));
    // A ring file of the old layout, or any file, at a ring's path.
    let file = dir.path().join("file.ring");
    std::fs::write(&file, file_with(header(&MAGIC, 1, 8, SLOT_SIZE, 16), 8)).expect("write");
    assert!(matches!(Ring::open(&file), Err(ShmError::NotARing { .. })));
}

#[test]
fn mangled_headers_never_panic() {
    let valid = file_with(header(&MAGIC, 1, 8, SLOT_SIZE, 16), 8);
    // A fixed linear congruential generator: deterministic, no dependency.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    for _ in 0..300 {
        let mut bytes = valid.clone();
        for _ in 0..1 + next() % 4 {
            let at = next() % 64;
            bytes[at] = next() as u8;
        }
        if next() % 4 == 0 {
            bytes.truncate(next() % valid.len());
        }
        match Ring::from_fd(memory_file(&bytes, true), Path::new("mangled")) {
            // Only the reserved bytes were hit: still a ring, and usable.
            Ok(ring) => {
                ring.push(b"ok", Duration::ZERO).expect("push");
                assert_eq!(pop_one(&ring), b"ok");
            }
            Err(ShmError::NotARing { .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
    }
}

#[test]
fn bad_checksum_is_corrupt_and_the_next_record_still_reads() {
    let (_dir, path) = scratch("checksum");
    let ring = Ring::create(&path, 4, 16).expect("create");
    ring.push(b"first", Duration::ZERO).expect("push");
    ring.push(b"second", Duration::ZERO).expect("push");
    // Flip a payload byte of slot 0 through the file, not the mapping.
    write_at(&ring, (HEADER_LEN + SLOT_HEADER_LEN) as u64, b"F");
    let mut out = Vec::new();
    match ring.pop(&mut out, Duration::ZERO) {
        Err(ShmError::Corrupt { slot: 0, reason }) => assert!(reason.contains("checksum")),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(out.is_empty(), "a corrupt record is not handed out");
    assert_eq!(pop_one(&ring), b"second");
    // The skipped slot is free again: the ring still cycles.
    for n in 0..10u8 {
        ring.push(&[n], Duration::ZERO).expect("push");
        assert_eq!(pop_one(&ring), [n]);
    }
}

#[test]
fn oversized_length_field_is_corrupt_and_skipped() {
    let (_dir, path) = scratch("length");
    let ring = Ring::create(&path, 2, 16).expect("create");
    ring.push(b"one", Duration::ZERO).expect("push");
    ring.push(b"two", Duration::ZERO).expect("push");
    write_at(&ring, HEADER_LEN as u64 + 8, &u32::MAX.to_le_bytes());
    let mut out = Vec::new();
    match ring.pop(&mut out, Duration::ZERO) {
        Err(ShmError::Corrupt { slot: 0, reason }) => assert!(reason.contains("length")),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(pop_one(&ring), b"two");
}

#[test]
fn planted_cursors_are_reported_broken_instead_of_misbehaving() {
    let (_dir, path) = scratch("cursors");
    let ring = Ring::create(&path, 4, 16).expect("create");
    // Producer and consumer cursors far from any slot's sequence number.
    write_at(&ring, 64, &(u64::MAX - 1).to_ne_bytes());
    write_at(&ring, 128, &(1u64 << 63).to_ne_bytes());
    assert!(matches!(
        ring.push(b"x", Duration::from_millis(1)),
        Err(ShmError::Broken { .. })
    ));
    let mut out = Vec::new();
    assert!(matches!(
        ring.pop(&mut out, Duration::from_millis(1)),
        Err(ShmError::Broken { .. })
    ));
}

#[test]
fn a_consumer_cursor_that_jumps_ahead_is_broken() {
    let (_dir, path) = scratch("jump");
    let ring = Ring::create(&path, 8, 16).expect("create");
    ring.push(b"one", Duration::ZERO).expect("push");
    assert_eq!(pop_one(&ring), b"one");
    // A lap ahead: slot 1 still waits for record 1, not record 9.
    write_at(&ring, 128, &9u64.to_ne_bytes());
    let mut out = Vec::new();
    match ring.pop(&mut out, Duration::from_millis(1)) {
        Err(ShmError::Broken { reason }) => {
            assert!(reason.contains("consumer cursor 9"), "{reason}")
        }
        other => panic!("expected Broken, got {other:?}"),
    }
}

#[test]
fn a_claimed_slot_that_never_completes_stays_pending() {
    let (_dir, path) = scratch("stall");
    let ring = Ring::create(&path, 4, 16).expect("create");
    // A producer that claimed slot 0 and died: the cursor moved, the slot
    // was never published.
    write_at(&ring, 64, &1u64.to_ne_bytes());
    let mut out = Vec::new();
    assert!(!ring.pop(&mut out, Duration::from_millis(1)).expect("pop"));
    assert_eq!(ring.pending(), 1, "the reader can tell it is stalled");
}
