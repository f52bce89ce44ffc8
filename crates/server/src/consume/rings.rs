//! Shared-memory rings this server writes verdicts into, opened once per
//! name and kept.
//!
//! A ring name arrives inside a job, so it is outside input: only names
//! `hotwasm_shm::ring_path` accepts are opened, inside the ring directory,
//! and only files that are rings (checked by `Ring::open`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hotwasm_shm::{Ring, ShmError};

/// Open rings by name.
pub(crate) struct Rings {
    dir: PathBuf,
    open: Mutex<HashMap<String, Arc<Ring>>>,
}

impl Rings {
    pub(crate) fn new(dir: PathBuf) -> Rings {
        Rings {
            dir,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The ring `name`, opened on first use. A ring whose file was replaced
    /// (a client that restarted under the same name) is opened again.
    pub(crate) fn get(&self, name: &str) -> Result<Arc<Ring>, ShmError> {
        let path = hotwasm_shm::ring_path(&self.dir, name)?;
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(ring) = open.get(name)
            && ring.is_current()
        {
            return Ok(Arc::clone(ring));
        }
        let ring = Arc::new(Ring::open(&path)?);
        open.insert(name.to_string(), Arc::clone(&ring));
        Ok(ring)
    }
}
