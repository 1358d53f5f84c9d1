//! A Trellis host: the inventory of one machine's components, providers and links, and the
//! glue that invokes components when providers call them.
//!
//! [`Host::deploy`] takes a normalised [`trellis_manifest::Application`], checks all of it
//! before anything runs (images load and are components; every import is served by the host
//! or by a link; providers are built in; named config exists; listen addresses parse), and
//! only then starts: components are prepared once, HTTP listeners are bound, events are
//! published on the lattice. Every problem found is reported at once in a [`DeployError`].
//!
//! Embedded mode (`trellis up`) deploys one manifest straight onto one host; the lattice's
//! reconciler drives the same host through the control interface (`control`'s handler,
//! reached over NATS, the admin endpoint, or in process).
//!
//! The modules, by the part of the host's state each owns:
//! - `deploy/`: `checks` (pure: manifest + import/export lists → problems or what to start)
//!   and `start` (providers, prepared components, listeners, inventory, events);
//! - `inventory` (what runs: components and providers), `listeners` (HTTP listeners for
//!   lattice links), `calls` (calls between components), `control` (the control plane and
//!   the host's `ControlHandler`), `providers` (provider state and the provider registry);
//! - `dispatch` and `limiter` (HTTP requests to components under their concurrency limit),
//!   `health` (provider health, listener retries, message subscriptions), `operations`
//!   (control-interface starts and stops), `admin` (local HTTP control), `apps` (the wadm
//!   API), `reconcile` (the reconciler), `wadm` (the wadm status provider: app status to
//!   components), `metrics` (what the host counts: Prometheus `/metrics` and
//!   `trellis.stats`), `logs` (component log lines: kept, followed, published for
//!   `trellis logs`), `sync` (the lock helper).

mod admin;
mod apps;
mod calls;
mod control;
mod deploy;
mod dispatch;
mod health;
mod inventory;
mod limiter;
mod listeners;
mod logs;
mod metrics;
mod operations;
mod problems;
mod providers;
mod reconcile;
mod sync;
mod trace;
mod wadm;
mod warm;

pub use deploy::Listening;
pub use limiter::{ConcurrencyLimiter, QueueFull};
pub use problems::{DeployError, Problem};
pub use reconcile::DRAINING_LABEL;

use dispatch::Dispatch;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;
use tokio::task::JoinSet;
use trellis_control::{ComponentId, HostId, HostInventory};
use trellis_http_server::ServerLimits;
use trellis_lattice::Lattice;
use trellis_runtime::{Compiler, Limits, Runtime, RuntimeError};

/// How a host is set up.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// A name for people; generated when absent.
    pub friendly_name: Option<String>,
    /// Labels in addition to the automatic `hostcore.*` ones.
    pub labels: BTreeMap<String, String>,
    /// Limits on every instance.
    pub limits: Limits,
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Which compiler compiles components: the optimising one, or (`trellis dev`) the fast
    /// baseline one.
    pub compiler: Compiler,
    /// Limits of the built-in HTTP server.
    pub server: ServerLimits,
    /// Requests that may wait for a busy component before the host answers 503.
    pub max_queued_requests: usize,
    /// Component log lines the host keeps for `trellis logs` (the most recent ones).
    pub log_lines: usize,
    /// Replaces every HTTP listen address in manifests (tests use `127.0.0.1:0`).
    pub http_address_override: Option<SocketAddr>,
    /// How often providers are health-checked (and failed HTTP listeners retried).
    pub provider_health_interval: std::time::Duration,
    /// How often `host_heartbeat` is published.
    pub heartbeat_interval: std::time::Duration,
    /// Size and time limits of calls between components on different hosts.
    pub call_limits: trellis_lattice::wrpc::CallLimits,
    /// How often the lattice's active reconciler compares apps with what runs; its lease
    /// lapses after three intervals without renewal, and another host takes over.
    pub reconcile_interval: std::time::Duration,
    /// Listen with `SO_REUSEPORT`, so that two hosts on one machine can serve one address
    /// while a workload moves between them (lattice hosts do; `trellis up` does not, so a
    /// second `trellis up` on a taken port fails loudly).
    pub http_reuse_port: bool,
    /// The file embedded mode keeps its apps in between runs; in memory only when `None`.
    pub apps_file: Option<PathBuf>,
    /// The file embedded mode keeps its named config in between runs (`trellis config put
    /// --local` writes it before `trellis up` starts); in memory only when `None`.
    pub config_file: Option<PathBuf>,
    /// The folder of embedded mode's secret store (`secrets.json` and its key
    /// `secrets.key`); an embedded host without one keeps no secrets.
    pub secrets_dir: Option<PathBuf>,
    /// The lattice's secrets key (its seed), which opens the secrets in the lattice's
    /// store; a lattice host without one cannot start what references secrets.
    pub secrets_key: Option<trellis_lattice::secrets::SecretsKey>,
    /// Strict mode: answer control and app requests only when a trusted key signed them
    /// (`--require-signed-control`).
    pub control_verifier: Option<Arc<trellis_lattice::signing::Verifier>>,
    /// The key this host signs its own control requests with (its reconciler's), for
    /// lattices in strict mode.
    pub control_key: Option<Arc<trellis_lattice::signing::Signer>>,
    /// The host's own control surfaces (its control endpoint, its NATS servers): no
    /// component reaches them through the HTTP client, whatever `allowed_hosts` says.
    pub protected_addresses: Vec<SocketAddr>,
    /// How components named by registry references are pulled and cached (plain-HTTP
    /// exceptions, credentials, timeout, largest image, the digest-keyed cache).
    pub registry: trellis_registry::RegistryConfig,
    /// Which components run: any (the default), or only those signed by an allowed issuer
    /// (`--allowed-issuers`), checked before they are compiled.
    pub signed_components: trellis_claims::Policy,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            friendly_name: None,
            labels: BTreeMap::new(),
            limits: Limits::default(),
            cache_dir: None,
            compiler: Compiler::default(),
            server: ServerLimits::default(),
            max_queued_requests: 1000,
            log_lines: 1000,
            http_address_override: None,
            provider_health_interval: std::time::Duration::from_secs(10),
            heartbeat_interval: std::time::Duration::from_secs(30),
            call_limits: trellis_lattice::wrpc::CallLimits::default(),
            reconcile_interval: std::time::Duration::from_secs(1),
            http_reuse_port: false,
            apps_file: None,
            config_file: None,
            secrets_dir: None,
            secrets_key: None,
            control_verifier: None,
            control_key: None,
            protected_addresses: Vec::new(),
            registry: trellis_registry::RegistryConfig::default(),
            signed_components: trellis_claims::Policy::Any,
        }
    }
}

/// One host. Its state is grouped into parts that own their locks: what runs here
/// (`inventory::Workloads`), the HTTP listeners (`listeners::Listeners`), calls between
/// components (`calls::Calls`), and the control plane (`control::ControlPlane`).
pub struct Host {
    /// This host, for the tasks and routers it hands out.
    me: std::sync::Weak<Host>,
    id: HostId,
    friendly_name: String,
    labels: Mutex<BTreeMap<String, String>>,
    started: Instant,
    runtime: Arc<Runtime>,
    /// Pulls components named by registry references.
    registry: trellis_registry::Registry,
    /// What no component may reach over HTTP ([`HostConfig::protected_addresses`]).
    protected: Arc<trellis_http_client::Protected>,
    lattice: Lattice,
    config: HostConfig,
    /// HTTP requests to the components running here.
    dispatch: Arc<Dispatch>,
    /// The components and providers running here.
    workloads: inventory::Workloads,
    /// The HTTP listeners opened for lattice links, and how they close.
    listeners: listeners::Listeners,
    /// Components answering calls from other components, and the lattice client for calls.
    calls: calls::Calls,
    /// Shared state, the app store, the reconciler and the control subscriptions.
    control: control::ControlPlane,
    shutdown: watch::Sender<bool>,
    servers: tokio::sync::Mutex<JoinSet<()>>,
    /// Message subscriptions and the health loop; aborted at shutdown.
    background: Mutex<JoinSet<()>>,
    /// Each component's message subscriptions (tasks in `background`): replaced when the
    /// component starts again, stopped when it stops.
    subscriptions: Mutex<std::collections::HashMap<ComponentId, Vec<tokio::task::AbortHandle>>>,
    /// App status delivered to components by `wadm` providers.
    wadm_feeds: wadm::Feeds,
    /// What this host counts, for `--metrics` and `trellis.stats`.
    metrics: Arc<metrics::Metrics>,
    /// Its components' log lines, for `trellis logs`.
    logs: Arc<logs::Logs>,
}

impl Host {
    /// Creates a host on `lattice`; it runs nothing until [`Host::deploy`].
    pub fn new(config: HostConfig, lattice: Lattice) -> Result<Arc<Self>, RuntimeError> {
        let runtime = Runtime::with_compiler(
            config.limits.clone(),
            config.cache_dir.as_deref(),
            config.compiler,
        )?;
        let id = new_host_id();
        let friendly_name = config
            .friendly_name
            .clone()
            .unwrap_or_else(|| format!("trellis-{}", &id.as_str()[1..7].to_lowercase()));
        let mut labels = config.labels.clone();
        labels.insert("hostcore.os".into(), std::env::consts::OS.into());
        labels.insert("hostcore.arch".into(), std::env::consts::ARCH.into());
        labels.insert("hostcore.osfamily".into(), std::env::consts::FAMILY.into());
        let (shutdown, _) = watch::channel(false);
        let logs = Arc::new(logs::Logs::new(id.clone(), config.log_lines));
        logs.publish_on(&lattice);
        let host = Arc::new_cyclic(|me: &std::sync::Weak<Host>| Self {
            logs,
            metrics: Arc::new({
                let mut metrics = metrics::Metrics::new(&id);
                metrics.attach(me.clone());
                metrics
            }),
            me: me.clone(),
            id,
            friendly_name,
            labels: Mutex::new(labels),
            started: Instant::now(),
            runtime: Arc::new(runtime),
            registry: trellis_registry::Registry::new(config.registry.clone()),
            protected: Arc::new(trellis_http_client::Protected::new(
                config.protected_addresses.iter().copied(),
            )),
            lattice,
            config,
            dispatch: Arc::default(),
            workloads: inventory::Workloads::default(),
            listeners: listeners::Listeners::default(),
            calls: calls::Calls::default(),
            control: control::ControlPlane::default(),
            shutdown,
            servers: tokio::sync::Mutex::new(JoinSet::new()),
            background: Mutex::default(),
            subscriptions: Mutex::default(),
            wadm_feeds: wadm::Feeds::default(),
        });
        let weak = Arc::downgrade(&host);
        let interval = host.config.provider_health_interval;
        host.spawn_background(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(host) = weak.upgrade() else { break };
                host.check_providers().await;
                host.sync_wadm_feeds().await;
            }
        });
        let weak = Arc::downgrade(&host);
        let interval = host.config.heartbeat_interval;
        host.spawn_background(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(host) = weak.upgrade() else { break };
                let inventory = serde_json::to_value(host.inventory()).unwrap_or_default();
                host.publish("host_heartbeat", inventory);
            }
        });
        host.publish(
            "host_started",
            serde_json::json!({
                "labels": host.labels(),
                "friendly_name": host.friendly_name,
            }),
        );
        Ok(host)
    }

    /// The host's id.
    pub fn id(&self) -> &HostId {
        &self.id
    }

    /// The host's labels, including the automatic `hostcore.*` ones.
    pub fn labels(&self) -> BTreeMap<String, String> {
        sync::lock(&self.labels).clone()
    }

    /// A friendly name for people.
    pub fn friendly_name(&self) -> &str {
        &self.friendly_name
    }

    /// Resolves when someone asked this host to stop (`host.stop` on the control
    /// interface); the owner of the host then calls [`Host::shutdown`].
    pub async fn stop_requested(&self) {
        let mut rx = self.control.stop_request.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// The lattice it belongs to.
    pub fn lattice(&self) -> &Lattice {
        &self.lattice
    }

    /// What the host runs now.
    pub fn inventory(&self) -> HostInventory {
        let (components, providers) = self.workloads.describe();
        let uptime = self.started.elapsed().as_secs();
        HostInventory {
            host_id: self.id.clone(),
            friendly_name: self.friendly_name.clone(),
            labels: self.labels(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_seconds: uptime,
            uptime_human: format!("{}h {}m {}s", uptime / 3600, uptime / 60 % 60, uptime % 60),
            components,
            providers,
            pending_components: sync::lock(&self.control.pending_components)
                .values()
                .cloned()
                .collect(),
        }
    }

    /// Stops accepting requests, lets in-flight ones finish (up to the drain timeout), and
    /// returns when every listener has stopped.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        sync::lock(&self.control.serving).take();
        sync::lock(&self.background).abort_all();
        let mut servers = self.servers.lock().await;
        while servers.join_next().await.is_some() {}
        let data = serde_json::json!({"host_id": self.id.to_string(), "labels": self.labels()});
        // Sent and flushed before returning: the process may exit right after.
        self.lattice
            .publish_event_now(&self.id, "host_stopped", data)
            .await;
    }

    fn spawn_background(
        &self,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::AbortHandle {
        sync::lock(&self.background).spawn(task)
    }

    /// Makes `tasks` the message subscriptions of component `id`, stopping those it had: a
    /// component started again (new image, new links) receives through its new instance
    /// only, once.
    fn replace_subscriptions(&self, id: &ComponentId, tasks: Vec<tokio::task::AbortHandle>) {
        let old = if tasks.is_empty() {
            sync::lock(&self.subscriptions).remove(id)
        } else {
            sync::lock(&self.subscriptions).insert(id.clone(), tasks)
        };
        for task in old.into_iter().flatten() {
            task.abort();
        }
    }

    fn publish(&self, event: &str, mut data: serde_json::Value) {
        if let Some(map) = data.as_object_mut() {
            map.insert("host_id".into(), self.id.to_string().into());
        }
        let event = self.lattice.publish_event(&self.id, event, data);
        tracing::debug!(event = event.name(), "published event");
    }
}

/// A fresh host id in the shape of an nkey server public key: `N` and 55 base32 characters.
fn new_host_id() -> HostId {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = Vec::with_capacity(64);
    while bytes.len() < 55 {
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    let id: String = std::iter::once('N')
        .chain(
            bytes
                .iter()
                .take(55)
                .map(|b| ALPHABET[(*b as usize) % 32] as char),
        )
        .collect();
    HostId::new(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_ids_look_like_nkeys() {
        let id = super::new_host_id();
        assert_eq!(id.as_str().len(), 56);
        assert!(id.as_str().starts_with('N'));
        assert!(
            id.as_str()[1..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        assert_ne!(super::new_host_id(), id);
    }
}
