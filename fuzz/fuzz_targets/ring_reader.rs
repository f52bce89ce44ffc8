//! The verdict ring over memory someone else scribbled on: a ring is
//! created and used as the reader would, then bytes of its file (header,
//! cursors, slots) are overwritten through the file, which the mapping
//! shares; the reader pops, a writer opens the file and pushes, and a file
//! of arbitrary bytes is opened as a ring. Every operation must return
//! (all waits here have a zero timeout), with an error where the memory
//! is wrong, and never panic, read out of bounds or hand out a record
//! longer than the ring allows.

#![no_main]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use hotwasm_shm::{Ring, ShmError};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Scenario {
    /// 2 to 16 slots.
    slots_log2: u8,
    max_record: u8,
    /// Pushed before the damage (cut to `max_record`).
    records: Vec<Vec<u8>>,
    /// Popped before the damage, so cursors need not start at zero.
    popped: u8,
    /// Overwrites of the ring file: offset (modulo its length) and bytes.
    damage: Vec<(u16, Vec<u8>)>,
    /// A whole file that was never a ring we made, opened as one.
    foreign: Option<Vec<u8>>,
}

/// Longest foreign file the target writes.
const MAX_FOREIGN: usize = 64 << 10;

fuzz_target!(|scenario: Scenario| {
    let dir = scratch();
    let path = dir.join("ring");
    let slots = 1u32 << (1 + scenario.slots_log2 % 4);
    let max_record = u32::from(scenario.max_record);
    let reader = Ring::create(&path, slots, max_record).expect("a small ring is created");
    for record in scenario.records.iter().take(2 * slots as usize) {
        let record = &record[..record.len().min(max_record as usize)];
        match reader.push(record, Duration::ZERO) {
            Ok(()) | Err(ShmError::Full { .. }) => {}
            Err(e) => panic!("push of a record within bounds: {e}"),
        }
    }
    let mut out = Vec::new();
    for _ in 0..scenario.popped % (slots as u8 + 1) {
        let _ = reader.pop(&mut out, Duration::ZERO);
    }

    let file_len = std::fs::metadata(&path)
        .expect("the ring file exists")
        .len();
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("the ring file opens for writing");
    for (offset, bytes) in &scenario.damage {
        // Overwrites only: truncating a mapped file is outside what the
        // ring can defend against (SIGBUS, see its crate docs).
        let offset = u64::from(*offset) % file_len;
        let room = usize::try_from(file_len - offset).unwrap_or(usize::MAX);
        file.write_all_at(&bytes[..bytes.len().min(room)], offset)
            .expect("overwriting the ring file");
    }

    drain(&reader, max_record as usize);
    // A writer attaching to the damaged file: refused, or it pushes
    // according to whatever the header now says, and the reader copes.
    match Ring::open(&path) {
        Ok(writer) => {
            let record = vec![0x5a; writer.max_record().min(40)];
            let _ = writer.push(&record, Duration::ZERO);
            drain(&writer, writer.max_record());
            drain(&reader, max_record as usize);
        }
        Err(ShmError::NotARing { .. }) => {}
        Err(e) => panic!("opening a damaged ring: {e}"),
    }
    drop(reader);

    if let Some(foreign) = &scenario.foreign {
        let path = dir.join("foreign");
        std::fs::write(&path, &foreign[..foreign.len().min(MAX_FOREIGN)])
            .expect("writing the foreign file");
        if let Ok(ring) = Ring::open(&path) {
            let _ = ring.push(b"verdict", Duration::ZERO);
            drain(&ring, ring.max_record());
        }
    }
});

/// Pops until the ring says it is empty (or twice around it): each record
/// handed out is within bounds, each refusal names a corrupt slot and
/// hands out nothing.
fn drain(ring: &Ring, max_record: usize) {
    let mut out = vec![0xee; 8];
    for _ in 0..2 * ring.capacity() + 2 {
        match ring.pop(&mut out, Duration::ZERO) {
            Ok(true) => assert!(out.len() <= max_record, "{} > {max_record}", out.len()),
            Ok(false) => {
                assert!(out.is_empty());
                return;
            }
            Err(ShmError::Corrupt { slot, .. }) => {
                assert!(out.is_empty(), "a corrupt record was handed out");
                assert!((slot as usize) < ring.capacity());
            }
            Err(e) => panic!("pop failed otherwise than on a corrupt slot: {e}"),
        }
    }
}

/// One directory for the whole run, on tmpfs where there is one.
fn scratch() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let dir = if base.is_dir() {
            tempfile::tempdir_in(base)
        } else {
            tempfile::tempdir()
        }
        .expect("a scratch directory");
        let path = dir.path().to_path_buf();
        (dir, path)
    });
    path
}
