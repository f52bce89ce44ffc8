//! Ring names come from outside: only plain stems become paths in the dir.

use std::path::Path;

use hotwasm_shm::{ShmError, ring_dir, ring_path};

#[test]
fn accepts_plain_names() {
    let dir = Path::new("/some/dir");
    assert_eq!(
        ring_path(dir, "verdicts_01-A").expect("valid"),
        Path::new("/some/dir/verdicts_01-A.ring")
    );
    let longest = "a".repeat(64);
    assert_eq!(
        ring_path(dir, &longest).expect("64 chars").parent(),
        Some(dir)
    );
}

#[test]
fn refuses_names_that_could_leave_the_dir() {
    let dir = Path::new("/some/dir");
    let too_long = "a".repeat(65);
    for name in [
        "", "../x", "..", ".", "a/b", "/abs", "a\\b", "a.b", "x.ring", "a b", "a\0b", "é",
        &too_long,
    ] {
        assert!(
            matches!(ring_path(dir, name), Err(ShmError::BadName(_))),
            "{name:?} must be refused"
        );
    }
}

#[test]
fn ring_dir_is_a_directory() {
    // Whatever the environment says, the answer is usable as a directory.
    if std::env::var_os(hotwasm_shm::SHM_DIR_ENV).is_none() {
        assert!(ring_dir().is_dir());
    }
}

#[test]
fn a_writer_sees_when_its_ring_was_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("client.ring");
    let first = hotwasm_shm::Ring::create(&path, 4, 16).expect("creates");
    let writer = hotwasm_shm::Ring::open(&path).expect("opens");
    assert!(writer.is_current());
    drop(first);
    assert!(!writer.is_current(), "the reader went away");
    let _second = hotwasm_shm::Ring::create(&path, 4, 16).expect("creates again");
    assert!(!writer.is_current(), "a new reader made a new file");
    assert!(hotwasm_shm::Ring::open(&path).expect("opens").is_current());
}
