//! The key-value capability: what a backend must do to serve `wasi:keyvalue` 0.2.0-draft
//! (`store`, `atomics`, `batch`), independent of wasmtime and of any particular database.
//!
//! The runtime turns guest calls into calls on a [`KeyValue`] backend and its [`Bucket`]s;
//! it enforces the [`Limits`] before a backend sees a request, so backends can trust sizes.
//! Backends live in their own crates (`trellis-keyvalue-redb`, `-redis`, `-nats`) so that
//! each pulls in only its own client library; [`memory::MemoryStore`] lives here because it
//! needs nothing.
//!
//! Errors split the way the WIT does: [`Error::NoSuchStore`] and [`Error::AccessDenied`] for
//! what the guest asked wrongly, [`Error::Other`] for everything else (a backend that is
//! down, a value that is not a number). They are values the guest sees, never traps.
//! [`KeyValue::health`] answers the host, not a guest: a [`HealthError`] that keeps what
//! failed underneath as its source.
//!
//! [`KeyValue::watch`] reports changes to chosen keys, for `wasi:keyvalue/watcher`: see
//! [`watch`].

pub mod conformance;
pub mod memory;
pub mod watch;

use async_trait::async_trait;
use std::collections::BTreeSet;
use std::sync::Arc;

/// An error a guest sees as `wasi:keyvalue/store.error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bucket identifier is not one this backend serves.
    #[error("no such store")]
    NoSuchStore,
    /// The component may not use this bucket.
    #[error("access denied")]
    AccessDenied,
    /// Anything else: the message says what went wrong and, where it can, what to do.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An [`Error::Other`] from anything printable.
    pub fn other(message: impl std::fmt::Display) -> Self {
        Error::Other(message.to_string())
    }
}

/// Why [`KeyValue::health`] found a backend unable to serve calls now. The host shows it in
/// the provider's status and in `health_check_failed` events, with its causes.
pub type HealthError = trellis_provider::HealthError<Error>;

/// One page of `list-keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys on this page, in no particular order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` when this is the last page.
    pub cursor: Option<u64>,
}

/// A key-value backend: a factory of buckets plus a health check.
#[async_trait]
pub trait KeyValue: Send + Sync + 'static {
    /// Opens the bucket a guest names in `wasi:keyvalue/store.open`.
    ///
    /// What `identifier` means is the backend's choice and is documented with it: the
    /// embedded stores keep one keyspace per identifier; Redis and NATS use the bucket or
    /// database their config names.
    async fn open(&self, identifier: &str) -> Result<Arc<dyn Bucket>, Error>;

    /// `Ok` when the backend can serve calls now, else why not (for example "connection
    /// refused"). Called periodically by the host; must not hang longer than a few seconds.
    async fn health(&self) -> Result<(), HealthError>;

    /// Starts reporting every write and deletion of `keys` (in any bucket this backend
    /// serves), in the order the backend applied them, into a queue of at most `capacity`
    /// changes (beyond which new ones are dropped with a warning, see
    /// [`watch::ChangeSender::send`]). `source` names the watch in those warnings.
    ///
    /// Returns once the watch is live: a write that starts after it returns is reported. The
    /// [`watch::Changes`] end when the backend loses what it watches through (a broken
    /// connection); the caller then watches again. An error means the watch could not be set
    /// up now (the server is unreachable, or cannot report changes); the message says why.
    async fn watch(
        &self,
        keys: BTreeSet<String>,
        capacity: usize,
        source: &str,
    ) -> Result<watch::Changes, Error>;
}

/// A collection of key-value pairs.
///
/// The batch methods have default implementations in terms of the single-key ones;
/// backends override them when the database can do better in one round trip.
#[async_trait]
pub trait Bucket: Send + Sync + 'static {
    /// The value at `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// Sets `key` to `value`, replacing any value.
    async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), Error>;
    /// Removes `key`; removing a missing key succeeds.
    async fn delete(&self, key: &str) -> Result<(), Error>;
    /// Whether `key` has a value.
    async fn exists(&self, key: &str) -> Result<bool, Error>;
    /// A page of keys starting at `cursor` (`None` = from the start), at most `limit` long.
    async fn list_keys(&self, cursor: Option<u64>, limit: usize) -> Result<KeyPage, Error>;
    /// Adds `delta` to the number stored at `key` (missing = 0) atomically; returns the new
    /// value. The stored form is the decimal text of the number, as Redis `INCRBY` keeps it,
    /// so a value written by one backend reads the same in another. A value that is not a
    /// decimal `u64`, or an overflow, is an [`Error::Other`] and leaves the value unchanged.
    async fn increment(&self, key: &str, delta: u64) -> Result<u64, Error>;

    /// The values at `keys`, `None` for missing ones, in the order asked.
    async fn get_many(&self, keys: Vec<String>) -> Result<Vec<Option<(String, Vec<u8>)>>, Error> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let value = self.get(&key).await?;
            out.push(value.map(|v| (key, v)));
        }
        Ok(out)
    }
    /// Sets every pair; not atomic.
    async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), Error> {
        for (key, value) in pairs {
            self.set(&key, value).await?;
        }
        Ok(())
    }
    /// Deletes every key; not atomic.
    async fn delete_many(&self, keys: Vec<String>) -> Result<(), Error> {
        for key in keys {
            self.delete(&key).await?;
        }
        Ok(())
    }
}

/// Bounds on what a guest may ask of a key-value backend, enforced by the runtime before a
/// backend sees the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
    /// Most keys in one batch call.
    pub max_batch_keys: usize,
    /// Most keys returned by one `list-keys` call.
    pub list_page_size: usize,
    /// Most changes to watched keys waiting for one watching component; beyond, new changes
    /// are dropped with a warning.
    pub max_queued_changes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_key_bytes: 1024,
            max_value_bytes: 1024 * 1024,
            max_batch_keys: 1000,
            list_page_size: 1000,
            max_queued_changes: watch::DEFAULT_MAX_QUEUED_CHANGES,
        }
    }
}

/// Parses the decimal counter stored at a key, for [`Bucket::increment`] implementations.
pub fn parse_counter(key: &str, bytes: &[u8]) -> Result<u64, Error> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            Error::other(format!(
                "cannot increment `{key}`: its value is not a decimal unsigned integer"
            ))
        })
}

/// `current + delta`, or the error a guest sees on overflow.
pub fn add_counter(key: &str, current: u64, delta: u64) -> Result<u64, Error> {
    current.checked_add(delta).ok_or_else(|| {
        Error::other(format!(
            "cannot increment `{key}`: the result overflows u64"
        ))
    })
}
