//! The registry directory: module files, state, cache.
//!
//! ```text
//! <registry>/registry.json             active version and history per name
//! <registry>/modules/<name>/<sha256>.wasm
//! <registry>/cache/<fingerprint>/<sha256>.cwasm
//! ```
//!
//! Files are replaced atomically (write, then rename), so a crash leaves
//! either the old or the new state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use hotwasm_runtime::Runtime;
use hotwasm_trust::Trust;
use serde::{Deserialize, Serialize};

use crate::RegistryError;
use crate::cache::ArtifactCache;
use crate::file::write_atomically;
use crate::spec::{check_name, parse_spec};
use crate::validate::{Validated, validate};

/// How many previously active versions per name are remembered.
pub const HISTORY: usize = 16;
const STATE_FILE: &str = "registry.json";
/// The key that vouches for the artifact cache's entries (owner-only).
const CACHE_KEY_FILE: &str = "cache.key";

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    modules: BTreeMap<String, Entry>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Entry {
    active: Option<String>,
    /// Previously active versions, most recent last.
    history: Vec<String>,
    versions: BTreeMap<String, Meta>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    size: u64,
    loaded_unix: u64,
    source: Option<String>,
}

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionState {
    /// Serving its name.
    Active,
    /// Was active before; `rollback` returns to the most recent of these.
    Previous,
    /// Validated and stored, never active or rolled past.
    Available,
}

/// One stored version, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// Module name (`schnorr` and `ecdsa` serve those schemes).
    pub name: String,
    /// SHA-256 of the bytes, hex.
    pub hash: String,
    /// `name@<16 hex digits>`.
    pub id: String,
    /// Size in bytes.
    pub size: u64,
    /// Where it stands.
    pub state: VersionState,
    /// When it was loaded (Unix seconds).
    pub loaded_unix: u64,
    /// The file it was loaded from, if any.
    pub source: Option<String>,
}

/// A module registry on disk.
#[derive(Debug)]
pub struct ModuleRegistry {
    dir: PathBuf,
    state: State,
    cache: ArtifactCache,
}

impl ModuleRegistry {
    /// The per-user default location: `$XDG_DATA_HOME/hotwasm`, else
    /// `~/.local/share/hotwasm`, else `./.hotwasm`.
    pub fn default_dir() -> PathBuf {
        if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(data).join("hotwasm");
        }
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            return PathBuf::from(home).join(".local/share/hotwasm");
        }
        PathBuf::from(".hotwasm")
    }

    /// Opens (creating if needed) the registry in `dir`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Io`] when the directory cannot be created or read,
    /// [`RegistryError::Corrupt`] when its state file does not parse.
    pub fn open(dir: impl Into<PathBuf>) -> Result<ModuleRegistry, RegistryError> {
        let dir = dir.into();
        crate::file::create_private_dir(&dir.join("modules")).map_err(|source| {
            RegistryError::Io {
                action: "creating the registry",
                path: dir.clone(),
                source,
            }
        })?;
        crate::file::warn_if_shared(&dir);
        let cache = ArtifactCache::open(dir.join("cache"), &dir.join(CACHE_KEY_FILE))
            .map_err(RegistryError::Key)?;
        let path = dir.join(STATE_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(source) => {
                return Err(RegistryError::Io {
                    action: "reading",
                    path,
                    source,
                });
            }
        };
        for (name, entry) in &state.modules {
            let bad_hash = entry
                .versions
                .keys()
                .chain(entry.active.iter())
                .chain(entry.history.iter())
                .find(|h| h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()));
            if check_name(name).is_err() || bad_hash.is_some() {
                return Err(RegistryError::Corrupt {
                    path,
                    message: format!("invalid module name or version hash under {name:?}"),
                });
            }
        }
        Ok(ModuleRegistry { cache, dir, state })
    }

    /// The registry directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The artifact cache.
    pub fn cache(&self) -> &ArtifactCache {
        &self.cache
    }

    /// Validates `wasm` on `runtime` (trusted by `trust`, compile, waPC
    /// shape, self-test) and stores it as a version of `name`: [`validate`] then
    /// [`ModuleRegistry::store`]. The first version of a name becomes
    /// active; later ones wait for [`ModuleRegistry::activate`].
    ///
    /// A process that serves modules validates without holding the
    /// registry (see `hotwasm-host`); this is for one-shot tools.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Untrusted`] or [`RegistryError::Refused`] with the
    /// reason when validation fails (nothing is stored), [`RegistryError::Io`] when storing fails.
    pub fn load(
        &mut self,
        name: &str,
        wasm: &[u8],
        source: Option<&str>,
        runtime: &dyn Runtime,
        trust: &Trust,
    ) -> Result<VersionInfo, RegistryError> {
        let validated = validate(Some(&self.cache), name, wasm.to_vec(), runtime, trust)?;
        self.store(&validated, source)
    }

    /// Stores a validated module as a version of its name. The first
    /// version of a name becomes active; later ones wait for
    /// [`ModuleRegistry::activate`]. Storing a version again keeps its
    /// first load time and source.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Io`] when the module file or the state cannot be
    /// written (the state stays as it was).
    pub fn store(
        &mut self,
        module: &Validated,
        source: Option<&str>,
    ) -> Result<VersionInfo, RegistryError> {
        self.store_as(module, source, false)
    }

    /// [`ModuleRegistry::store`] then [`ModuleRegistry::activate`] in one
    /// write of the registry's state (an fsync less on the way to serving
    /// a new version).
    ///
    /// # Errors
    ///
    /// As [`ModuleRegistry::store`].
    pub fn store_active(
        &mut self,
        module: &Validated,
        source: Option<&str>,
    ) -> Result<VersionInfo, RegistryError> {
        self.store_as(module, source, true)
    }

    fn store_as(
        &mut self,
        module: &Validated,
        source: Option<&str>,
        activate: bool,
    ) -> Result<VersionInfo, RegistryError> {
        let (name, hash, wasm) = (module.name(), module.hash(), module.wasm());
        let path = self.module_path(name, hash);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| RegistryError::Io {
                action: "creating",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        write_atomically(&path, wasm).map_err(|source| RegistryError::Io {
            action: "writing",
            path: path.clone(),
            source,
        })?;
        let mut entry = self.state.modules.get(name).cloned().unwrap_or_default();
        entry.versions.entry(hash.to_string()).or_insert(Meta {
            size: wasm.len() as u64,
            loaded_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
            source: source.map(str::to_string),
        });
        if activate {
            make_active(&mut entry, hash);
        } else if entry.active.is_none() {
            entry.active = Some(hash.to_string());
        }
        self.commit(name, entry)?;
        self.info(name, hash)
    }

    /// Makes `spec` (`name@hash`, any unique prefix of the hash of at least
    /// four digits) the active version of its name.
    ///
    /// # Errors
    ///
    /// [`RegistryError::BadSpec`] for a spec that is not `NAME@HASH`,
    /// [`RegistryError::NotFound`] or [`RegistryError::Ambiguous`] for one
    /// that names no single version.
    pub fn activate(&mut self, spec: &str) -> Result<VersionInfo, RegistryError> {
        let (name, hash) = self.resolve(spec)?;
        let mut entry = self.state.modules.get(&name).cloned().unwrap_or_default();
        make_active(&mut entry, &hash);
        self.commit(&name, entry)?;
        self.info(&name, &hash)
    }

    /// Re-activates the version that was active before the current one.
    ///
    /// # Errors
    ///
    /// [`RegistryError::BadName`] for a name no module can have,
    /// [`RegistryError::NotFound`] for a name never loaded,
    /// [`RegistryError::NoHistory`] when there is nothing before.
    pub fn rollback(&mut self, name: &str) -> Result<VersionInfo, RegistryError> {
        check_name(name)?;
        let mut entry = self
            .state
            .modules
            .get(name)
            .cloned()
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))?;
        let previous = entry
            .history
            .pop()
            .ok_or_else(|| RegistryError::NoHistory(name.to_string()))?;
        entry.active = Some(previous.clone());
        self.commit(name, entry)?;
        self.info(name, &previous)
    }

    /// Replaces the entry of `name` and saves; on a failed save the
    /// in-memory state stays as it was, matching the disk.
    fn commit(&mut self, name: &str, entry: Entry) -> Result<(), RegistryError> {
        let old = self.state.modules.insert(name.to_string(), entry);
        if let Err(e) = self.save() {
            match old {
                Some(old) => self.state.modules.insert(name.to_string(), old),
                None => self.state.modules.remove(name),
            };
            return Err(e);
        }
        Ok(())
    }

    /// Every stored version, by name, newest load last.
    pub fn list(&self) -> Vec<VersionInfo> {
        let mut versions: Vec<VersionInfo> = self
            .state
            .modules
            .iter()
            .flat_map(|(name, entry)| {
                entry
                    .versions
                    .keys()
                    .filter_map(move |hash| self.info(name, hash).ok())
            })
            .collect();
        versions.sort_by(|a, b| (&a.name, a.loaded_unix).cmp(&(&b.name, b.loaded_unix)));
        versions
    }

    /// The active version of `name`, if any.
    pub fn active(&self, name: &str) -> Option<VersionInfo> {
        let entry = self.state.modules.get(name)?;
        self.info(name, entry.active.as_deref()?).ok()
    }

    /// The most recent previous version of `name`, if any.
    pub fn previous(&self, name: &str) -> Option<VersionInfo> {
        let entry = self.state.modules.get(name)?;
        self.info(name, entry.history.last()?).ok()
    }

    /// The version `spec` names (`name@hash`, any unique prefix of the hash
    /// of at least four digits), without changing anything.
    ///
    /// # Errors
    ///
    /// [`RegistryError::BadSpec`], [`RegistryError::NotFound`] or
    /// [`RegistryError::Ambiguous`].
    pub fn resolve_version(&self, spec: &str) -> Result<VersionInfo, RegistryError> {
        let (name, hash) = self.resolve(spec)?;
        self.info(&name, &hash)
    }

    /// A second version of `name` to alternate with the active one: the
    /// previous version, else the most recently loaded other version.
    pub fn alternate(&self, name: &str) -> Option<VersionInfo> {
        self.previous(name).or_else(|| {
            self.list()
                .into_iter()
                .rev()
                .find(|v| v.name == name && v.state != VersionState::Active)
        })
    }

    /// The bytes of a stored version, checked against its hash.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Io`] when the file is unreadable,
    /// [`RegistryError::Corrupt`] when its content no longer matches.
    pub fn bytes(&self, version: &VersionInfo) -> Result<Vec<u8>, RegistryError> {
        let path = self.module_path(&version.name, &version.hash);
        let wasm = std::fs::read(&path).map_err(|source| RegistryError::Io {
            action: "reading",
            path: path.clone(),
            source,
        })?;
        if hotwasm_modules::content_hash(&wasm) != version.hash {
            return Err(RegistryError::Corrupt {
                path,
                message: "module file does not match its hash".into(),
            });
        }
        Ok(wasm)
    }

    /// Reads a stored version and validates it on `runtime` (through the
    /// cache), checking again that `trust` trusts it (whoever can write the
    /// registry directory could have replaced it): everything that must happen before the version may serve
    /// in a running process. Runs guest code; see [`validate`].
    ///
    /// # Errors
    ///
    /// [`RegistryError::Untrusted`] when `trust` refuses it,
    /// [`RegistryError::Refused`] when the runtime refuses it or the
    /// self-test fails; I/O errors as [`ModuleRegistry::bytes`].
    pub fn prepare(
        &self,
        version: &VersionInfo,
        runtime: &dyn Runtime,
        trust: &Trust,
    ) -> Result<Validated, RegistryError> {
        validate(
            Some(&self.cache),
            &version.name,
            self.bytes(version)?,
            runtime,
            trust,
        )
    }

    fn info(&self, name: &str, hash: &str) -> Result<VersionInfo, RegistryError> {
        let entry = self
            .state
            .modules
            .get(name)
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))?;
        let meta = entry
            .versions
            .get(hash)
            .ok_or_else(|| RegistryError::NotFound(format!("{name}@{hash}")))?;
        let state = if entry.active.as_deref() == Some(hash) {
            VersionState::Active
        } else if entry.history.iter().any(|h| h == hash) {
            VersionState::Previous
        } else {
            VersionState::Available
        };
        Ok(VersionInfo {
            name: name.to_string(),
            id: format!(
                "{name}@{}",
                &hash[..hotwasm_modules::SHORT_HASH_LEN.min(hash.len())]
            ),
            hash: hash.to_string(),
            size: meta.size,
            state,
            loaded_unix: meta.loaded_unix,
            source: meta.source.clone(),
        })
    }

    /// `name@prefix` to the one stored version it names.
    fn resolve(&self, spec: &str) -> Result<(String, String), RegistryError> {
        let (name, prefix) = parse_spec(spec)?;
        let entry = self
            .state
            .modules
            .get(name)
            .ok_or_else(|| RegistryError::NotFound(spec.to_string()))?;
        let mut matches = entry.versions.keys().filter(|h| h.starts_with(&prefix));
        match (matches.next(), matches.next()) {
            (Some(hash), None) => Ok((name.to_string(), hash.clone())),
            (Some(_), Some(_)) => Err(RegistryError::Ambiguous(spec.to_string())),
            (None, _) => Err(RegistryError::NotFound(spec.to_string())),
        }
    }

    fn module_path(&self, name: &str, hash: &str) -> PathBuf {
        self.dir
            .join("modules")
            .join(name)
            .join(format!("{hash}.wasm"))
    }

    fn save(&self) -> Result<(), RegistryError> {
        let path = self.dir.join(STATE_FILE);
        let json = serde_json::to_vec_pretty(&self.state).map_err(|e| RegistryError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomically(&path, &json).map_err(|source| RegistryError::Io {
            action: "writing",
            path,
            source,
        })
    }
}

/// Makes `hash` the active version of `entry`; the version it replaces
/// becomes the newest of the history (which holds each version once, and
/// at most [`HISTORY`]).
fn make_active(entry: &mut Entry, hash: &str) {
    if entry.active.as_deref() == Some(hash) {
        return;
    }
    entry.history.retain(|h| h != hash);
    if let Some(previous) = entry.active.replace(hash.to_string()) {
        entry.history.retain(|h| *h != previous);
        entry.history.push(previous);
        if entry.history.len() > HISTORY {
            entry.history.remove(0);
        }
    }
}
