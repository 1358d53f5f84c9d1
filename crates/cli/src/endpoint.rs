//! How the CLI finds a running `trellis up` with no flag.
//!
//! `trellis up app.yaml` listens for control requests on a free loopback port and makes a
//! random token that every request must carry. It writes both to
//! `.trellis/up/app.json` beside the manifest (mode 0600, removed when it stops), and a
//! pointer to that file in the user's index (`$XDG_STATE_HOME/trellis/up/PID.json`, else
//! `~/.local/state/trellis/up/`), so that several `trellis up` on one machine never clash
//! and the CLI can say which ones run.
//!
//! A control command with neither `--embedded` nor `--nats` (nor their environment
//! variables) uses the `trellis up` of the current folder when there is exactly one; with
//! none it talks to the default NATS lattice as before, and when that fails it lists the
//! running `trellis up`s.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a running `trellis up` publishes about its control endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Endpoint {
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// What `Authorization: Bearer …` must say.
    pub(crate) token: String,
    /// The `trellis up` process.
    pub(crate) pid: u32,
    /// The manifest it runs (absolute).
    pub(crate) manifest: PathBuf,
}

/// The user's index entry: where an endpoint file is.
#[derive(Serialize, Deserialize)]
struct IndexEntry {
    endpoint: PathBuf,
}

/// A fresh random token: 256 bits from the OS's generator (two v4 UUIDs' random bits and
/// their fixed version bits; 244 bits of entropy).
pub(crate) fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The endpoint file of the `trellis up` running `manifest`.
fn endpoint_file(manifest: &Path) -> Option<PathBuf> {
    let stem = manifest.file_stem()?.to_string_lossy().into_owned();
    Some(
        manifest
            .parent()?
            .join(".trellis/up")
            .join(format!("{stem}.json")),
    )
}

/// The user's index of running `trellis up`s.
fn index_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("trellis/up"))
}

/// Writes `contents` to `path`, readable by this user only, through a temporary file.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Whether process `pid` runs (on systems without `/proc`, assumed to).
fn alive(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

fn read(path: &Path) -> Option<Endpoint> {
    let endpoint: Endpoint = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    alive(endpoint.pid).then_some(endpoint)
}

/// The published endpoint; its files are removed when this is dropped.
pub(crate) struct Published {
    files: Vec<PathBuf>,
}

impl Drop for Published {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Publishes the endpoint of this process's `trellis up` of `manifest`.
pub(crate) fn publish(manifest: &Path, url: String, token: String) -> anyhow::Result<Published> {
    let manifest = manifest
        .canonicalize()
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let file = endpoint_file(&manifest)
        .with_context(|| format!("{} has no folder", manifest.display()))?;
    let endpoint = Endpoint {
        url,
        token,
        pid: std::process::id(),
        manifest,
    };
    write_private(&file, &serde_json::to_vec_pretty(&endpoint)?).with_context(|| {
        format!(
            "cannot write the control endpoint's token to {}",
            file.display()
        )
    })?;
    let mut files = vec![file.clone()];
    if let Some(dir) = index_dir() {
        let entry = dir.join(format!("{}.json", endpoint.pid));
        match write_private(&entry, &serde_json::to_vec(&IndexEntry { endpoint: file })?) {
            Ok(()) => files.push(entry),
            Err(e) => tracing::warn!(
                error = %e,
                "cannot list this `trellis up` in {} (the CLI still finds it from its folder)",
                dir.display()
            ),
        }
    }
    Ok(Published { files })
}

/// The running `trellis up`s whose manifests are in `dir`.
pub(crate) fn in_folder(dir: &Path) -> Vec<Endpoint> {
    let Ok(entries) = std::fs::read_dir(dir.join(".trellis/up")) else {
        return Vec::new();
    };
    let mut found: Vec<Endpoint> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| read(&e.path()))
        .collect();
    found.sort_by(|a, b| a.manifest.cmp(&b.manifest));
    found
}

/// Every running `trellis up` of this user; stale index entries are removed.
pub(crate) fn all_running() -> Vec<Endpoint> {
    let Some(dir) = index_dir() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let endpoint = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<IndexEntry>(&b).ok())
            .and_then(|entry| read(&entry.endpoint));
        match endpoint {
            Some(endpoint) => found.push(endpoint),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    found.sort_by(|a, b| a.manifest.cmp(&b.manifest));
    found
}

/// The token of the running `trellis up` listening at `url`, if this user runs it.
pub(crate) fn token_for(url: &str) -> Option<String> {
    let cwd = std::env::current_dir().ok();
    cwd.iter()
        .flat_map(|d| in_folder(d))
        .chain(all_running())
        .find(|e| e.url == url)
        .map(|e| e.token)
}

/// One line per endpoint, for messages.
pub(crate) fn describe(endpoints: &[Endpoint]) -> String {
    endpoints
        .iter()
        .map(|e| format!("\n  {} ({})", e.manifest.display(), e.url))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_endpoint_is_found_from_its_folder_and_gone_when_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = dir.path().join("app.yaml");
        std::fs::write(&manifest, "x").expect("write");
        let token = new_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, new_token());
        let published =
            publish(&manifest, "http://127.0.0.1:1".into(), token.clone()).expect("publish");
        let file = dir.path().join(".trellis/up/app.json");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "only its owner reads the token");
        }
        let found = in_folder(dir.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].token, token);
        drop(published);
        assert!(!file.exists());
        assert!(in_folder(dir.path()).is_empty());
    }

    #[test]
    fn endpoints_of_processes_that_are_gone_are_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(".trellis/up/app.json");
        let stale = Endpoint {
            url: "http://127.0.0.1:1".into(),
            token: "t".into(),
            pid: u32::MAX - 1,
            manifest: dir.path().join("app.yaml"),
        };
        write_private(&file, &serde_json::to_vec(&stale).expect("json")).expect("write");
        assert!(in_folder(dir.path()).is_empty());
    }
}
