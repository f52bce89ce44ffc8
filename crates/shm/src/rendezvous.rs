//! How a writer gets a reader's ring: the reader listens on a Unix socket
//! at the ring's path (mode 0600, published by rename so it never exists
//! with looser permissions) and hands the ring's sealed memory file to each
//! peer that connects (`SCM_RIGHTS`); the writer connects, receives the
//! file descriptor, and checks it like any other outside input.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

use crate::ShmError;
use crate::layout::MAGIC;

/// How often the listener thread looks at its stop flag: bounds how long
/// dropping a reader's ring takes.
const STOP_CHECK: Duration = Duration::from_millis(20);

/// Which socket a path named when we published or connected to it: its
/// device and inode, and its change time, because a file system reuses a
/// deleted socket's inode number for the next one (a new reader at the
/// same path would otherwise look like the old one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
    ctime: (i64, i64),
}

impl Identity {
    /// The socket at `path` (not following a symlink).
    fn of_socket(path: &Path) -> Result<Identity, ShmError> {
        let meta = std::fs::symlink_metadata(path).map_err(|e| io_error("opening", path, e))?;
        if !meta.file_type().is_socket() {
            return Err(not_a_ring(
                path,
                "not a ring's socket (a symlink, a file, or a ring of an older version)",
            ));
        }
        Ok(Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// Whether `path` still names this very socket.
    pub(crate) fn is_at(self, path: &Path) -> bool {
        Identity::of_socket(path).is_ok_and(|now| now == self)
    }
}

/// A reader's socket, handing out its ring until dropped; dropping it
/// removes the socket if the path still names it.
pub(crate) struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
    pub(crate) identity: Identity,
}

impl Listener {
    /// Listens at `path`, replacing whatever was there, and hands `ring`
    /// (a duplicate of the ring's memory file) to every peer that connects.
    pub(crate) fn publish(path: &Path, ring: OwnedFd) -> Result<Listener, ShmError> {
        // Writers connect to the final path: it must fit a socket address.
        SocketAddrUnix::new(path).map_err(|_| {
            not_a_ring(
                path,
                "path too long for a Unix socket (at most 107 bytes): use a shorter ring directory",
            )
        })?;
        let dir = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Bound in a private (0700) directory and made 0600 before it is
        // moved into place: no one else can connect in between.
        let private = tempfile::Builder::new()
            .prefix(".hotwasm-ring-")
            .tempdir_in(dir)
            .map_err(|e| io_error("creating", path, e))?;
        let staged = private.path().join("s");
        let listener = UnixListener::bind(&staged).map_err(|e| io_error("binding", path, e))?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error("restricting", path, e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| io_error("configuring", path, e))?;
        std::fs::rename(&staged, path).map_err(|e| io_error("publishing", path, e))?;
        // After the rename, which may change the socket's change time.
        let identity = Identity::of_socket(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("hotwasm-ring-listener".into())
                .spawn(move || serve(&listener, &ring, &stop))
                .map_err(|e| io_error("starting the listener of", path, e))?
        };
        Ok(Listener {
            stop,
            thread: Some(thread),
            path: path.to_path_buf(),
            identity,
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // Returns within one STOP_CHECK.
            let _ = thread.join();
        }
        // A newer reader's socket at the same path is left alone.
        if self.identity.is_at(&self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Accepts connections until told to stop, handing each peer the ring.
fn serve(listener: &UnixListener, ring: &OwnedFd, stop: &AtomicBool) {
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: STOP_CHECK.as_nanos() as _,
    };
    while !stop.load(Ordering::Relaxed) {
        let mut ready = [PollFd::new(listener, PollFlags::IN)];
        if !matches!(rustix::event::poll(&mut ready, Some(&tick)), Ok(n) if n > 0) {
            continue;
        }
        while let Ok((peer, _)) = listener.accept() {
            // Best effort: a peer that went away just does not get it.
            let _ = hand_over(&peer, ring);
        }
    }
}

/// Sends the ring's magic with the ring's file descriptor attached.
fn hand_over(peer: impl AsFd, ring: &OwnedFd) -> std::io::Result<()> {
    let fds = [ring.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    // A fresh connection's buffer holds a few bytes: never blocks; a peer
    // that closed early gets no SIGPIPE.
    rustix::net::sendmsg(
        peer,
        &[IoSlice::new(&MAGIC)],
        &mut control,
        SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// Connects to the ring's socket at `path` and receives its memory file,
/// waiting at most `timeout` for it; returns it with the socket it came
/// through.
pub(crate) fn receive(path: &Path, timeout: Duration) -> Result<(OwnedFd, Identity), ShmError> {
    let before = Identity::of_socket(path)?;
    let address =
        SocketAddrUnix::new(path).map_err(|e| io_error("connecting to", path, e.into()))?;
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| io_error("connecting to", path, e.into()))?;
    // Non-blocking: a reader whose backlog is full (not accepting) is an
    // error at once, not a writer blocked for good.
    rustix::net::connect(&socket, &address)
        .map_err(|e| io_error("connecting to", path, e.into()))?;
    let wait = Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    let mut ready = [PollFd::new(&socket, PollFlags::IN)];
    let ready = rustix::event::poll(&mut ready, Some(&wait))
        .map_err(|e| io_error("waiting for", path, e.into()))?;
    if ready == 0 {
        return Err(io_error(
            "waiting for",
            path,
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the ring's reader sent nothing within {timeout:?}"),
            ),
        ));
    }
    let mut magic = [0u8; MAGIC.len()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        &socket,
        &mut [IoSliceMut::new(&mut magic)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
    )
    .map_err(|e| io_error("receiving", path, e.into()))?;
    // Take the first descriptor; any others are closed when dropped.
    let mut fd = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            for received in fds {
                fd.get_or_insert(received);
            }
        }
    }
    if got.bytes != MAGIC.len() || magic != MAGIC {
        return Err(not_a_ring(path, "the socket did not answer as a ring"));
    }
    let fd = fd.ok_or_else(|| not_a_ring(path, "the socket handed over no file descriptor"))?;
    if Identity::of_socket(path)? != before {
        return Err(not_a_ring(path, "the socket was replaced while opening"));
    }
    Ok((fd, before))
}

pub(crate) fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> ShmError {
    ShmError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn not_a_ring(path: &Path, reason: impl Into<String>) -> ShmError {
    ShmError::NotARing {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}
