//! Shared-memory rings this server writes verdicts into, opened once per
//! name and kept while their reader is there.
//!
//! A ring name arrives inside a job, so it is outside input: only names
//! `hotwasm_shm::ring_path` accepts are opened, inside the ring directory,
//! and only files that are rings (checked by `Ring::open`).
//!
//! A ring whose reader stopped reading (a killed client leaves its file
//! behind) would make every batch for it wait the full ring timeout. After
//! one such failure the ring is refused at once for [`COOL_DOWN`]: its jobs
//! stay pending, are reclaimed later and, if the reader never comes back,
//! end in the dead-letter stream.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotwasm_shm::{Ring, ShmError};

/// How long a ring that failed a write is refused.
pub(crate) const COOL_DOWN: Duration = Duration::from_secs(30);

/// Open rings by name, and rings that recently failed.
pub(crate) struct Rings {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    open: HashMap<String, Arc<Ring>>,
    failed: HashMap<String, Instant>,
}

impl Rings {
    pub(crate) fn new(dir: PathBuf) -> Rings {
        Rings {
            dir,
            state: Mutex::default(),
        }
    }

    /// The ring `name`, opened on first use. A ring whose file was replaced
    /// or removed (its client finished, or restarted under the same name)
    /// is dropped from the cache, so mappings of finished clients do not
    /// pile up.
    pub(crate) fn get(&self, name: &str) -> Result<Arc<Ring>, ShmError> {
        let path = hotwasm_shm::ring_path(&self.dir, name)?;
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(since) = state.failed.get(name) {
            if since.elapsed() < COOL_DOWN {
                return Err(ShmError::Full {
                    waited: Duration::ZERO,
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
        let ring = Arc::new(Ring::open(&path)?);
        state.open.insert(name.to_string(), Arc::clone(&ring));
        Ok(ring)
    }

    /// Records that a write to `name` failed: it is refused for a while and
    /// reopened afterwards.
    pub(crate) fn failed(&self, name: &str) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.open.remove(name);
        state.failed.retain(|_, since| since.elapsed() < COOL_DOWN);
        state.failed.insert(name.to_string(), Instant::now());
    }
}
