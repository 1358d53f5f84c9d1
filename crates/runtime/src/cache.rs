//! Compiled components on disk.
//!
//! A cache entry is named after the SHA-256 of the component's bytes and a hash of the
//! engine's compatibility settings (wasmtime version, target, compiler flags), so a changed
//! component or a changed engine never loads stale code; they just miss.

use crate::error::RuntimeError;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;

/// A directory of precompiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompileCache {
    /// Opens (creating it if needed) the cache directory for `engine`.
    pub fn open(dir: &Path, engine: &wasmtime::Engine) -> Result<Self, RuntimeError> {
        std::fs::create_dir_all(dir).map_err(|source| RuntimeError::Cache {
            dir: dir.to_owned(),
            source,
        })?;
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            engine_key: format!("{:016x}", hasher.finish()),
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a component with these bytes is cached in.
    pub fn entry_path(&self, bytes: &[u8]) -> PathBuf {
        self.entry_for_digest(&Sha256::digest(bytes).into())
    }

    fn entry_for_digest(&self, digest: &[u8; 32]) -> PathBuf {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}-{}.cwasm", self.engine_key))
    }

    /// Loads the compiled form of `bytes` from the cache, or compiles and stores it.
    /// Returns the component and whether it came from the cache.
    pub(crate) fn load_or_compile(
        &self,
        engine: &wasmtime::Engine,
        bytes: &[u8],
        digest: &[u8; 32],
    ) -> wasmtime::Result<(Component, bool)> {
        let path = self.entry_for_digest(digest);
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => {
                    tracing::debug!(path = %path.display(), "loaded compiled component from cache");
                    return Ok((component, true));
                }
                // A truncated or foreign file: recompile and overwrite it.
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unusable compile cache entry")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = self.store(&path, &component) {
            // The cache is an optimisation; a read-only or full disk must not stop the host.
            tracing::warn!(path = %path.display(), error = %e, "could not write compile cache entry");
        }
        Ok((component, false))
    }

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        let serialized = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
        // Write then rename, so a concurrent reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, serialized)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &wasmtime::Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output. The cache
    // directory only ever receives files this module wrote with `Component::serialize` for an
    // engine with the same compatibility hash (it is in the file name), renamed into place
    // atomically; wasmtime additionally checks the header and engine settings and refuses
    // mismatches.
    unsafe { Component::deserialize_file(engine, path) }
}
