//! Starting a checked app: provider backends, prepared components (an `InstancePre` per
//! export the host calls), HTTP listeners, and what the inventory and events show.

use super::checks::{CheckedApp, Route, merge_config, watcher_link_config, watcher_links_to};
use super::{LATTICE_OPERATION, Listening};
use crate::Host;
use crate::dispatch::Running;
use crate::limiter::ConcurrencyLimiter;
use crate::problems::{DeployError, Problem};
use crate::providers::{Instance, ProviderState, linked};
use std::collections::BTreeMap;
use std::sync::Arc;
use trellis_claims::ComponentClaims;
use trellis_control::{ComponentDescription, ProviderStatus};
use trellis_manifest::{Application, ImageRef};
use trellis_runtime::{
    Component, ComponentCalls, ExportedComponent, HttpComponent, InstanceContext, Links,
    MessageComponent, WatcherComponent,
};

/// Each component prepared for what it will be asked to do.
pub(super) struct Prepared {
    http: BTreeMap<String, HttpComponent>,
    handlers: BTreeMap<String, MessageComponent>,
    watchers: BTreeMap<String, WatcherComponent>,
    exported: BTreeMap<String, ExportedComponent>,
}

impl Host {
    /// Starts the providers' backends, resolves each component's links to them and prepares
    /// every component; binds the listeners. Problems here (a component that cannot be
    /// prepared) still stop the deploy; a backend or listener that cannot start does not.
    pub(super) async fn prepare_and_start(
        &self,
        app: &Application,
        mut checked: CheckedApp<Component>,
        claims: BTreeMap<String, ComponentClaims>,
        manifest: String,
    ) -> Result<Vec<Listening>, DeployError> {
        let mut problems = Vec::new();
        // Start the providers' backends and resolve each component's links to them. A
        // backend that cannot start is not a deploy error: its provider is marked failed and
        // calls through it answer with the reason.
        let providers = self.start_providers(app);
        let mut http = BTreeMap::new();
        let mut handlers = BTreeMap::new();
        let mut watchers = BTreeMap::new();
        let mut exported = BTreeMap::new();
        for (name, c) in &checked.components {
            let Some(spec) = app.component(name) else {
                continue;
            };
            let links = crate::calls::component_links(app, name);
            let context = InstanceContext {
                component_id: spec.id.clone(),
                config: Arc::new(c.config.clone()),
                secrets: Arc::new(c.secrets.clone()),
                links: Arc::new(links_for(app, name, &providers).await),
                calls: (!links.is_empty()).then(|| ComponentCalls {
                    router: Arc::new(crate::calls::Router {
                        host: self.me.clone(),
                    }),
                    links,
                }),
                observer: Some(Arc::new(crate::metrics::ComponentObserver {
                    metrics: self.metrics.clone(),
                    logs: self.logs.clone(),
                    component_id: spec.id.as_str().to_owned(),
                })),
            };
            // Every component can be called by name (`trellis call`); those exporting
            // plain-value interfaces also answer other components.
            match self.runtime.prepare_exports(&c.component, context.clone()) {
                Ok(prepared) => {
                    exported.insert(name.clone(), prepared);
                }
                Err(e) => problems.push(Problem::new(e.to_string())),
            }
            if c.component
                .exports_interface("wasi", "http", "incoming-handler")
                || c.component.exports_interface("wasi", "http", "handler")
            {
                let warm = match crate::warm::setting(app, name, &self.config.limits.reuse) {
                    Ok(warm) => warm,
                    Err(e) => {
                        problems.push(Problem::new(e));
                        continue;
                    }
                };
                match self.runtime.prepare_http(
                    &c.component,
                    context.clone(),
                    spec.scale.instances,
                    warm,
                ) {
                    Ok(prepared) => {
                        http.insert(name.clone(), prepared);
                    }
                    Err(e) => problems.push(Problem::new(e.to_string())),
                }
            }
            if checked.watches.iter().any(|w| w.component == *name) {
                match self.runtime.prepare_watcher(&c.component, context.clone()) {
                    Ok(prepared) => {
                        watchers.insert(name.clone(), prepared);
                    }
                    Err(e) => problems.push(Problem::new(e.to_string())),
                }
            }
            if checked.subscriptions.iter().any(|s| s.component == *name) {
                match self.runtime.prepare_messaging(&c.component, context) {
                    Ok(prepared) => {
                        handlers.insert(name.clone(), prepared);
                    }
                    Err(e) => problems.push(Problem::new(e.to_string())),
                }
            }
        }
        if !problems.is_empty() {
            return Err(DeployError {
                app: app.name.clone(),
                manifest,
                problems,
            });
        }

        // A listener that cannot bind marks its provider failed; the health loop keeps trying.
        let mut bound = Vec::new();
        for route in std::mem::take(&mut checked.routes) {
            match trellis_http_server::bind_with(route.address, self.config.http_reuse_port) {
                Ok(listener) => bound.push((route, listener)),
                Err(e) => {
                    let reason = format!(
                        "cannot listen on {} for component `{}`: {e}; another process may be using that address: change `address` in the link's source config, stop the other process, or pass `--http 127.0.0.1:0`",
                        route.address, route.component
                    );
                    tracing::error!(provider = %route.provider, %reason, "HTTP server failed to start; retrying on every health check");
                    if let Some(p) = crate::providers::named(&providers, &route.provider) {
                        p.set_status(ProviderStatus::Failed { reason });
                    }
                    self.listeners.retry_later(route);
                }
            }
        }
        let prepared = Prepared {
            http,
            handlers,
            watchers,
            exported,
        };
        self.start(app, &checked, prepared, &claims, &providers, bound)
            .await
    }

    /// Starts what was checked and prepared: components join dispatch, calls and
    /// subscriptions, the inventory shows them, events announce them, listeners open.
    pub(super) async fn start(
        &self,
        app: &Application,
        checked: &CheckedApp<Component>,
        prepared: Prepared,
        claims: &BTreeMap<String, ComponentClaims>,
        providers: &[Arc<ProviderState>],
        bound: Vec<(Route, tokio::net::TcpListener)>,
    ) -> Result<Vec<Listening>, DeployError> {
        let Prepared {
            mut http,
            handlers,
            watchers,
            mut exported,
        } = prepared;
        // What the inventory shows: a manifest deploy names its app; a control request
        // (including the reconciler's) says what it wants shown.
        let annotations: BTreeMap<String, String> =
            if app.annotations.contains_key(LATTICE_OPERATION) {
                app.annotations
                    .iter()
                    .filter(|(k, _)| k.as_str() != LATTICE_OPERATION)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            } else {
                // As the reconciler marks what it runs: `trellis up`'s app is the embedded
                // reconciler's to keep.
                trellis_reconciler::managed_annotations(
                    &app.name,
                    app.version.as_deref().unwrap_or("v1"),
                )
            };
        let mut components = Vec::new();
        // Announced once the inventory shows them, so whoever reacts to the event finds them.
        let mut scaled = Vec::new();
        for spec in &app.components {
            if !checked.components.contains_key(&spec.name) || spec.scale.instances == 0 {
                continue;
            }
            let limiter = Arc::new(ConcurrencyLimiter::new(
                spec.scale.instances,
                self.config.max_queued_requests,
            ));
            self.metrics.track(&spec.id, &limiter);
            if let Some(prepared) = http.remove(&spec.name) {
                // Instances that take several requests at once let more requests in than
                // there are instances; the pool still bounds the instances.
                let in_flight = prepared.max_requests_in_flight(spec.scale.instances);
                let limiter = if in_flight == spec.scale.instances {
                    limiter.clone()
                } else {
                    Arc::new(ConcurrencyLimiter::new(
                        in_flight,
                        self.config.max_queued_requests,
                    ))
                };
                self.dispatch.insert(
                    spec.id.as_str(),
                    Running {
                        http: prepared,
                        limiter,
                        metrics: self.metrics.clone(),
                    },
                );
            }
            if let Some(prepared) = exported.remove(&spec.name) {
                self.export_component(prepared, limiter.clone()).await;
            }
            let mut subscriptions = Vec::new();
            if let Some(handler) = handlers.get(&spec.name) {
                for sub in checked
                    .subscriptions
                    .iter()
                    .filter(|s| s.component == spec.name)
                {
                    subscriptions.extend(
                        self.subscribe(sub, handler.clone(), limiter.clone(), providers)
                            .await,
                    );
                }
            }
            // A component started again receives through its new subscriptions only.
            self.replace_subscriptions(&spec.id, subscriptions);
            if let Some(watcher) = watchers.get(&spec.name) {
                for watch in checked.watches.iter().filter(|w| w.component == spec.name) {
                    self.watch_keys(watch, watcher.clone(), limiter.clone(), providers)
                        .await;
                }
            }
            let image_ref = match &spec.image {
                ImageRef::File(p) => format!("file://{}", p.display()),
                ImageRef::Remote(r) => r.clone(),
            };
            // A manifest's warm-instance setting shows on the component as the reconciler
            // would have passed it, so that the embedded reconciler finds it as planned
            // instead of scaling it again.
            let mut annotations = annotations.clone();
            if !app.annotations.contains_key(LATTICE_OPERATION)
                && let Some(warm) = trellis_reconciler::warm_setting(app, &spec.name)
            {
                annotations.insert(trellis_reconciler::WARM_ANNOTATION.to_owned(), warm.clone());
            }
            let mut event = serde_json::json!({
                "component_id": spec.id,
                "image_ref": image_ref,
                "max_instances": spec.scale.instances,
                "annotations": annotations,
            });
            if let (Some(signed), Some(data)) = (claims.get(&spec.name), event.as_object_mut()) {
                // As wasmCloud v1 announces a signed component.
                data.insert("public_key".into(), signed.subject.clone().into());
                data.insert("claims".into(), event_claims(signed));
            }
            scaled.push(event);
            components.push(ComponentDescription {
                id: spec.id.clone(),
                image_ref,
                name: Some(spec.name.clone()),
                annotations,
                revision: 0,
                max_instances: spec.scale.instances,
            });
        }
        // A component started through the control interface serves its lattice HTTP links
        // before it shows in the inventory: whoever waits for it there (the reconciler,
        // moving it off another host) can count on its listener.
        if app.annotations.contains_key(LATTICE_OPERATION)
            && let Some(state) = self.control.state.get()
        {
            self.apply_http_links(state).await;
        }
        // Links that came from the lattice were announced when they were put.
        if !app.annotations.contains_key(LATTICE_OPERATION) {
            for l in &app.links {
                self.publish(
                    "linkdef_set",
                    serde_json::to_value(&l.link).unwrap_or_default(),
                );
            }
        }
        // Components and the providers not running here yet show at once.
        let providers = self.workloads.show(components, providers, &annotations);
        for p in &providers {
            self.publish(
                "provider_started",
                serde_json::json!({"provider_id": p.id, "image_ref": p.image_ref, "annotations": annotations}),
            );
        }
        for data in scaled {
            self.publish("component_scaled", data);
        }
        // The lattice keeps the claims of the signed components started on it, for
        // `claims.get` (as wasmCloud v1 hosts keep them, under `CLAIMS_{subject}`).
        if !claims.is_empty() {
            let state = self.control_state();
            for signed in claims.values() {
                if let Err(e) = state.put_claims(&signed.stored()).await {
                    tracing::warn!(subject = %signed.subject, error = %trellis_control::error_text(&e), "cannot record a component's claims in the lattice state");
                }
            }
        }

        // HTTP links of a manifest are served now; the same links put on the lattice later
        // (by the reconciler) must not open a second listener.
        for l in &app.links {
            if let (Some(p), Some(c)) = (app.provider(&l.source), app.component(&l.target))
                && l.link.carries("wasi", "http", "incoming-handler")
            {
                self.listeners.mark_served(p.id.as_str(), c.id.as_str());
            }
        }
        let mut listening = Vec::new();
        for (route, listener) in bound {
            listening.push(self.serve_route(route, listener).await);
        }
        Ok(listening)
    }

    /// Serves HTTP requests from `listener` to the route's component until shutdown.
    pub(crate) async fn serve_route(
        &self,
        route: Route,
        listener: tokio::net::TcpListener,
    ) -> Listening {
        let address = listener.local_addr().unwrap_or(route.address);
        let mut shutdown = self.shutdown.subscribe();
        // The listener closes (after its in-flight requests) when the host shuts down, when
        // its provider is stopped, or when its component stops running here.
        let mut stops: Vec<futures::future::BoxFuture<'static, ()>> = vec![Box::pin(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })];
        if let Some(provider) = self.workloads.provider_named(&route.provider) {
            stops.push(Box::pin(provider.stopped()));
        }
        let (mut component_stop, closed) = self.listeners.open(route.component_id.as_str());
        stops.push(Box::pin(async move {
            let _ = component_stop.wait_for(|stop| *stop).await;
        }));
        let handler: Arc<dyn trellis_http_server::IncomingHandler> = self.dispatch.clone();
        let serving = trellis_http_server::serve(
            listener,
            route.component_id.as_str().into(),
            handler,
            self.config.server.clone(),
            async move {
                futures::future::select_all(stops).await;
            },
        );
        self.servers.lock().await.spawn(async move {
            serving.await;
            let _ = closed.send(());
        });
        tracing::info!(%address, provider = %route.provider, component_id = %route.component_id, "HTTP server listening");
        Listening {
            address,
            provider: route.provider,
            component_id: route.component_id,
        }
    }
}

/// The component's links by name: every interface each carries, and the backends its links
/// to providers resolved to, which its imports call.
async fn links_for(app: &Application, name: &str, providers: &[Arc<ProviderState>]) -> Links {
    let mut links = Links::default();
    for link in app.links.iter().filter(|l| l.source == name) {
        let spec = &link.link;
        for interface in &spec.interfaces {
            links.carry(
                &spec.name,
                &spec.wit_namespace,
                &spec.wit_package,
                interface,
            );
        }
        let Some(p) = crate::providers::named(providers, &link.target) else {
            continue;
        };
        let caps = links.capabilities_mut(&spec.name);
        let mut names = Vec::new();
        names.extend(link.link.target_config.iter().cloned());
        let mut ignored = Vec::new();
        let config = merge_config(app, "link", &names, &mut ignored);
        let instance = p.instance(&config).await;
        match p.builtin.provides() {
            Some(("wasi", "keyvalue")) => {
                caps.keyvalue = Some(linked(
                    p,
                    instance.and_then(|i| match i {
                        Instance::KeyValue(b) => Ok(b),
                        _ => Err("not a key-value provider".into()),
                    }),
                ))
            }
            Some(("wasmcloud", "messaging")) => {
                caps.messaging = Some(linked(
                    p,
                    instance.and_then(|i| match i {
                        Instance::Messaging(b) => Ok(b),
                        _ => Err("not a messaging provider".into()),
                    }),
                ))
            }
            Some(("wasi", "blobstore")) => {
                caps.blobstore = Some(linked(
                    p,
                    instance.and_then(|i| match i {
                        Instance::Blobstore(b) => Ok(b),
                        _ => Err("not a blobstore provider".into()),
                    }),
                ))
            }
            Some(("wasi", "http")) => {
                caps.http_client = Some(linked(
                    p,
                    instance.and_then(|i| match i {
                        Instance::HttpClient(b) => Ok(b),
                        _ => Err("not an HTTP client provider".into()),
                    }),
                ))
            }
            Some(("wasmcloud", "postgres")) => {
                caps.postgres = Some(linked(
                    p,
                    instance.and_then(|i| match i {
                        Instance::Postgres(b) => Ok(b),
                        _ => Err("not a Postgres provider".into()),
                    }),
                ))
            }
            _ => {}
        }
    }
    // A key-value provider watching keys for the component also serves its key-value calls
    // under that link's name, when the component has no key-value link of its own there.
    for link in watcher_links_to(app, name) {
        let Some(p) = crate::providers::named(providers, &link.source) else {
            continue;
        };
        let spec = &link.link;
        if links.capabilities_mut(&spec.name).keyvalue.is_some() {
            continue;
        }
        let mut ignored = Vec::new();
        let (config, _) = watcher_link_config(app, link, &mut ignored);
        let instance = p.instance(&config).await;
        links.capabilities_mut(&spec.name).keyvalue = Some(linked(
            p,
            instance.and_then(|i| match i {
                Instance::KeyValue(b) => Ok(b),
                _ => Err("not a key-value provider".into()),
            }),
        ));
        for interface in ["store", "atomics", "batch"] {
            links.carry(&spec.name, "wasi", "keyvalue", interface);
        }
    }
    links
}

/// A signed component's claims as wasmCloud v1's `component_scaled` event carries them.
fn event_claims(claims: &ComponentClaims) -> serde_json::Value {
    let when = |t: Option<u64>| t.map_or_else(|| "never".to_owned(), trellis_claims::timestamp);
    serde_json::json!({
        "call_alias": claims.call_alias,
        "issuer": claims.issuer,
        "tags": claims.tags,
        "name": claims.name,
        "version": claims.version,
        "revision": claims.revision,
        "not_before_human": when(claims.not_before),
        "expires_human": when(claims.expires),
    })
}
