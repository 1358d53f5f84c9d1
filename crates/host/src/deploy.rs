//! Deploying an application onto this host: check everything, then start everything.

use crate::dispatch::Running;
use crate::limiter::ConcurrencyLimiter;
use crate::problems::{DeployError, Problem};
use crate::{Host, Inventory};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use trellis_control::{ComponentDescription, ProviderDescription, ProviderStatus};
use trellis_manifest::{Application, Builtin, ImageRef, LinkSpec};
use trellis_runtime::imports::{ImportSource, InterfaceName, classify};
use trellis_runtime::{Component, HttpComponent, InstanceContext};

/// Where the wasmCloud HTTP server listens when the link does not say.
const DEFAULT_HTTP_ADDRESS: &str = "0.0.0.0:8000";

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

        let mut http = BTreeMap::new();
        for (name, c) in &checked {
            let Some(spec) = app.component(name) else {
                continue;
            };
            if !c
                .component
                .exports_interface("wasi", "http", "incoming-handler")
            {
                continue;
            }
            let context = InstanceContext {
                component_id: spec.id.clone(),
                config: Arc::new(c.config.clone()),
            };
            match self.runtime.prepare_http(&c.component, context) {
                Ok(prepared) => {
                    http.insert(name.clone(), prepared);
                }
                Err(e) => problems.push(Problem::new(e.to_string())),
            }
        }

        let routes = self.http_routes(app, &checked, &mut problems);
        if !problems.is_empty() {
            return Err(DeployError {
                app: app.name.clone(),
                manifest,
                problems,
            });
        }

        // Bind every listener before serving anything, so a port in use fails the whole
        // deployment instead of leaving half of it running.
        let mut bound = Vec::new();
        for route in routes {
            match trellis_http_server::bind(route.address) {
                Ok(listener) => bound.push((route, listener)),
                Err(e) => problems.push(
                    Problem::new(format!(
                        "capability `{}` cannot listen on {} for component `{}`: {e}",
                        route.provider, route.address, route.component
                    ))
                    .hint("another process may be using that address: change `address` in the link's source config, stop the other process, or pass `--http 127.0.0.1:0` to pick a free port"),
                ),
            }
        }
        if !problems.is_empty() {
            return Err(DeployError {
                app: app.name.clone(),
                manifest,
                problems,
            });
        }

        self.start(app, &checked, http, bound).await
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

    async fn start(
        &self,
        app: &Application,
        checked: &BTreeMap<String, Checked>,
        mut http: BTreeMap<String, HttpComponent>,
        bound: Vec<(Route, tokio::net::TcpListener)>,
    ) -> Result<Vec<Listening>, DeployError> {
        let annotations = BTreeMap::from([
            ("wasmcloud.dev/appspec".to_owned(), app.name.clone()),
            ("wasmcloud.dev/managed-by".to_owned(), "trellis".to_owned()),
        ]);
        let mut components = Vec::new();
        for spec in &app.components {
            if !checked.contains_key(&spec.name) || spec.scale.instances == 0 {
                continue;
            }
            if let Some(prepared) = http.remove(&spec.name) {
                self.dispatch.insert(
                    spec.id.as_str(),
                    Running {
                        http: prepared,
                        limiter: ConcurrencyLimiter::new(
                            spec.scale.instances,
                            self.config.max_queued_requests,
                        ),
                    },
                );
            }
            let image_ref = match &spec.image {
                ImageRef::File(p) => format!("file://{}", p.display()),
                ImageRef::Remote(r) => r.clone(),
            };
            self.publish(
                "component_scaled",
                serde_json::json!({
                    "component_id": spec.id,
                    "image_ref": image_ref,
                    "max_instances": spec.scale.instances,
                    "annotations": annotations,
                }),
            );
            components.push(ComponentDescription {
                id: spec.id.clone(),
                image_ref,
                name: Some(spec.name.clone()),
                annotations: annotations.clone(),
                revision: 0,
                max_instances: spec.scale.instances,
            });
        }
        let mut providers = Vec::new();
        for p in &app.providers {
            self.publish(
                "provider_started",
                serde_json::json!({"provider_id": p.id, "image_ref": p.image_ref, "annotations": annotations}),
            );
            providers.push(ProviderDescription {
                id: p.id.clone(),
                image_ref: Some(p.image_ref.clone()),
                name: Some(p.name.clone()),
                annotations: annotations.clone(),
                revision: 0,
                status: ProviderStatus::Running,
            });
        }
        for l in &app.links {
            self.publish(
                "linkdef_set",
                serde_json::to_value(&l.link).unwrap_or_default(),
            );
        }
        {
            let mut inventory = self.inventory.lock().unwrap_or_else(|e| e.into_inner());
            let Inventory {
                components: c,
                providers: p,
            } = &mut *inventory;
            c.extend(components);
            p.extend(providers);
        }

        let mut listening = Vec::new();
        let mut servers = self.servers.lock().await;
        for (route, listener) in bound {
            let address = listener.local_addr().unwrap_or(route.address);
            let mut shutdown = self.shutdown.subscribe();
            let handler: Arc<dyn trellis_http_server::IncomingHandler> = self.dispatch.clone();
            servers.spawn(trellis_http_server::serve(
                listener,
                route.component_id.clone().into(),
                handler,
                self.config.server.clone(),
                async move {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                },
            ));
            tracing::info!(%address, provider = %route.provider, component_id = %route.component_id, "HTTP server listening");
            listening.push(Listening {
                address,
                provider: route.provider,
                component_id: route.component_id,
            });
        }
        Ok(listening)
    }
}

struct Route {
    address: SocketAddr,
    provider: String,
    component: String,
    component_id: String,
}

fn check_providers(app: &Application, problems: &mut Vec<Problem>) {
    const AVAILABLE: &str = "built-in providers in this version: http-server (`ghcr.io/wasmcloud/http-server:<tag>` or `wasmcloud+builtin://http-server`)";
    for p in &app.providers {
        match p.builtin {
            Some(Builtin::HttpServer) => {}
            Some(other) => problems.push(
                Problem::new(format!(
                    "capability `{}` ({}:{}): `{}` is the built-in {} provider, which this version of Trellis does not include yet",
                    p.name,
                    app.manifest_path.display(),
                    p.line,
                    p.image_ref,
                    other.name()
                ))
                .hint(AVAILABLE),
            ),
            None => problems.push(
                Problem::new(format!(
                    "capability `{}` ({}:{}): `{}` is not a built-in provider; Trellis runs providers inside the host and cannot start provider binaries",
                    p.name,
                    app.manifest_path.display(),
                    p.line,
                    p.image_ref
                ))
                .hint(AVAILABLE),
            ),
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
        let linked = app.links.iter().any(|l: &LinkSpec| {
            l.source == name && l.link.carries(n.namespace, n.package, n.interface)
        });
        if !linked {
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

/// The manifest entry a missing link should most likely point at.
fn suggest_target(app: &Application, namespace: &str, package: &str) -> String {
    let wanted = match (namespace, package) {
        ("wasi", "keyvalue") => &[Builtin::KeyValueRedis, Builtin::KeyValueNats][..],
        ("wasi", "http") => &[Builtin::HttpClient][..],
        ("wasi", "blobstore") => &[Builtin::BlobstoreFs][..],
        ("wasmcloud", "messaging") => &[Builtin::MessagingNats][..],
        _ => &[][..],
    };
    app.providers
        .iter()
        .find(|p| p.builtin.is_some_and(|b| wanted.contains(&b)))
        .map(|p| p.name.clone())
        .unwrap_or_else(|| {
            format!("<the capability or component that provides {namespace}:{package}>")
        })
}

fn merge_config(
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
