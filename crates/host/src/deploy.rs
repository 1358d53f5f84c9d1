//! Deploying an application onto this host: check everything, then start everything.

use crate::Host;
use crate::dispatch::Running;
use crate::limiter::ConcurrencyLimiter;
use crate::problems::{DeployError, Problem};
use crate::providers::{Instance, ProviderState, linked};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use trellis_control::ComponentDescription;
use trellis_control::ProviderStatus;
use trellis_manifest::{Application, Builtin, ImageRef, LinkSpec};
use trellis_runtime::imports::{ImportSource, InterfaceName, classify};
use trellis_runtime::{
    Capabilities, Component, ComponentCalls, ExportedComponent, HttpComponent, InstanceContext,
    MessageComponent,
};

/// Where the wasmCloud HTTP server listens when the link does not say.
pub(crate) const DEFAULT_HTTP_ADDRESS: &str = "0.0.0.0:8000";

/// Annotation on the one-entry apps the control interface deploys.
pub(crate) const LATTICE_OPERATION: &str = "trellis.dev/lattice-operation";

/// Config keys of the wasmCloud HTTP server provider that Trellis honours.
const HTTP_SERVER_KEYS: &[&str] = &["address", "default_address"];

/// An HTTP listener started by a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    /// The bound address (with the real port when the request was port 0).
    pub address: SocketAddr,
    /// The provider entry serving it.
    pub provider: String,
    /// The component requests go to.
    pub component_id: String,
}

/// What the checks produce for one component.
struct Checked {
    component: Component,
    config: BTreeMap<String, String>,
}

impl Host {
    /// Checks `app` as a whole and, if nothing is wrong, starts it on this host.
    pub async fn deploy(&self, app: &Application) -> Result<Vec<Listening>, DeployError> {
        let mut problems = Vec::new();
        let manifest = app.manifest_path.display().to_string();

        check_providers(app, &mut problems);
        let loaded = self.load_components(app, &mut problems).await;
        let mut checked = BTreeMap::new();
        for (name, component) in loaded {
            let Some(spec) = app.component(&name) else {
                continue;
            };
            check_imports(app, &name, spec.line, &component, &mut problems);
            let mut names = Vec::new();
            // Config a component reads: links pointing at it, links it makes, then its own
            // (later names win).
            for l in app.links.iter().filter(|l| l.target == name) {
                names.extend(l.link.target_config.iter().cloned());
            }
            for l in app.links.iter().filter(|l| l.source == name) {
                names.extend(l.link.source_config.iter().cloned());
            }
            names.extend(spec.config.iter().cloned());
            let config = merge_config(app, &format!("component `{name}`"), &names, &mut problems);
            checked.insert(name, Checked { component, config });
        }

        // Config a link hands the provider it targets must exist too.
        for l in &app.links {
            if app.component(&l.source).is_some() && app.provider(&l.target).is_some() {
                merge_config(
                    app,
                    &format!("the link from `{}` to `{}`", l.source, l.target),
                    &l.link.target_config,
                    &mut problems,
                );
            }
        }
        check_component_links(app, &checked, &mut problems);
        let routes = self.http_routes(app, &checked, &mut problems);
        let subscriptions = message_subscriptions(app, &checked, &mut problems);
        if !problems.is_empty() {
            return Err(DeployError {
                app: app.name.clone(),
                manifest,
                problems,
            });
        }

        // Start the providers' backends and resolve each component's links to them. A
        // backend that cannot start is not a deploy error: its provider is marked failed and
        // calls through it answer with the reason.
        let providers = self.start_providers(app);
        let mut http = BTreeMap::new();
        let mut handlers = BTreeMap::new();
        let mut exported = BTreeMap::new();
        for (name, c) in &checked {
            let Some(spec) = app.component(name) else {
                continue;
            };
            let links = crate::calls::component_links(app, name);
            let context = InstanceContext {
                component_id: spec.id.clone(),
                config: Arc::new(c.config.clone()),
                capabilities: capabilities_for(app, name, &providers).await,
                calls: (!links.is_empty()).then(|| ComponentCalls {
                    router: Arc::new(crate::calls::Router {
                        host: self.me.clone(),
                    }),
                    links,
                }),
            };
            match self.runtime.prepare_exports(&c.component, context.clone()) {
                Ok(Some(prepared)) => {
                    exported.insert(name.clone(), prepared);
                }
                Ok(None) => {}
                Err(e) => problems.push(Problem::new(e.to_string())),
            }
            if c.component
                .exports_interface("wasi", "http", "incoming-handler")
            {
                match self.runtime.prepare_http(&c.component, context.clone()) {
                    Ok(prepared) => {
                        http.insert(name.clone(), prepared);
                    }
                    Err(e) => problems.push(Problem::new(e.to_string())),
                }
            }
            if subscriptions.iter().any(|s| s.component == *name) {
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
        for route in routes {
            match trellis_http_server::bind_with(route.address, self.config.http_reuse_port) {
                Ok(listener) => bound.push((route, listener)),
                Err(e) => {
                    let reason = format!(
                        "cannot listen on {} for component `{}`: {e}; another process may be using that address: change `address` in the link's source config, stop the other process, or pass `--http 127.0.0.1:0`",
                        route.address, route.component
                    );
                    tracing::error!(provider = %route.provider, %reason, "HTTP server failed to start; retrying on every health check");
                    if let Some(p) = providers.iter().find(|p| p.name == route.provider) {
                        p.set_status(ProviderStatus::Failed { reason });
                    }
                    self.pending_routes.lock().await.push(route);
                }
            }
        }
        self.start(
            app,
            &checked,
            http,
            handlers,
            exported,
            subscriptions,
            &providers,
            bound,
        )
        .await
    }

    async fn load_components(
        &self,
        app: &Application,
        problems: &mut Vec<Problem>,
    ) -> Vec<(String, Component)> {
        let mut jobs = Vec::new();
        for c in &app.components {
            match &c.image {
                ImageRef::File(path) => {
                    let runtime = self.runtime.clone();
                    let (id, path, name) = (c.id.clone(), path.clone(), c.name.clone());
                    // Compiling is CPU-bound: keep it off the async workers.
                    jobs.push(tokio::task::spawn_blocking(move || (name, runtime.load_file(&id, &path))));
                }
                ImageRef::Remote(reference) => problems.push(
                    Problem::new(format!(
                        "component `{}` ({}:{}): image `{reference}` is a registry reference; this version of Trellis cannot pull images",
                        c.name,
                        app.manifest_path.display(),
                        c.line
                    ))
                    .hint("build the component and point `image:` at the file, relative to the manifest, for example `image: file://./build/component.wasm`"),
                ),
            }
        }
        let mut loaded = Vec::new();
        for job in jobs {
            match job.await {
                Ok((name, Ok(component))) => {
                    tracing::info!(component_id = %component.id(), from_cache = component.from_cache(), "component loaded");
                    loaded.push((name, component));
                }
                Ok((_, Err(e))) => problems.push(Problem::new(e.to_string())),
                Err(e) => problems.push(Problem::new(format!("loading a component failed: {e}"))),
            }
        }
        loaded
    }

    fn http_routes(
        &self,
        app: &Application,
        checked: &BTreeMap<String, Checked>,
        problems: &mut Vec<Problem>,
    ) -> Vec<Route> {
        let mut routes = Vec::new();
        for link in &app.links {
            let Some(provider) = app.provider(&link.source) else {
                continue;
            };
            if provider.builtin != Some(Builtin::HttpServer) {
                continue;
            }
            if !link.link.carries("wasi", "http", "incoming-handler") {
                problems.push(Problem::new(format!(
                    "capability `{}` is an HTTP server; its link to `{}` must carry wasi:http/incoming-handler (it carries {}:{}/{:?})",
                    provider.name, link.target, link.link.wit_namespace, link.link.wit_package, link.link.interfaces
                )));
                continue;
            }
            let Some(target) = app.component(&link.target) else {
                problems.push(Problem::new(format!(
                    "capability `{}` links HTTP requests to `{}`, which is not a component",
                    provider.name, link.target
                )));
                continue;
            };
            match checked.get(&target.name) {
                Some(c)
                    if !c
                        .component
                        .exports_interface("wasi", "http", "incoming-handler") =>
                {
                    problems.push(Problem::new(format!(
                        "capability `{}` sends HTTP requests to component `{}`, but it does not export wasi:http/incoming-handler (it exports: {})",
                        provider.name,
                        target.name,
                        c.component.exports().join(", ")
                    )));
                    continue;
                }
                Some(_) => {}
                // Its load already failed and was reported.
                None => continue,
            }
            let mut names = provider.config.clone();
            names.extend(link.link.source_config.iter().cloned());
            let config = merge_config(
                app,
                &format!("capability `{}`", provider.name),
                &names,
                problems,
            );
            for key in config
                .keys()
                .filter(|k| !HTTP_SERVER_KEYS.contains(&k.as_str()))
            {
                tracing::warn!(provider = %provider.name, key, "HTTP server config key is not supported by Trellis yet; ignoring it");
            }
            let address = config
                .get("address")
                .or_else(|| config.get("default_address"))
                .map(String::as_str)
                .unwrap_or(DEFAULT_HTTP_ADDRESS);
            let address = match self.config.http_address_override {
                Some(over) => over,
                None => match address.parse::<SocketAddr>() {
                    Ok(a) => a,
                    Err(e) => {
                        problems.push(
                            Problem::new(format!(
                                "capability `{}`: listen address `{address}` for component `{}` is not a socket address: {e}",
                                provider.name, target.name
                            ))
                            .hint("use host:port with an IP address, for example `address: 0.0.0.0:8000`"),
                        );
                        continue;
                    }
                },
            };
            routes.push(Route {
                address,
                provider: provider.name.clone(),
                component: target.name.clone(),
                component_id: target.id.to_string(),
            });
        }
        routes
    }

    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        app: &Application,
        checked: &BTreeMap<String, Checked>,
        mut http: BTreeMap<String, HttpComponent>,
        handlers: BTreeMap<String, MessageComponent>,
        mut exported: BTreeMap<String, ExportedComponent>,
        subscriptions: Vec<SubscriptionLink>,
        providers: &[Arc<ProviderState>],
        bound: Vec<(Route, tokio::net::TcpListener)>,
    ) -> Result<Vec<Listening>, DeployError> {
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
            if !checked.contains_key(&spec.name) || spec.scale.instances == 0 {
                continue;
            }
            let limiter = Arc::new(ConcurrencyLimiter::new(
                spec.scale.instances,
                self.config.max_queued_requests,
            ));
            if let Some(prepared) = http.remove(&spec.name) {
                self.dispatch.insert(
                    spec.id.as_str(),
                    Running {
                        http: prepared,
                        limiter: limiter.clone(),
                    },
                );
            }
            if let Some(prepared) = exported.remove(&spec.name) {
                self.export_component(prepared, limiter.clone()).await;
            }
            if let Some(handler) = handlers.get(&spec.name) {
                for sub in subscriptions.iter().filter(|s| s.component == spec.name) {
                    self.subscribe(sub, handler.clone(), limiter.clone(), providers)
                        .await;
                }
            }
            let image_ref = match &spec.image {
                ImageRef::File(p) => format!("file://{}", p.display()),
                ImageRef::Remote(r) => r.clone(),
            };
            scaled.push(serde_json::json!({
                "component_id": spec.id,
                "image_ref": image_ref,
                "max_instances": spec.scale.instances,
                "annotations": annotations,
            }));
            components.push(ComponentDescription {
                id: spec.id.clone(),
                image_ref,
                name: Some(spec.name.clone()),
                annotations: annotations.clone(),
                revision: 0,
                max_instances: spec.scale.instances,
            });
        }
        // A component started through the control interface serves its lattice HTTP links
        // before it shows in the inventory: whoever waits for it there (the reconciler,
        // moving it off another host) can count on its listener.
        if app.annotations.contains_key(LATTICE_OPERATION)
            && let Some(state) = self.control_state.get()
        {
            self.apply_http_links(state).await;
        }
        let already: Vec<trellis_control::ProviderId> = {
            let inventory = self.inventory.lock().unwrap_or_else(|e| e.into_inner());
            inventory
                .providers
                .iter()
                .map(|(p, _)| p.id.clone())
                .collect()
        };
        let providers: Vec<&Arc<ProviderState>> = providers
            .iter()
            .filter(|p| !already.contains(&p.id))
            .collect();
        // Links that came from the lattice were announced when they were put.
        if !app.annotations.contains_key(LATTICE_OPERATION) {
            for l in &app.links {
                self.publish(
                    "linkdef_set",
                    serde_json::to_value(&l.link).unwrap_or_default(),
                );
            }
        }
        {
            let mut inventory = self.inventory.lock().unwrap_or_else(|e| e.into_inner());
            // A component started again (new image, new count) replaces its entry.
            inventory
                .components
                .retain(|c| !components.iter().any(|n| n.id == c.id));
            inventory.components.extend(components);
            inventory.providers.extend(
                providers
                    .iter()
                    .map(|p| ((*p).clone(), annotations.clone())),
            );
        }
        for p in &providers {
            self.publish(
                "provider_started",
                serde_json::json!({"provider_id": p.id, "image_ref": p.image_ref, "annotations": annotations}),
            );
        }
        for data in scaled {
            self.publish("component_scaled", data);
        }

        // HTTP links of a manifest are served now; the same links put on the lattice later
        // (by the reconciler) must not open a second listener.
        for l in &app.links {
            if let (Some(p), Some(c)) = (app.provider(&l.source), app.component(&l.target))
                && l.link.carries("wasi", "http", "incoming-handler")
            {
                self.served_links
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((p.id.to_string(), c.id.to_string()));
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
        if let Some(provider) = self.provider_named(&route.provider) {
            stops.push(Box::pin(provider.stopped()));
        }
        let (mut component_stop, closed) = self.component_listener(&route.component_id);
        stops.push(Box::pin(async move {
            let _ = component_stop.wait_for(|stop| *stop).await;
        }));
        let handler: Arc<dyn trellis_http_server::IncomingHandler> = self.dispatch.clone();
        let serving = trellis_http_server::serve(
            listener,
            route.component_id.clone().into(),
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

pub(crate) struct Route {
    pub(crate) address: SocketAddr,
    pub(crate) provider: String,
    component: String,
    component_id: String,
}

impl Route {
    /// A route for a component known by id only (lattice links name ids, not manifest names).
    pub(crate) fn new(address: SocketAddr, provider: String, component_id: String) -> Self {
        Self {
            address,
            provider,
            component: component_id.clone(),
            component_id,
        }
    }
}

fn check_providers(app: &Application, problems: &mut Vec<Problem>) {
    for p in &app.providers {
        if p.builtin.is_none() {
            let available: Vec<_> = Builtin::ALL
                .iter()
                .map(|b| format!("`trellis+builtin://{b}`"))
                .collect();
            problems.push(
                Problem::new(format!(
                    "capability `{}` ({}:{}): `{}` is not a built-in provider; Trellis runs providers inside the host and cannot start provider binaries",
                    p.name,
                    app.manifest_path.display(),
                    p.line,
                    p.image_ref
                ))
                .hint(format!(
                    "use a wasmCloud provider image (`ghcr.io/wasmcloud/keyvalue-redis:<tag>`, `http-server`, `http-client`, `keyvalue-nats`, `messaging-nats`, `blobstore-fs`) or one of {}",
                    available.join(", ")
                )),
            );
        }
    }
}

/// Every import that neither the host nor a link from this component serves is a problem,
/// reported per package with the link trait that would fix it.
fn check_imports(
    app: &Application,
    name: &str,
    line: usize,
    component: &Component,
    problems: &mut Vec<Problem>,
) {
    let mut missing: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for import in component.imports() {
        if classify(import) == ImportSource::Host {
            continue;
        }
        let Some(n) = InterfaceName::parse(import) else {
            problems.push(Problem::new(format!(
                "component `{name}` imports a bare function `{import}`; Trellis can only link interfaces"
            )));
            continue;
        };
        let links: Vec<&LinkSpec> = app
            .links
            .iter()
            .filter(|l| l.source == name && link_serves(l, &n))
            .collect();
        for link in &links {
            check_link_target(app, name, import, &n, link, problems);
        }
        if links.is_empty() {
            missing
                .entry((n.namespace.to_owned(), n.package.to_owned()))
                .or_default()
                .push((n.interface.to_owned(), import.clone()));
        }
    }
    for ((namespace, package), interfaces) in missing {
        let names: Vec<_> = interfaces
            .iter()
            .map(|(_, full)| format!("`{full}`"))
            .collect();
        let list: Vec<_> = interfaces.iter().map(|(i, _)| i.as_str()).collect();
        let target = suggest_target(app, &namespace, &package);
        problems.push(
            Problem::new(format!(
                "component `{name}` ({}:{line}) imports {}, but nothing provides it: the host does not serve {namespace}:{package} and no link from `{name}` carries it",
                app.manifest_path.display(),
                names.join(", "),
            ))
            .hint(format!(
                "add a link trait to component `{name}` in its `traits:` list:\n\
                 - type: link\n\
                 \x20 properties:\n\
                 \x20   namespace: {namespace}\n\
                 \x20   package: {package}\n\
                 \x20   interfaces: [{}]\n\
                 \x20   target:\n\
                 \x20     name: {target}",
                list.join(", ")
            )),
        );
    }
}

/// Whether `link` serves the import `n`: it lists the interface, or the interface is one of
/// the package's companions in the capability catalogue. Manifests written for wasmCloud
/// list `[consumer]` for messaging and `[blobstore]` for the blobstore, while components
/// also import the `types` (and for the blobstore, `container`) interfaces those use.
fn link_serves(link: &LinkSpec, n: &InterfaceName<'_>) -> bool {
    if link.link.carries(n.namespace, n.package, n.interface) {
        return true;
    }
    let same_package = link.link.wit_namespace == n.namespace && link.link.wit_package == n.package;
    same_package
        && trellis_capabilities::find(n.namespace, n.package)
            .is_some_and(|c| c.link_serves(&link.link.interfaces, n.interface))
}

/// A link that carries an import must point at a provider that provides it.
fn check_link_target(
    app: &Application,
    name: &str,
    import: &str,
    n: &InterfaceName<'_>,
    link: &LinkSpec,
    problems: &mut Vec<Problem>,
) {
    if let Some(provider) = app.provider(&link.target) {
        let Some(builtin) = provider.builtin else {
            return; // reported by check_providers
        };
        if builtin.provides() != Some((n.namespace, n.package)) {
            let target = suggest_target(app, n.namespace, n.package);
            problems.push(
                Problem::new(format!(
                    "component `{name}` links `{import}` to capability `{}`, but that is the {builtin} provider, which does not provide {}:{}",
                    provider.name, n.namespace, n.package
                ))
                .hint(format!("point the link's `target` at a provider of {}:{}: {target}", n.namespace, n.package)),
            );
        }
    }
    // A component target is checked against what it exports in `check_component_links`; a
    // target that is not in the app is a component elsewhere in the lattice.
}

/// Every link between two components of the app must name interfaces the target exports.
fn check_component_links(
    app: &Application,
    loaded: &BTreeMap<String, Checked>,
    problems: &mut Vec<Problem>,
) {
    for link in &app.links {
        let (Some(_), Some(target)) = (loaded.get(&link.source), loaded.get(&link.target)) else {
            continue;
        };
        let l = &link.link;
        let missing: Vec<&str> = l
            .interfaces
            .iter()
            .filter(|i| {
                !target
                    .component
                    .exports_interface(&l.wit_namespace, &l.wit_package, i)
            })
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            problems.push(Problem::new(format!(
                "component `{}` links {}:{}/{{{}}} to component `{}`, which does not export {} (it exports: {})",
                link.source,
                l.wit_namespace,
                l.wit_package,
                l.interfaces.join(", "),
                link.target,
                missing
                    .iter()
                    .map(|i| format!("{}:{}/{i}", l.wit_namespace, l.wit_package))
                    .collect::<Vec<_>>()
                    .join(", "),
                target.component.exports().join(", ")
            )));
        }
    }
}

/// The manifest entry a missing link should most likely point at.
fn suggest_target(app: &Application, namespace: &str, package: &str) -> String {
    if let Some(p) = app
        .providers
        .iter()
        .find(|p| p.builtin.and_then(|b| b.provides()) == Some((namespace, package)))
    {
        return p.name.clone();
    }
    let Some(builtin) =
        trellis_capabilities::find(namespace, package).and_then(|c| c.suggested_image)
    else {
        return format!("<the capability that provides {namespace}:{package}>");
    };
    format!("<a capability with `image: {builtin}`, added under `components:`>")
}

pub(crate) fn merge_config(
    app: &Application,
    who: &str,
    names: &[String],
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, String> {
    let mut merged = BTreeMap::new();
    for name in names {
        match app.configs.get(name) {
            Some(values) => merged.extend(values.iter().map(|(k, v)| (k.clone(), v.clone()))),
            None => problems.push(
                Problem::new(format!("{who} uses config `{name}`, which is not defined in this manifest"))
                    .hint(format!("give it values where it is referenced:\n- name: {name}\n  properties:\n    key: value")),
            ),
        }
    }
    merged
}

/// A messaging provider delivering a subscription's messages to a component.
pub(crate) struct SubscriptionLink {
    pub(crate) provider: String,
    pub(crate) component: String,
    /// The link's source config without `subscriptions` (it picks the backend).
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) specs: Vec<trellis_messaging::SubscriptionSpec>,
}

/// Links from a messaging provider to a component's `wasmcloud:messaging/handler`.
fn message_subscriptions(
    app: &Application,
    checked: &BTreeMap<String, Checked>,
    problems: &mut Vec<Problem>,
) -> Vec<SubscriptionLink> {
    let mut out = Vec::new();
    for link in &app.links {
        let Some(provider) = app.provider(&link.source) else {
            continue;
        };
        if provider.builtin.and_then(|b| b.provides()) != Some(("wasmcloud", "messaging")) {
            continue;
        }
        if !link.link.carries("wasmcloud", "messaging", "handler") {
            continue;
        }
        let Some(c) = checked.get(&link.target) else {
            continue;
        };
        if !c
            .component
            .exports_interface("wasmcloud", "messaging", "handler")
        {
            problems.push(Problem::new(format!(
                "capability `{}` delivers messages to component `{}`, but it does not export wasmcloud:messaging/handler (it exports: {})",
                provider.name,
                link.target,
                c.component.exports().join(", ")
            )));
            continue;
        }
        let mut names = provider.config.clone();
        names.extend(link.link.source_config.iter().cloned());
        let mut config = merge_config(
            app,
            &format!("capability `{}`", provider.name),
            &names,
            problems,
        );
        let subscriptions = config
            .keys()
            .find(|k| k.eq_ignore_ascii_case("subscriptions"))
            .cloned()
            .and_then(|k| config.remove(&k))
            .unwrap_or_default();
        match trellis_messaging::SubscriptionSpec::parse_list(&subscriptions) {
            Ok(specs) if specs.is_empty() => problems.push(
                Problem::new(format!(
                    "capability `{}` links to component `{}`'s message handler but subscribes to nothing",
                    provider.name, link.target
                ))
                .hint("add `subscriptions: some.subject` (comma-separated, `subject|queue` for a queue group) to the link's source config"),
            ),
            Ok(specs) => out.push(SubscriptionLink {
                provider: provider.name.clone(),
                component: link.target.clone(),
                config,
                specs,
            }),
            Err(e) => problems.push(Problem::new(format!(
                "capability `{}` link to `{}`: `subscriptions`: {e}",
                provider.name, link.target
            ))),
        }
    }
    out
}

/// Resolves the component's links to providers into the backends its imports call.
async fn capabilities_for(
    app: &Application,
    name: &str,
    providers: &[Arc<ProviderState>],
) -> Capabilities {
    let mut caps = Capabilities::default();
    // With several links for one capability (distinct link names), `default` wins.
    let mut links: Vec<&LinkSpec> = app.links.iter().filter(|l| l.source == name).collect();
    links.sort_by_key(|l| l.link.name.as_str() == "default");
    for link in links {
        let Some(p) = providers.iter().find(|p| p.name == link.target) else {
            continue;
        };
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
            _ => {}
        }
    }
    caps
}
