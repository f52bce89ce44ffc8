//! Load and activate `.wasm` files dropped into a directory.
//!
//! A new or changed `name.wasm` is loaded into the registry as a version of
//! `name` (validated, self-tested), made active there, and — if `name` is a
//! scheme — swapped into the running [`ModuleSet`]. A file that fails
//! validation is refused with a logged reason; the active version stays.
//! Files already in the directory are loaded when watching starts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hotwasm_abi::Scheme;
use hotwasm_worker::ModuleSet;
use notify::{RecursiveMode, Watcher};

use crate::{ModuleRegistry, RegistryError, VersionInfo};

/// Quiet time after the last event for a file before it is read, so a file
/// still being written is not loaded half-way.
pub const SETTLE: Duration = Duration::from_millis(100);

/// What the watcher did with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Loaded and activated.
    Activated {
        /// The file.
        path: PathBuf,
        /// The version now active.
        id: String,
    },
    /// Refused; the previously active version stays.
    Refused {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A running directory watch; stops when dropped.
pub struct DirectoryWatcher {
    watcher: Option<notify::RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for DirectoryWatcher {
    fn drop(&mut self) {
        // Dropping the notify watcher closes the channel, which ends the thread.
        drop(self.watcher.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Watches `dir`; every outcome is logged and, if `events` is given, sent
/// there too.
///
/// # Errors
///
/// [`RegistryError::Io`] when the directory cannot be watched.
pub fn watch(
    dir: &Path,
    registry: Arc<Mutex<ModuleRegistry>>,
    set: Arc<ModuleSet>,
    events: Option<Sender<WatchEvent>>,
) -> Result<DirectoryWatcher, RegistryError> {
    let io = |source: std::io::Error| RegistryError::Io {
        action: "watching",
        path: dir.to_path_buf(),
        source,
    };
    let (sender, receiver) = mpsc::channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && (event.kind.is_create() || event.kind.is_modify())
        {
            for path in event.paths {
                let _ = sender.send(path);
            }
        }
    })
    .map_err(|e| io(std::io::Error::other(e)))?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(|e| io(std::io::Error::other(e)))?;
    let existing: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| is_module_file(path))
        .collect();
    let thread = std::thread::Builder::new()
        .name("hotwasm-watch".into())
        // Validation runs the module's self-test on this thread.
        .stack_size(hotwasm_runtime::GUEST_THREAD_STACK_BYTES)
        .spawn(move || {
            for path in existing {
                handle(&path, &registry, &set, events.as_ref());
            }
            run(receiver, &registry, &set, events.as_ref());
        })
        .map_err(io)?;
    Ok(DirectoryWatcher {
        watcher: Some(watcher),
        thread: Some(thread),
    })
}

fn run(
    receiver: Receiver<PathBuf>,
    registry: &Mutex<ModuleRegistry>,
    set: &ModuleSet,
    events: Option<&Sender<WatchEvent>>,
) {
    let mut pending = BTreeSet::new();
    loop {
        match receiver.recv_timeout(SETTLE) {
            Ok(path) if is_module_file(&path) => {
                pending.insert(path);
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                for path in std::mem::take(&mut pending) {
                    handle(&path, registry, set, events);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn is_module_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm") && path.is_file()
}

fn handle(
    path: &Path,
    registry: &Mutex<ModuleRegistry>,
    set: &ModuleSet,
    events: Option<&Sender<WatchEvent>>,
) {
    let event = match load_and_activate(path, registry, set) {
        Ok(version) => {
            tracing::info!(path = %path.display(), module = %version.id, "activated");
            WatchEvent::Activated {
                path: path.to_path_buf(),
                id: version.id,
            }
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), "refused: {e}");
            WatchEvent::Refused {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        }
    };
    if let Some(events) = events {
        let _ = events.send(event);
    }
}

/// Loads `path` into the registry, activates it there and in `set`.
///
/// # Errors
///
/// [`RegistryError`] when the file cannot be read or is refused.
pub fn load_and_activate(
    path: &Path,
    registry: &Mutex<ModuleRegistry>,
    set: &ModuleSet,
) -> Result<VersionInfo, RegistryError> {
    let wasm = std::fs::read(path).map_err(|source| RegistryError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut registry = registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let runtime = set.runtime_handle().as_ref();
    let source = path.display().to_string();
    let (loaded, module) = registry.load_prepared(&name, &wasm, Some(&source), runtime)?;
    let version = registry.activate(&format!("{}@{}", loaded.name, loaded.hash))?;
    if let Some(scheme) = Scheme::from_name(&name) {
        set.prewarm(scheme, &module, set.workers());
        set.activate(scheme, module);
    }
    Ok(version)
}
