//! This host's answers to the wasmCloud v1 control interface, whatever transport the
//! request came on: NATS (served by [`trellis_lattice::serve`]), the embedded admin
//! endpoint, or the reconciler in the same process. Requests arrive parsed
//! ([`CtlRequest`]); lattice-wide ones (links, config, claims) read and write the shared
//! state ([`LatticeState`]: JetStream KV on a lattice, memory when embedded), so the answer
//! is the same whichever host gives it. Every reply is the `{success, message, response}`
//! envelope.

use crate::Host;
use crate::sync;
use bytes::Bytes;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use trellis_control::ctl::{AuctionAck, DeleteLink, HostLabel};
use trellis_control::wadm::{ApiResult, AppRequest, ErrorReply};
use trellis_control::{CtlRequest, CtlResponse, HostId, HostSummary, Link, error_text};
use trellis_lattice::secrets::{SecretStore, SecretsKey};
use trellis_lattice::serve::{ControlHandler, envelope};
use trellis_lattice::state::LatticeState;

/// Why the control interface could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Subscribing failed.
    #[error(transparent)]
    Serve(#[from] trellis_lattice::serve::ServeError),
    /// The shared state could not be opened.
    #[error(transparent)]
    State(#[from] trellis_lattice::state::StateError),
    /// The app store could not be opened.
    #[error(transparent)]
    Apps(#[from] trellis_lattice::apps::AppStoreError),
    /// The secret store could not be opened, or this host's secrets key is not the lattice's.
    #[error(transparent)]
    Secrets(#[from] trellis_lattice::secrets::SecretsError),
    /// The lattice's component store could not be opened.
    #[error(transparent)]
    Components(#[from] trellis_lattice::components::ComponentStoreError),
}

/// The host's part in the lattice's control: the shared state, the app store, the
/// subscriptions that answer control requests, the reconciler's wake-up, the stop request,
/// and how components started through the control interface were scaled.
pub(crate) struct ControlPlane {
    /// Links and config of the lattice: JetStream KV on NATS, in memory when embedded.
    pub(crate) state: std::sync::OnceLock<LatticeState>,
    /// The app store: JetStream KV on a lattice; in embedded mode a file (or memory),
    /// created with its reconciler on first use.
    pub(crate) apps: std::sync::OnceLock<trellis_lattice::apps::AppStore>,
    /// The lattice's secret store, once this host serves the control interface on NATS.
    pub(crate) secrets: std::sync::OnceLock<SecretStore>,
    /// The lattice's component store (`lattice://` images), once this host serves the
    /// control interface on NATS.
    pub(crate) components: std::sync::OnceLock<trellis_lattice::components::ComponentStore>,
    /// The control interface and app API on NATS, while this host serves them.
    pub(crate) serving: std::sync::Mutex<Option<trellis_lattice::serve::Serving>>,
    /// Wakes the reconciler loop before its next tick.
    pub(crate) reconcile_wake: Arc<tokio::sync::Notify>,
    /// Set when the control interface asks the host to stop.
    pub(crate) stop_request: tokio::sync::watch::Sender<bool>,
    /// How each component started through the control interface was last scaled, so that
    /// `component.update` can start the new image the same way.
    pub(crate) started_components: std::sync::Mutex<
        std::collections::HashMap<
            trellis_control::ComponentId,
            trellis_control::ctl::ScaleComponent,
        >,
    >,
    /// The `component.scale` commands whose work runs now (fetching and compiling the image,
    /// then starting it), by component: the same command again while it runs is already being
    /// done. The reconciler asks again every tick until it sees the component, and a big
    /// component takes longer than a tick to compile.
    pub(crate) scaling: std::sync::Mutex<
        std::collections::HashMap<
            trellis_control::ComponentId,
            trellis_control::ctl::ScaleComponent,
        >,
    >,
    /// Components asked for through the control interface that are starting (fetching and
    /// compiling their image) or failed to, for the inventory.
    pub(crate) pending_components:
        std::sync::Mutex<BTreeMap<trellis_control::ComponentId, trellis_control::PendingComponent>>,
    /// The lattice links delivering messages or watched keys that components started here
    /// were started with.
    pub(crate) delivery_links:
        std::sync::Mutex<std::collections::HashSet<crate::operations::DeliveryLinkKey>>,
    /// While this host runs the reconciler: the components each host last failed to start,
    /// by (host, component), from the lattice's `component_scale_failed` events (a
    /// `component_scaled` clears one), so that app status says why.
    pub(crate) scale_failures:
        std::sync::Mutex<BTreeMap<(String, String), trellis_reconciler::FailedComponent>>,
}

impl Default for ControlPlane {
    fn default() -> Self {
        Self {
            state: std::sync::OnceLock::new(),
            apps: std::sync::OnceLock::new(),
            secrets: std::sync::OnceLock::new(),
            components: std::sync::OnceLock::new(),
            serving: std::sync::Mutex::default(),
            reconcile_wake: Arc::default(),
            stop_request: tokio::sync::watch::channel(false).0,
            started_components: std::sync::Mutex::default(),
            scaling: std::sync::Mutex::default(),
            delivery_links: std::sync::Mutex::default(),
            pending_components: std::sync::Mutex::default(),
            scale_failures: std::sync::Mutex::default(),
        }
    }
}

/// A host as the lattice's transports see it. Holds the host weakly: serving requests
/// does not keep a stopped host alive.
pub(crate) struct Handler {
    host: Weak<Host>,
    id: HostId,
}

impl Handler {
    pub(crate) fn new(host: &Arc<Host>) -> Arc<Self> {
        Arc::new(Self {
            host: Arc::downgrade(host),
            id: host.id.clone(),
        })
    }
}

fn reply<T: serde::Serialize>(response: &CtlResponse<T>) -> Bytes {
    envelope(response)
}

impl ControlHandler for Handler {
    fn host_id(&self) -> &HostId {
        &self.id
    }

    fn control(&self, request: CtlRequest) -> BoxFuture<'static, Option<Bytes>> {
        let host = self.host.upgrade();
        Box::pin(async move {
            let Some(host) = host else {
                return Some(reply(&CtlResponse::<()>::error("the host is stopping")));
            };
            host.handle_control(request).await
        })
    }

    fn app(&self, request: AppRequest) -> BoxFuture<'static, Bytes> {
        let host = self.host.upgrade();
        Box::pin(async move {
            let Some(host) = host else {
                let reply = ErrorReply {
                    result: ApiResult::Error,
                    message: "the host is stopping".into(),
                };
                return serde_json::to_vec(&reply).unwrap_or_default().into();
            };
            let store = host.app_store();
            host.app_request(&store, request).await
        })
    }

    fn stop(&self) {
        if let Some(host) = self.host.upgrade() {
            let _ = host.control.stop_request.send(true);
        }
    }
}

impl Host {
    /// Starts answering the control interface and the app API on NATS, and running the
    /// lattice's reconciler when this host holds its lease; returns once subscribed. A host
    /// on an in-process lattice answers through [`Host::serve_admin`] instead.
    pub async fn serve_control(self: &Arc<Self>) -> Result<(), ControlError> {
        let Some(nats) = self.lattice.connections().cloned() else {
            return Ok(());
        };
        let state = LatticeState::open(nats.ctl.clone(), self.lattice.name()).await?;
        let _ = self.control.state.set(state.clone());
        let apps =
            trellis_lattice::apps::AppStore::open(nats.ctl.clone(), self.lattice.name()).await?;
        let _ = self.control.apps.set(apps.clone());
        let secrets = SecretStore::open(nats.ctl.clone(), self.lattice.name()).await?;
        if let Some(key) = &self.config.secrets_key {
            secrets.adopt_key(key).await?;
        }
        let _ = self.control.secrets.set(secrets);
        let components = trellis_lattice::components::ComponentStore::open(
            nats.ctl.clone(),
            self.lattice.name(),
        )
        .await?;
        let _ = self.control.components.set(components);
        // Links put through any host may start HTTP listeners here.
        let mut link_events = self.lattice.watch_events("linkdef_set").await?;
        {
            let host = Arc::downgrade(self);
            let state = state.clone();
            self.spawn_background(async move {
                while let Some(event) = link_events.next().await {
                    let Some(host) = host.upgrade() else { break };
                    if let Ok(link) = serde_json::from_value::<Link>(event.data) {
                        host.apply_http_link(&link, &state).await;
                        host.apply_delivery_link(&link, &state);
                    }
                }
            });
        }
        let serving = trellis_lattice::serve::serve(
            &self.lattice,
            Handler::new(self),
            self.config.control_verifier.clone(),
        )
        .await?;
        *sync::lock(&self.control.serving) = serving;
        self.start_reconciler(apps, state, self.config.reconcile_interval);
        tracing::info!(lattice = %self.lattice.name(), host_id = %self.id, "serving the control interface");
        Ok(())
    }

    /// Answers one control request (`operation` is the subject after
    /// `wasmbus.ctl.v1.{lattice}.`, for example `host.ping` or `config.get.db`) with the JSON
    /// reply envelope: what the admin endpoint of an embedded host serves.
    pub async fn control_request(self: &Arc<Self>, operation: &str, payload: &[u8]) -> Bytes {
        let handler = Handler::new(self);
        trellis_lattice::serve::answer(&*handler, operation, payload)
            .await
            .unwrap_or_else(|| {
                reply(&CtlResponse::<()>::error(
                    "this host cannot take that workload (its labels do not satisfy the constraints, or it runs it already)",
                ))
            })
    }

    /// The shared links and config: JetStream KV on a lattice, in memory when embedded.
    /// Where secrets are kept: the lattice's bucket, or embedded mode's folder; `None` for
    /// an embedded host given no folder.
    pub(crate) fn secret_store(&self) -> Option<SecretStore> {
        if let Some(store) = self.control.secrets.get() {
            return Some(store.clone());
        }
        if self.lattice.connections().is_some() {
            return None;
        }
        self.config.secrets_dir.as_deref().map(SecretStore::local)
    }

    /// The key that opens this host's secrets: the lattice's seed it was given, or embedded
    /// mode's own key (created on first use).
    pub(crate) fn secrets_key(&self) -> Option<SecretsKey> {
        if let Some(key) = &self.config.secrets_key {
            return Some(key.clone());
        }
        match self.secret_store()?.local_key() {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!("cannot read the secrets key: {}", error_text(&e));
                None
            }
        }
    }

    /// Answers `secret.*`: the store sees only sealed values, and no answer carries one.
    async fn secret_request(&self, request: CtlRequest) -> Bytes {
        let Some(store) = self.secret_store() else {
            return reply(&CtlResponse::<()>::error(
                "this host keeps no secret store: start `trellis up` from the manifest's folder, or use a lattice",
            ));
        };
        match request {
            CtlRequest::GetSecretsKey => reply(&match store.public_key().await {
                Ok(key) => CtlResponse::ok(serde_json::json!({ "public_key": key })),
                Err(e) => CtlResponse::error(error_text(&e)),
            }),
            CtlRequest::PutSecret { name, sealed } => {
                reply(&match store.put(&name, sealed).await {
                    Ok(version) => {
                        CtlResponse::ok(serde_json::json!({ "name": name, "version": version }))
                    }
                    Err(e) => CtlResponse::error(error_text(&e)),
                })
            }
            CtlRequest::DeleteSecret(name) => reply(&match store.delete(&name).await {
                Ok(true) => CtlResponse::<()>::success(),
                Ok(false) => CtlResponse::error(format!("no secret `{name}` is stored")),
                Err(e) => CtlResponse::error(error_text(&e)),
            }),
            CtlRequest::ListSecrets => reply(&match store.list().await {
                Ok(list) => CtlResponse::ok(list),
                Err(e) => CtlResponse::error(error_text(&e)),
            }),
            _ => reply(&CtlResponse::<()>::error("not a secret request")),
        }
    }

    pub(crate) fn control_state(&self) -> LatticeState {
        self.control
            .state
            .get_or_init(|| match self.config.config_file.as_deref().map(LatticeState::local) {
                Some(Ok(state)) => state,
                Some(Err(e)) => {
                    tracing::error!(error = %error_text(&e), "named config will not be kept between runs");
                    LatticeState::in_memory()
                }
                None => LatticeState::in_memory(),
            })
            .clone()
    }

    /// Answers an auction when this host's labels satisfy the constraints and it does not
    /// already run the provider; `None` means stay silent.
    fn auction(&self, request: &CtlRequest) -> Option<AuctionAck> {
        let labels = self.labels();
        let satisfies = |constraints: &BTreeMap<String, String>| {
            constraints.iter().all(|(k, v)| labels.get(k) == Some(v))
        };
        match request {
            CtlRequest::ComponentAuction(a) if satisfies(&a.constraints) => {
                Some(AuctionAck::Component {
                    component_ref: a.component_ref.clone(),
                    component_id: a.component_id.clone(),
                    host_id: self.id.clone(),
                    constraints: a.constraints.clone(),
                })
            }
            CtlRequest::ProviderAuction(a) if satisfies(&a.constraints) => {
                if self.provider_running(a.provider_id.as_str()) {
                    return None;
                }
                Some(AuctionAck::Provider {
                    provider_ref: a.provider_ref.clone(),
                    provider_id: a.provider_id.clone(),
                    host_id: self.id.clone(),
                    constraints: a.constraints.clone(),
                })
            }
            _ => None,
        }
    }

    /// Answers `request`, counted in the metrics by its operation and outcome.
    async fn handle_control(self: &Arc<Self>, request: CtlRequest) -> Option<Bytes> {
        let operation = request.operation();
        let body = self.answer_control(request).await;
        if let Some(body) = &body {
            #[derive(serde::Deserialize)]
            struct Outcome {
                #[serde(default)]
                success: bool,
            }
            let ok = serde_json::from_slice::<Outcome>(body).is_ok_and(|o| o.success);
            self.metrics.control_request(operation_kind(&operation), ok);
        }
        body
    }

    async fn answer_control(self: &Arc<Self>, request: CtlRequest) -> Option<Bytes> {
        if let Some(id) = request.host_id()
            && *id != self.id
        {
            return Some(reply(&CtlResponse::<()>::error(format!(
                "no host `{id}` here; this host is {}",
                self.id
            ))));
        }
        let state = self.control_state();
        let body = match request {
            CtlRequest::ComponentAuction(_) | CtlRequest::ProviderAuction(_) => {
                // A host that cannot take the workload stays silent, as in wasmCloud.
                return self
                    .auction(&request)
                    .map(|ack| reply(&CtlResponse::ok(ack)));
            }
            CtlRequest::PingHosts => reply(&CtlResponse::ok(self.summary())),
            CtlRequest::GetHost(_) => reply(&CtlResponse::ok(self.inventory())),
            // The transport stops the host once the reply is on its way.
            CtlRequest::StopHost(_) => reply(&CtlResponse::<()>::success()),
            CtlRequest::PutLabel(label) => reply(&self.change_label(label, true)),
            CtlRequest::DeleteLabel(label) => reply(&self.change_label(label, false)),
            CtlRequest::PutConfig { name, values } => {
                reply(&self.put_config(&name, &values, &state).await)
            }
            CtlRequest::GetConfig(name) => reply(&match state.get_config(&name).await {
                Ok(values) => CtlResponse {
                    success: true,
                    message: String::new(),
                    response: values,
                },
                Err(e) => CtlResponse::error(error_text(&e)),
            }),
            CtlRequest::DeleteConfig(name) => reply(&match state.delete_config(&name).await {
                Ok(()) => {
                    self.publish("config_deleted", serde_json::json!({"config_name": name}));
                    CtlResponse::<()>::success()
                }
                Err(e) => CtlResponse::error(error_text(&e)),
            }),
            CtlRequest::PutLink(link) => {
                let response = self.put_link(link, &state).await;
                if response.success && self.lattice.connections().is_none() {
                    // Embedded: no event comes back over NATS, so apply it here.
                    self.apply_http_links(&state).await;
                }
                reply(&response)
            }
            CtlRequest::DeleteLink(request) => reply(&self.delete_link(request, &state).await),
            CtlRequest::GetLinks => reply(&match state.links().await {
                Ok(links) => CtlResponse::ok(links),
                Err(e) => CtlResponse::error(error_text(&e)),
            }),
            CtlRequest::GetClaims => reply(&match state.claims().await {
                Ok(claims) => CtlResponse::ok(
                    claims
                        .iter()
                        .map(|c| c.reply_map())
                        .collect::<Vec<BTreeMap<String, String>>>(),
                ),
                Err(e) => CtlResponse::error(error_text(&e)),
            }),
            CtlRequest::ScaleComponent(scale) => reply(&self.scale(scale, &state)),
            CtlRequest::UpdateComponent(update) => reply(&self.update_component(update, &state)),
            CtlRequest::StopProvider(stop) => reply(&self.stop_provider(&stop.provider_id)),
            CtlRequest::StartProvider(start) => reply(&self.start_provider(start, &state)),
            request @ (CtlRequest::GetSecretsKey
            | CtlRequest::PutSecret { .. }
            | CtlRequest::DeleteSecret(_)
            | CtlRequest::ListSecrets) => self.secret_request(request).await,
            CtlRequest::CallComponent(call) => reply(&self.call_by_name(call).await),
            CtlRequest::GetStats(_) => reply(&CtlResponse::ok(self.stats())),
            CtlRequest::GetLogs(request) => reply(&CtlResponse::ok(self.logs.recent(&request))),
        };
        Some(body)
    }

    /// What `host.ping` answers.
    fn summary(&self) -> HostSummary {
        let inventory = self.inventory();
        let nats = self.lattice.connections();
        HostSummary {
            id: self.id.clone(),
            friendly_name: self.friendly_name.clone(),
            labels: inventory.labels,
            lattice: self.lattice.name().to_owned(),
            uptime_seconds: inventory.uptime_seconds,
            uptime_human: Some(inventory.uptime_human),
            version: Some(inventory.version),
            ctl_host: nats.map(|n| n.ctl_url.clone()),
            rpc_host: nats.map(|n| n.rpc_url.clone()),
        }
    }

    fn change_label(&self, request: HostLabel, put: bool) -> CtlResponse<()> {
        if request.key.starts_with("hostcore.") {
            return CtlResponse::error(format!(
                "label `{}` is set by the host and cannot be changed",
                request.key
            ));
        }
        if request.key.is_empty() {
            return CtlResponse::error("a label needs a non-empty key");
        }
        let labels = {
            let mut labels = sync::lock(&self.labels);
            if put {
                labels.insert(request.key, request.value);
            } else if labels.remove(&request.key).is_none() {
                return CtlResponse::error(format!("this host has no label `{}`", request.key));
            }
            labels.clone()
        };
        self.publish("labels_changed", serde_json::json!({"labels": labels}));
        CtlResponse::success()
    }

    async fn put_config(
        &self,
        name: &str,
        values: &BTreeMap<String, String>,
        state: &LatticeState,
    ) -> CtlResponse<()> {
        match state.put_config(name, values).await {
            Ok(()) => {
                self.publish("config_set", serde_json::json!({"config_name": name}));
                CtlResponse::success()
            }
            Err(e) => CtlResponse::error(error_text(&e)),
        }
    }

    async fn put_link(&self, link: Link, state: &LatticeState) -> CtlResponse<()> {
        let missing: Vec<&str> = [
            ("source_id", link.source_id.as_str()),
            ("target", link.target.as_str()),
            ("wit_namespace", link.wit_namespace.as_str()),
            ("wit_package", link.wit_package.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| k)
        .collect();
        let result = if !missing.is_empty() {
            Err(format!("a link needs {}", missing.join(", ")))
        } else if link.interfaces.is_empty() {
            Err("a link needs at least one interface".to_owned())
        } else {
            state.put_link(&link).await.map_err(|e| error_text(&e))
        };
        match result {
            Ok(()) => {
                self.publish(
                    "linkdef_set",
                    serde_json::to_value(&link).unwrap_or_default(),
                );
                CtlResponse::success()
            }
            Err(e) => {
                let mut data = serde_json::to_value(&link).unwrap_or_default();
                if let Some(map) = data.as_object_mut() {
                    map.insert("message".into(), e.clone().into());
                }
                self.publish("linkdef_set_failed", data);
                CtlResponse::error(e)
            }
        }
    }

    async fn delete_link(&self, request: DeleteLink, state: &LatticeState) -> CtlResponse<()> {
        match state
            .delete_link(
                request.source_id.as_str(),
                request.name.as_str(),
                &request.wit_namespace,
                &request.wit_package,
            )
            .await
        {
            Ok(removed) => {
                if let Some(link) = removed {
                    self.publish(
                        "linkdef_deleted",
                        serde_json::to_value(&link).unwrap_or_default(),
                    );
                }
                CtlResponse::success()
            }
            Err(e) => CtlResponse::error(error_text(&e)),
        }
    }
}

/// An operation without the host id or name it addresses (`component.scale.NHOST` →
/// `component.scale`): a metrics label with a bounded set of values.
pub(crate) fn operation_kind(operation: &str) -> &str {
    match operation.match_indices('.').nth(1) {
        Some((end, _)) => &operation[..end],
        None => operation,
    }
}
