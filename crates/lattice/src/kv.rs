//! The key-value store under the lattice-wide state ([`crate::state`]) and the app store
//! ([`crate::apps`]): a JetStream KV bucket on a lattice, a map in this process in embedded
//! mode (written to a file after every change when it has one). Both speak in raw bytes with
//! a revision for compare-and-swap, so each operation above is written once, whatever the
//! store.

use async_nats::jetstream::{self, kv};
use futures::StreamExt as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Why a key-value operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// JetStream refused or did not answer.
    #[error("JetStream bucket `{bucket}`")]
    JetStream {
        /// The bucket.
        bucket: String,
        /// What NATS said.
        #[source]
        source: async_nats::Error,
    },
    /// The bucket is missing and could not be created.
    #[error(
        "JetStream bucket `{bucket}`: cannot create it; is JetStream enabled on the server (`nats-server -js`)?"
    )]
    Create {
        /// The bucket.
        bucket: String,
        /// What NATS said.
        #[source]
        source: async_nats::Error,
    },
    /// Embedded mode's file could not be written.
    #[error("cannot write {}", file.display())]
    Write {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Why [`Kv::local`] could not read its file back; the store that owns the file says what
/// the file is.
pub(crate) struct LoadError {
    /// What was being done: `read`, `create the folder of`.
    pub(crate) what: &'static str,
    /// The file.
    pub(crate) file: PathBuf,
    /// The I/O or parse error.
    pub(crate) source: Box<dyn std::error::Error + Send + Sync>,
}

/// A value and the revision to compare-and-swap against.
pub(crate) type Versioned = Option<(u64, Vec<u8>)>;

/// Key → (revision, value), for embedded mode.
type MemoryKv = BTreeMap<String, (u64, Vec<u8>)>;

/// One bucket, or its in-memory stand-in; cheap to clone.
#[derive(Clone)]
pub(crate) struct Kv {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    JetStream {
        store: Box<kv::Store>,
        bucket: String,
    },
    Memory {
        map: Arc<Mutex<MemoryKv>>,
        /// Where embedded mode keeps it between runs, if anywhere.
        file: Option<Arc<PathBuf>>,
    },
}

/// What `nats kv add BUCKET` makes; built by hand because `create_key_value` needs account
/// info that NATS servers before 2.10 do not send.
///
/// `trellis-keyvalue-nats` builds the same stream for the buckets it auto-creates: the two
/// crates share no crate that knows JetStream storage (the providers' `trellis-nats-connect`
/// is only their connection), so each keeps its copy; change them together.
fn bucket_stream(bucket: &str) -> jetstream::stream::Config {
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

impl Kv {
    /// Opens JetStream bucket `bucket`, creating it when missing.
    pub(crate) async fn open(js: &jetstream::Context, bucket: &str) -> Result<Self, KvError> {
        let opened = |store| Self {
            backend: Backend::JetStream {
                store: Box::new(store),
                bucket: bucket.to_owned(),
            },
        };
        if let Ok(store) = js.get_key_value(bucket).await {
            return Ok(opened(store));
        }
        if let Err(e) = js.get_or_create_stream(bucket_stream(bucket)).await {
            // Hosts starting together race to create the bucket: the loser is told the subjects
            // overlap with the stream the winner just made, which is the bucket it wanted.
            for _ in 0..20 {
                if let Ok(store) = js.get_key_value(bucket).await {
                    return Ok(opened(store));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            return Err(KvError::Create {
                bucket: bucket.to_owned(),
                source: e.into(),
            });
        }
        js.get_key_value(bucket)
            .await
            .map(opened)
            .map_err(|e| KvError::JetStream {
                bucket: bucket.to_owned(),
                source: e.into(),
            })
    }

    /// A store in this process only.
    pub(crate) fn in_memory() -> Self {
        Self {
            backend: Backend::Memory {
                map: Arc::default(),
                file: None,
            },
        }
    }

    /// A store in this process, written to `file` after every change (write, then rename)
    /// and read back from it when it exists.
    pub(crate) fn local(file: &Path) -> Result<Self, LoadError> {
        let load = |what, source: Box<dyn std::error::Error + Send + Sync>| LoadError {
            what,
            file: file.to_owned(),
            source,
        };
        let map: MemoryKv = match std::fs::read(file) {
            Ok(bytes) => {
                let stored: BTreeMap<String, (u64, String)> =
                    serde_json::from_slice(&bytes).map_err(|e| load("read", e.into()))?;
                stored
                    .into_iter()
                    .map(|(k, (rev, v))| (k, (rev, v.into_bytes())))
                    .collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MemoryKv::new(),
            Err(e) => return Err(load("read", e.into())),
        };
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| load("create the folder of", e.into()))?;
        }
        Ok(Self {
            backend: Backend::Memory {
                map: Arc::new(Mutex::new(map)),
                file: Some(Arc::new(file.to_owned())),
            },
        })
    }

    fn js_error(&self, source: impl Into<async_nats::Error>) -> KvError {
        let bucket = match &self.backend {
            Backend::JetStream { bucket, .. } => bucket.clone(),
            Backend::Memory { .. } => "memory".into(),
        };
        KvError::JetStream {
            bucket,
            source: source.into(),
        }
    }

    /// Writes the in-memory store to its file, if it has one.
    fn persist(&self, map: &MemoryKv) -> Result<(), KvError> {
        let Backend::Memory {
            file: Some(file), ..
        } = &self.backend
        else {
            return Ok(());
        };
        let stored: BTreeMap<&String, (u64, std::borrow::Cow<'_, str>)> = map
            .iter()
            .map(|(k, (rev, v))| (k, (*rev, String::from_utf8_lossy(v))))
            .collect();
        let bytes = serde_json::to_vec_pretty(&stored).unwrap_or_default();
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, file.as_ref()))
            .map_err(|source| KvError::Write {
                file: file.as_ref().clone(),
                source,
            })
    }

    /// The value at `key` and its revision; `None` when absent or deleted.
    pub(crate) async fn get(&self, key: &str) -> Result<Versioned, KvError> {
        match &self.backend {
            Backend::JetStream { store, .. } => {
                let entry = store.entry(key).await.map_err(|e| self.js_error(e))?;
                Ok(entry
                    .filter(|e| e.operation == kv::Operation::Put)
                    .map(|e| (e.revision, e.value.to_vec())))
            }
            Backend::Memory { map, .. } => Ok(crate::lock(map).get(key).cloned()),
        }
    }

    /// Writes `value` if the key is still at `revision` (`None`: absent); `false` when
    /// someone else wrote first.
    pub(crate) async fn swap(
        &self,
        key: &str,
        revision: Option<u64>,
        value: Vec<u8>,
    ) -> Result<bool, KvError> {
        match &self.backend {
            Backend::JetStream { store, .. } => {
                let written: Result<(), (bool, async_nats::Error)> = match revision {
                    None => store
                        .create(key, value.into())
                        .await
                        .map(|_| ())
                        .map_err(|e| (e.kind() == kv::CreateErrorKind::AlreadyExists, e.into())),
                    Some(rev) => store
                        .update(key, value.into(), rev)
                        .await
                        .map(|_| ())
                        .map_err(|e| {
                            (e.kind() == kv::UpdateErrorKind::WrongLastRevision, e.into())
                        }),
                };
                match written {
                    Ok(()) => Ok(true),
                    Err((true, _)) => Ok(false),
                    // A key deleted before is "absent" to us but has a revision to NATS.
                    Err((false, source))
                        if revision.is_none()
                            && source.to_string().contains("wrong last sequence") =>
                    {
                        Ok(false)
                    }
                    Err((false, source)) => Err(self.js_error(source)),
                }
            }
            Backend::Memory { map, .. } => {
                let mut map = crate::lock(map);
                let current = map.get(key).map(|(r, _)| *r);
                if current != revision {
                    return Ok(false);
                }
                let next = current.unwrap_or_default() + 1;
                map.insert(key.to_owned(), (next, value));
                self.persist(&map)?;
                Ok(true)
            }
        }
    }

    /// Sets `key` to `value`, whatever was there.
    pub(crate) async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        match &self.backend {
            Backend::JetStream { store, .. } => store
                .put(key, value.into())
                .await
                .map(|_| ())
                .map_err(|e| self.js_error(e)),
            Backend::Memory { map, .. } => {
                let mut map = crate::lock(map);
                let next = map.get(key).map(|(r, _)| *r).unwrap_or_default() + 1;
                map.insert(key.to_owned(), (next, value));
                self.persist(&map)
            }
        }
    }

    /// Deletes `key`; deleting a missing key succeeds.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), KvError> {
        match &self.backend {
            Backend::JetStream { store, .. } => {
                store.delete(key).await.map_err(|e| self.js_error(e))
            }
            Backend::Memory { map, .. } => {
                let mut map = crate::lock(map);
                map.remove(key);
                self.persist(&map)
            }
        }
    }

    /// Every key.
    pub(crate) async fn keys(&self) -> Result<Vec<String>, KvError> {
        match &self.backend {
            Backend::JetStream { store, .. } => {
                let mut keys = store.keys().await.map_err(|e| self.js_error(e))?;
                let mut out = Vec::new();
                while let Some(k) = keys.next().await {
                    out.push(k.map_err(|e| self.js_error(e))?);
                }
                Ok(out)
            }
            Backend::Memory { map, .. } => Ok(crate::lock(map).keys().cloned().collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn swap_refuses_a_stale_revision() {
        let kv = Kv::in_memory();
        assert!(kv.swap("k", None, b"1".to_vec()).await.expect("create"));
        assert!(!kv.swap("k", None, b"2".to_vec()).await.expect("exists"));
        let (rev, value) = kv.get("k").await.expect("get").expect("some");
        assert_eq!(value, b"1");
        assert!(
            kv.swap("k", Some(rev), b"3".to_vec())
                .await
                .expect("update")
        );
        assert!(!kv.swap("k", Some(rev), b"4".to_vec()).await.expect("stale"));
        kv.delete("k").await.expect("delete");
        assert_eq!(kv.get("k").await.expect("get"), None);
        assert!(
            kv.swap("k", None, b"5".to_vec())
                .await
                .expect("create again")
        );
        assert_eq!(kv.keys().await.expect("keys"), ["k"]);
    }
}
