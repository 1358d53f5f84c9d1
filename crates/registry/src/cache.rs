//! The on-disk cache: blobs by digest, and an index from references to manifest digests.
//!
//! ```text
//! {cache_dir}/blobs/sha256/{hex}     manifests and component layers, named by their digest
//! {cache_dir}/refs/{sha256 of ref}   {"reference": "localhost:5000/demo/hello:0.1.0",
//!                                     "digest": "sha256:…"}: what a tag last pointed to
//! ```
//!
//! Every file is written to a temporary file in its folder and renamed into place, so a
//! reader sees a whole file or none. A blob is hashed again whenever it is read; one that no
//! longer matches its name is deleted and treated as absent (and so pulled again). Nothing
//! is written before it has been verified, so nothing half-downloaded is ever cached.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::layout::{digest_of, sha256_hex};

/// The cache under one directory. Cheap to clone; all I/O runs on blocking threads.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct RefEntry {
    reference: String,
    digest: String,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        Some(self.dir.join("blobs/sha256").join(sha256_hex(digest)?))
    }

    fn ref_path(&self, reference: &str) -> PathBuf {
        let name = digest_of(reference.as_bytes());
        let hex = name.strip_prefix("sha256:").unwrap_or(&name);
        self.dir.join("refs").join(hex)
    }

    /// The blob named `digest`, if cached and intact.
    pub async fn read_blob(&self, digest: &str) -> Option<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let digest = digest.to_string();
        tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path).ok()?;
            if digest_of(&bytes) == digest {
                return Some(bytes);
            }
            tracing::warn!(path = %path.display(), %digest, "cached blob does not match its digest; discarding it");
            let _ = std::fs::remove_file(&path);
            None
        })
        .await
        .ok()
        .flatten()
    }

    /// Stores a verified blob. A failure only costs the cache, so it is logged, not returned.
    pub async fn write_blob(&self, digest: &str, bytes: Vec<u8>) {
        let Some(path) = self.blob_path(digest) else {
            return;
        };
        if digest_of(&bytes) != digest {
            // A caller bug; never store a blob under a name it does not have.
            tracing::error!(%digest, "refusing to cache a blob under another digest");
            return;
        }
        let result = tokio::task::spawn_blocking(move || {
            if path.is_file() {
                return Ok(());
            }
            write_atomically(&path, &bytes)
        })
        .await;
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, dir = %self.dir.display(), "cannot write to the image cache");
        }
    }

    /// The manifest digest `reference` was last pulled as.
    pub async fn read_ref(&self, reference: &str) -> Option<String> {
        let path = self.ref_path(reference);
        let reference = reference.to_string();
        tokio::task::spawn_blocking(move || {
            let entry: RefEntry = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
            (entry.reference == reference && sha256_hex(&entry.digest).is_some())
                .then_some(entry.digest)
        })
        .await
        .ok()
        .flatten()
    }

    /// Records that `reference` points to the manifest `digest`.
    pub async fn write_ref(&self, reference: &str, digest: &str) {
        let path = self.ref_path(reference);
        let entry = RefEntry {
            reference: reference.to_string(),
            digest: digest.to_string(),
        };
        let Ok(bytes) = serde_json::to_vec(&entry) else {
            return;
        };
        let result = tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await;
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, dir = %self.dir.display(), "cannot write to the image cache");
        }
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("cache path has no parent"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_round_trip_and_corrupt_ones_are_discarded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path().to_path_buf());
        let digest = digest_of(b"hello");
        assert_eq!(cache.read_blob(&digest).await, None);
        cache.write_blob(&digest, b"hello".to_vec()).await;
        assert_eq!(
            cache.read_blob(&digest).await.as_deref(),
            Some(&b"hello"[..])
        );

        let path = cache.blob_path(&digest).expect("path");
        std::fs::write(&path, b"jello").expect("corrupt");
        assert_eq!(cache.read_blob(&digest).await, None);
        assert!(!path.exists(), "a corrupt blob is deleted");
    }

    #[tokio::test]
    async fn a_blob_is_never_stored_under_another_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path().to_path_buf());
        let digest = digest_of(b"hello");
        cache.write_blob(&digest, b"other".to_vec()).await;
        assert!(!cache.blob_path(&digest).expect("path").exists());
        cache.write_blob("sha256:../../x", b"x".to_vec()).await;
        assert!(!dir.path().join("x").exists());
    }

    #[tokio::test]
    async fn refs_remember_the_last_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path().to_path_buf());
        let (one, two) = (digest_of(b"1"), digest_of(b"2"));
        assert_eq!(cache.read_ref("r/x:1").await, None);
        cache.write_ref("r/x:1", &one).await;
        cache.write_ref("r/x:1", &two).await;
        assert_eq!(cache.read_ref("r/x:1").await, Some(two));
        assert_eq!(cache.read_ref("r/x:2").await, None);
    }
}
