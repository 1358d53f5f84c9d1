//! The built-in capability providers of deployed apps: starting their backends from config,
//! sharing a backend between links with the same config, and tracking health.
//!
//! A provider that cannot start (bad config, a database file held by another process, an
//! address in use) does not stop the host or the rest of the app: it is marked
//! [`ProviderStatus::Failed`] with the reason, which shows in the inventory and the log, and
//! components linked to it get an error value from every call. Backends that lose their
//! server (Redis, NATS) reconnect by themselves; the health loop notices both directions and
//! publishes `health_check_failed` / `health_check_passed` events.

use crate::sync;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use trellis_blobstore::Blobstore;
use trellis_control::{ProviderId, ProviderStatus, error_text};
use trellis_http_client::{HttpClient, HttpClientConfig, Protected};
use trellis_keyvalue::KeyValue;
use trellis_manifest::Builtin;
use trellis_messaging::Messaging;
use trellis_postgres::Postgres;
use trellis_runtime::{Backend, Linked};

/// How long a health check may take before it counts as failed.
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A started backend.
#[derive(Clone)]
pub(crate) enum Instance {
    KeyValue(Arc<dyn KeyValue>),
    Messaging(Arc<dyn Messaging>),
    Blobstore(Arc<dyn Blobstore>),
    HttpClient(Arc<HttpClient>),
    Postgres(Arc<Postgres>),
}

impl Instance {
    async fn health(&self) -> Result<(), String> {
        let check = async {
            match self {
                Instance::KeyValue(b) => b.health().await.map_err(|e| error_text(&e)),
                Instance::Messaging(b) => b.health().await.map_err(|e| error_text(&e)),
                Instance::Blobstore(b) => b.health().await.map_err(|e| error_text(&e)),
                Instance::HttpClient(_) => Ok(()),
                Instance::Postgres(b) => b.health().await.map_err(|e| error_text(&e)),
            }
        };
        match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, check).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "health check did not answer within {HEALTH_CHECK_TIMEOUT:?}"
            )),
        }
    }
}

type Config = BTreeMap<String, String>;

/// One provider entry of a deployed app.
/// The provider an app calls `name`: by its name in the manifest, or by its id. An app made
/// for a control request (a component scaled through the control interface) names each
/// provider by its id, while a provider started by a manifest keeps its manifest name, and
/// both share the one running provider.
pub(crate) fn named<'a>(
    providers: &'a [Arc<ProviderState>],
    name: &str,
) -> Option<&'a Arc<ProviderState>> {
    providers
        .iter()
        .find(|p| p.name == name)
        .or_else(|| providers.iter().find(|p| p.id.as_str() == name))
}

pub(crate) struct ProviderState {
    pub(crate) name: String,
    pub(crate) id: ProviderId,
    pub(crate) image_ref: String,
    pub(crate) builtin: Builtin,
    /// The provider's own config; link config is laid over it per link.
    config: BTreeMap<String, String>,
    /// Where relative paths in config resolve, and where default state lives.
    manifest_dir: PathBuf,
    /// What no component may reach over HTTP (the host's control surfaces).
    protected: Arc<Protected>,
    /// Backends by the config they were started with: links with equal config share one.
    instances: tokio::sync::Mutex<Vec<(Config, Result<Instance, String>)>>,
    status: Mutex<ProviderStatus>,
    /// Set by `provider.stop`: links through it fail from then on.
    stopped: Arc<std::sync::atomic::AtomicBool>,
    /// Tells its HTTP listeners to stop.
    stop: tokio::sync::watch::Sender<bool>,
}

impl ProviderState {
    pub(crate) fn new(
        name: String,
        id: ProviderId,
        image_ref: String,
        builtin: Builtin,
        config: BTreeMap<String, String>,
        manifest_dir: PathBuf,
        protected: Arc<Protected>,
    ) -> Self {
        Self {
            name,
            id,
            image_ref,
            builtin,
            config,
            manifest_dir,
            protected,
            instances: tokio::sync::Mutex::default(),
            status: Mutex::new(ProviderStatus::Running),
            stopped: Arc::default(),
            stop: tokio::sync::watch::channel(false).0,
        }
    }

    /// Stops the provider: calls through its links fail, its HTTP listeners close.
    pub(crate) fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.set_status(ProviderStatus::Failed {
            reason: "stopped".into(),
        });
        let _ = self.stop.send(true);
    }

    /// Resolves when the provider is stopped.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + Send + use<> {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }

    /// The provider's own config (a link's is laid over it per link).
    pub(crate) fn config(&self) -> &BTreeMap<String, String> {
        &self.config
    }

    pub(crate) fn status(&self) -> ProviderStatus {
        sync::lock(&self.status).clone()
    }

    /// Sets the status; returns whether it changed.
    pub(crate) fn set_status(&self, status: ProviderStatus) -> bool {
        let mut current = sync::lock(&self.status);
        let changed = *current != status;
        *current = status;
        changed
    }

    /// The backend for a link with `link_config`, started on first use.
    pub(crate) async fn instance(
        &self,
        link_config: &BTreeMap<String, String>,
    ) -> Result<Instance, String> {
        let mut config = self.config.clone();
        config.extend(link_config.iter().map(|(k, v)| (k.clone(), v.clone())));
        // What a watcher link watches is the host's business, not the backend's: a store
        // watched for one component is the one its other links use.
        crate::deploy::take_ci(&mut config, crate::deploy::WATCH_KEY);
        let mut instances = self.instances.lock().await;
        if let Some((_, existing)) = instances.iter().find(|(c, _)| *c == config) {
            return existing.clone();
        }
        let started = start(
            self.builtin,
            &self.name,
            &config,
            &self.manifest_dir,
            &self.protected,
        )
        .await;
        match &started {
            Ok(_) => {
                tracing::info!(provider = %self.name, builtin = %self.builtin, "capability provider started")
            }
            Err(reason) => {
                tracing::error!(provider = %self.name, builtin = %self.builtin, %reason, "capability provider failed to start");
                self.set_status(ProviderStatus::Failed {
                    reason: reason.clone(),
                });
            }
        }
        instances.push((config, started.clone()));
        started
    }

    /// Checks every backend; `Err` carries the first failure.
    pub(crate) async fn check_health(&self) -> Result<(), String> {
        let instances: Vec<_> = self
            .instances
            .lock()
            .await
            .iter()
            .map(|(_, i)| i.clone())
            .collect();
        for instance in instances {
            match instance {
                Err(reason) => return Err(format!("failed to start: {reason}")),
                Ok(i) => i.health().await?,
            }
        }
        Ok(())
    }
}

/// Wraps a started backend as a component's link.
pub(crate) fn linked<T: ?Sized>(
    provider: &ProviderState,
    backend: Result<Arc<T>, String>,
) -> Linked<T> {
    Linked {
        provider: provider.name.clone(),
        provider_id: provider.id.as_str().to_owned(),
        backend: match backend {
            Ok(b) => Backend::Ready(b),
            Err(reason) => Backend::Failed(reason),
        },
        stopped: provider.stopped.clone(),
    }
}

/// A config value by key, ignoring case (wasmCloud's providers read `URL` and `url` alike).
fn get_ci<'a>(config: &'a BTreeMap<String, String>, key: &str) -> Option<&'a String> {
    config
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn resolve(manifest_dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_owned()
    } else {
        manifest_dir.join(path)
    }
}

fn warn_ignored(provider: &str, ignored: &[String]) {
    for key in ignored {
        tracing::warn!(
            provider,
            key,
            "config key is not used by this provider; ignoring it"
        );
    }
}

/// What a backend starts from: its provider entry's name, its config (the provider's with
/// the link's laid over it), and the folder relative paths resolve against.
struct Setup<'a> {
    provider: &'a str,
    config: &'a BTreeMap<String, String>,
    manifest_dir: &'a Path,
    /// What no component may reach over HTTP (the host's control surfaces).
    protected: &'a Arc<Protected>,
}

/// How one backend starts.
type Factory = for<'a> fn(&'a Setup<'a>) -> BoxFuture<'a, Result<Instance, String>>;

/// The provider registry: one factory per built-in backend, by its name in the capability
/// catalogue (`trellis_capabilities::BUILTINS`, which says what capability it serves). A new
/// backend is its crate, its catalogue entry, and one line here.
const FACTORIES: &[(&str, Factory)] = &[
    ("http-server", |_| {
        Box::pin(async { Err("the HTTP server has no backend".into()) })
    }),
    ("http-client", |s| Box::pin(http_client(s))),
    ("keyvalue-memory", |_| {
        Box::pin(async {
            Ok(Instance::KeyValue(Arc::new(
                trellis_keyvalue::memory::MemoryStore::new(),
            )))
        })
    }),
    ("keyvalue-local", |s| Box::pin(keyvalue_local(s))),
    ("keyvalue-redis", |s| Box::pin(keyvalue_redis(s))),
    ("keyvalue-nats", |s| Box::pin(keyvalue_nats(s))),
    ("messaging-local", |_| {
        Box::pin(async {
            Ok(Instance::Messaging(Arc::new(
                trellis_messaging::memory::InProcess::new(),
            )))
        })
    }),
    ("messaging-nats", |s| Box::pin(messaging_nats(s))),
    ("blobstore-fs", |s| Box::pin(blobstore_fs(s))),
    ("blobstore-nats", |s| Box::pin(blobstore_nats(s))),
    ("sqldb-postgres", |s| Box::pin(sqldb_postgres(s))),
    // It calls components (`crate::wadm`); nothing links to it.
    (crate::wadm::BUILTIN, |_| {
        Box::pin(async {
            Err("the wadm status provider serves no imports: `wasmcloud:wadm/client` is not served yet".into())
        })
    }),
];

async fn start(
    builtin: Builtin,
    name: &str,
    config: &BTreeMap<String, String>,
    manifest_dir: &Path,
    protected: &Arc<Protected>,
) -> Result<Instance, String> {
    let Some((_, factory)) = FACTORIES.iter().find(|(n, _)| *n == builtin.name()) else {
        return Err(format!(
            "this host has no backend for the built-in provider `{builtin}`"
        ));
    };
    let setup = Setup {
        provider: name,
        config,
        manifest_dir,
        protected,
    };
    factory(&setup).await
}

async fn http_client(s: &Setup<'_>) -> Result<Instance, String> {
    let config = HttpClientConfig::from_config(s.config).map_err(|e| e.to_string())?;
    warn_ignored(s.provider, &config.ignored);
    Ok(Instance::HttpClient(Arc::new(HttpClient::new(
        config,
        s.protected.clone(),
    ))))
}

async fn keyvalue_local(s: &Setup<'_>) -> Result<Instance, String> {
    let path = match get_ci(s.config, "path") {
        Some(p) => resolve(s.manifest_dir, p),
        None => s
            .manifest_dir
            .join(".trellis")
            .join("keyvalue")
            .join(format!("{}.redb", s.provider)),
    };
    let store = tokio::task::spawn_blocking(move || trellis_keyvalue_redb::RedbStore::open(&path))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| error_text(&e))?;
    Ok(Instance::KeyValue(Arc::new(store)))
}

async fn keyvalue_redis(s: &Setup<'_>) -> Result<Instance, String> {
    let config =
        trellis_keyvalue_redis::RedisConfig::from_config(s.config).map_err(|e| error_text(&e))?;
    warn_ignored(s.provider, &config.ignored);
    let store = trellis_keyvalue_redis::RedisStore::connect(&config, Default::default()).await;
    Ok(Instance::KeyValue(Arc::new(store)))
}

async fn keyvalue_nats(s: &Setup<'_>) -> Result<Instance, String> {
    let config =
        trellis_keyvalue_nats::NatsKvConfig::from_config(s.config).map_err(|e| error_text(&e))?;
    warn_ignored(s.provider, &config.ignored);
    let store = trellis_keyvalue_nats::NatsKvStore::connect(&config).await;
    Ok(Instance::KeyValue(Arc::new(store)))
}

async fn messaging_nats(s: &Setup<'_>) -> Result<Instance, String> {
    let config = trellis_messaging_nats::NatsMessagingConfig::from_config(s.config)
        .map_err(|e| error_text(&e))?;
    warn_ignored(s.provider, &config.ignored);
    let messaging = trellis_messaging_nats::NatsMessaging::connect(&config).await;
    Ok(Instance::Messaging(Arc::new(messaging)))
}

async fn sqldb_postgres(s: &Setup<'_>) -> Result<Instance, String> {
    let config =
        trellis_postgres::PostgresConfig::from_config(s.config).map_err(|e| error_text(&e))?;
    warn_ignored(s.provider, &config.ignored);
    let db = Postgres::connect(&config)
        .await
        .map_err(|e| error_text(&e))?;
    Ok(Instance::Postgres(Arc::new(db)))
}

async fn blobstore_fs(s: &Setup<'_>) -> Result<Instance, String> {
    let root = match get_ci(s.config, "root") {
        Some(p) => resolve(s.manifest_dir, p),
        None => s
            .manifest_dir
            .join(".trellis")
            .join("blobstore")
            .join(s.provider),
    };
    let store = trellis_blobstore::fs::FsBlobstore::new(root).map_err(|e| error_text(&e))?;
    Ok(Instance::Blobstore(Arc::new(store)))
}

async fn blobstore_nats(s: &Setup<'_>) -> Result<Instance, String> {
    let config = trellis_blobstore_nats::NatsBlobConfig::from_config(s.config)
        .map_err(|e| error_text(&e))?;
    warn_ignored(s.provider, &config.ignored);
    let store = trellis_blobstore_nats::NatsBlobstore::connect(&config).await;
    Ok(Instance::Blobstore(Arc::new(store)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_provider_has_a_factory_and_every_factory_a_built_in() {
        for b in Builtin::all() {
            assert!(
                FACTORIES.iter().any(|(name, _)| *name == b.name()),
                "no factory for `{b}`"
            );
        }
        for (name, _) in FACTORIES {
            assert!(
                Builtin::from_name(name).is_some(),
                "`{name}` is not in the catalogue"
            );
        }
    }

    #[tokio::test]
    async fn factories_start_backends_from_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = BTreeMap::from([("root".to_owned(), "blobs".to_owned())]);
        let blobstore = Builtin::from_name("blobstore-fs").expect("built in");
        let started = start(blobstore, "files", &config, dir.path(), &Arc::default()).await;
        assert!(matches!(started, Ok(Instance::Blobstore(_))));
        assert!(
            dir.path().join("blobs").is_dir(),
            "the root is made under the manifest's folder"
        );
        let memory = Builtin::from_name("keyvalue-memory").expect("built in");
        let started = start(memory, "kv", &BTreeMap::new(), dir.path(), &Arc::default()).await;
        assert!(matches!(started, Ok(Instance::KeyValue(_))));
        let server = start(
            Builtin::HTTP_SERVER,
            "http",
            &BTreeMap::new(),
            dir.path(),
            &Arc::default(),
        )
        .await;
        assert!(server.is_err());
    }
}
