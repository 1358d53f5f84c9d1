//! A blobstore on the local file system.
//!
//! # Layout
//!
//! Each container is a directory directly under the root, and each object a regular file
//! inside its container's directory. Object names may contain `/`: `a/b/c` is the file
//! `c` in the directories `a/b`, which a write creates and a delete or move removes again
//! once empty. So a name cannot be both an object and a prefix of another (`a` and `a/b`);
//! writing the second of such a pair is an [`Error::InvalidName`]. Listing walks the
//! container recursively and returns names relative to it, sorted.
//!
//! # Confinement
//!
//! Names come from guests. Before touching the disk, a name is refused if it is empty,
//! absolute, has an empty, `.` or `..` segment, contains a backslash or NUL, or (for a
//! container) contains `/`. Then every component that exists is inspected with
//! `symlink_metadata`, and any symlink is refused, whether it points in or out of the root:
//! nothing here ever follows one. Directories walked by listing, `clear` and
//! `delete_container` are read without following symlinks too (a symlink inside a
//! container is not listed, and is removed as a link, never through it). As a second line,
//! the parent directory of every file opened or written is canonicalized and must lie
//! under the canonical root, and a file opened for reading must be the very file that was
//! inspected (same device and inode).
//!
//! Guests cannot create symlinks; only something with direct write access to the root can.
//! Such a process could in principle swap a checked directory for a symlink in the instant
//! between the checks and the use. Full immunity to that would need `openat`-style
//! resolution; the checks above close every path a guest can influence.
//!
//! # Writes
//!
//! A write goes to a temporary file (`.trellis-tmp-*`) in the object's directory, is
//! synced, and is renamed over the object, so a reader sees the old value or the new one,
//! never a mix. Temporary files are never listed, and names starting with that prefix are
//! reserved.

use crate::{Blobstore, ContainerInfo, Error, HealthError, ObjectInfo};
use async_trait::async_trait;
use bytes::Bytes;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// Prefix of temporary files; reserved in object names so they can be told apart.
const TEMP_PREFIX: &str = ".trellis-tmp-";

/// How often a write is retried when a concurrent delete removes the directory it is
/// writing into.
const WRITE_ATTEMPTS: usize = 3;

/// Why [`FsBlobstore::new`] cannot use a directory as its root.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    /// The directory cannot be created, or its path not resolved.
    #[error("cannot use {} as the blobstore root", root.display())]
    Unusable {
        /// The root as given.
        root: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },
    /// The path resolves to something that is not a directory.
    #[error(
        "cannot use {} as the blobstore root: {} is not a directory",
        root.display(),
        resolved.display()
    )]
    NotADirectory {
        /// The root as given.
        root: PathBuf,
        /// Where it resolved to.
        resolved: PathBuf,
    },
}

/// A [`Blobstore`] keeping containers as directories under a root directory.
#[derive(Debug, Clone)]
pub struct FsBlobstore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Canonical, so that confinement checks can compare canonical paths with it.
    root: PathBuf,
}

impl FsBlobstore {
    /// A blobstore rooted at `root`, which is created if missing.
    pub fn new(root: PathBuf) -> Result<Self, RootError> {
        let unusable = |source| RootError::Unusable {
            root: root.clone(),
            source,
        };
        fs::create_dir_all(&root).map_err(unusable)?;
        let resolved = root.canonicalize().map_err(unusable)?;
        if !resolved.is_dir() {
            return Err(RootError::NotADirectory { root, resolved });
        }
        Ok(Self {
            inner: Arc::new(Inner { root: resolved }),
        })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    async fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, Error> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| Error::Backend(format!("blobstore task failed: {e}")))?
    }
}

fn invalid(name: &str, reason: impl Into<String>) -> Error {
    Error::InvalidName {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

/// An I/O failure as the guest sees it: the kind only, since the full error may name host
/// paths. The full error goes to the log.
fn io_error(what: &str, name: &str, e: &io::Error) -> Error {
    tracing::warn!(error = %e, "blobstore: {what} `{name}` failed");
    Error::Backend(format!("{what} `{name}` failed: {}", e.kind()))
}

fn check_common(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(invalid(name, "it is empty"));
    }
    if name.contains('\0') {
        return Err(invalid(name, "it contains a NUL byte"));
    }
    if name.contains('\\') {
        return Err(invalid(name, "it contains a backslash"));
    }
    Ok(())
}

fn check_segment(name: &str, segment: &str) -> Result<(), Error> {
    match segment {
        "" => Err(invalid(name, "it has an empty path segment")),
        "." | ".." => Err(invalid(name, "`.` and `..` segments are not allowed")),
        _ if segment.starts_with(TEMP_PREFIX) => Err(invalid(
            name,
            format!("names starting with `{TEMP_PREFIX}` are reserved"),
        )),
        _ => Ok(()),
    }
}

fn validate_container(name: &str) -> Result<(), Error> {
    check_common(name)?;
    if name.contains('/') {
        return Err(invalid(name, "container names cannot contain `/`"));
    }
    check_segment(name, name)
}

fn validate_object(name: &str) -> Result<Vec<&str>, Error> {
    check_common(name)?;
    if name.starts_with('/') {
        return Err(invalid(name, "absolute paths are not allowed"));
    }
    let segments: Vec<&str> = name.split('/').collect();
    for segment in &segments {
        check_segment(name, segment)?;
    }
    Ok(segments)
}

/// What a name refers to on disk.
#[derive(Debug)]
enum Entry {
    /// A regular file, with its (not followed) metadata.
    File(Metadata),
    /// A directory.
    Dir(Metadata),
    /// Nothing, or something that cannot hold it (a file where a directory would be).
    Missing,
    /// Something else (a socket, a FIFO, ...): not ours to touch.
    Other,
}

fn created_at(meta: &Metadata) -> u64 {
    meta.created()
        .or_else(|_| meta.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

#[cfg(unix)]
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

impl Inner {
    /// Resolves `segments` below `base` (a directory already checked), refusing any
    /// existing component that is a symlink. `name` is the guest's name, for errors.
    fn walk(&self, base: &Path, segments: &[&str], name: &str) -> Result<(PathBuf, Entry), Error> {
        let mut path = base.to_path_buf();
        let mut entry = Entry::Missing;
        let mut blocked = false;
        for (i, segment) in segments.iter().enumerate() {
            path.push(segment);
            if blocked {
                continue;
            }
            let last = i + 1 == segments.len();
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    tracing::warn!(path = %path.display(), "blobstore: refusing to follow a symlink");
                    return Err(invalid(name, "the path goes through a symlink"));
                }
                Ok(meta) if meta.is_dir() => {
                    if last {
                        entry = Entry::Dir(meta);
                    }
                }
                Ok(meta) if last && meta.is_file() => entry = Entry::File(meta),
                Ok(_) if last => entry = Entry::Other,
                // A file where a directory would have to be: nothing below it exists.
                Ok(_) => blocked = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => blocked = true,
                Err(e) => return Err(io_error("looking up", name, &e)),
            }
        }
        Ok((path, entry))
    }

    /// Fails unless the canonical form of `dir` lies under the root. A second line behind
    /// [`Inner::walk`]: it catches a symlink however it got there.
    fn confine(&self, dir: &Path, name: &str) -> Result<(), Error> {
        let canonical = dir
            .canonicalize()
            .map_err(|e| io_error("resolving", name, &e))?;
        if canonical.starts_with(&self.root) {
            Ok(())
        } else {
            tracing::warn!(path = %dir.display(), "blobstore: path resolves outside the root");
            Err(invalid(name, "the path leaves the blobstore root"))
        }
    }

    fn container_entry(&self, name: &str) -> Result<(PathBuf, Entry), Error> {
        validate_container(name)?;
        self.walk(&self.root, &[name], name)
    }

    /// The directory of an existing container.
    fn container_dir(&self, name: &str) -> Result<PathBuf, Error> {
        match self.container_entry(name)? {
            (path, Entry::Dir(_)) => Ok(path),
            _ => Err(Error::NoSuchContainer(name.to_owned())),
        }
    }

    fn object_entry(
        &self,
        container: &str,
        object: &str,
    ) -> Result<(PathBuf, PathBuf, Entry), Error> {
        validate_container(container)?;
        let segments = validate_object(object)?;
        let dir = self.container_dir(container)?;
        let (path, entry) = self.walk(&dir, &segments, object)?;
        Ok((dir, path, entry))
    }

    /// An existing object's path and metadata.
    fn existing_object(
        &self,
        container: &str,
        object: &str,
    ) -> Result<(PathBuf, PathBuf, Metadata), Error> {
        match self.object_entry(container, object)? {
            (dir, path, Entry::File(meta)) => Ok((dir, path, meta)),
            _ => Err(no_such_object(container, object)),
        }
    }

    /// Opens an object for reading, making sure it is the file that was checked.
    ///
    /// A concurrent write renames a new file over the object, which can land between the
    /// check and the open; the check is then simply repeated on the new file, a few times.
    fn open_object(&self, container: &str, object: &str) -> Result<(File, Metadata), Error> {
        const ATTEMPTS: usize = 8;
        for _ in 1..ATTEMPTS {
            match self.open_object_once(container, object) {
                Err(Replaced) => continue,
                Ok(result) => return result,
            }
        }
        match self.open_object_once(container, object) {
            Ok(result) => result,
            Err(Replaced) => Err(invalid(
                object,
                "the object kept being replaced while being opened",
            )),
        }
    }

    fn open_object_once(
        &self,
        container: &str,
        object: &str,
    ) -> Result<Result<(File, Metadata), Error>, Replaced> {
        let (_, path, checked) = match self.existing_object(container, object) {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(parent) = path.parent()
            && let Err(e) = self.confine(parent, object)
        {
            return Ok(Err(e));
        }
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Err(no_such_object(container, object)));
            }
            Err(e) => return Ok(Err(io_error("opening", object, &e))),
        };
        let meta = match file.metadata() {
            Ok(meta) => meta,
            Err(e) => return Ok(Err(io_error("reading", object, &e))),
        };
        if !same_file(&checked, &meta) || !meta.is_file() {
            // Replaced between the check and the open; the new file was not checked yet.
            tracing::debug!(path = %path.display(), "blobstore: object changed while being opened; checking again");
            return Err(Replaced);
        }
        Ok(Ok((file, meta)))
    }

    /// Creates the directories an object's name implies, refusing symlinks and objects in
    /// the way, and returns the directory the object goes in and its final path.
    fn prepare_target(&self, dir: &Path, object: &str) -> Result<(PathBuf, PathBuf), Error> {
        let segments = validate_object(object)?;
        let (parents, file_name) = segments.split_at(segments.len() - 1);
        let mut parent = dir.to_path_buf();
        for segment in parents {
            parent.push(segment);
            match fs::create_dir(&parent) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_error("creating a directory for", object, &e)),
            }
            let meta = fs::symlink_metadata(&parent)
                .map_err(|e| io_error("creating a directory for", object, &e))?;
            if meta.file_type().is_symlink() {
                tracing::warn!(path = %parent.display(), "blobstore: refusing to follow a symlink");
                return Err(invalid(object, "the path goes through a symlink"));
            }
            if !meta.is_dir() {
                return Err(invalid(
                    object,
                    format!("`{segment}` is an object, so it cannot also be a directory"),
                ));
            }
        }
        self.confine(&parent, object)?;
        let target = parent.join(file_name[0]);
        match fs::symlink_metadata(&target) {
            Ok(meta) if meta.file_type().is_symlink() => {
                tracing::warn!(path = %target.display(), "blobstore: refusing to replace a symlink");
                Err(invalid(object, "the path goes through a symlink"))
            }
            Ok(meta) if meta.is_dir() => Err(invalid(
                object,
                "other objects are named below it, so it cannot be an object itself",
            )),
            Ok(meta) if !meta.is_file() => Err(invalid(object, "it is not a regular file")),
            Ok(_) => Ok((parent, target)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((parent, target)),
            Err(e) => Err(io_error("looking up", object, &e)),
        }
    }

    /// Writes an object atomically with `fill`, which may be called again on a retry.
    fn write_atomic(
        &self,
        container: &str,
        object: &str,
        mut fill: impl FnMut(&mut File) -> io::Result<()>,
    ) -> Result<(), Error> {
        validate_container(container)?;
        validate_object(object)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = self.container_dir(container)?;
            let (parent, target) = self.prepare_target(&dir, object)?;
            match write_temp_then_rename(&parent, &target, &mut fill) {
                Ok(()) => return Ok(()),
                // A concurrent delete pruned the directory just created; make it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < WRITE_ATTEMPTS => {}
                Err(e) => return Err(io_error("writing", object, &e)),
            }
        }
    }

    /// Removes the now-empty directories between `path` and the container directory
    /// `dir`, so a deleted `a/b` leaves no `a` behind to block a later object `a`.
    fn prune_empty_parents(&self, dir: &Path, path: &Path) {
        let mut current = path.parent();
        while let Some(parent) = current {
            if parent == dir || !parent.starts_with(dir) {
                break;
            }
            // Fails when not empty (or already gone), which ends the walk.
            if fs::remove_dir(parent).is_err() {
                break;
            }
            current = parent.parent();
        }
    }

    fn container_info(&self, name: &str) -> Result<ContainerInfo, Error> {
        match self.container_entry(name)? {
            (_, Entry::Dir(meta)) => Ok(ContainerInfo {
                name: name.to_owned(),
                created_at: created_at(&meta),
            }),
            _ => Err(Error::NoSuchContainer(name.to_owned())),
        }
    }

    fn create_container(&self, name: &str) -> Result<ContainerInfo, Error> {
        let (path, entry) = self.container_entry(name)?;
        if !matches!(entry, Entry::Missing) {
            return Err(Error::ContainerExists(name.to_owned()));
        }
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::ContainerExists(name.to_owned()));
            }
            Err(e) => return Err(io_error("creating container", name, &e)),
        }
        self.container_info(name)
    }

    fn delete_container(&self, name: &str) -> Result<(), Error> {
        match self.container_entry(name)? {
            // remove_dir_all does not follow symlinks it meets inside; it unlinks them.
            (path, Entry::Dir(_)) => match fs::remove_dir_all(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_error("deleting container", name, &e)),
            },
            // Absent, or not a directory and so not a container of ours.
            _ => Ok(()),
        }
    }

    fn get_data(
        &self,
        container: &str,
        object: &str,
        start: u64,
        end: u64,
        max_bytes: u64,
    ) -> Result<Bytes, Error> {
        let (file, meta) = self.open_object(container, object)?;
        let size = meta.len();
        if end < start {
            return Err(Error::Backend(format!(
                "invalid range {start}..={end} for `{object}`: end is before start"
            )));
        }
        if start > size {
            return Err(Error::Backend(format!(
                "range start {start} is past the end of `{object}` ({size} bytes)"
            )));
        }
        let stop = end.saturating_add(1).min(size);
        let len = stop.saturating_sub(start);
        if len > max_bytes {
            return Err(Error::TooLarge(format!(
                "range {start}..={end} of `{object}` is {len} bytes, more than the {max_bytes} allowed"
            )));
        }
        let mut file = file;
        file.seek(SeekFrom::Start(start))
            .map_err(|e| io_error("reading", object, &e))?;
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(len)
            .read_to_end(&mut buf)
            .map_err(|e| io_error("reading", object, &e))?;
        Ok(Bytes::from(buf))
    }

    fn list_objects(&self, container: &str) -> Result<Vec<String>, Error> {
        let dir = self.container_dir(container)?;
        let mut names = Vec::new();
        collect_objects(&dir, "", &mut names)
            .map_err(|e| io_error("listing container", container, &e))?;
        names.sort();
        Ok(names)
    }

    fn delete_object(&self, container: &str, object: &str) -> Result<(), Error> {
        let (dir, path, entry) = self.object_entry(container, object)?;
        // A directory (a prefix of other names) or something foreign is not an object, so
        // there is nothing by that name to delete.
        let Entry::File(_) = entry else {
            return Ok(());
        };
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("deleting", object, &e)),
        }
        self.prune_empty_parents(&dir, &path);
        Ok(())
    }

    fn has_object(&self, container: &str, object: &str) -> Result<bool, Error> {
        Ok(matches!(
            self.object_entry(container, object)?.2,
            Entry::File(_)
        ))
    }

    fn object_info(&self, container: &str, object: &str) -> Result<ObjectInfo, Error> {
        let (_, _, meta) = self.existing_object(container, object)?;
        Ok(ObjectInfo {
            name: object.to_owned(),
            container: container.to_owned(),
            created_at: created_at(&meta),
            size: meta.len(),
        })
    }

    fn clear(&self, container: &str) -> Result<(), Error> {
        let dir = self.container_dir(container)?;
        let entries =
            fs::read_dir(&dir).map_err(|e| io_error("clearing container", container, &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("clearing container", container, &e))?;
            // Leave writes in progress alone; they land after the clear, as if they had
            // started after it.
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                continue;
            }
            // `file_type` does not follow symlinks, so a symlink is unlinked, never entered.
            let file_type = entry
                .file_type()
                .map_err(|e| io_error("clearing container", container, &e))?;
            let result = if file_type.is_dir() {
                fs::remove_dir_all(entry.path())
            } else {
                fs::remove_file(entry.path())
            };
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("clearing container", container, &e)),
            }
        }
        Ok(())
    }

    fn copy_object(
        &self,
        src_container: &str,
        src_object: &str,
        dest_container: &str,
        dest_object: &str,
    ) -> Result<(), Error> {
        validate_container(dest_container)?;
        validate_object(dest_object)?;
        let (mut src, _) = self.open_object(src_container, src_object)?;
        self.write_atomic(dest_container, dest_object, |file| {
            src.seek(SeekFrom::Start(0))?;
            io::copy(&mut src, file).map(drop)
        })
    }

    fn move_object(
        &self,
        src_container: &str,
        src_object: &str,
        dest_container: &str,
        dest_object: &str,
    ) -> Result<(), Error> {
        validate_container(dest_container)?;
        validate_object(dest_object)?;
        let (src_dir, src_path, _) = self.existing_object(src_container, src_object)?;
        if let Some(parent) = src_path.parent() {
            self.confine(parent, src_object)?;
        }
        let dest_dir = self.container_dir(dest_container)?;
        let (_, target) = self.prepare_target(&dest_dir, dest_object)?;
        if target == src_path {
            return Ok(());
        }
        // rename moves the directory entry itself, never what a symlink points to.
        match fs::rename(&src_path, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(no_such_object(src_container, src_object));
            }
            // A mount point inside the root; fall back to copy and delete.
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                self.copy_object(src_container, src_object, dest_container, dest_object)?;
                return self.delete_object(src_container, src_object);
            }
            Err(e) => return Err(io_error("moving", src_object, &e)),
        }
        self.prune_empty_parents(&src_dir, &src_path);
        Ok(())
    }

    fn health(&self) -> Result<(), HealthError> {
        match fs::metadata(&self.root) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(HealthError::unhealthy(format!(
                "blobstore root {} is no longer a directory",
                self.root.display()
            ))),
            Err(e) => Err(HealthError::caused_by(
                format!("blobstore root {} is unusable", self.root.display()),
                e,
            )),
        }
    }
}

fn no_such_object(container: &str, object: &str) -> Error {
    Error::NoSuchObject {
        container: container.to_owned(),
        object: object.to_owned(),
    }
}

fn write_temp_then_rename(
    parent: &Path,
    target: &Path,
    fill: &mut impl FnMut(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(parent)?;
    fill(temp.as_file_mut())?;
    temp.as_file_mut().flush()?;
    // Without the sync a crash soon after the rename can leave an empty object on some
    // file systems.
    temp.as_file().sync_all()?;
    temp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

/// Appends the names of the regular files below `dir` (as `prefix` + relative path) that a
/// guest could name, without following symlinks.
fn collect_objects(dir: &Path, prefix: &str, names: &mut Vec<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(file_name) = entry.file_name().into_string() else {
            tracing::debug!(path = %entry.path().display(), "blobstore: not listing a non-UTF-8 name");
            continue;
        };
        let name = format!("{prefix}{file_name}");
        if validate_object(&name).is_err() {
            // Temporary files, and anything put there by other means that a guest could
            // not address anyway.
            continue;
        }
        let file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if file_type.is_dir() {
            match collect_objects(&entry.path(), &format!("{name}/"), names) {
                Ok(()) => {}
                // Deleted (and pruned) while listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        } else if file_type.is_file() {
            names.push(name);
        }
    }
    Ok(())
}

#[async_trait]
impl Blobstore for FsBlobstore {
    async fn create_container(&self, name: &str) -> Result<ContainerInfo, Error> {
        let name = name.to_owned();
        self.run(move |inner| inner.create_container(&name)).await
    }

    async fn container_info(&self, name: &str) -> Result<ContainerInfo, Error> {
        let name = name.to_owned();
        self.run(move |inner| inner.container_info(&name)).await
    }

    async fn container_exists(&self, name: &str) -> Result<bool, Error> {
        let name = name.to_owned();
        self.run(move |inner| Ok(matches!(inner.container_entry(&name)?.1, Entry::Dir(_))))
            .await
    }

    async fn delete_container(&self, name: &str) -> Result<(), Error> {
        let name = name.to_owned();
        self.run(move |inner| inner.delete_container(&name)).await
    }

    async fn get_data(
        &self,
        container: &str,
        object: &str,
        start: u64,
        end: u64,
        max_bytes: u64,
    ) -> Result<Bytes, Error> {
        let (container, object) = (container.to_owned(), object.to_owned());
        self.run(move |inner| inner.get_data(&container, &object, start, end, max_bytes))
            .await
    }

    async fn write_data(&self, container: &str, object: &str, data: Bytes) -> Result<(), Error> {
        let (container, object) = (container.to_owned(), object.to_owned());
        self.run(move |inner| inner.write_atomic(&container, &object, |file| file.write_all(&data)))
            .await
    }

    async fn list_objects(&self, container: &str) -> Result<Vec<String>, Error> {
        let container = container.to_owned();
        self.run(move |inner| inner.list_objects(&container)).await
    }

    async fn delete_object(&self, container: &str, object: &str) -> Result<(), Error> {
        let (container, object) = (container.to_owned(), object.to_owned());
        self.run(move |inner| inner.delete_object(&container, &object))
            .await
    }

    async fn has_object(&self, container: &str, object: &str) -> Result<bool, Error> {
        let (container, object) = (container.to_owned(), object.to_owned());
        self.run(move |inner| inner.has_object(&container, &object))
            .await
    }

    async fn object_info(&self, container: &str, object: &str) -> Result<ObjectInfo, Error> {
        let (container, object) = (container.to_owned(), object.to_owned());
        self.run(move |inner| inner.object_info(&container, &object))
            .await
    }

    async fn clear(&self, container: &str) -> Result<(), Error> {
        let container = container.to_owned();
        self.run(move |inner| inner.clear(&container)).await
    }

    async fn copy_object(
        &self,
        src_container: &str,
        src_object: &str,
        dest_container: &str,
        dest_object: &str,
    ) -> Result<(), Error> {
        let names = [src_container, src_object, dest_container, dest_object].map(str::to_owned);
        self.run(move |inner| {
            let [sc, so, dc, dobj] = &names;
            inner.copy_object(sc, so, dc, dobj)
        })
        .await
    }

    async fn move_object(
        &self,
        src_container: &str,
        src_object: &str,
        dest_container: &str,
        dest_object: &str,
    ) -> Result<(), Error> {
        let names = [src_container, src_object, dest_container, dest_object].map(str::to_owned);
        self.run(move |inner| {
            let [sc, so, dc, dobj] = &names;
            inner.move_object(sc, so, dc, dobj)
        })
        .await
    }

    async fn health(&self) -> Result<(), HealthError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.health())
            .await
            .map_err(|e| HealthError::caused_by("blobstore task failed", e))?
    }
}

/// The object was swapped for another file between its check and its open.
struct Replaced;
