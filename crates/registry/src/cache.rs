//! Precompiled artifacts on disk, never trusted blindly.
//!
//! An entry lives at `<dir>/<engine fingerprint>/<wasm sha256>.cwasm` and
//! holds a magic tag, the SHA-256 of the wasm it was compiled from, the
//! SHA-256 of the artifact, then the artifact. Before an artifact is loaded
//! both digests are checked; a truncated, tampered or misplaced entry is
//! deleted and the module compiled again. Entries of another engine build or
//! configuration sit under another fingerprint and are never looked at.
//!
//! The digests catch corruption and mistakes, not an attacker who can write
//! the cache directory (they could rewrite the digests too): authenticating
//! entries with a key is future work.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hotwasm_runtime::{CompiledModule, Runtime, RuntimeError};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"HWASMAC1";
const HEADER: usize = MAGIC.len() + 32 + 32;

/// What the cache did for one compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a checked artifact; nothing was compiled.
    Hit,
    /// No entry: compiled and stored.
    Miss,
    /// An entry was there but failed its check: compiled again, replaced.
    Rebuilt(String),
    /// The runtime has no precompiled form (wasmi, wasm3, native).
    Uncacheable,
}

/// A directory of precompiled artifacts.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    /// A cache rooted at `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> ArtifactCache {
        ArtifactCache { dir: dir.into() }
    }

    /// Where the artifact of `wasm` compiled under `fingerprint` lives.
    pub fn entry_path(&self, fingerprint: &str, wasm: &[u8]) -> PathBuf {
        self.dir
            .join(fingerprint)
            .join(format!("{}.cwasm", hotwasm_modules::content_hash(wasm)))
    }

    /// Deletes the entry of `wasm` on `runtime`, if there is one.
    pub fn forget(&self, runtime: &dyn Runtime, wasm: &[u8]) {
        if let Some(fingerprint) = runtime.artifact_fingerprint() {
            let _ = std::fs::remove_file(self.entry_path(&fingerprint, wasm));
        }
    }

    /// Compiles `wasm` on `runtime`, through the cache where the runtime
    /// has precompiled artifacts.
    ///
    /// # Errors
    ///
    /// [`RuntimeError`] when the module does not compile. Cache I/O errors
    /// are not errors: the module is compiled and the problem logged.
    pub fn compile(
        &self,
        runtime: &dyn Runtime,
        wasm: &[u8],
    ) -> Result<(Arc<dyn CompiledModule>, CacheOutcome), RuntimeError> {
        let Some(fingerprint) = runtime.artifact_fingerprint() else {
            return Ok((runtime.compile(wasm)?, CacheOutcome::Uncacheable));
        };
        let path = self.entry_path(&fingerprint, wasm);
        let mut outcome = CacheOutcome::Miss;
        match std::fs::read(&path) {
            Ok(entry) => match check(&entry, wasm) {
                Ok(artifact) => {
                    // SAFETY: the artifact's digest matches the one stored
                    // when this process's engine (same fingerprint) made it.
                    match unsafe { runtime.load_artifact(wasm, artifact) } {
                        Ok(module) => return Ok((module, CacheOutcome::Hit)),
                        Err(e) => outcome = CacheOutcome::Rebuilt(e.to_string()),
                    }
                }
                Err(why) => outcome = CacheOutcome::Rebuilt(why),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => outcome = CacheOutcome::Rebuilt(format!("unreadable: {e}")),
        }
        if let CacheOutcome::Rebuilt(why) = &outcome {
            tracing::warn!(path = %path.display(), "discarding cache entry: {why}");
            let _ = std::fs::remove_file(&path);
        }
        let artifact = runtime.precompile(wasm)?;
        if let Err(e) = store(&path, wasm, &artifact) {
            tracing::warn!(path = %path.display(), "cannot store cache entry: {e}");
        }
        // SAFETY: the artifact was made by this runtime a moment ago.
        let module = unsafe { runtime.load_artifact(wasm, &artifact) }?;
        Ok((module, outcome))
    }
}

/// The artifact inside `entry`, if the entry is intact and made from `wasm`.
fn check<'a>(entry: &'a [u8], wasm: &[u8]) -> Result<&'a [u8], String> {
    if entry.len() < HEADER || &entry[..MAGIC.len()] != MAGIC {
        return Err("not a hotwasm cache entry (bad header or truncated)".into());
    }
    let wasm_digest = &entry[MAGIC.len()..MAGIC.len() + 32];
    let artifact_digest = &entry[MAGIC.len() + 32..HEADER];
    let artifact = &entry[HEADER..];
    if wasm_digest != Sha256::digest(wasm).as_slice() {
        return Err("entry was compiled from other wasm bytes".into());
    }
    if artifact_digest != Sha256::digest(artifact).as_slice() {
        return Err("artifact digest mismatch (corrupt or tampered)".into());
    }
    Ok(artifact)
}

/// Writes an entry atomically (temporary file, then rename).
fn store(path: &Path, wasm: &[u8], artifact: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut entry = Vec::with_capacity(HEADER + artifact.len());
    entry.extend_from_slice(MAGIC);
    entry.extend_from_slice(&Sha256::digest(wasm));
    entry.extend_from_slice(&Sha256::digest(artifact));
    entry.extend_from_slice(artifact);
    crate::file::write_atomically(path, &entry)
}
