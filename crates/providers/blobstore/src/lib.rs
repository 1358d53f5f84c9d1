//! The blobstore capability: what a backend must do to serve `wasi:blobstore` 0.2.0-draft,
//! independent of wasmtime, and the one backend Trellis ships, [`fs::FsBlobstore`], which
//! keeps containers as directories under a root directory.
//!
//! Every backend passes [`conformance::check`]; a new backend's tests run it against a real
//! store.
//!
//! Container and object names come from guests and are untrusted: a backend must never let
//! a name reach outside its root (`..`, absolute paths, symlinks). Values move whole, as
//! [`Bytes`], bounded by [`Limits`] which the runtime enforces before a backend sees them.
//! [`Error`] is what a guest sees; [`Blobstore::health`] and [`fs::FsBlobstore::new`] answer
//! the host with errors ([`HealthError`], [`fs::RootError`]) that keep the I/O error as their
//! source.

pub mod conformance;
pub mod fs;

use async_trait::async_trait;
use bytes::Bytes;

/// Why a blobstore call failed; the guest sees the text (the WIT error is a string).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The container does not exist.
    #[error("container `{0}` does not exist")]
    NoSuchContainer(String),
    /// The object does not exist.
    #[error("object `{object}` does not exist in container `{container}`")]
    NoSuchObject {
        /// Container name.
        container: String,
        /// Object name.
        object: String,
    },
    /// The container already exists (on create).
    #[error("container `{0}` already exists")]
    ContainerExists(String),
    /// A container or object name that is not allowed: empty, `.`/`..` segments, absolute,
    /// a NUL byte, or a path that leaves the root through a symlink.
    #[error("invalid name `{name}`: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value or range too large for the limits.
    #[error("{0}")]
    TooLarge(String),
    /// An I/O or backend failure.
    #[error("{0}")]
    Backend(String),
}

/// Why [`Blobstore::health`] found a backend unable to serve calls now. The host shows it in
/// the provider's status and in `health_check_failed` events, with its causes.
pub type HealthError = trellis_provider::HealthError<Error>;

/// Information about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Its name.
    pub name: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// Information about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its name.
    pub name: String,
    /// Its container.
    pub container: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// Size in bytes.
    pub size: u64,
}

/// A blobstore backend. Every method takes names exactly as the guest gave them.
#[async_trait]
pub trait Blobstore: Send + Sync + 'static {
    /// Creates a container; an error if it exists.
    async fn create_container(&self, name: &str) -> Result<ContainerInfo, Error>;
    /// Information about an existing container.
    async fn container_info(&self, name: &str) -> Result<ContainerInfo, Error>;
    /// Whether a container exists.
    async fn container_exists(&self, name: &str) -> Result<bool, Error>;
    /// Deletes a container and everything in it; deleting a missing one succeeds.
    async fn delete_container(&self, name: &str) -> Result<(), Error>;
    /// Bytes `start..=end` of an object (`end` past the end is clamped), at most
    /// `max_bytes` of them.
    async fn get_data(
        &self,
        container: &str,
        object: &str,
        start: u64,
        end: u64,
        max_bytes: u64,
    ) -> Result<Bytes, Error>;
    /// Writes an object whole, replacing any previous value. Readers never see a partial
    /// write.
    async fn write_data(&self, container: &str, object: &str, data: Bytes) -> Result<(), Error>;
    /// Names of every object in a container, sorted.
    async fn list_objects(&self, container: &str) -> Result<Vec<String>, Error>;
    /// Deletes an object; deleting a missing one succeeds.
    async fn delete_object(&self, container: &str, object: &str) -> Result<(), Error>;
    /// Whether an object exists.
    async fn has_object(&self, container: &str, object: &str) -> Result<bool, Error>;
    /// Information about an object.
    async fn object_info(&self, container: &str, object: &str) -> Result<ObjectInfo, Error>;
    /// Deletes every object in a container, keeping the container.
    async fn clear(&self, container: &str) -> Result<(), Error>;
    /// Copies an object, possibly across containers; the destination container must exist.
    async fn copy_object(
        &self,
        src_container: &str,
        src_object: &str,
        dest_container: &str,
        dest_object: &str,
    ) -> Result<(), Error>;
    /// Moves an object, possibly across containers; the destination container must exist.
    async fn move_object(
        &self,
        src_container: &str,
        src_object: &str,
        dest_container: &str,
        dest_object: &str,
    ) -> Result<(), Error>;
    /// `Ok` when the backend can serve calls now, else why not.
    async fn health(&self) -> Result<(), HealthError>;
}

/// Bounds on what a guest may move through the blobstore, enforced by the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest object a component may write or read in one value, in bytes.
    pub max_object_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_object_bytes: 64 * 1024 * 1024,
        }
    }
}
