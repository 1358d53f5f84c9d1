//! A blobstore backend on NATS JetStream object stores, configured like wasmCloud's
//! `blobstore-nats` provider so that existing link configuration carries over.
//!
//! [`NatsBlobstore`] implements [`trellis_blobstore::Blobstore`] and passes its
//! [conformance checks](trellis_blobstore::conformance).
//!
//! # Containers are object-store buckets, named as the guest names them
//!
//! The container `photos` is the object-store bucket `photos` (the JetStream stream
//! `OBJ_photos`), exactly as wasmCloud's provider does it. So a bucket made by a component
//! under wasmCloud, or with `nats object add photos`, is the same container here, and
//! `nats object ls photos` shows what a component wrote. The price is NATS's rule for bucket
//! names: letters, digits, `_` and `-` only. Any other container name (`my.photos`,
//! `a/b`) is refused with [`Error::InvalidName`], which says which characters work, rather
//! than being encoded into a bucket nobody would recognise.
//!
//! Object names are any non-empty string up to [`MAX_OBJECT_NAME_BYTES`] bytes: the object
//! store encodes them itself, so `/`, `..` or spaces are ordinary characters and never reach
//! a file system. `list-objects` returns them sorted.
//!
//! # Configuration
//!
//! [`NatsBlobConfig::from_config`] reads a string map; keys match case-insensitively. The
//! connection keys, shared with the other NATS backends, are `cluster_uri`, `js_domain`,
//! `client_jwt` + `client_seed` and `tls_ca_file`: see [`trellis_nats_connect`]. This
//! backend's own keys:
//!
//! | key | meaning | default |
//! |-----|---------|---------|
//! | `max_write_wait` | seconds one object's data may take to move (write, read, copy, move) | `30` |
//! | `max_age` | seconds the server keeps an object in a container this backend creates; `0` for ever | `0` |
//! | `storage_type` | `file` or `memory`, for containers this backend creates | `file` |
//! | `num_replicas` | replicas, 1 to 5, for containers this backend creates | `1` |
//! | `compression` | `true` compresses containers this backend creates (S2, NATS 2.10+) | `false` |
//!
//! Other keys (including `tls_ca`, an inline PEM, which is not supported: use `tls_ca_file`)
//! are not errors; they are returned in [`NatsBlobConfig::ignored`] for the host to warn
//! about. [`ConnectConfig::request_timeout`] (5 s) bounds every metadata request.
//!
//! # Semantics
//!
//! - `create-container` is exclusive: of two creators of one name, one gets
//!   [`Error::ContainerExists`]. `created-at` is when the bucket's stream was created.
//! - An object's `created-at` is when its current value was written (the object store keeps
//!   no other time); wasmCloud's provider reports 0.
//! - `get-data(start, end)` reads the inclusive range with `end` clamped to the size, as the
//!   directory backend does (wasmCloud's provider ignores the range and returns the whole
//!   object). The object store has no ranged read: the bytes before `start` are streamed and
//!   dropped.
//! - A write replaces an object whole: readers see the old value or the new one, and a write
//!   that fails midway leaves the old value. A read running while the object is replaced
//!   may fail (its chunks are purged); it never returns a mix.
//! - `clear` purges the bucket's stream; `delete-container` deletes it. Deleting a missing
//!   object or container succeeds.
//! - Copying or moving an object onto itself does nothing (after checking it exists).
//! - The store never fails to start because NATS is down: it connects in the background and
//!   reconnects by itself. While it is not connected, every call fails at once with
//!   `nats at <uri> is unreachable (…); calls will succeed again when it is back`.
//! - [`Blobstore::health`]: the connection state, then a JetStream account request, under
//!   the request timeout; a server without JetStream is reported as such.

mod config;

pub use config::{DEFAULT_MAX_WRITE_WAIT, NatsBlobConfig, Storage};
pub use trellis_nats_connect::{
    ConfigError, ConnectConfig, DEFAULT_CLUSTER_URI, DEFAULT_REQUEST_TIMEOUT, JwtAuth,
};

use async_nats::jetstream::{self, object_store};
use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use trellis_blobstore::{Blobstore, ContainerInfo, Error, HealthError, ObjectInfo};
use trellis_nats_connect::Connection;

/// The longest object name accepted: the name travels (encoded) in a subject, which NATS
/// bounds.
pub const MAX_OBJECT_NAME_BYTES: usize = 1024;
/// The longest container name accepted.
pub const MAX_CONTAINER_NAME_BYTES: usize = 200;
/// Slack on top of a timeout, so that the library's own timeout answers first.
const SLACK: Duration = Duration::from_millis(500);

/// A blobstore on NATS JetStream object stores: one bucket per container.
pub struct NatsBlobstore {
    inner: Arc<Inner>,
}

struct Inner {
    connection: Connection,
    storage: Storage,
    /// Bounds a metadata request.
    timeout: Duration,
    /// Bounds moving one object's data (`max_write_wait`).
    data_timeout: Duration,
}

impl NatsBlobstore {
    /// Creates the store and starts connecting in the background; returns as soon as it is
    /// connected, or after at most a second if NATS does not answer
    /// ([`Connection::connect`]).
    ///
    /// Never fails because NATS is down. If the client cannot even be set up (which
    /// [`NatsBlobConfig::from_config`] rules out for configs it produced), every call fails
    /// with the reason.
    pub async fn connect(config: &NatsBlobConfig) -> NatsBlobstore {
        let connection = Connection::connect(&config.connection, "trellis-blobstore-nats").await;
        NatsBlobstore {
            inner: Arc::new(Inner {
                connection,
                storage: config.storage.clone(),
                timeout: config.connection.request_timeout,
                data_timeout: config.max_write_wait,
            }),
        }
    }
}

/// Refuses container names that are not object-store bucket names.
fn check_container(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "a container name cannot be empty".to_owned()
    } else if name.len() > MAX_CONTAINER_NAME_BYTES {
        format!("longer than {MAX_CONTAINER_NAME_BYTES} bytes")
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        format!(
            "{c:?} is not allowed: a container is a NATS object-store bucket, whose name has \
             only letters, digits, `_` and `-`"
        )
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// Refuses object names the object store cannot hold.
fn check_object(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "an object name cannot be empty".to_owned()
    } else if name.len() > MAX_OBJECT_NAME_BYTES {
        format!("longer than {MAX_OBJECT_NAME_BYTES} bytes")
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

fn stream_name(container: &str) -> String {
    format!("OBJ_{container}")
}

/// Whether `code` is the JetStream error somewhere in `error`'s chain.
fn has_code(error: &(dyn StdError + 'static), code: jetstream::ErrorCode) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(e) = e.downcast_ref::<jetstream::context::GetStreamError>()
            && let jetstream::context::GetStreamErrorKind::JetStream(js) = e.kind()
            && js.error_code() == code
        {
            return true;
        }
        if let Some(e) = e.downcast_ref::<jetstream::context::CreateStreamError>()
            && let jetstream::context::CreateStreamErrorKind::JetStream(js) = e.kind()
            && js.error_code() == code
        {
            return true;
        }
        next = e.source();
    }
    false
}

fn stream_missing(error: &(dyn StdError + 'static)) -> bool {
    has_code(error, jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// Seconds since the Unix epoch, never negative.
fn unix_seconds(t: time::OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp()).unwrap_or(0)
}

impl Inner {
    /// `Ok` when the client is connected now, else the error a call returns.
    fn connected(&self) -> Result<&jetstream::Context, Error> {
        self.connection
            .jetstream()
            .map_err(|e| Error::Backend(e.to_string()))
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Backend(format!(
            "nats object store at {}: cannot {what}: {e}",
            self.connection.uri()
        ))
    }

    /// Runs `request` at once with an error if not connected, bounded by `limit`. A failure
    /// while the connection is down says so.
    async fn run<T, Fut>(&self, what: &str, limit: Duration, request: Fut) -> Result<T, Error>
    where
        Fut: Future<Output = Result<T, Error>>,
    {
        self.connected()?;
        let limit = limit + SLACK;
        let result = match tokio::time::timeout(limit, request).await {
            Ok(result) => result,
            Err(_) => Err(Error::Backend(format!(
                "nats at {} did not finish ({what}) within {:.1}s",
                self.connection.uri(),
                limit.as_secs_f64()
            ))),
        };
        result.map_err(|e| {
            if matches!(e, Error::Backend(_)) && self.connected().is_err() {
                Error::Backend(
                    self.connection
                        .unreachable(format!("disconnected: {e}"))
                        .to_string(),
                )
            } else {
                e
            }
        })
    }

    /// The stream behind a container.
    async fn stream(&self, container: &str) -> Result<jetstream::stream::Stream, Error> {
        check_container(container)?;
        let js = self.connected()?;
        js.get_stream(stream_name(container)).await.map_err(|e| {
            if stream_missing(&e) {
                Error::NoSuchContainer(container.to_owned())
            } else {
                self.failed(&format!("look up container `{container}`"), e)
            }
        })
    }

    /// The object store of a container.
    async fn bucket(&self, container: &str) -> Result<object_store::ObjectStore, Error> {
        check_container(container)?;
        let js = self.connected()?;
        js.get_object_store(container).await.map_err(|e| {
            if stream_missing(&e) {
                Error::NoSuchContainer(container.to_owned())
            } else {
                self.failed(&format!("open container `{container}`"), e)
            }
        })
    }

    fn no_object(container: &str, object: &str) -> Error {
        Error::NoSuchObject {
            container: container.to_owned(),
            object: object.to_owned(),
        }
    }

    /// The object's info, `None` if it is missing or deleted.
    async fn info(
        &self,
        bucket: &object_store::ObjectStore,
        container: &str,
        object: &str,
    ) -> Result<Option<object_store::ObjectInfo>, Error> {
        match bucket.info(object).await {
            Ok(info) if info.deleted => Ok(None),
            Ok(info) => Ok(Some(info)),
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.failed(&format!("read `{object}` in `{container}`"), e)),
        }
    }

    async fn create(&self, name: &str) -> Result<ContainerInfo, Error> {
        check_container(name)?;
        let js = self.connected()?;
        if self.exists(name).await? {
            return Err(Error::ContainerExists(name.to_owned()));
        }
        // The server answers a second create with the same settings as a success; a
        // description unique to this call makes a concurrent second create differ, so the
        // server refuses it and exactly one creator wins.
        let description = format!(
            "wasi:blobstore container (trellis, {})",
            uuid::Uuid::new_v4().simple()
        );
        let storage = &self.storage;
        let config = object_store::Config {
            bucket: name.to_owned(),
            description: Some(description),
            max_age: storage.max_age,
            max_bytes: -1,
            storage: storage.storage_type,
            num_replicas: storage.num_replicas,
            compression: storage.compression,
            placement: None,
        };
        match js.create_object_store(config).await {
            Ok(_) => {}
            Err(e) if has_code(&e, jetstream::ErrorCode::STREAM_NAME_EXIST) => {
                return Err(Error::ContainerExists(name.to_owned()));
            }
            Err(e) => return Err(self.failed(&format!("create container `{name}`"), e)),
        }
        let stream = self.stream(name).await?;
        tracing::debug!(uri = %self.connection.uri(), container = name, "created nats object-store bucket");
        Ok(ContainerInfo {
            name: name.to_owned(),
            created_at: unix_seconds(stream.cached_info().created),
        })
    }

    async fn exists(&self, name: &str) -> Result<bool, Error> {
        match self.stream(name).await {
            Ok(_) => Ok(true),
            Err(Error::NoSuchContainer(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn read(
        &self,
        container: &str,
        object: &str,
        start: u64,
        end: u64,
        max_bytes: u64,
    ) -> Result<Bytes, Error> {
        check_object(object)?;
        let bucket = self.bucket(container).await?;
        let mut reader = match bucket.get(object).await {
            Ok(reader) => reader,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => {
                return Err(Self::no_object(container, object));
            }
            Err(e) => return Err(self.failed(&format!("read `{object}` in `{container}`"), e)),
        };
        let size = reader.info().size as u64;
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
        if len == 0 {
            return Ok(Bytes::new());
        }
        let reading =
            |e: std::io::Error| self.failed(&format!("read `{object}` in `{container}`"), e);
        if start > 0 {
            tokio::io::copy(&mut (&mut reader).take(start), &mut tokio::io::sink())
                .await
                .map_err(reading)?;
        }
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        (&mut reader)
            .take(len)
            .read_to_end(&mut buf)
            .await
            .map_err(reading)?;
        if buf.len() as u64 != len {
            return Err(self.failed(
                &format!("read `{object}` in `{container}`"),
                "it was replaced or deleted while being read; try again",
            ));
        }
        Ok(Bytes::from(buf))
    }

    async fn write(&self, container: &str, object: &str, data: Bytes) -> Result<(), Error> {
        check_object(object)?;
        let bucket = self.bucket(container).await?;
        bucket
            .put(object, &mut data.as_ref())
            .await
            .map(drop)
            .map_err(|e| self.failed(&format!("write `{object}` in `{container}`"), e))
    }

    async fn list(&self, container: &str) -> Result<Vec<String>, Error> {
        let bucket = self.bucket(container).await?;
        let what = || format!("list the objects in `{container}`");
        let list = bucket.list().await.map_err(|e| self.failed(&what(), e))?;
        let mut names: Vec<String> = list
            .map_ok(|info| info.name)
            .try_collect()
            .await
            .map_err(|e| self.failed(&what(), e))?;
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn delete(&self, container: &str, object: &str) -> Result<(), Error> {
        check_object(object)?;
        let bucket = self.bucket(container).await?;
        match bucket.delete(object).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == object_store::DeleteErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.failed(&format!("delete `{object}` in `{container}`"), e)),
        }
    }

    async fn copy(
        &self,
        src_container: &str,
        src_object: &str,
        dest_container: &str,
        dest_object: &str,
    ) -> Result<(), Error> {
        check_object(src_object)?;
        check_object(dest_object)?;
        let src = self.bucket(src_container).await?;
        if src_container == dest_container && src_object == dest_object {
            return match self.info(&src, src_container, src_object).await? {
                Some(_) => Ok(()),
                None => Err(Self::no_object(src_container, src_object)),
            };
        }
        let dest = self.bucket(dest_container).await?;
        let mut reader = match src.get(src_object).await {
            Ok(reader) => reader,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => {
                return Err(Self::no_object(src_container, src_object));
            }
            Err(e) => {
                return Err(self.failed(&format!("read `{src_object}` in `{src_container}`"), e));
            }
        };
        dest.put(dest_object, &mut reader)
            .await
            .map(drop)
            .map_err(|e| {
                self.failed(
                    &format!(
                        "copy `{src_object}` in `{src_container}` to `{dest_object}` in \
                     `{dest_container}`"
                    ),
                    e,
                )
            })
    }

    async fn health(&self) -> Result<(), Error> {
        let js = self.connected()?;
        let answer: serde_json::Value =
            js.request("INFO", &serde_json::json!({}))
                .await
                .map_err(|e| {
                    if e.kind() == jetstream::context::RequestErrorKind::NoResponders {
                        Error::Backend(format!(
                            "JetStream is not enabled on nats at {} (start nats-server with `-js`)",
                            self.connection.uri()
                        ))
                    } else {
                        self.failed("reach JetStream", e)
                    }
                })?;
        match answer.get("error") {
            None => Ok(()),
            Some(error) => Err(Error::Backend(format!(
                "JetStream at {} refuses this account: {}",
                self.connection.uri(),
                error
                    .get("description")
                    .and_then(|d| d.as_str())
                    .unwrap_or("no description")
            ))),
        }
    }
}

#[async_trait]
impl Blobstore for NatsBlobstore {
    async fn create_container(&self, name: &str) -> Result<ContainerInfo, Error> {
        let inner = &self.inner;
        inner
            .run("create a container", inner.timeout, inner.create(name))
            .await
    }

    async fn container_info(&self, name: &str) -> Result<ContainerInfo, Error> {
        let inner = &self.inner;
        let stream = inner
            .run("look up a container", inner.timeout, inner.stream(name))
            .await?;
        Ok(ContainerInfo {
            name: name.to_owned(),
            created_at: unix_seconds(stream.cached_info().created),
        })
    }

    async fn container_exists(&self, name: &str) -> Result<bool, Error> {
        let inner = &self.inner;
        inner
            .run("look up a container", inner.timeout, inner.exists(name))
            .await
    }

    async fn delete_container(&self, name: &str) -> Result<(), Error> {
        let inner = &self.inner;
        inner
            .run("delete a container", inner.timeout, async {
                check_container(name)?;
                let js = inner.connected()?;
                match js.delete_stream(stream_name(name)).await {
                    Ok(_) => Ok(()),
                    Err(e) if stream_missing(&e) => Ok(()),
                    Err(e) => Err(inner.failed(&format!("delete container `{name}`"), e)),
                }
            })
            .await
    }

    async fn get_data(
        &self,
        container: &str,
        object: &str,
        start: u64,
        end: u64,
        max_bytes: u64,
    ) -> Result<Bytes, Error> {
        let inner = &self.inner;
        inner
            .run(
                "read an object",
                inner.data_timeout,
                inner.read(container, object, start, end, max_bytes),
            )
            .await
    }

    async fn write_data(&self, container: &str, object: &str, data: Bytes) -> Result<(), Error> {
        let inner = &self.inner;
        inner
            .run(
                "write an object",
                inner.data_timeout,
                inner.write(container, object, data),
            )
            .await
    }

    async fn list_objects(&self, container: &str) -> Result<Vec<String>, Error> {
        let inner = &self.inner;
        inner
            .run("list objects", inner.data_timeout, inner.list(container))
            .await
    }

    async fn delete_object(&self, container: &str, object: &str) -> Result<(), Error> {
        let inner = &self.inner;
        inner
            .run(
                "delete an object",
                inner.timeout,
                inner.delete(container, object),
            )
            .await
    }

    async fn has_object(&self, container: &str, object: &str) -> Result<bool, Error> {
        let inner = &self.inner;
        inner
            .run("look up an object", inner.timeout, async {
                check_object(object)?;
                let bucket = inner.bucket(container).await?;
                Ok(inner.info(&bucket, container, object).await?.is_some())
            })
            .await
    }

    async fn object_info(&self, container: &str, object: &str) -> Result<ObjectInfo, Error> {
        let inner = &self.inner;
        inner
            .run("look up an object", inner.timeout, async {
                check_object(object)?;
                let bucket = inner.bucket(container).await?;
                let info = inner
                    .info(&bucket, container, object)
                    .await?
                    .ok_or_else(|| Inner::no_object(container, object))?;
                Ok(ObjectInfo {
                    name: object.to_owned(),
                    container: container.to_owned(),
                    created_at: info.modified.map_or(0, unix_seconds),
                    size: info.size as u64,
                })
            })
            .await
    }

    async fn clear(&self, container: &str) -> Result<(), Error> {
        let inner = &self.inner;
        inner
            .run("clear a container", inner.timeout, async {
                let stream = inner.stream(container).await?;
                stream
                    .purge()
                    .await
                    .map(drop)
                    .map_err(|e| inner.failed(&format!("clear `{container}`"), e))
            })
            .await
    }

    async fn copy_object(
        &self,
        src_container: &str,
        src_object: &str,
        dest_container: &str,
        dest_object: &str,
    ) -> Result<(), Error> {
        let inner = &self.inner;
        inner
            .run(
                "copy an object",
                inner.data_timeout,
                inner.copy(src_container, src_object, dest_container, dest_object),
            )
            .await
    }

    async fn move_object(
        &self,
        src_container: &str,
        src_object: &str,
        dest_container: &str,
        dest_object: &str,
    ) -> Result<(), Error> {
        let inner = &self.inner;
        inner
            .run("move an object", inner.data_timeout, async {
                inner
                    .copy(src_container, src_object, dest_container, dest_object)
                    .await?;
                if (src_container, src_object) != (dest_container, dest_object) {
                    inner.delete(src_container, src_object).await?;
                }
                Ok(())
            })
            .await
    }

    async fn health(&self) -> Result<(), HealthError> {
        let inner = &self.inner;
        inner
            .run("check JetStream", inner.timeout, inner.health())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_are_bucket_names() {
        let longest = "x".repeat(MAX_CONTAINER_NAME_BYTES);
        for good in ["photos", "a", "A-b_9", longest.as_str()] {
            assert_eq!(check_container(good), Ok(()), "{good}");
        }
        let too_long = "x".repeat(MAX_CONTAINER_NAME_BYTES + 1);
        for bad in ["", "my.photos", "a/b", "..", "a b", "ü", too_long.as_str()] {
            let err = check_container(bad).expect_err(bad);
            assert!(matches!(err, Error::InvalidName { .. }), "{bad}: {err}");
        }
        let message = check_container("my.photos").expect_err("dot").to_string();
        assert!(
            message.contains("letters, digits, `_` and `-`"),
            "{message}"
        );
    }

    #[test]
    fn object_names_are_anything_but_empty_or_huge() {
        for good in ["x", "a/b/c", "../up", "with space", "ünïcode", ".hidden"] {
            assert_eq!(check_object(good), Ok(()), "{good}");
        }
        assert!(check_object("").is_err());
        assert!(check_object(&"x".repeat(MAX_OBJECT_NAME_BYTES + 1)).is_err());
    }
}
