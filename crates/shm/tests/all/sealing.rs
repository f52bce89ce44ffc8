//! No one can resize a ring under a mapping, and no one but the reader's
//! user can get one: the memory file is sealed for every holder, writers
//! refuse a file that is not, and the socket that hands it out is 0600.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hotwasm_shm::{Ring, ShmError};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

use crate::hostile::memory_file;
use crate::{PATIENCE, pop_one, scratch};

/// Set in a child: the ring it must fail to open.
const CHILD_RING: &str = "HOTWASM_SHM_TEST_FOREIGN_RING";

fn assert_cannot_resize(fd: impl AsFd, len: u64, holder: &str) {
    for to in [0, len / 2, len + 4096] {
        match rustix::fs::ftruncate(&fd, to) {
            Err(e) => assert_eq!(e, rustix::io::Errno::PERM, "{holder} resizing to {to}"),
            Ok(()) => panic!("{holder} resized the ring to {to} bytes"),
        }
    }
}

#[test]
fn no_holder_can_resize_a_ring() {
    let (_dir, path) = scratch("sealed");
    let reader = Ring::create(&path, 8, 64).expect("create");
    let writer = Ring::open(&path).expect("open");
    let len = rustix::fs::fstat(reader.fd()).expect("fstat").st_size as u64;
    assert_cannot_resize(reader.fd(), len, "the reader");
    assert_cannot_resize(writer.fd(), len, "a writer");
    // A new open file description of the same memory, as another process
    // of the same user gets it through /proc.
    let reopened = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", writer.fd().as_raw_fd()))
        .expect("reopen through /proc");
    assert_cannot_resize(&reopened, len, "a reopened descriptor");
    // The seals cannot be lifted either, and the ring still works.
    assert!(rustix::fs::fcntl_add_seals(reader.fd(), rustix::fs::SealFlags::WRITE).is_err());
    writer.push(b"still here", Duration::ZERO).expect("push");
    assert_eq!(pop_one(&reader), b"still here");
}

#[test]
fn a_truncate_process_fails_and_the_writer_keeps_writing() {
    let (_dir, path) = scratch("truncate");
    let reader = Ring::create(&path, 8, 64).expect("create");
    let writer = Ring::open(&path).expect("open");
    let target = format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        writer.fd().as_raw_fd()
    );
    for size in ["0", "100"] {
        let status = Command::new("truncate")
            .args(["-s", size, &target])
            .status()
            .expect("truncate runs");
        assert!(!status.success(), "truncate -s {size} must fail");
    }
    for n in 0..100u8 {
        writer.push(&[n], PATIENCE).expect("push");
        assert_eq!(pop_one(&reader), [n]);
    }
}

/// Listens at `path` like a hostile reader and hands `fd` to one writer.
fn serve_once(path: &Path, fd: std::os::fd::OwnedFd) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(path).expect("bind");
    std::thread::spawn(move || {
        let (peer, _) = listener.accept().expect("accept");
        let fds = [fd.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            &peer,
            &[IoSlice::new(&hotwasm_shm::MAGIC)],
            &mut control,
            SendFlags::empty(),
        )
        .expect("sendmsg");
    })
}

#[test]
fn a_writer_refuses_memory_that_could_shrink() {
    // A well-formed ring, but not sealed: whoever made it could truncate it
    // under the writer's mapping.
    let (_dir, path) = scratch("unsealed");
    let mut bytes = vec![0u8; 256 + 8 * 64];
    bytes[..8].copy_from_slice(&hotwasm_shm::MAGIC);
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    bytes[12..16].copy_from_slice(&8u32.to_le_bytes());
    bytes[16..20].copy_from_slice(&64u32.to_le_bytes());
    bytes[20..24].copy_from_slice(&16u32.to_le_bytes());
    let server = serve_once(&path, memory_file(&bytes, false));
    match Ring::open(&path) {
        Err(ShmError::NotARing { reason, .. }) => {
            assert!(reason.contains("F_SEAL_SHRINK"), "{reason}")
        }
        other => panic!("expected NotARing, got {other:?}"),
    }
    server.join().expect("hostile reader");
    // An ordinary file, which anyone who can write it can truncate.
    std::fs::remove_file(&path).expect("remove socket");
    let file = tempfile::tempfile().expect("temp file");
    std::os::unix::fs::FileExt::write_all_at(&file, &bytes, 0).expect("write");
    let server = serve_once(&path, file.into());
    match Ring::open(&path) {
        Err(ShmError::NotARing { reason, .. }) => assert!(reason.contains("sealable"), "{reason}"),
        other => panic!("expected NotARing, got {other:?}"),
    }
    server.join().expect("hostile reader");
}

#[test]
fn a_reader_that_hands_over_nothing_is_not_waited_on_for_good() {
    let (_dir, path) = scratch("silent");
    let _listener = UnixListener::bind(&path).expect("bind");
    match Ring::open_within(&path, Duration::from_millis(50)) {
        Err(ShmError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::TimedOut)
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn the_socket_is_owner_only_and_leaves_no_staging_behind() {
    let (dir, path) = scratch("modes");
    let ring = Ring::create(&path, 2, 16).expect("create");
    let meta = std::fs::symlink_metadata(&path).expect("socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(entries, [path.file_name().expect("name")]);
    drop(ring);
    assert_eq!(std::fs::read_dir(dir.path()).expect("read dir").count(), 0);
}

/// Run as another user by `another_user_cannot_open_a_ring`.
#[test]
#[ignore = "the other-user child of another_user_cannot_open_a_ring, which runs it"]
fn foreign_child_fails_to_open() {
    let path = std::env::var_os(CHILD_RING).expect("run by another_user_cannot_open_a_ring");
    match Ring::open(Path::new(&path)) {
        Err(ShmError::Io { source, .. }) => {
            assert_eq!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied,
                "{source}"
            )
        }
        other => panic!("another user must not get the ring: {other:?}"),
    }
}

/// As root (CI), a child dropped to uid 65534 tries to open the ring in a
/// world-traversable directory, as `/dev/shm` is; elsewhere the modes that
/// decide it are asserted in `the_socket_is_owner_only_...`.
#[test]
fn another_user_cannot_open_a_ring() {
    let euid =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc"));
    if euid != 0 || !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("not root or no setpriv: the socket's mode is checked elsewhere");
        return;
    }
    let (dir, path) = scratch("foreign");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777))
        .expect("open the directory like /dev/shm");
    let _ring = Ring::create(&path, 2, 16).expect("create");
    let status = Command::new("/usr/bin/setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(std::env::current_exe().expect("test binary"))
        .args([
            "sealing::foreign_child_fails_to_open",
            "--exact",
            "--ignored",
        ])
        .env(CHILD_RING, &path)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("setpriv runs");
    assert!(status.success(), "the other user's child failed its checks");
}
