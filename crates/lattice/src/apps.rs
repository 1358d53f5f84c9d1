//! Where the deployment manager keeps applications: every version of every manifest, which
//! one is deployed, each app's last status, and the lease that makes one host the active
//! reconciler. JetStream KV bucket `TRELLIS_APPS_{lattice}` on a lattice (so it survives
//! restarts of every host), memory in embedded mode (written to `.trellis/apps/` when it has
//! a file), both through [`crate::kv`] as the lattice state is.
//!
//! Keys: `app_{name}` → [`AppRecord`] (written with compare-and-swap, so concurrent API calls
//! on different hosts never lose each other's writes), `status_{name}` → the app's status as
//! the reconciler last computed it, `reconciler` → [`Lease`].

use crate::kv::{Kv, KvError, LoadError};
use serde::{Deserialize, Serialize};
use trellis_control::wadm::AppStatusReport;

/// Why an app store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AppStoreError {
    /// The bucket (or embedded mode's file) could not be read or written.
    #[error("app store")]
    Store(#[from] KvError),
    /// Embedded mode's app store file cannot be read back.
    #[error("cannot {what} the app store file {}; move or delete it", file.display())]
    LocalFile {
        /// What was being done: `read`, `create the folder of`.
        what: &'static str,
        /// The file.
        file: std::path::PathBuf,
        /// The I/O or parse error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored value is not what Trellis writes.
    #[error("app store key `{key}` holds a value Trellis cannot read")]
    Corrupt {
        /// The key.
        key: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A value could not be encoded (which manifests and statuses never fail).
    #[error("cannot encode the value of app store key `{key}`")]
    Encode {
        /// The key.
        key: String,
        /// The encoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The request cannot be honoured as asked.
    #[error("{0}")]
    Refused(String),
    /// The app does not exist (or not in that version).
    #[error("{0}")]
    NotFound(String),
}

impl From<LoadError> for AppStoreError {
    fn from(LoadError { what, file, source }: LoadError) -> Self {
        AppStoreError::LocalFile { what, file, source }
    }
}

/// One stored version of a manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredVersion {
    /// The version: the manifest's `version` annotation, or `v1`, `v2`, … in order.
    pub version: String,
    /// The manifest as JSON (YAML is converted when it is put).
    pub manifest: serde_json::Value,
    /// When it was put (RFC 3339).
    pub created: String,
}

/// Everything stored about one app.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AppRecord {
    /// The app's name (`metadata.name`).
    pub name: String,
    /// Every version, oldest first.
    pub versions: Vec<StoredVersion>,
    /// The version that should run, if any.
    pub deployed: Option<String>,
    /// Set by undeploy (and delete of a deployed app) until the reconciler has cleaned up.
    #[serde(default)]
    pub undeploying: bool,
    /// Deleted by the user; kept until the reconciler has cleaned up, then removed.
    #[serde(default)]
    pub deleted: bool,
}

impl AppRecord {
    /// The version called `version`, or the latest.
    pub fn version(&self, version: Option<&str>) -> Option<&StoredVersion> {
        match version {
            Some(v) => self.versions.iter().find(|s| s.version == v),
            None => self.versions.last(),
        }
    }
}

/// What [`AppStore::put`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// The first version of a new app.
    Created {
        /// Its version.
        version: String,
    },
    /// A new version of an existing app.
    NewVersion {
        /// Its version.
        version: String,
        /// How many versions there are now.
        total: usize,
    },
    /// The same content as the latest version: nothing stored.
    Unchanged {
        /// The latest version.
        version: String,
        /// How many versions there are.
        total: usize,
    },
}

/// Who runs the reconciler, until when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lease {
    /// The host holding it.
    pub holder: String,
    /// Milliseconds since the Unix epoch when it lapses unless renewed.
    pub until_ms: u64,
}

/// The app store of one lattice; cheap to clone.
#[derive(Clone)]
pub struct AppStore {
    kv: Kv,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Keys allow `[-/_=.a-zA-Z0-9]`; app names are DNS-like, anything else is encoded.
fn key(prefix: &str, name: &str) -> String {
    let safe = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if safe {
        format!("{prefix}_{name}")
    } else {
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{prefix}_={hex}")
    }
}

fn decode_name(key: &str, prefix: &str) -> Option<String> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('_')?;
    match rest.strip_prefix('=') {
        None => Some(rest.to_owned()),
        Some(hex) => {
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect();
            String::from_utf8(bytes?).ok()
        }
    }
}

/// The key-value bucket of `lattice`'s apps and its reconciler lease.
pub fn bucket(lattice: &str) -> String {
    format!("TRELLIS_APPS_{lattice}")
}

impl AppStore {
    /// Opens (creating when missing) the bucket of `lattice`.
    pub async fn open(client: async_nats::Client, lattice: &str) -> Result<Self, AppStoreError> {
        let js = async_nats::jetstream::new(client);
        let kv = Kv::open(&js, &bucket(lattice)).await?;
        Ok(Self { kv })
    }

    /// A store in this process only.
    pub fn in_memory() -> Self {
        Self {
            kv: Kv::in_memory(),
        }
    }

    /// Embedded mode's store: in memory, written to `file` after every change (write, then
    /// rename) and read back from it when it exists.
    pub fn local(file: &std::path::Path) -> Result<Self, AppStoreError> {
        Ok(Self {
            kv: Kv::local(file)?,
        })
    }

    /// The record of `name`, with its revision.
    async fn record(&self, name: &str) -> Result<Option<(u64, AppRecord)>, AppStoreError> {
        let key = key("app", name);
        match self.kv.get(&key).await? {
            None => Ok(None),
            Some((rev, bytes)) => serde_json::from_slice(&bytes)
                .map(|r| Some((rev, r)))
                .map_err(|source| AppStoreError::Corrupt { key, source }),
        }
    }

    /// Applies `change` to the record of `name` with compare-and-swap, retrying when another
    /// writer got there first. `change` gets the current record (`None`: no such app).
    async fn modify<T>(
        &self,
        name: &str,
        mut change: impl FnMut(Option<AppRecord>) -> Result<(Option<AppRecord>, T), AppStoreError>,
    ) -> Result<T, AppStoreError> {
        let key = key("app", name);
        for _ in 0..20 {
            let current = self.record(name).await?;
            let revision = current.as_ref().map(|(r, _)| *r);
            let (next, out) = change(current.map(|(_, r)| r))?;
            let Some(next) = next else {
                return Ok(out);
            };
            let bytes = serde_json::to_vec(&next).map_err(|source| AppStoreError::Encode {
                key: key.clone(),
                source,
            })?;
            if self.kv.swap(&key, revision, bytes).await? {
                return Ok(out);
            }
        }
        Err(AppStoreError::Refused(format!(
            "app `{name}` is being changed by someone else; try again"
        )))
    }

    /// Stores a manifest (as JSON) as a new version of app `name`, unless it equals the
    /// latest. `version` is the manifest's own `version` annotation, if any.
    pub async fn put(
        &self,
        name: &str,
        manifest: serde_json::Value,
        version: Option<String>,
    ) -> Result<PutOutcome, AppStoreError> {
        let created = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        self.modify(name, |current| {
            let mut record = match current {
                Some(r) if !r.deleted => r,
                _ => AppRecord {
                    name: name.to_owned(),
                    ..AppRecord::default()
                },
            };
            if let Some(latest) = record.versions.last()
                && latest.manifest == manifest
                && version.as_ref().is_none_or(|v| *v == latest.version)
            {
                let outcome = PutOutcome::Unchanged {
                    version: latest.version.clone(),
                    total: record.versions.len(),
                };
                return Ok((None, outcome));
            }
            let version = match &version {
                Some(v) => {
                    if record.versions.iter().any(|s| s.version == *v) {
                        return Err(AppStoreError::Refused(format!(
                            "app `{name}` already has a version `{v}` with other content; change the `version` annotation (or remove it to number versions automatically)"
                        )));
                    }
                    v.clone()
                }
                None => {
                    let mut n = record.versions.len() + 1;
                    while record.versions.iter().any(|s| s.version == format!("v{n}")) {
                        n += 1;
                    }
                    format!("v{n}")
                }
            };
            record.versions.push(StoredVersion {
                version: version.clone(),
                manifest: manifest.clone(),
                created: created.clone(),
            });
            let outcome = if record.versions.len() == 1 {
                PutOutcome::Created { version }
            } else {
                PutOutcome::NewVersion {
                    version,
                    total: record.versions.len(),
                }
            };
            Ok((Some(record), outcome))
        })
        .await
    }

    /// The record of app `name`, unless it does not exist or was deleted.
    pub async fn get(&self, name: &str) -> Result<Option<AppRecord>, AppStoreError> {
        Ok(self
            .record(name)
            .await?
            .map(|(_, r)| r)
            .filter(|r| !r.deleted))
    }

    /// Every app record, including deleted ones the reconciler has yet to clean up.
    pub async fn all(&self) -> Result<Vec<AppRecord>, AppStoreError> {
        let mut out = Vec::new();
        for k in self.kv.keys().await? {
            let Some(name) = decode_name(&k, "app") else {
                continue;
            };
            if let Some((_, record)) = self.record(&name).await? {
                out.push(record);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Marks `version` (the latest when `None`) of app `name` as the one to run.
    pub async fn deploy(&self, name: &str, version: Option<&str>) -> Result<String, AppStoreError> {
        self.modify(name, |current| {
            let Some(mut record) = current.filter(|r| !r.deleted) else {
                return Err(AppStoreError::NotFound(format!("no app named `{name}`")));
            };
            let Some(chosen) = record.version(version).map(|v| v.version.clone()) else {
                return Err(AppStoreError::NotFound(format!(
                    "app `{name}` has no version `{}` (it has: {})",
                    version.unwrap_or_default(),
                    record
                        .versions
                        .iter()
                        .map(|v| v.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            record.deployed = Some(chosen.clone());
            record.undeploying = false;
            Ok((Some(record), chosen))
        })
        .await
    }

    /// Stops running app `name`; the reconciler removes what it started.
    pub async fn undeploy(&self, name: &str) -> Result<(), AppStoreError> {
        self.modify(name, |current| {
            let Some(mut record) = current.filter(|r| !r.deleted) else {
                return Err(AppStoreError::NotFound(format!("no app named `{name}`")));
            };
            if record.deployed.take().is_some() {
                record.undeploying = true;
            }
            Ok((Some(record), ()))
        })
        .await
    }

    /// Deletes `version` of app `name`, or the whole app (undeploying it) when `None`.
    /// Returns whether anything was deleted and whether the app is being undeployed.
    pub async fn delete(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(bool, bool), AppStoreError> {
        self.modify(name, |current| {
            let Some(mut record) = current.filter(|r| !r.deleted) else {
                return Ok((None, (false, false)));
            };
            match version {
                Some(v) => {
                    if record.deployed.as_deref() == Some(v) {
                        return Err(AppStoreError::Refused(format!(
                            "version `{v}` of app `{name}` is deployed; undeploy it or deploy another version first"
                        )));
                    }
                    let before = record.versions.len();
                    record.versions.retain(|s| s.version != v);
                    let deleted = record.versions.len() != before;
                    Ok((deleted.then_some(record), (deleted, false)))
                }
                None => {
                    let undeploy = record.deployed.take().is_some() || record.undeploying;
                    record.undeploying = undeploy;
                    record.deleted = true;
                    Ok((Some(record), (true, undeploy)))
                }
            }
        })
        .await
    }

    /// Forgets app `name` once the reconciler has cleaned up after an undeploy or delete.
    pub async fn finish_cleanup(&self, name: &str) -> Result<(), AppStoreError> {
        let mut remove = false;
        self.modify(name, |current| {
            let Some(mut record) = current else {
                return Ok((None, ()));
            };
            if record.deleted {
                remove = true;
                return Ok((None, ()));
            }
            record.undeploying = false;
            Ok((Some(record), ()))
        })
        .await?;
        if remove {
            self.kv.delete(&key("app", name)).await?;
            self.kv.delete(&key("status", name)).await?;
        }
        Ok(())
    }

    /// Stores the status the reconciler computed for app `name`.
    pub async fn put_status(
        &self,
        name: &str,
        status: &AppStatusReport,
    ) -> Result<(), AppStoreError> {
        let bytes = serde_json::to_vec(status).map_err(|source| AppStoreError::Encode {
            key: key("status", name),
            source,
        })?;
        Ok(self.kv.put(&key("status", name), bytes).await?)
    }

    /// The status last stored for app `name`.
    pub async fn status(&self, name: &str) -> Result<Option<AppStatusReport>, AppStoreError> {
        let key = key("status", name);
        match self.kv.get(&key).await? {
            None => Ok(None),
            Some((_, bytes)) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| AppStoreError::Corrupt { key, source }),
        }
    }

    /// Takes or renews the reconciler lease for `holder` for `ttl`; `false` while another
    /// holder's lease is live.
    pub async fn try_lead(
        &self,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, AppStoreError> {
        let current = self.kv.get("reconciler").await?;
        let now = now_ms();
        let revision = match &current {
            None => None,
            Some((rev, bytes)) => {
                let lease: Option<Lease> = serde_json::from_slice(bytes).ok();
                if let Some(lease) = lease
                    && lease.holder != holder
                    && lease.until_ms > now
                {
                    return Ok(false);
                }
                Some(*rev)
            }
        };
        let lease = Lease {
            holder: holder.to_owned(),
            until_ms: now + ttl.as_millis() as u64,
        };
        let bytes = serde_json::to_vec(&lease).unwrap_or_default();
        Ok(self.kv.swap("reconciler", revision, bytes).await?)
    }

    /// The current lease, if any.
    pub async fn lease(&self) -> Result<Option<Lease>, AppStoreError> {
        Ok(self
            .kv
            .get("reconciler")
            .await?
            .and_then(|(_, bytes)| serde_json::from_slice(&bytes).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The machine's NATS server with JetStream (`scripts/services` starts it on
    /// 127.0.0.1:4222; `TRELLIS_TEST_NATS` points elsewhere).
    async fn nats() -> async_nats::Client {
        let url =
            std::env::var("TRELLIS_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        async_nats::connect(url)
            .await
            .expect("NATS with JetStream on 127.0.0.1:4222 (run scripts/services)")
    }

    /// A lattice no other test uses; [`JetStreamLattice::remove`] deletes its bucket.
    struct JetStreamLattice {
        client: async_nats::Client,
        name: String,
    }

    impl JetStreamLattice {
        async fn new() -> Self {
            Self {
                client: nats().await,
                name: format!("appstore{}", uuid::Uuid::new_v4().simple()),
            }
        }

        /// Deletes the lattice's bucket (a failed test leaves it behind, under a unique name).
        async fn remove(self) {
            let js = async_nats::jetstream::new(self.client);
            js.delete_key_value(format!("TRELLIS_APPS_{}", self.name))
                .await
                .expect("delete the test bucket");
        }

        /// A store of this lattice on a connection of its own, as another host would open it.
        async fn store(&self) -> AppStore {
            AppStore::open(nats().await, &self.name)
                .await
                .expect("open the JetStream app store")
        }
    }

    async fn versions_deploy_undeploy_and_delete(store: &AppStore) {
        let m1 = json!({"metadata": {"name": "shop"}, "spec": {"components": []}});
        let m2 = json!({"metadata": {"name": "shop"}, "spec": {"components": [1]}});
        assert_eq!(
            store.put("shop", m1.clone(), None).await.expect("put"),
            PutOutcome::Created {
                version: "v1".into()
            }
        );
        assert_eq!(
            store.put("shop", m1.clone(), None).await.expect("put"),
            PutOutcome::Unchanged {
                version: "v1".into(),
                total: 1
            }
        );
        assert_eq!(
            store.put("shop", m2.clone(), None).await.expect("put"),
            PutOutcome::NewVersion {
                version: "v2".into(),
                total: 2
            }
        );
        let err = store
            .put("shop", m1.clone(), Some("v2".into()))
            .await
            .expect_err("v2 exists with other content");
        assert!(
            err.to_string().contains("already has a version `v2`"),
            "{err}"
        );
        assert_eq!(
            store.deploy("shop", Some("v1")).await.expect("deploy"),
            "v1"
        );
        assert_eq!(store.deploy("shop", None).await.expect("deploy"), "v2");
        assert!(matches!(
            store.deploy("nope", None).await,
            Err(AppStoreError::NotFound(_))
        ));
        assert!(store.delete("shop", Some("v2")).await.is_err(), "deployed");
        assert_eq!(
            store.delete("shop", Some("v1")).await.expect("del"),
            (true, false)
        );
        store.undeploy("shop").await.expect("undeploy");
        let r = store.get("shop").await.expect("get").expect("exists");
        assert!(r.undeploying && r.deployed.is_none());
        store.finish_cleanup("shop").await.expect("cleanup");
        assert!(
            !store
                .get("shop")
                .await
                .expect("get")
                .expect("exists")
                .undeploying
        );
        store.deploy("shop", None).await.expect("deploy");
        assert_eq!(store.delete("shop", None).await.expect("del"), (true, true));
        assert!(store.get("shop").await.expect("get").is_none());
        assert_eq!(
            store.all().await.expect("all").len(),
            1,
            "kept until cleaned up"
        );
        store.finish_cleanup("shop").await.expect("cleanup");
        assert!(store.all().await.expect("all").is_empty());
    }

    #[tokio::test]
    async fn versions_deploy_undeploy_and_delete_in_memory() {
        versions_deploy_undeploy_and_delete(&AppStore::in_memory()).await;
    }

    #[tokio::test]
    async fn versions_deploy_undeploy_and_delete_on_jetstream() {
        let lattice = JetStreamLattice::new().await;
        versions_deploy_undeploy_and_delete(&lattice.store().await).await;
        lattice.remove().await;
    }

    /// An app deleted and cleaned up can be put again, from version 1; so can one deleted
    /// and not yet cleaned up. (On JetStream a deleted key leaves a tombstone with a
    /// revision, so "absent" is not "never written".)
    async fn put_again_after_delete(store: &AppStore) {
        let m1 = json!({"metadata": {"name": "shop"}, "spec": {"components": []}});
        let m2 = json!({"metadata": {"name": "shop"}, "spec": {"components": [2]}});
        for _ in 0..2 {
            assert_eq!(
                store.put("shop", m1.clone(), None).await.expect("put"),
                PutOutcome::Created {
                    version: "v1".into()
                }
            );
            store.deploy("shop", None).await.expect("deploy");
            assert_eq!(store.delete("shop", None).await.expect("del"), (true, true));
            store.finish_cleanup("shop").await.expect("cleanup");
            assert!(store.get("shop").await.expect("get").is_none());
            assert!(store.all().await.expect("all").is_empty());
        }
        // Deleted but not yet cleaned up: a new put starts the app afresh.
        store.put("shop", m1.clone(), None).await.expect("put");
        assert_eq!(
            store.delete("shop", None).await.expect("del"),
            (true, false)
        );
        assert_eq!(
            store.put("shop", m2.clone(), None).await.expect("put"),
            PutOutcome::Created {
                version: "v1".into()
            }
        );
        let record = store.get("shop").await.expect("get").expect("exists");
        assert_eq!(record.versions.len(), 1);
        assert_eq!(record.versions[0].manifest, m2);
        assert!(!record.deleted);
    }

    #[tokio::test]
    async fn put_again_after_delete_in_memory() {
        put_again_after_delete(&AppStore::in_memory()).await;
    }

    #[tokio::test]
    async fn put_again_after_delete_on_jetstream() {
        let lattice = JetStreamLattice::new().await;
        put_again_after_delete(&lattice.store().await).await;
        lattice.remove().await;
    }

    /// Writers racing on one app through different stores (hosts) never lose a write:
    /// compare-and-swap makes the losers retry on the winner's record.
    async fn concurrent_puts_are_all_kept(stores: Vec<AppStore>) {
        let writers = stores.len();
        let puts = stores.into_iter().enumerate().map(|(i, store)| {
            tokio::spawn(async move {
                let manifest = json!({"metadata": {"name": "shop"}, "spec": {"writer": i}});
                store.put("shop", manifest, None).await.expect("put")
            })
        });
        let mut versions: Vec<String> = futures::future::join_all(puts)
            .await
            .into_iter()
            .map(|outcome| match outcome.expect("task") {
                PutOutcome::Created { version } | PutOutcome::NewVersion { version, .. } => version,
                unchanged => panic!("every manifest differs: {unchanged:?}"),
            })
            .collect();
        versions.sort_by_key(|v| v[1..].parse::<usize>().expect("vN"));
        let expected: Vec<String> = (1..=writers).map(|n| format!("v{n}")).collect();
        assert_eq!(versions, expected, "each writer got a version of its own");
    }

    #[tokio::test]
    async fn concurrent_puts_are_all_kept_in_memory() {
        let store = AppStore::in_memory();
        concurrent_puts_are_all_kept(vec![store.clone(); 8]).await;
        assert_eq!(
            store
                .get("shop")
                .await
                .expect("get")
                .expect("app")
                .versions
                .len(),
            8
        );
    }

    #[tokio::test]
    async fn concurrent_puts_are_all_kept_on_jetstream() {
        let lattice = JetStreamLattice::new().await;
        let mut stores = Vec::new();
        for _ in 0..8 {
            stores.push(lattice.store().await);
        }
        concurrent_puts_are_all_kept(stores).await;
        let record = lattice
            .store()
            .await
            .get("shop")
            .await
            .expect("get")
            .expect("app");
        assert_eq!(record.versions.len(), 8);
        lattice.remove().await;
    }

    /// `a` and `b` are two handles on one store, as two hosts have.
    async fn one_lease_holder_at_a_time(a: &AppStore, b: &AppStore) {
        let ttl = std::time::Duration::from_millis(200);
        assert!(a.try_lead("a", ttl).await.expect("lead"));
        assert!(!b.try_lead("b", ttl).await.expect("lead"));
        assert!(a.try_lead("a", ttl).await.expect("renew"));
        assert_eq!(b.lease().await.expect("lease").expect("some").holder, "a");
        // The lease lapses on the wall clock (it is shared between hosts), so wait it out.
        tokio::time::sleep(ttl * 2).await;
        assert!(b.try_lead("b", ttl).await.expect("take over"));
        assert_eq!(a.lease().await.expect("lease").expect("some").holder, "b");
        assert!(!a.try_lead("a", ttl).await.expect("lead"));
    }

    #[tokio::test]
    async fn one_lease_holder_at_a_time_in_memory() {
        let store = AppStore::in_memory();
        one_lease_holder_at_a_time(&store, &store.clone()).await;
    }

    #[tokio::test]
    async fn one_lease_holder_at_a_time_on_jetstream() {
        let lattice = JetStreamLattice::new().await;
        one_lease_holder_at_a_time(&lattice.store().await, &lattice.store().await).await;
        lattice.remove().await;
    }

    /// Would-be leaders racing for a free lease, and then for one that lapsed (a
    /// compare-and-swap on an existing key): each time exactly one gets it.
    #[tokio::test]
    async fn racing_for_the_lease_on_jetstream_has_one_winner() {
        let lattice = JetStreamLattice::new().await;
        // Long enough that no loser of the first round sees the lease lapse, short enough
        // to wait out before the second.
        let ttl = std::time::Duration::from_secs(1);
        for round in 0..2 {
            // Connect first, so the racers start together.
            let mut stores = Vec::new();
            for _ in 0..8 {
                stores.push(lattice.store().await);
            }
            let races = stores.into_iter().enumerate().map(|(i, store)| {
                tokio::spawn(async move {
                    store
                        .try_lead(&format!("host{round}{i}"), ttl)
                        .await
                        .expect("lead")
                })
            });
            let won: Vec<bool> = futures::future::join_all(races)
                .await
                .into_iter()
                .map(|r| r.expect("task"))
                .collect();
            assert_eq!(
                won.iter().filter(|w| **w).count(),
                1,
                "round {round}: {won:?}"
            );
            let lease = lattice
                .store()
                .await
                .lease()
                .await
                .expect("lease")
                .expect("some");
            let winner = won.iter().position(|w| *w).expect("a winner");
            assert_eq!(lease.holder, format!("host{round}{winner}"));
            // The lease lapses on the wall clock.
            while now_ms() <= lease.until_ms {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        lattice.remove().await;
    }

    #[tokio::test]
    async fn the_local_store_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(".trellis/apps.json");
        let store = AppStore::local(&file).expect("open");
        store
            .put("shop", json!({"metadata": {"name": "shop"}}), None)
            .await
            .expect("put");
        store.deploy("shop", None).await.expect("deploy");
        drop(store);
        let again = AppStore::local(&file).expect("reopen");
        let record = again.get("shop").await.expect("get").expect("kept");
        assert_eq!(record.deployed.as_deref(), Some("v1"));
        std::fs::write(&file, "not json").expect("write");
        let err = AppStore::local(&file).err().expect("garbage is refused");
        assert!(err.to_string().contains("move or delete it"), "{err}");
    }

    #[test]
    fn odd_names_round_trip_through_keys() {
        for name in ["shop", "my.app", "a b"] {
            assert_eq!(decode_name(&key("app", name), "app").as_deref(), Some(name));
        }
    }
}
