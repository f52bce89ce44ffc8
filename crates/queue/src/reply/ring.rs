//! Replies through shared memory: the client creates a ring and publishes
//! it in the ring directory of its host ([`RingSource`]), servers on that
//! host push into it ([`RingSink`]).
//!
//! A ring name arrives inside a job, so it is outside input: the sink opens
//! only names `hotwasm_shm::ring_path` accepts, inside its ring directory,
//! and only what the reader's socket hands over as a ring sealed against
//! shrinking (checked by `Ring::open`), so no client can make a server
//! fault by truncating its ring. Rings are opened once per name and kept
//! while their reader is there.
//!
//! A ring whose reader stopped reading (a killed client leaves its socket
//! behind) would make every batch for it wait the full ring timeout. After
//! one such failure the ring is refused at once for [`RING_COOL_DOWN`]: its
//! jobs stay pending, are reclaimed later and, if the reader never comes
//! back, end in the dead-letter stream.
//!
//! The source reports a ring it cannot trust as corrupted
//! ([`ReplyError::RingCorrupted`]): a record that fails its checksum (the
//! reader goes on with the next), and a ring that cannot go on: cursors
//! that jumped, or a slot claimed and never published for
//! [`STALL_LIMIT`]. Then it stops reading.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotwasm_auth::MacKey;
use hotwasm_jobs::Verdict;
use hotwasm_shm::{Ring, ShmError};

use super::{Arrival, BoxFuture, Inbox, Outbox, ReplyError, ReplySink, ReplySource, WriteError};
use crate::{Reply, ReplyKind, ReplyTo};

/// How long a ring may hold a claimed but unpublished slot before its
/// reader reports it corrupted (a healthy writer publishes within
/// microseconds; this allows for one descheduled for a long while).
pub const STALL_LIMIT: Duration = Duration::from_secs(10);

/// How long a ring that failed a write is refused.
pub const RING_COOL_DOWN: Duration = Duration::from_secs(30);

/// The record size of the rings a [`RingSource`] creates: room for any
/// reply with ids and module names of ordinary length; a longer reason is
/// cut to fit by the sink.
pub const REPLY_RECORD_BYTES: u32 = 1024;

/// Writes replies into the shared-memory rings of clients on this host.
pub struct RingSink {
    dir: PathBuf,
    timeout: Duration,
    rings: Arc<Rings>,
    /// Signs again a reply whose reason was cut to fit a slot.
    key: Option<Arc<MacKey>>,
}

/// Open rings by name, and rings that recently failed.
#[derive(Default)]
struct Rings(Mutex<RingsState>);

#[derive(Default)]
struct RingsState {
    open: HashMap<String, Arc<Ring>>,
    failed: HashMap<String, Instant>,
}

impl RingSink {
    /// A sink for the rings in `dir`, waiting at most `timeout` for room in
    /// a full ring.
    pub fn new(dir: PathBuf, timeout: Duration) -> RingSink {
        RingSink {
            dir,
            timeout,
            rings: Arc::default(),
            key: None,
        }
    }

    /// Signs with `key` again a reply that had to be shortened to fit a
    /// slot (replies come signed; shortening changes them).
    #[must_use]
    pub fn signing(mut self, key: Option<MacKey>) -> RingSink {
        self.key = key.map(Arc::new);
        self
    }
}

impl Rings {
    fn lock(&self) -> std::sync::MutexGuard<'_, RingsState> {
        // Plain maps: a panic while holding the lock leaves nothing
        // half-done worth refusing service over.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that a write to `name` failed: it is refused for a while and
    /// reopened afterwards.
    fn failed(&self, name: &str) {
        let mut state = self.lock();
        state.open.remove(name);
        state
            .failed
            .retain(|_, since| since.elapsed() < RING_COOL_DOWN);
        state.failed.insert(name.to_string(), Instant::now());
    }

    /// The ring `name` in `dir`, opened on first use (connecting to its
    /// socket may wait up to `timeout`: call off async threads). A ring
    /// whose socket was replaced or removed (its client finished, or
    /// restarted under the same name) is dropped from the cache, so
    /// mappings of finished clients do not pile up. A reader that hands
    /// nothing over in time is refused for a while, like a full ring.
    fn open(&self, dir: &Path, name: &str, timeout: Duration) -> Result<Arc<Ring>, ReplyError> {
        let path = hotwasm_shm::ring_path(dir, name)?;
        {
            let mut state = self.lock();
            if let Some(since) = state.failed.get(name) {
                if since.elapsed() < RING_COOL_DOWN {
                    return Err(ReplyError::RingCoolingDown {
                        name: name.to_string(),
                    });
                }
                state.failed.remove(name);
            }
            if let Some(ring) = state.open.get(name)
                && ring.is_current()
            {
                return Ok(Arc::clone(ring));
            }
            state.open.retain(|_, ring| ring.is_current());
        }
        // Not under the lock: another ring's writers need not wait for this.
        let ring = match Ring::open_within(&path, timeout) {
            Ok(ring) => Arc::new(ring),
            Err(ShmError::Io { source, .. }) if source.kind() == std::io::ErrorKind::TimedOut => {
                self.failed(name);
                return Err(ShmError::Io {
                    action: "waiting for",
                    path,
                    source,
                }
                .into());
            }
            // The directory is there (a server without one is
            // misconfigured, and that is not the job's fault) but the ring
            // is not, or its reader is gone.
            Err(ShmError::Io { source, .. })
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) && dir.is_dir() =>
            {
                return Err(ReplyError::NoSuchRing {
                    name: name.to_string(),
                    reason: source.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        self.lock().open.insert(name.to_string(), Arc::clone(&ring));
        Ok(ring)
    }
}

impl ReplySink for RingSink {
    fn kind(&self) -> ReplyKind {
        ReplyKind::Shm
    }

    fn write<'a>(
        &'a self,
        name: &'a str,
        replies: Vec<Reply>,
    ) -> BoxFuture<'a, Result<(), WriteError>> {
        Box::pin(async move {
            let rings = Arc::clone(&self.rings);
            let dir = self.dir.clone();
            let name = name.to_string();
            let timeout = self.timeout;
            let key = self.key.clone();
            // Opening a ring and waiting for room in a full one block: not
            // on async threads.
            tokio::task::spawn_blocking(move || {
                let ring = rings
                    .open(&dir, &name, timeout)
                    .map_err(WriteError::nothing)?;
                for (written, reply) in replies.iter().enumerate() {
                    let record = fit(reply, ring.max_record(), key.as_deref());
                    if let Err(e) = ring.push(&record, timeout) {
                        rings.failed(&name);
                        return Err(WriteError {
                            written,
                            reason: e.into(),
                        });
                    }
                }
                Ok(())
            })
            .await
            .map_err(WriteError::nothing)?
        })
    }
}

/// The encoded reply, its reason shortened if the whole would not fit a
/// ring slot (ids and module names are bounded; reasons come from modules
/// and may be long); a changed reply is signed again with `key`.
fn fit(reply: &Reply, max: usize, key: Option<&MacKey>) -> Vec<u8> {
    let encoded = reply.encode();
    if encoded.len() <= max {
        return encoded;
    }
    let sign = |mut reply: Reply| {
        if let Some(key) = key {
            reply.sign(key);
        }
        reply.encode()
    };
    let mut shortened = reply.clone();
    let reason = shortened.verdict.reason.take().unwrap_or_default();
    let overflow = encoded.len() - max + 3;
    let keep = reason.len().saturating_sub(overflow);
    let cut = (0..=keep)
        .rev()
        .find(|&i| reason.is_char_boundary(i))
        .unwrap_or(0);
    shortened.verdict.reason = Some(format!("{}...", &reason[..cut]));
    let encoded = sign(shortened);
    if encoded.len() <= max {
        return encoded;
    }
    // Still too large: the id or the server name is huge. Say so in a
    // verdict that fits, rather than never answering.
    let short = |text: &str| text.chars().take(32).collect::<String>();
    let mut fallback = Reply {
        seq: reply.seq,
        server: short(&reply.server),
        verdict: Verdict::error(
            reply.verdict.id.as_deref().map(short),
            &short(&reply.verdict.runtime),
            "verdict too large for a shared-memory slot (id or server name too long)",
        ),
        job_digest: reply.job_digest.clone(),
        tag: None,
    };
    fallback.verdict.valid = false;
    sign(fallback)
}

/// Reads replies from a ring this client created on this host. The ring
/// is popped on a thread of its own (waiting on a ring blocks); closing or
/// dropping the source stops the thread and removes the ring's socket.
pub struct RingSource {
    address: ReplyTo,
    inbox: Inbox,
    reader: Option<RingReader>,
}

/// The reader thread; stopping it drops the ring, which removes its socket.
struct RingReader {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RingReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // Returns within one pop timeout (20 ms).
            let _ = thread.join();
        }
    }
}

impl RingSource {
    /// Creates the ring `name` in `dir` with `slots` slots of
    /// [`REPLY_RECORD_BYTES`] (any number of replies fits: the ring wraps
    /// around) and starts reading it; a slot left unpublished for
    /// [`STALL_LIMIT`] makes the ring corrupted.
    ///
    /// # Errors
    ///
    /// [`ShmError`] when the name is not a ring name, the slot count not a
    /// power of two, or the ring cannot be created or published.
    pub fn create(dir: &Path, name: &str, slots: u32) -> Result<RingSource, ShmError> {
        RingSource::create_with_stall_limit(dir, name, slots, STALL_LIMIT)
    }

    /// [`RingSource::create`], with the time a slot may stay claimed but
    /// unpublished before the ring is reported corrupted.
    ///
    /// # Errors
    ///
    /// As [`RingSource::create`].
    pub fn create_with_stall_limit(
        dir: &Path,
        name: &str,
        slots: u32,
        stall_limit: Duration,
    ) -> Result<RingSource, ShmError> {
        let path = hotwasm_shm::ring_path(dir, name)?;
        let ring = Ring::create(&path, slots, REPLY_RECORD_BYTES)?;
        let (outbox, inbox) = Inbox::new();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = read_ring(ring, outbox, Arc::clone(&stop), stall_limit);
        Ok(RingSource {
            address: ReplyTo::Shm(name.to_string()),
            inbox,
            reader: Some(RingReader {
                stop,
                thread: Some(thread),
            }),
        })
    }
}

impl ReplySource for RingSource {
    fn address(&self) -> &ReplyTo {
        &self.address
    }

    fn recv(&mut self) -> BoxFuture<'_, Option<Vec<Arrival>>> {
        Box::pin(self.inbox.recv())
    }

    fn try_recv(&mut self) -> Option<Vec<Arrival>> {
        self.inbox.try_recv()
    }

    fn close(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        let reader = self.reader.take();
        Box::pin(async move {
            // Joining waits up to one pop timeout: off the async threads.
            let _ = tokio::task::spawn_blocking(move || drop(reader)).await;
        })
    }
}

/// Pops replies off the ring on a thread of its own until told to stop, or
/// until the ring is found broken or stalled (reported, then reading ends).
fn read_ring(
    ring: Ring,
    arrivals: Outbox,
    stop: Arc<AtomicBool>,
    stall_limit: Duration,
) -> std::thread::JoinHandle<()> {
    /// Records taken without waiting once one has arrived.
    const BATCH: usize = 256;
    std::thread::spawn(move || {
        let corrupted = |source: ShmError| ReplyError::RingCorrupted {
            ring: ring.path().display().to_string(),
            source,
        };
        let mut record = Vec::new();
        // Since when pops found nothing although a slot was claimed.
        let mut stalled_since: Option<Instant> = None;
        let mut readable = true;
        while readable && !stop.load(Ordering::Relaxed) {
            let mut batch = Vec::new();
            let mut wait = Duration::from_millis(20);
            while batch.len() < BATCH {
                let reply = match ring.pop(&mut record, wait) {
                    Ok(false) => {
                        if ring.pending() == 0 {
                            stalled_since = None;
                        } else if stalled_since.get_or_insert_with(Instant::now).elapsed()
                            >= stall_limit
                        {
                            readable = false;
                            batch.push(Arrival {
                                reply: Err(corrupted(ShmError::Broken {
                                    reason: format!(
                                        "{} records claimed by writers, none published for {stall_limit:?} \
                                         (a server died mid-write, or a cursor was moved)",
                                        ring.pending()
                                    ),
                                })),
                                at: Instant::now(),
                            });
                        }
                        break;
                    }
                    Ok(true) => Reply::decode(&record).map_err(ReplyError::from),
                    Err(e @ ShmError::Broken { .. }) => {
                        readable = false;
                        Err(corrupted(e))
                    }
                    Err(e) => Err(corrupted(e)),
                };
                stalled_since = None;
                batch.push(Arrival {
                    reply,
                    at: Instant::now(),
                });
                if !readable {
                    break;
                }
                wait = Duration::ZERO;
            }
            if !batch.is_empty() && arrivals.send(batch).is_err() {
                break;
            }
        }
        // Dropping `arrivals` here tells the client no more replies come.
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reasons_are_cut_to_fit_a_slot() {
        let key = MacKey::generate();
        let mut reply = Reply::answering(
            7,
            "s".into(),
            Verdict::error(Some("id".into()), "wasmtime", "é".repeat(1000)),
            b"job",
        );
        reply.sign(&key);
        let fitted = fit(&reply, 512, Some(&key));
        assert!(fitted.len() <= 512, "{} bytes", fitted.len());
        let decoded = Reply::decode(&fitted).expect("still a reply");
        assert_eq!((decoded.seq, decoded.verdict.valid), (7, false));
        assert!(decoded.verify(&key), "signed again after the cut");
        assert!(decoded.verdict.reason.expect("a reason").ends_with("..."));
    }
}
