//! Load and activate `.wasm` files dropped into a directory.
//!
//! A new or changed `name.wasm` is loaded through the host as a version of
//! `name` (validated, self-tested, stored in the registry) and activated;
//! if `name` is a scheme it serves from the next call on. A file that fails
//! validation is refused with a logged reason; the active version stays.
//! Files already in the directory are loaded when watching starts. Events
//! are taken from the file system (`notify`, inotify on Linux) when a
//! file is complete: when the writer closes it after writing (`cp`, an
//! editor, `std::fs::write`) or when it is renamed into the directory
//! (`mv`, the safe way to publish). A file is handled again only when it
//! changed (device, inode, size or modification time): reading it raises
//! events of its own, and a refused file is not refused again every time
//! someone reads it. A file hard-linked into the directory raises no such
//! event; touch it or move it in.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;

use hotwasm_registry::{RegistryError, VersionInfo};
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::{AuditEntry, HostError, ModuleHost};

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
    watcher: Option<RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for DirectoryWatcher {
    fn drop(&mut self) {
        // Dropping the watcher closes the channel, which ends the thread.
        drop(self.watcher.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Watches `dir` for `host`; every outcome is logged and, if `events` is
/// given, sent there too.
///
/// # Errors
///
/// [`HostError::Registry`] ([`RegistryError::Io`]) when the directory
/// cannot be watched; [`HostError::NoRegistry`] when the host has no
/// registry to store versions in.
pub fn watch(
    dir: &Path,
    host: Arc<ModuleHost>,
    events: Option<Sender<WatchEvent>>,
) -> Result<DirectoryWatcher, HostError> {
    if !host.has_registry() {
        return Err(HostError::NoRegistry);
    }
    let io = |source: std::io::Error| RegistryError::Io {
        action: "watching",
        path: dir.to_path_buf(),
        source,
    };
    let (sender, receiver) = mpsc::channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if let Some(path) = complete_file(&event) {
            let _ = sender.send(path.to_path_buf());
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
            let mut handled: HashMap<PathBuf, Stamp> = HashMap::new();
            for path in existing {
                handle_if_changed(&path, &mut handled, &host, events.as_ref());
            }
            for path in receiver {
                if is_module_file(&path) {
                    handle_if_changed(&path, &mut handled, &host, events.as_ref());
                }
            }
        })
        .map_err(io)?;
    Ok(DirectoryWatcher {
        watcher: Some(watcher),
        thread: Some(thread),
    })
}

/// The file an event says is complete: closed by a writer, or renamed
/// into the directory.
fn complete_file(event: &notify::Event) -> Option<&Path> {
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write))
        | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
            event.paths.last().map(PathBuf::as_path)
        }
        _ => None,
    }
}

/// One state of a file: device, inode, size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    modified: Option<std::time::SystemTime>,
}

impl Stamp {
    /// The file's stamp now (`None` when it cannot be read).
    fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            modified: meta.modified().ok(),
        })
    }
}

fn is_module_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm") && path.is_file()
}

/// Handles `path` unless it is as it was when last handled. A file that
/// changed while it was read (a write under way) and was refused is not
/// reported: the write's own event brings it back.
fn handle_if_changed(
    path: &Path,
    handled: &mut HashMap<PathBuf, Stamp>,
    host: &ModuleHost,
    events: Option<&Sender<WatchEvent>>,
) {
    let before = Stamp::of(path);
    if before.is_some() && handled.get(path) == before.as_ref() {
        return;
    }
    let outcome = load_and_activate(path, host);
    let after = Stamp::of(path);
    if after != before && outcome.is_err() {
        handled.remove(path);
        tracing::debug!(path = %path.display(), "changed while being read; handled again on its next event");
        return;
    }
    match after {
        Some(stamp) => handled.insert(path.to_path_buf(), stamp),
        None => handled.remove(path),
    };
    report(path, outcome, host, events);
}

/// Audits, logs and sends what came of a file.
fn report(
    path: &Path,
    outcome: Result<VersionInfo, HostError>,
    host: &ModuleHost,
    events: Option<&Sender<WatchEvent>>,
) {
    let via = format!(
        "watch {}",
        path.parent().unwrap_or_else(|| Path::new("")).display()
    );
    host.audit().record(&AuditEntry {
        who: "watch",
        via: &via,
        action: "load",
        target: &path.display().to_string(),
        outcome: match &outcome {
            Ok(version) => Ok(format!("{} active", version.id)),
            Err(e) => Err(e.to_string()),
        },
    });
    let event = match outcome {
        Ok(version) => {
            // The host logged the activation, its file as the cause.
            tracing::debug!(path = %path.display(), module = %version.id, "activated");
            WatchEvent::Activated {
                path: path.to_path_buf(),
                id: version.id,
            }
        }
        Err(e) => {
            let hint = match &e {
                HostError::Registry(RegistryError::Untrusted { .. }) => {
                    format!(" ({})", hotwasm_trust::HINT)
                }
                _ => String::new(),
            };
            tracing::warn!(path = %path.display(), "refused: {e}{hint}");
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

/// Loads `path` through `host` as a version of its file stem and
/// activates it.
///
/// # Errors
///
/// [`HostError`] when the file cannot be read, is larger than the
/// runtime's module limit, or is refused.
pub fn load_and_activate(path: &Path, host: &ModuleHost) -> Result<VersionInfo, HostError> {
    let io = |source: std::io::Error| RegistryError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    };
    let limit = host.modules().runtime_handle().limits().max_module_bytes;
    let mut wasm = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit as u64 + 1).read_to_end(&mut wasm))
        .map_err(io)?;
    if wasm.len() > limit {
        return Err(RegistryError::Refused {
            module: path.display().to_string(),
            reason: format!("larger than the module limit of {limit} bytes (--max-module-bytes)"),
        }
        .into());
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    host.load(&name, wasm, &path.display().to_string(), true)
}
