//! Files another process may have written: anything that is not exactly a
//! ring is refused with `NotARing` (never a panic or an out-of-bounds read),
//! and a published slot that fails validation is reported once and skipped.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use hotwasm_shm::{HEADER_LEN, MAGIC, Ring, SLOT_HEADER_LEN, ShmError};

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

fn assert_not_a_ring(path: &Path, bytes: &[u8], what: &str) {
    std::fs::write(path, bytes).expect("write file");
    match Ring::open(path) {
        Err(ShmError::NotARing { reason, .. }) => assert!(!reason.is_empty()),
        other => panic!("{what}: expected NotARing, got {other:?}"),
    }
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for writing");
    file.write_all_at(bytes, offset).expect("write_at");
}

#[test]
fn a_well_formed_hand_written_file_opens() {
    // Guards the helpers: the refusals below are for the reason stated.
    let (_dir, path) = scratch("hand-written");
    std::fs::write(&path, file_with(header(&MAGIC, 1, 8, SLOT_SIZE, 16), 8)).expect("write");
    let ring = Ring::open(&path).expect("open");
    assert_eq!((ring.capacity(), ring.max_record()), (8, 16));
}

#[test]
fn refuses_wrong_magic_and_version() {
    let (_dir, path) = scratch("magic");
    assert_not_a_ring(
        &path,
        &file_with(header(b"HWRING02", 1, 8, SLOT_SIZE, 16), 8),
        "magic",
    );
    assert_not_a_ring(
        &path,
        &file_with(header(&[0; 8], 1, 8, SLOT_SIZE, 16), 8),
        "zeros",
    );
    assert_not_a_ring(
        &path,
        &file_with(header(&MAGIC, 2, 8, SLOT_SIZE, 16), 8),
        "version",
    );
}

#[test]
fn refuses_truncated_files() {
    let (_dir, path) = scratch("truncated");
    assert_not_a_ring(&path, &[], "empty");
    assert_not_a_ring(&path, &MAGIC, "magic only");
    let full = file_with(header(&MAGIC, 1, 8, SLOT_SIZE, 16), 8);
    assert_not_a_ring(&path, &full[..HEADER_LEN], "header only");
    assert_not_a_ring(&path, &full[..full.len() - 1], "one byte short");
    let mut long = full.clone();
    long.push(0);
    assert_not_a_ring(&path, &long, "one byte long");
}

#[test]
fn refuses_absurd_slot_counts() {
    let (_dir, path) = scratch("slots");
    for slots in [0, 1, 3, 7, 1 << 30, u32::MAX] {
        let bytes = file_with(header(&MAGIC, 1, slots, SLOT_SIZE, 16), 8);
        assert_not_a_ring(&path, &bytes, &format!("{slots} slots"));
    }
}

#[test]
fn refuses_a_header_promising_more_than_the_file_holds() {
    let (_dir, path) = scratch("promises");
    let bytes = file_with(header(&MAGIC, 1, 1024, SLOT_SIZE, 16), 8);
    assert_not_a_ring(&path, &bytes, "1024 slots in a file of 8");
    let bytes = file_with(header(&MAGIC, 1, 8, SLOT_SIZE, 1 << 20), 8);
    assert_not_a_ring(&path, &bytes, "max_record larger than the slot");
}

#[test]
fn refuses_inconsistent_slot_size() {
    let (_dir, path) = scratch("slot-size");
    for slot_size in [0, 32, 63, 65, 128, u32::MAX] {
        let bytes = file_with(header(&MAGIC, 1, 8, slot_size, 16), 8);
        assert_not_a_ring(&path, &bytes, &format!("slot size {slot_size}"));
    }
}

#[test]
fn refuses_symlinks_and_non_files() {
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
}

#[test]
fn mangled_headers_never_panic() {
    let (_dir, path) = scratch("mangled");
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
        std::fs::write(&path, &bytes).expect("write");
        match Ring::open(&path) {
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
    write_at(&path, (HEADER_LEN + SLOT_HEADER_LEN) as u64, b"F");
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
    write_at(&path, HEADER_LEN as u64 + 8, &u32::MAX.to_le_bytes());
    let mut out = Vec::new();
    match ring.pop(&mut out, Duration::ZERO) {
        Err(ShmError::Corrupt { slot: 0, reason }) => assert!(reason.contains("length")),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(pop_one(&ring), b"two");
}

#[test]
fn planted_cursors_time_out_instead_of_misbehaving() {
    let (_dir, path) = scratch("cursors");
    let ring = Ring::create(&path, 4, 16).expect("create");
    // Producer and consumer cursors far from any slot's sequence number.
    write_at(&path, 64, &(u64::MAX - 1).to_ne_bytes());
    write_at(&path, 128, &(1u64 << 63).to_ne_bytes());
    assert!(matches!(
        ring.push(b"x", Duration::from_millis(1)),
        Err(ShmError::Full { .. })
    ));
    let mut out = Vec::new();
    assert!(!ring.pop(&mut out, Duration::from_millis(1)).expect("pop"));
}
