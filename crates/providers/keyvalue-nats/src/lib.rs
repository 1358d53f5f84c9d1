//! A key-value backend on a NATS JetStream key-value bucket, configured like wasmCloud's
//! `keyvalue-nats` provider so that existing link configuration carries over.
//!
//! [`NatsKvStore`] implements [`trellis_keyvalue::KeyValue`].
//!
//! # Configuration
//!
//! [`NatsKvConfig::from_config`] reads a string map; keys match case-insensitively. The
//! connection keys, shared with the other NATS backends, are `cluster_uri`, `js_domain`,
//! `client_jwt` + `client_seed` and `tls_ca_file`: see [`trellis_nats_connect`]. This
//! backend's own keys:
//!
//! | key | meaning | default |
//! |-----|---------|---------|
//! | `bucket` | the JetStream key-value bucket (letters, digits, `_`, `-`) | `trellis` (wasmCloud requires the key; we default it) |
//! | `enable_bucket_auto_create` | `true` creates the bucket (as `nats kv add` would: history 1, file storage, one replica) if missing | `false` |
//!
//! Other keys (including `tls_ca`, an inline PEM, which is not supported: use `tls_ca_file`)
//! are not errors; they are returned in [`NatsKvConfig::ignored`] for the host to warn about.
//! [`ConnectConfig::request_timeout`] (5 s) bounds every request.
//!
//! # Semantics
//!
//! - **The bucket identifier is ignored**, as in wasmCloud's provider: every identifier opens
//!   the configured `bucket`. Use one configuration per bucket to keep applications apart.
//! - Keys: any guest string works. Keys NATS does not allow (with spaces, `:`, and so on) are
//!   stored encoded; see [`encode_key`]. Keys NATS allows are stored as they are.
//! - `delete` writes a delete marker (as `nats kv del` does); the key then reads as missing.
//! - `increment` is atomic: it reads the entry and writes the new value only if the key's
//!   revision is unchanged (compare-and-swap), retrying on a conflict.
//! - `list-keys` returns every key in one page with no cursor, whatever `cursor` and `limit`
//!   say: NATS key-value has no cursor (wasmCloud's provider does the same). Keys are sorted.
//! - Batch calls run their single-key calls concurrently; they are not atomic.
//! - Values are limited by the server's `max_payload` (1 MiB by default).
//! - The store never fails to start because NATS is down: it connects in the background and
//!   reconnects by itself. While it is not connected, every call fails at once with
//!   `Error::Other("nats at <uri> is unreachable (…); calls will succeed again when it is
//!   back")`; once NATS is back, calls succeed again on the same store. The bucket is looked up
//!   (and, with auto-create, created) on first use, not at start.
//! - A call that fails because the connection dropped or timed out may still have been applied.
//! - [`KeyValue::health`]: the connection state, then the bucket's status from JetStream,
//!   under the request timeout.
//! - [`KeyValue::watch`] is a JetStream key-value watch per key (an ordered consumer that
//!   starts with the next change): a put is a write, with its value; a delete marker or a
//!   purge is a deletion (deleting a key that was never written is reported too: NATS writes
//!   the marker all the same). Each key's changes arrive in order. The watch ends when
//!   JetStream reports it broken.

mod config;
mod keys;

pub use config::{DEFAULT_BUCKET, NatsKvConfig};
pub use keys::{decode_key, encode_key};
pub use trellis_nats_connect::{
    ConfigError, ConnectConfig, DEFAULT_CLUSTER_URI, DEFAULT_REQUEST_TIMEOUT, JwtAuth,
};

use async_nats::jetstream::{self, kv};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use trellis_keyvalue::watch::{Change, Changes, Sent, changes};
use trellis_keyvalue::{Bucket, Error, HealthError, KeyPage, KeyValue, add_counter, parse_counter};
use trellis_nats_connect::Connection;

/// How many compare-and-swap rounds an increment tries before giving up.
const MAX_INCREMENT_ATTEMPTS: u32 = 100;
/// How many single-key calls of a batch run at once.
const BATCH_CONCURRENCY: usize = 16;

/// A key-value store on one NATS JetStream key-value bucket.
pub struct NatsKvStore {
    inner: Arc<Inner>,
}

struct Inner {
    connection: Connection,
    bucket: String,
    auto_create: bool,
    timeout: Duration,
    /// The bucket, looked up on first use.
    store: OnceCell<kv::Store>,
}

impl NatsKvStore {
    /// Creates the store and starts connecting in the background; returns as soon as it is
    /// connected, or after at most a second if NATS does not answer
    /// ([`Connection::connect`]).
    ///
    /// Never fails because NATS is down. If the client cannot even be set up (which
    /// [`NatsKvConfig::from_config`] rules out for configs it produced), every call fails with
    /// the reason.
    pub async fn connect(config: &NatsKvConfig) -> NatsKvStore {
        let connection = Connection::connect(&config.connection, "trellis-keyvalue-nats").await;
        NatsKvStore {
            inner: Arc::new(Inner {
                connection,
                bucket: config.bucket.clone(),
                auto_create: config.auto_create,
                timeout: config.connection.request_timeout,
                store: OnceCell::new(),
            }),
        }
    }

    /// The bucket every identifier opens.
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }
}

#[async_trait]
impl KeyValue for NatsKvStore {
    /// Every identifier opens the configured bucket.
    async fn open(&self, _identifier: &str) -> Result<Arc<dyn Bucket>, Error> {
        Ok(Arc::new(NatsBucket {
            inner: self.inner.clone(),
        }))
    }

    async fn health(&self) -> Result<(), HealthError> {
        self.inner
            .run("check the bucket", |store| async move {
                store.status().await.map(drop).map_err(|e| e.to_string())
            })
            .await?;
        Ok(())
    }

    async fn watch(
        &self,
        keys: BTreeSet<String>,
        capacity: usize,
        source: &str,
    ) -> Result<Changes, Error> {
        let (tx, rx) = changes(capacity, source);
        if keys.is_empty() {
            tokio::spawn(async move { tx.closed().await });
            return Ok(rx);
        }
        let watches = self
            .inner
            .run("watch keys", |store| async move {
                let mut watches = Vec::with_capacity(keys.len());
                for key in &keys {
                    let watch = store
                        .watch(encode_key(key).as_ref())
                        .await
                        .map_err(|e| e.to_string())?;
                    watches.push(watch);
                }
                Ok(watches)
            })
            .await?;
        let mut entries = futures::stream::select_all(watches);
        let (uri, bucket) = (
            self.inner.connection.uri().to_owned(),
            self.inner.bucket.clone(),
        );
        tokio::spawn(async move {
            loop {
                let entry = tokio::select! {
                    entry = entries.next() => entry,
                    () = tx.closed() => break,
                };
                let entry = match entry {
                    Some(Ok(entry)) => entry,
                    Some(Err(e)) => {
                        tracing::warn!(%uri, %bucket, error = %e, "the nats key-value watch broke");
                        break;
                    }
                    None => {
                        tracing::warn!(%uri, %bucket, "the nats key-value watch ended");
                        break;
                    }
                };
                let Some(key) = decode_key(&entry.key) else {
                    continue;
                };
                let change = match entry.operation {
                    kv::Operation::Put => Change::Set {
                        bucket: String::new(),
                        key,
                        value: entry.value.to_vec(),
                    },
                    kv::Operation::Delete | kv::Operation::Purge => Change::Delete {
                        bucket: String::new(),
                        key,
                    },
                };
                if tx.send(change) == Sent::Closed {
                    break;
                }
            }
        });
        Ok(rx)
    }
}

impl Inner {
    /// `Ok` when the client is connected now, else the error a call returns.
    fn connected(&self) -> Result<&jetstream::Context, Error> {
        self.connection
            .jetstream()
            .map_err(|e| Error::Other(e.to_string()))
    }

    /// The bucket, looked up (or created) on first use.
    async fn store(&self) -> Result<kv::Store, Error> {
        let js = self.connected()?;
        self.store
            .get_or_try_init(|| self.open_bucket(js))
            .await
            .cloned()
    }

    async fn open_bucket(&self, js: &jetstream::Context) -> Result<kv::Store, Error> {
        let (bucket, uri) = (&self.bucket, self.connection.uri());
        let get_error = match js.get_key_value(bucket).await {
            Ok(store) => return Ok(store),
            Err(e) => e,
        };
        if !self.auto_create {
            return Err(Error::Other(if is_not_found(&get_error) {
                format!(
                    "nats key-value bucket `{bucket}` does not exist at {uri}: create it \
                     (`nats kv add {bucket}`) or set `enable_bucket_auto_create` to `true`"
                )
            } else {
                format!(
                    "nats key-value bucket `{bucket}` at {uri} could not be opened: {get_error}"
                )
            }));
        }
        match js.create_stream(bucket_stream_config(bucket)).await {
            Ok(_) => {
                tracing::info!(%uri, %bucket, "created nats key-value bucket");
                js.get_key_value(bucket).await.map_err(|e| {
                    Error::Other(format!(
                        "nats key-value bucket `{bucket}` at {uri} was created but cannot be \
                         opened: {e}"
                    ))
                })
            }
            // Someone else may have created it meanwhile.
            Err(create_error) => js.get_key_value(bucket).await.map_err(|_| {
                Error::Other(format!(
                    "nats key-value bucket `{bucket}` at {uri} could not be opened \
                     ({get_error}) nor created ({create_error})"
                ))
            }),
        }
    }

    /// Runs `request` on the bucket: at once an error if not connected, and bounded by the
    /// request timeout. `what` names the request in messages.
    async fn run<T, F, Fut>(&self, what: &str, request: F) -> Result<T, Error>
    where
        F: FnOnce(kv::Store) -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        self.connected()?;
        let limit = self.timeout + Duration::from_millis(500);
        let attempt = async {
            let store = self.store().await?;
            request(store).await.map_err(|e| {
                Error::Other(format!(
                    "nats key-value bucket `{}` at {}: cannot {what}: {e}",
                    self.bucket,
                    self.connection.uri()
                ))
            })
        };
        let result = match tokio::time::timeout(limit, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Error::Other(format!(
                "nats at {} did not answer within {:.1}s",
                self.connection.uri(),
                limit.as_secs_f64()
            ))),
        };
        // A failure caused by losing the connection says so.
        result.map_err(|e| match self.connected() {
            Ok(_) => e,
            Err(_) => Error::Other(
                self.connection
                    .unreachable(format!("disconnected: {e}"))
                    .to_string(),
            ),
        })
    }
}

/// The stream behind a new key-value bucket: what `nats kv add <bucket>` makes (history 1,
/// file storage, one replica, no limits).
///
/// Built here rather than with `create_key_value`, which first reads the account's JetStream
/// info in a form that servers before 2.10 do not send; a stream made this way is the same
/// bucket on every server version.
///
/// `trellis-lattice` (`kv.rs`) builds the same stream for the lattice's own buckets. The two
/// crates share no crate that knows JetStream storage (`trellis-nats-connect` is only the
/// providers' connection, and neither may depend on the other), so each keeps its copy;
/// change them together.
fn bucket_stream_config(bucket: &str) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    }
}

/// Whether looking up a bucket failed because its stream does not exist.
fn is_not_found(e: &jetstream::context::KeyValueError) -> bool {
    use jetstream::context::GetStreamErrorKind;
    use std::error::Error as _;
    let by_code = e
        .source()
        .and_then(|s| s.downcast_ref::<jetstream::context::GetStreamError>())
        .is_some_and(|s| match s.kind() {
            GetStreamErrorKind::JetStream(js) => {
                js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
            }
            _ => false,
        });
    by_code || e.to_string().contains("stream not found")
}

/// The configured bucket, whatever identifier opened it.
struct NatsBucket {
    inner: Arc<Inner>,
}

#[async_trait]
impl Bucket for NatsBucket {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let stored = encode_key(key).into_owned();
        self.inner
            .run("get a key", |store| async move {
                store
                    .get(stored)
                    .await
                    .map(|v| v.map(|b| b.to_vec()))
                    .map_err(|e| e.to_string())
            })
            .await
    }

    async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        let stored = encode_key(key).into_owned();
        self.inner
            .run("set a key", |store| async move {
                store
                    .put(stored, value.into())
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let stored = encode_key(key).into_owned();
        self.inner
            .run("delete a key", |store| async move {
                store.delete(stored).await.map_err(|e| e.to_string())
            })
            .await
    }

    async fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.get(key).await?.is_some())
    }

    async fn list_keys(&self, _cursor: Option<u64>, _limit: usize) -> Result<KeyPage, Error> {
        let mut keys: Vec<String> = self
            .inner
            .run("list keys", |store| async move {
                let keys = store.keys().await.map_err(|e| e.to_string())?;
                keys.try_collect::<Vec<String>>()
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?
            .iter()
            .filter_map(|stored| decode_key(stored))
            .collect();
        keys.sort();
        Ok(KeyPage { keys, cursor: None })
    }

    async fn increment(&self, key: &str, delta: u64) -> Result<u64, Error> {
        let stored = encode_key(key).into_owned();
        for attempt in 0..MAX_INCREMENT_ATTEMPTS {
            let stored = stored.clone();
            let key = key.to_owned();
            let outcome = self
                .inner
                .run("increment a key", |store| async move {
                    let entry = store
                        .entry(stored.as_str())
                        .await
                        .map_err(|e| e.to_string())?;
                    let (current, revision) = match entry {
                        Some(entry) if entry.operation == kv::Operation::Put => {
                            match parse_counter(&key, &entry.value) {
                                Ok(n) => (n, entry.revision),
                                Err(e) => return Ok(Err(e)),
                            }
                        }
                        // Deleted or purged: counts from zero, replacing the marker.
                        Some(entry) => (0, entry.revision),
                        // Never written: revision 0 means "no message for this key yet".
                        None => (0, 0),
                    };
                    let next = match add_counter(&key, current, delta) {
                        Ok(next) => next,
                        Err(e) => return Ok(Err(e)),
                    };
                    match store
                        .update(stored.as_str(), next.to_string().into(), revision)
                        .await
                    {
                        Ok(_) => Ok(Ok(Some(next))),
                        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                            Ok(Ok(None))
                        }
                        Err(e) => Err(e.to_string()),
                    }
                })
                .await?;
            match outcome? {
                Some(next) => return Ok(next),
                None => {
                    // Another writer got in between: try again after a short pause that varies
                    // between writers, so that they do not collide again in lockstep.
                    let jitter = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos());
                    let pause = 1 + u64::from(jitter % 10) + u64::from(attempt.min(20));
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        }
        Err(Error::other(format!(
            "cannot increment `{key}`: it changed under {MAX_INCREMENT_ATTEMPTS} attempts in a row; try again"
        )))
    }

    async fn get_many(&self, keys: Vec<String>) -> Result<Vec<Option<(String, Vec<u8>)>>, Error> {
        futures::stream::iter(keys)
            .map(|key| async move {
                let value = self.get(&key).await?;
                Ok::<_, Error>(value.map(|v| (key, v)))
            })
            .buffered(BATCH_CONCURRENCY)
            .try_collect()
            .await
    }

    async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), Error> {
        futures::stream::iter(pairs)
            .map(|(key, value)| async move { self.set(&key, value).await })
            .buffer_unordered(BATCH_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }

    async fn delete_many(&self, keys: Vec<String>) -> Result<(), Error> {
        futures::stream::iter(keys)
            .map(|key| async move { self.delete(&key).await })
            .buffer_unordered(BATCH_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }
}
