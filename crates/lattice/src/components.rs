//! The lattice's own component store: components carried by the lattice, so that hosts on
//! other machines run what was deployed from this one with no registry and no shared
//! file system.
//!
//! `trellis app deploy` of a manifest whose images are `file://` paths stores each
//! component in the JetStream object store `TRELLIS_COMPONENTS_{lattice}`, named by the
//! SHA-256 of its bytes (`sha256:<hex>`; storing the same bytes twice stores them once), and
//! hands the hosts `lattice://NAME@sha256:<hex>` instead of the path (NAME is the file's
//! name, for people). A host fetches the object and checks its hash and size before it
//! compiles it; nothing that does not match runs.

use async_nats::jetstream::{self, object_store};
use sha2::Digest as _;
use tokio::io::AsyncReadExt as _;

/// Why the component store failed.
#[derive(Debug, thiserror::Error)]
pub enum ComponentStoreError {
    /// The object store could not be opened or created.
    #[error(
        "cannot open the lattice's component store `{bucket}` in JetStream (is JetStream enabled on the NATS server?): {source}"
    )]
    Open {
        /// The bucket.
        bucket: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading or writing an object failed.
    #[error("cannot {what} component {digest} in the lattice's component store: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The component's digest.
        digest: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No such component.
    #[error(
        "component {digest} is not in the lattice's component store; deploy the manifest again with `trellis app deploy` from the machine that has the file"
    )]
    NotFound {
        /// The digest asked for.
        digest: String,
    },
    /// The stored bytes do not hash to their name.
    #[error(
        "component {expected} in the lattice's component store is corrupt (its bytes hash to {found}); deploy the manifest again"
    )]
    Mismatch {
        /// The digest asked for.
        expected: String,
        /// What the bytes hash to.
        found: String,
    },
    /// The stored component is larger than the host accepts.
    #[error(
        "component {digest} is {size} bytes, more than the limit of {limit} bytes; raise it with --max-image-size"
    )]
    TooLarge {
        /// The digest.
        digest: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

/// The lattice's component store. Cheap to clone.
#[derive(Clone)]
pub struct ComponentStore {
    store: object_store::ObjectStore,
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    let hash = sha2::Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The object store of `lattice`'s components.
pub fn bucket(lattice: &str) -> String {
    format!("TRELLIS_COMPONENTS_{lattice}")
}

impl ComponentStore {
    /// The store of `lattice`, created when missing.
    pub async fn open(
        client: async_nats::Client,
        lattice: &str,
    ) -> Result<Self, ComponentStoreError> {
        let js = jetstream::new(client);
        let bucket = bucket(lattice);
        let open = |source: Box<dyn std::error::Error + Send + Sync>| ComponentStoreError::Open {
            bucket: bucket.clone(),
            source,
        };
        if let Ok(store) = js.get_object_store(&bucket).await {
            return Ok(Self { store });
        }
        let created = js
            .create_object_store(object_store::Config {
                bucket: bucket.clone(),
                description: Some(format!(
                    "components of lattice {lattice}, by sha256 (trellis)"
                )),
                ..Default::default()
            })
            .await;
        match created {
            Ok(store) => Ok(Self { store }),
            Err(e) => {
                // Hosts starting together race to create the bucket: the loser is told the
                // subjects overlap with the stream the winner just made, which is the store
                // it wanted.
                for _ in 0..20 {
                    if let Ok(store) = js.get_object_store(&bucket).await {
                        return Ok(Self { store });
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(open(Box::new(e)))
            }
        }
    }

    /// Stores `bytes` (once: bytes already stored are not sent again); their digest.
    pub async fn put(&self, bytes: &[u8]) -> Result<String, ComponentStoreError> {
        let digest = digest_of(bytes);
        if let Ok(info) = self.store.info(&digest).await
            && !info.deleted
            && info.size == bytes.len()
        {
            return Ok(digest);
        }
        let mut reader = bytes;
        self.store
            .put(digest.as_str(), &mut reader)
            .await
            .map_err(|e| ComponentStoreError::Io {
                what: "store",
                digest: digest.clone(),
                source: Box::new(e),
            })?;
        Ok(digest)
    }

    /// The component named `digest`, checked against it; at most `limit` bytes.
    pub async fn get(&self, digest: &str, limit: u64) -> Result<Vec<u8>, ComponentStoreError> {
        let io = |what, e: Box<dyn std::error::Error + Send + Sync>| ComponentStoreError::Io {
            what,
            digest: digest.to_owned(),
            source: e,
        };
        let info = match self.store.info(digest).await {
            Ok(info) if !info.deleted => info,
            Ok(_) => {
                return Err(ComponentStoreError::NotFound {
                    digest: digest.to_owned(),
                });
            }
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => {
                return Err(ComponentStoreError::NotFound {
                    digest: digest.to_owned(),
                });
            }
            Err(e) => return Err(io("look up", Box::new(e))),
        };
        if info.size as u64 > limit {
            return Err(ComponentStoreError::TooLarge {
                digest: digest.to_owned(),
                size: info.size as u64,
                limit,
            });
        }
        let object = self
            .store
            .get(digest)
            .await
            .map_err(|e| io("read", Box::new(e)))?;
        let mut bytes = Vec::with_capacity(info.size);
        // One byte past the limit tells an object that grew from one that did not.
        object
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| io("read", Box::new(e)))?;
        if bytes.len() as u64 > limit {
            return Err(ComponentStoreError::TooLarge {
                digest: digest.to_owned(),
                size: bytes.len() as u64,
                limit,
            });
        }
        let found = digest_of(&bytes);
        if found != digest {
            return Err(ComponentStoreError::Mismatch {
                expected: digest.to_owned(),
                found,
            });
        }
        Ok(bytes)
    }
}
