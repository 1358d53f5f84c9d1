//! Starting, updating and stopping components and providers one at a time through the
//! control interface (`component.scale`, `component.update`, `provider.start`,
//! `provider.stop`), and serving HTTP and delivering messages for links put on the lattice.
//!
//! Each operation deploys a one-entry application through the same checks as `trellis up`
//! ([`Host::deploy`]); the reply only says the request was accepted, and the outcome is an
//! event (`component_scaled` / `component_scale_failed`, `provider_started` /
//! `provider_start_failed`), as wasmCloud hosts do. Links whose source is an HTTP server
//! provider on this host and whose target is a component on this host start a listener at
//! the address in the link's source config. Links from a messaging provider on this host to
//! a component on this host deliver the subscriptions in the link's source config, and links
//! from a key-value provider to a component's `wasi:keyvalue/watcher` the changes to the keys
//! it watches: the component is started with them (again, when the link or the provider
//! comes later).

use crate::Host;
use crate::deploy::Route;
use crate::sync;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use trellis_control::ctl::{ScaleComponent, StartProvider, UpdateComponent};
use trellis_control::error_text;
use trellis_control::{ComponentId, CtlResponse, Link, PendingComponent, PendingState, ProviderId};
use trellis_lattice::state::LatticeState;
use trellis_manifest::{Application, Builtin, Component, ImageRef, Provider, Scale};

/// `file:///abs/path.wasm`, an absolute path, or a registry reference (pulled when the
/// component starts).
fn image(reference: &str) -> Result<ImageRef, String> {
    if let Some(path) = reference.strip_prefix("file://") {
        let path = PathBuf::from(path);
        return if path.is_absolute() {
            Ok(ImageRef::File(path))
        } else {
            Err(format!(
                "`{reference}` is not an absolute file:// path: a host cannot tell what a relative path is relative to"
            ))
        };
    }
    if reference.starts_with('/') {
        return Ok(ImageRef::File(PathBuf::from(reference)));
    }
    trellis_manifest::check_image_reference(reference)
        .map(|()| ImageRef::Remote(reference.to_owned()))
}

/// Whether `link` has a provider deliver to a component something the component subscribes
/// to when it starts: messages from a messaging provider, or changes to watched keys from a
/// key-value provider.
fn delivers_to_component(link: &Link) -> bool {
    link.carries("wasmcloud", "messaging", "handler")
        || link.carries("wasmcloud", "messaging", "incoming-handler")
        || link.carries("wasi", "keyvalue", "watcher")
        || link.carries("wasi", "keyvalue", "watch")
}

/// A delivering link (messages, watched keys) a component was started with: provider,
/// component, link name and the link's source config (its subscriptions or watched keys), so
/// that a link put again unchanged does not restart the component, and a changed one does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DeliveryLinkKey {
    provider: String,
    component: String,
    name: String,
    source_config: Vec<String>,
}

impl DeliveryLinkKey {
    pub(crate) fn of(link: &Link) -> Self {
        Self {
            provider: link.source_id.to_string(),
            component: link.target.to_string(),
            name: link.name.to_string(),
            source_config: link.source_config.clone(),
        }
    }
}

fn app(name: &str) -> Application {
    Application {
        name: name.to_owned(),
        version: None,
        description: None,
        annotations: BTreeMap::from([(
            crate::deploy::LATTICE_OPERATION.to_owned(),
            "true".to_owned(),
        )]),
        labels: BTreeMap::new(),
        manifest_path: std::env::current_dir().unwrap_or_default().join("lattice"),
        components: Vec::new(),
        providers: Vec::new(),
        links: Vec::new(),
        configs: BTreeMap::new(),
        warnings: Vec::new(),
        revealed: BTreeMap::new(),
    }
}

async fn configs(
    state: &LatticeState,
    names: &[String],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for name in names {
        if let Ok(Some(values)) = state.get_config(name).await {
            out.insert(name.clone(), values);
        }
    }
    out
}

impl Host {
    /// `component.update`: runs the component from a new image, with the count and config it
    /// was started with. The new version takes over requests once it is ready; if it cannot
    /// start, the old one keeps running (and `component_scale_failed` says why).
    pub(crate) fn update_component(
        self: &Arc<Self>,
        cmd: UpdateComponent,
        state: &LatticeState,
    ) -> CtlResponse<()> {
        let previous = sync::lock(&self.control.started_components)
            .get(&cmd.component_id)
            .cloned();
        let Some(previous) = previous else {
            return CtlResponse::error(format!(
                "component `{}` was not started through the control interface on this host; scale it (or deploy its manifest again) instead",
                cmd.component_id
            ));
        };
        self.scale(
            ScaleComponent {
                component_ref: cmd.new_component_ref,
                ..previous
            },
            state,
        )
    }

    /// `provider.stop`: the provider leaves the inventory, calls through its links fail from
    /// then on, its HTTP listeners close (requests in flight finish).
    pub(crate) fn stop_provider(&self, provider_id: &ProviderId) -> CtlResponse<()> {
        let Some(provider) = self.workloads.remove_provider(provider_id) else {
            return CtlResponse::error(format!(
                "provider `{provider_id}` is not running on this host"
            ));
        };
        provider.stop();
        self.listeners.forget_provider(provider_id.as_str());
        tracing::info!(%provider_id, "provider stopped");
        self.publish(
            "provider_stopped",
            serde_json::json!({"provider_id": provider_id, "reason": "stop requested"}),
        );
        CtlResponse::success()
    }

    /// `component.scale`: accepted at once; the work and its event follow.
    pub(crate) fn scale(
        self: &Arc<Self>,
        cmd: ScaleComponent,
        state: &LatticeState,
    ) -> CtlResponse<()> {
        if cmd.component_id.as_str().is_empty() {
            return CtlResponse::error("component.scale needs a component_id");
        }
        let image = if cmd.count == 0 {
            None
        } else {
            match image(&cmd.component_ref) {
                Ok(i) => Some(i),
                Err(e) => return CtlResponse::error(e),
            }
        };
        if image.is_some() {
            let mut scaling = sync::lock(&self.control.scaling);
            if scaling.get(&cmd.component_id) == Some(&cmd) {
                // Asked again while it is being done: a second compile of the same image
                // would only compete with the first for the CPU.
                tracing::debug!(component_id = %cmd.component_id, "component.scale: already under way");
                return CtlResponse::success();
            }
            scaling.insert(cmd.component_id.clone(), cmd.clone());
        }
        self.set_pending(
            &cmd,
            image.as_ref().map(|_| PendingState::Starting {
                since: time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            }),
        );
        let host = self.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let id = cmd.component_id.clone();
            let Some(image) = image else {
                host.remove_component(&id);
                host.publish(
                    "component_scaled",
                    serde_json::json!({"component_id": id, "image_ref": cmd.component_ref, "max_instances": 0}),
                );
                host.apply_http_links(&state).await;
                return;
            };
            let mut app = app(&format!("lattice-{}", cmd.component_id));
            app.annotations.extend(cmd.annotations.clone());
            let mut config_names = cmd.config.clone();
            // The component's lattice links to providers running here, and to components
            // anywhere in the lattice, serve its imports; messaging and key-value providers
            // running here deliver the subscriptions and watched keys of their links to it.
            for link in state.links().await.unwrap_or_default() {
                if link.target.as_str() == cmd.component_id.as_str() && delivers_to_component(&link)
                {
                    if let Some(provider) = host.running_provider(link.source_id.as_str()) {
                        config_names.extend(link.source_config.iter().cloned());
                        if app.provider(&provider.name).is_none() {
                            app.providers.push(provider);
                        }
                        sync::lock(&host.control.delivery_links).insert(DeliveryLinkKey::of(&link));
                        app.links.push(trellis_manifest::LinkSpec {
                            source: link.source_id.to_string(),
                            target: cmd.component_id.to_string(),
                            link,
                            line: 0,
                        });
                    }
                    continue;
                }
                if link.source_id != cmd.component_id {
                    continue;
                }
                let Some(provider) = host.running_provider(link.target.as_str()) else {
                    if !crate::calls::provider_package(&link.wit_namespace, &link.wit_package) {
                        config_names.extend(link.source_config.iter().cloned());
                        app.links.push(trellis_manifest::LinkSpec {
                            source: cmd.component_id.to_string(),
                            target: link.target.to_string(),
                            link,
                            line: 0,
                        });
                    }
                    continue;
                };
                config_names.extend(link.source_config.iter().cloned());
                config_names.extend(link.target_config.iter().cloned());
                if app.provider(&provider.name).is_none() {
                    app.providers.push(provider);
                }
                app.links.push(trellis_manifest::LinkSpec {
                    source: cmd.component_id.to_string(),
                    target: link.target.to_string(),
                    link,
                    line: 0,
                });
            }
            app.configs = configs(&state, &config_names).await;
            app.components.push(Component {
                name: cmd.component_id.to_string(),
                id: id.clone(),
                image,
                scale: Scale {
                    instances: cmd.count,
                    ..Scale::default()
                },
                config: cmd
                    .config
                    .iter()
                    .filter(|n| app.configs.contains_key(*n))
                    .cloned()
                    .collect(),
                line: 0,
            });
            // The running version, if any, serves until the new one replaces it.
            let deployed = host.deploy(&app).await;
            {
                let mut scaling = sync::lock(&host.control.scaling);
                if scaling.get(&cmd.component_id) == Some(&cmd) {
                    scaling.remove(&cmd.component_id);
                }
            }
            match deployed {
                Ok(_) => {
                    host.set_pending(&cmd, None);
                    sync::lock(&host.control.started_components)
                        .insert(cmd.component_id.clone(), cmd.clone());
                    host.apply_http_links(&state).await
                }
                Err(e) => {
                    tracing::warn!(component_id = %id, error = %e, "component.scale failed");
                    host.set_pending(
                        &cmd,
                        Some(PendingState::Failed {
                            reason: e.to_string(),
                        }),
                    );
                    host.publish(
                        "component_scale_failed",
                        serde_json::json!({"component_id": id, "image_ref": cmd.component_ref, "max_instances": cmd.count, "error": e.to_string()}),
                    );
                }
            }
        });
        CtlResponse::success()
    }

    /// Records where a component asked for with `cmd` stands for the inventory (`None`:
    /// running as asked, or stopped, so nothing to show).
    fn set_pending(&self, cmd: &ScaleComponent, state: Option<PendingState>) {
        let mut pending = sync::lock(&self.control.pending_components);
        match state {
            None => {
                pending.remove(&cmd.component_id);
            }
            Some(state) => {
                pending.insert(
                    cmd.component_id.clone(),
                    PendingComponent {
                        id: cmd.component_id.clone(),
                        image_ref: cmd.component_ref.clone(),
                        max_instances: cmd.count,
                        state,
                    },
                );
            }
        }
    }

    /// `provider.start`: accepted at once; the work and its event follow.
    pub(crate) fn start_provider(
        self: &Arc<Self>,
        cmd: StartProvider,
        state: &LatticeState,
    ) -> CtlResponse<()> {
        let Some(builtin) = Builtin::from_image_ref(&cmd.provider_ref) else {
            return CtlResponse::error(format!(
                "`{}` is not a built-in provider; external providers are not supported yet (Trellis runs its built-in providers inside the host)",
                cmd.provider_ref
            ));
        };
        if cmd.provider_id.as_str().is_empty() {
            return CtlResponse::error("provider.start needs a provider_id");
        }
        if self.provider_running(cmd.provider_id.as_str()) {
            return CtlResponse::error(format!(
                "provider `{}` already runs on this host",
                cmd.provider_id
            ));
        }
        let host = self.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let mut app = app(&format!("lattice-{}", cmd.provider_id));
            app.annotations.extend(cmd.annotations.clone());
            app.configs = configs(&state, &cmd.config).await;
            app.providers.push(Provider {
                name: cmd.provider_id.to_string(),
                id: cmd.provider_id.clone(),
                image_ref: cmd.provider_ref.clone(),
                builtin: Some(builtin),
                scale: Scale::default(),
                config: cmd
                    .config
                    .iter()
                    .filter(|n| app.configs.contains_key(*n))
                    .cloned()
                    .collect(),
                line: 0,
            });
            match host.deploy(&app).await {
                Ok(_) => {
                    host.apply_http_links(&state).await;
                    for link in state.links().await.unwrap_or_default() {
                        host.apply_delivery_link(&link, &state);
                    }
                    host.sync_wadm_feeds().await;
                    host.relink_components(&cmd.provider_id, &state).await;
                }
                Err(e) => host.publish(
                    "provider_start_failed",
                    serde_json::json!({"provider_id": cmd.provider_id, "provider_ref": cmd.provider_ref, "error": e.to_string()}),
                ),
            }
        });
        CtlResponse::success()
    }

    /// Starts again the components started here through the control interface that have a
    /// lattice link to `provider`, which just started: their calls then go to it, whether
    /// they started before it did or were linked to an instance of it that was stopped. A
    /// running version keeps serving until the new one replaces it.
    async fn relink_components(self: &Arc<Self>, provider: &ProviderId, state: &LatticeState) {
        let links = state.links().await.unwrap_or_default();
        let linked: Vec<ScaleComponent> = sync::lock(&self.control.started_components)
            .values()
            .filter(|cmd| {
                links.iter().any(|l| {
                    l.source_id.as_str() == cmd.component_id.as_str()
                        && l.target.as_str() == provider.as_str()
                })
            })
            .cloned()
            .collect();
        for cmd in linked {
            tracing::info!(component_id = %cmd.component_id, provider_id = %provider, "starting the component again with the provider that started");
            let _ = self.scale(cmd, state);
        }
    }

    /// A provider running on this host, as a manifest entry (named by its id).
    fn running_provider(&self, id: &str) -> Option<Provider> {
        self.workloads.provider(id).map(|p| Provider {
            name: p.id.to_string(),
            id: p.id.clone(),
            image_ref: p.image_ref.clone(),
            builtin: Some(p.builtin),
            scale: Scale::default(),
            config: Vec::new(),
            line: 0,
        })
    }

    pub(crate) fn provider_running(&self, id: &str) -> bool {
        self.workloads.provider(id).is_some()
    }

    fn remove_component(&self, id: &ComponentId) {
        // Its listeners close first (connections go to hosts that still run it); requests
        // they already took are served by it until they have drained, then it goes.
        let listeners = self.listeners.close(id.as_str());
        let running = self.dispatch.running(id.as_str());
        match (listeners, running) {
            (Some((stop, closed)), Some(running)) => {
                let _ = stop.send(true);
                let dispatch = self.dispatch.clone();
                let wait = self.config.server.drain_timeout + std::time::Duration::from_secs(1);
                let id = id.to_string();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(wait, futures::future::join_all(closed)).await;
                    dispatch.remove_if_same(&id, &running);
                });
            }
            (Some((stop, _)), None) => {
                let _ = stop.send(true);
            }
            (None, _) => {
                self.dispatch.remove(id.as_str());
            }
        }
        self.listeners.forget_component(id.as_str());
        sync::lock(&self.control.started_components).remove(id);
        self.unexport_component(id.as_str());
        self.replace_subscriptions(id, Vec::new());
        sync::lock(&self.control.delivery_links).retain(|k| k.component != id.as_str());
        self.workloads.remove_component(id);
    }

    /// A lattice link from a messaging (or key-value watching) provider on this host to a
    /// component started here through the control interface, which the component was not
    /// started with: starts the component again, with the link's subscriptions or watched
    /// keys (a component subscribes when it starts; its earlier subscriptions stop).
    pub(crate) fn apply_delivery_link(self: &Arc<Self>, link: &Link, state: &LatticeState) {
        if !delivers_to_component(link) || !self.provider_running(link.source_id.as_str()) {
            return;
        }
        let started = sync::lock(&self.control.started_components)
            .get(&ComponentId::new(link.target.as_str()))
            .cloned();
        let Some(started) = started else {
            return;
        };
        if sync::lock(&self.control.delivery_links).contains(&DeliveryLinkKey::of(link)) {
            return;
        }
        tracing::info!(provider = %link.source_id, component_id = %link.target, "starting the component again to receive what a new link delivers");
        let _ = self.scale(started, state);
    }

    /// Starts a listener for every lattice link from an HTTP server provider on this host to
    /// a component on this host that is not served yet.
    pub(crate) async fn apply_http_links(&self, state: &LatticeState) {
        let links = match state.links().await {
            Ok(links) => links,
            Err(e) => {
                tracing::warn!(error = %error_text(&e), "cannot read lattice links");
                return;
            }
        };
        for link in links {
            self.apply_http_link(&link, state).await;
        }
    }

    pub(crate) async fn apply_http_link(&self, link: &Link, state: &LatticeState) {
        if !link.carries("wasi", "http", "incoming-handler") {
            return;
        }
        let Some(provider) = self
            .workloads
            .http_server(link.source_id.as_str())
            .map(|p| p.name.clone())
        else {
            return;
        };
        if !self.dispatch.contains(link.target.as_str()) {
            return;
        }
        if !self
            .listeners
            .mark_served(link.source_id.as_str(), link.target.as_str())
        {
            return;
        }
        let mut address = None;
        for name in &link.source_config {
            if let Ok(Some(values)) = state.get_config(name).await
                && let Some(a) = values
                    .get("address")
                    .or_else(|| values.get("default_address"))
            {
                address = Some(a.clone());
            }
        }
        let address = match self.config.http_address_override {
            Some(a) => a.to_string(),
            None => address.unwrap_or_else(|| crate::deploy::DEFAULT_HTTP_ADDRESS.to_owned()),
        };
        let parsed: Result<SocketAddr, _> = address.parse();
        let bound = parsed
            .map_err(|e| format!("`{address}` is not a socket address: {e}"))
            .and_then(|a| {
                trellis_http_server::bind_with(a, self.config.http_reuse_port)
                    .map(|l| (a, l))
                    .map_err(|e| format!("cannot listen on {address}: {e}"))
            });
        match bound {
            Ok((address, listener)) => {
                let listening = self
                    .serve_route(
                        Route::new(address, provider, ComponentId::new(link.target.as_str())),
                        listener,
                    )
                    .await;
                tracing::info!(address = %listening.address, component_id = %link.target, "serving HTTP for a lattice link");
            }
            Err(reason) => {
                // The provider shows as failed with the reason; an address that parses is
                // retried on every health check (like a manifest's), any other is dropped.
                if let Some(p) = self.workloads.provider_named(&provider) {
                    p.set_status(trellis_control::ProviderStatus::Failed {
                        reason: reason.clone(),
                    });
                }
                match address.parse::<SocketAddr>() {
                    Ok(a) => {
                        self.listeners.retry_later(Route::new(
                            a,
                            provider.clone(),
                            ComponentId::new(link.target.as_str()),
                        ));
                    }
                    Err(_) => {
                        self.listeners
                            .unmark_served(link.source_id.as_str(), link.target.as_str());
                    }
                }
                tracing::warn!(provider = %link.source_id, component_id = %link.target, %reason, "cannot serve HTTP for a lattice link");
                self.publish(
                    "linkdef_set_failed",
                    serde_json::json!({"source_id": link.source_id, "target": link.target, "message": reason}),
                );
            }
        }
    }
}
