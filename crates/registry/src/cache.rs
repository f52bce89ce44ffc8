//! Precompiled artifacts on disk, run only if this installation made them.
//!
//! A precompiled artifact is native code: loading one this installation did
//! not make runs whatever its author wrote. So an entry, at
//! `<dir>/<engine fingerprint>/<wasm sha256>.cwasm`, holds a magic tag,
//! then an HMAC-SHA256 tag, then the artifact; the tag is made with the
//! cache's key (32 random bytes in an owner-only file of this user's, made
//! on first use) over the engine fingerprint, the SHA-256 of the wasm the
//! artifact was compiled from, and the artifact. Before an artifact is
//! loaded its tag is checked in constant time; an entry that is truncated,
//! tampered with, made from other wasm, for another engine, or by anyone
//! without the key is deleted and the module compiled again. Entries of
//! another engine build or configuration sit under another fingerprint and
//! are never looked at.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hotwasm_auth::MacKey;
use hotwasm_auth::mac::TAG_BYTES;
use hotwasm_runtime::{CompiledModule, Runtime, RuntimeError};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"HWASMAC2";
const HEADER: usize = MAGIC.len() + TAG_BYTES;

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

/// A directory of precompiled artifacts and the key that vouches for them.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    key: MacKey,
}

impl ArtifactCache {
    /// A cache rooted at `dir` (created on first store), its entries
    /// tagged with `key`.
    pub fn new(dir: impl Into<PathBuf>, key: MacKey) -> ArtifactCache {
        ArtifactCache {
            dir: dir.into(),
            key,
        }
    }

    /// A cache rooted at `dir` whose key is in `key_file` (made there,
    /// owner-only, on first use; it must be this user's own file).
    ///
    /// # Errors
    ///
    /// The key file cannot be read or made, is readable by others, or is
    /// another user's.
    pub fn open(
        dir: impl Into<PathBuf>,
        key_file: &Path,
    ) -> Result<ArtifactCache, hotwasm_auth::SecretError> {
        let key = MacKey::read_or_create(key_file, "artifact cache key")?;
        Ok(ArtifactCache::new(dir, key))
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
            Ok(entry) => match self.check(&entry, &fingerprint, wasm) {
                Ok(artifact) => {
                    // SAFETY: the tag proves an engine of this fingerprint,
                    // holding this installation's key, made this artifact
                    // from these wasm bytes.
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
        if let Err(e) = self.store(&path, &fingerprint, wasm, &artifact) {
            tracing::warn!(path = %path.display(), "cannot store cache entry: {e}");
        }
        // SAFETY: the artifact was made by this runtime a moment ago.
        let module = unsafe { runtime.load_artifact(wasm, &artifact) }?;
        Ok((module, outcome))
    }
}

impl ArtifactCache {
    /// The artifact inside `entry`, if its tag says this installation made
    /// it from `wasm` under `fingerprint`.
    fn check<'a>(
        &self,
        entry: &'a [u8],
        fingerprint: &str,
        wasm: &[u8],
    ) -> Result<&'a [u8], String> {
        if entry.len() < HEADER || &entry[..MAGIC.len()] != MAGIC {
            return Err("not a hotwasm cache entry (bad header, old format, or truncated)".into());
        }
        let tag = &entry[MAGIC.len()..HEADER];
        let artifact = &entry[HEADER..];
        let wasm_digest = Sha256::digest(wasm);
        if !self
            .key
            .verify(&[fingerprint.as_bytes(), &wasm_digest, artifact], tag)
        {
            return Err(
                "tag does not match: not made by this installation from these wasm bytes (tampered, substituted or corrupt)"
                    .into(),
            );
        }
        Ok(artifact)
    }

    /// Writes an entry atomically (temporary file, then rename).
    fn store(
        &self,
        path: &Path,
        fingerprint: &str,
        wasm: &[u8],
        artifact: &[u8],
    ) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            crate::file::create_private_dir(parent)?;
        }
        let wasm_digest = Sha256::digest(wasm);
        let tag = self
            .key
            .tag(&[fingerprint.as_bytes(), &wasm_digest, artifact]);
        let mut entry = Vec::with_capacity(HEADER + artifact.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(&tag);
        entry.extend_from_slice(artifact);
        crate::file::write_atomically(path, &entry)
    }
}
