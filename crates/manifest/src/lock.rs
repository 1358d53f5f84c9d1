//! `trellis.lock`: what each component image of a manifest resolved to, kept beside the
//! manifest and meant to be checked in.
//!
//! A registry reference by tag (`localhost:5000/demo/hello:0.1.0`) names whatever the
//! registry holds under that tag today; the lock records the manifest digest it resolved to,
//! so that the same manifest runs the same bytes tomorrow, on every host, even after the tag
//! moved. A `file://` component is recorded by the SHA-256 of its bytes, so a rebuilt file
//! shows in `git diff`. The file is TOML, one table per image, keyed by the image as the
//! manifest writes it (files relative to the manifest's folder), in sorted order:
//!
//! ```toml
//! # trellis.lock: …
//! version = 1
//!
//! [images."file://build/hello.wasm"]
//! digest = "sha256:5f0c…"
//!
//! [images."localhost:5000/demo/hello:0.1.0"]
//! digest = "sha256:9a1e…"
//! ```
//!
//! This module reads, writes and applies the file; resolving a tag needs a registry and is
//! the caller's business.

use crate::{Application, ImageRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The lockfile's name, in the manifest's folder.
pub const LOCKFILE_NAME: &str = "trellis.lock";

/// The format version this Trellis writes and reads.
pub const LOCKFILE_VERSION: u32 = 1;

const HEADER: &str =
    "# trellis.lock: the digest each component image of the manifest beside it resolved to.
# Written by trellis; check it in. `trellis lock --update` moves tags to what the registry
# holds now; `--locked` refuses to run anything that differs from this file.
";

/// The contents of a `trellis.lock`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// [`LOCKFILE_VERSION`].
    pub version: u32,
    /// Each image, by its key ([`image_key`]).
    #[serde(default)]
    pub images: BTreeMap<String, LockedImage>,
}

/// What one image resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedImage {
    /// `sha256:<hex>`: the OCI manifest digest for a registry image, the SHA-256 of the
    /// file's bytes for a `file://` one.
    pub digest: String,
}

/// Why a lockfile could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The file exists but cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The lockfile.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a lockfile this version understands.
    #[error("{} is not a valid trellis.lock: {message}; delete it and run `trellis lock` to write it again", path.display())]
    Parse {
        /// The lockfile.
        path: PathBuf,
        /// What is wrong, with its position.
        message: String,
    },
    /// The file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The lockfile.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl Lockfile {
    /// An empty lockfile of the current version.
    pub fn new() -> Self {
        Self {
            version: LOCKFILE_VERSION,
            images: BTreeMap::new(),
        }
    }

    /// The lockfile that belongs to the manifest at `manifest`: `trellis.lock` in its folder.
    pub fn path_beside(manifest: &Path) -> PathBuf {
        manifest
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(LOCKFILE_NAME)
    }

    /// Reads the lockfile at `path`; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, LockError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LockError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Self::parse(&text, path).map(Some)
    }

    /// Parses lockfile text; `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, LockError> {
        let lock: Lockfile = toml::from_str(text).map_err(|e| LockError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim().to_owned(),
        })?;
        if lock.version != LOCKFILE_VERSION {
            return Err(LockError::Parse {
                path: path.to_owned(),
                message: format!(
                    "version {} (this Trellis reads version {LOCKFILE_VERSION})",
                    lock.version
                ),
            });
        }
        for (key, image) in &lock.images {
            if !is_sha256_digest(&image.digest) {
                return Err(LockError::Parse {
                    path: path.to_owned(),
                    message: format!(
                        "the digest of `{key}` is `{}`, not `sha256:` and 64 hex digits",
                        image.digest
                    ),
                });
            }
        }
        Ok(lock)
    }

    /// The file's text: a comment saying what it is, then the TOML, keys sorted.
    pub fn render(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    /// Writes the lockfile to `path` (a temporary file renamed over it, so a reader never
    /// sees half of it).
    pub fn save(&self, path: &Path) -> Result<(), LockError> {
        let write = |source| LockError::Write {
            path: path.to_owned(),
            source,
        };
        let tmp = path.with_extension("lock.tmp");
        std::fs::write(&tmp, self.render()).map_err(write)?;
        std::fs::rename(&tmp, path).map_err(write)
    }

    /// The digest recorded for `key`.
    pub fn digest(&self, key: &str) -> Option<&str> {
        self.images.get(key).map(|i| i.digest.as_str())
    }

    /// Records `digest` for `key`; whether that changed anything.
    pub fn record(&mut self, key: String, digest: String) -> bool {
        let new = LockedImage { digest };
        if self.images.get(&key) == Some(&new) {
            return false;
        }
        self.images.insert(key, new);
        true
    }

    /// Drops entries for images `app` no longer names; whether any went.
    pub fn retain_images_of(&mut self, app: &Application) -> bool {
        let keys: Vec<String> = app
            .components
            .iter()
            .map(|c| image_key(app, &c.image))
            .collect();
        let before = self.images.len();
        self.images.retain(|k, _| keys.contains(k));
        self.images.len() != before
    }
}

/// The key of `image` in the lockfile of `app`: a registry reference as written; a file as
/// `file://` and its path relative to the manifest's folder when it is inside it (so the lock
/// reads the same on every checkout), absolute otherwise.
pub fn image_key(app: &Application, image: &ImageRef) -> String {
    match image {
        ImageRef::Remote(reference) => reference.clone(),
        ImageRef::File(path) => {
            let base = app.manifest_path.parent().unwrap_or_else(|| Path::new("/"));
            let shown = path.strip_prefix(base).unwrap_or(path);
            format!("file://{}", shown.display())
        }
    }
}

/// Whether `reference` already names a digest (`repo@sha256:…`, or `repo:tag@sha256:…`).
pub fn has_digest(reference: &str) -> bool {
    reference
        .rsplit_once('@')
        .is_some_and(|(_, d)| is_sha256_digest(d))
}

/// `reference` pinned to `digest`: `localhost:5000/demo/hello:0.1.0@sha256:…`, which OCI
/// clients pull by digest (the tag stays for people to read). A reference that names a
/// digest already is returned as it is.
pub fn pinned(reference: &str, digest: &str) -> String {
    if has_digest(reference) {
        reference.to_owned()
    } else {
        format!("{reference}@{digest}")
    }
}

/// Whether `s` is `sha256:` followed by 64 lower-case hex digits.
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn renders_sorted_with_a_header_and_reads_back() {
        let mut lock = Lockfile::new();
        assert!(lock.record("localhost:5000/demo/hello:0.1.0".into(), D2.into()));
        assert!(lock.record("file://build/hello.wasm".into(), D1.into()));
        assert!(!lock.record("file://build/hello.wasm".into(), D1.into()));
        let text = lock.render();
        assert!(text.starts_with("# trellis.lock"), "{text}");
        let file = text.find("file://build").expect("file entry");
        let remote = text.find("localhost:5000").expect("registry entry");
        assert!(file < remote, "sorted:\n{text}");
        assert_eq!(
            Lockfile::parse(&text, Path::new("trellis.lock")).expect("test setup"),
            lock
        );
    }

    #[test]
    fn bad_files_are_refused_with_what_to_do() {
        let path = Path::new("/app/trellis.lock");
        let e = Lockfile::parse("version = 7\n", path)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("version 7") && e.contains("trellis lock"), "{e}");
        let e = Lockfile::parse(
            "version = 1\n[images.\"x:1\"]\ndigest = \"sha256:abc\"\n",
            path,
        )
        .expect_err("refused")
        .to_string();
        assert!(e.contains("`x:1`") && e.contains("64 hex digits"), "{e}");
        let e = Lockfile::parse("version = 1\nsurprise = true\n", path)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("surprise"), "{e}");
    }

    #[test]
    fn pinning_keeps_the_tag_and_never_pins_twice() {
        assert_eq!(pinned("reg/a:1", D1), format!("reg/a:1@{D1}"));
        let already = format!("reg/a@{D2}");
        assert!(has_digest(&already));
        assert_eq!(pinned(&already, D1), already);
        assert!(!has_digest("reg/a:1"));
        assert!(!has_digest("user@reg/a:1"));
    }

    #[test]
    fn keys_are_relative_to_the_manifest_and_stale_entries_go() {
        let dir = tempfile::tempdir().expect("test setup");
        std::fs::create_dir(dir.path().join("build")).expect("test setup");
        std::fs::write(dir.path().join("build/a.wasm"), b"x").expect("test setup");
        let manifest = dir.path().join("app.yaml");
        std::fs::write(
            &manifest,
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: a\nspec:\n  components:\n    - name: a\n      type: component\n      properties:\n        image: file://./build/a.wasm\n    - name: b\n      type: component\n      properties:\n        image: reg.example/b:1\n",
        )
        .expect("test setup");
        let app = crate::load(&manifest).expect("test setup");
        let keys: Vec<String> = app
            .components
            .iter()
            .map(|c| image_key(&app, &c.image))
            .collect();
        assert_eq!(keys, ["file://build/a.wasm", "reg.example/b:1"]);
        let mut lock = Lockfile::new();
        lock.record("reg.example/b:1".into(), D1.into());
        lock.record("reg.example/gone:1".into(), D2.into());
        assert!(lock.retain_images_of(&app));
        assert_eq!(lock.images.len(), 1);
        assert_eq!(lock.digest("reg.example/b:1"), Some(D1));
    }
}
