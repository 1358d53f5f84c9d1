//! The deploy checks: pure functions of the manifest and the loaded components' import and
//! export lists ([`Interfaces`]), with no runtime, no I/O and no host state, so they are
//! unit-tested with made-up components. Every problem found is collected with a hint.

use crate::problems::Problem;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use trellis_control::ComponentId;
use trellis_control::secret::{SecretReference, SecretValue, is_secret_reference};
use trellis_keyvalue::watch::WatchSpec;
use trellis_manifest::{Application, Builtin, LinkSpec};
use trellis_runtime::imports::{ImportSource, InterfaceName, classify};

/// Where the wasmCloud HTTP server listens when the link does not say.
pub(crate) const DEFAULT_HTTP_ADDRESS: &str = "0.0.0.0:8000";

/// Config keys of the wasmCloud HTTP server provider that Trellis honours.
const HTTP_SERVER_KEYS: &[&str] = &["address", "default_address"];

/// The import a component may leave unlinked (see [`check_imports`]).
const OUTGOING_HTTP: (&str, &str, &str) = ("wasi", "http", "outgoing-handler");
/// WASI 0.3's name for it, which its `wasi:http/service` world imports.
const OUTGOING_HTTP_P3: (&str, &str, &str) = ("wasi", "http", "client");

/// What the checks need to know of a component: what it imports and exports.
pub(crate) trait Interfaces {
    /// Every import, as the component model names it.
    fn imports(&self) -> &[String];
    /// Every export.
    fn exports(&self) -> &[String];
    /// Imports of interfaces that hold types only: nothing to link.
    fn types_only_imports(&self) -> &[String] {
        &[]
    }
    /// Whether it exports `namespace:package/interface` (any version).
    fn exports_interface(&self, namespace: &str, package: &str, interface: &str) -> bool {
        self.exports().iter().any(|e| {
            InterfaceName::parse(e).is_some_and(|n| {
                n.namespace == namespace && n.package == package && n.interface == interface
            })
        })
    }
}

impl Interfaces for trellis_runtime::Component {
    fn imports(&self) -> &[String] {
        trellis_runtime::Component::imports(self)
    }
    fn exports(&self) -> &[String] {
        trellis_runtime::Component::exports(self)
    }
    fn types_only_imports(&self) -> &[String] {
        trellis_runtime::Component::types_only_imports(self)
    }
}

/// One component that passed the checks, with the config it reads and its secrets.
pub(crate) struct Checked<C> {
    pub(crate) component: C,
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) secrets: trellis_runtime::Secrets,
}

/// An app that passed the checks: what to start.
pub(crate) struct CheckedApp<C> {
    /// The components by manifest name.
    pub(crate) components: BTreeMap<String, Checked<C>>,
    /// The HTTP listeners to open.
    pub(crate) routes: Vec<Route>,
    /// The message subscriptions to make.
    pub(crate) subscriptions: Vec<SubscriptionLink>,
    /// The key-value watches to start.
    pub(crate) watches: Vec<WatchLink>,
    /// What deploys but will not work as the component may expect, to log once.
    pub(crate) warnings: Vec<Problem>,
}

/// An HTTP listener to open: an address, the HTTP server provider entry, the component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) address: SocketAddr,
    pub(crate) provider: String,
    pub(crate) component: String,
    pub(crate) component_id: ComponentId,
}

impl Route {
    /// A route for a component known by id only (lattice links name ids, not manifest names).
    pub(crate) fn new(address: SocketAddr, provider: String, component_id: ComponentId) -> Self {
        Self {
            address,
            provider,
            component: component_id.to_string(),
            component_id,
        }
    }
}

/// Checks everything about `app` that can be checked without running anything: every
/// import of every loaded component is served (by the host or a link to the right kind of
/// target), every named config exists, links between components name exported interfaces,
/// HTTP server links have a component and an address, message handler links subscribe to
/// something. Problems are collected, never returned early, so they are reported together.
pub(crate) fn check<C: Interfaces>(
    app: &Application,
    loaded: Vec<(String, C)>,
    http_override: Option<SocketAddr>,
    problems: &mut Vec<Problem>,
) -> CheckedApp<C> {
    let mut checked = BTreeMap::new();
    let mut warnings = Vec::new();
    for (name, component) in loaded {
        let Some(spec) = app.component(&name) else {
            continue;
        };
        check_imports(app, &name, spec.line, &component, problems, &mut warnings);
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
        // Secret references are not config: the component reads them through
        // wasmcloud:secrets, never through wasi:config.
        let (secret_names, names): (Vec<String>, Vec<String>) =
            names.into_iter().partition(|n| is_secret_reference(n));
        let who = format!("component `{name}`");
        let config = merge_config(app, &who, &names, problems);
        let secrets = reveal_all(app, &who, &secret_names, problems)
            .into_iter()
            .collect();
        checked.insert(
            name,
            Checked {
                component,
                config,
                secrets,
            },
        );
    }

    // A provider's own config (and its secrets) must resolve too.
    for p in &app.providers {
        merge_config(app, &format!("provider `{}`", p.name), &p.config, problems);
    }

    // Config a link hands the provider it targets must exist too.
    for l in &app.links {
        if app.component(&l.source).is_some() && app.provider(&l.target).is_some() {
            merge_config(
                app,
                &format!("the link from `{}` to `{}`", l.source, l.target),
                &l.link.target_config,
                problems,
            );
        }
    }
    check_component_links(app, &checked, problems);
    let routes = http_routes(app, &checked, http_override, problems);
    let subscriptions = message_subscriptions(app, &checked, problems);
    wadm_status_links(app, &checked, problems);
    let watches = key_watches(app, &checked, problems, &mut warnings);
    CheckedApp {
        components: checked,
        routes,
        subscriptions,
        watches,
        warnings,
    }
}

fn http_routes<C: Interfaces>(
    app: &Application,
    checked: &BTreeMap<String, Checked<C>>,
    http_override: Option<SocketAddr>,
    problems: &mut Vec<Problem>,
) -> Vec<Route> {
    let mut routes = Vec::new();
    for link in &app.links {
        let Some(provider) = app.provider(&link.source) else {
            continue;
        };
        if provider.builtin != Some(Builtin::HTTP_SERVER) {
            continue;
        }
        // `incoming-handler` is how wadm manifests say it (WASI 0.2); `handler` is WASI 0.3's
        // name. Either delivers to a component exporting either.
        if !link.link.carries("wasi", "http", "incoming-handler")
            && !link.link.carries("wasi", "http", "handler")
        {
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
                    .exports_interface("wasi", "http", "incoming-handler")
                    && !c.component.exports_interface("wasi", "http", "handler") =>
            {
                problems.push(Problem::new(format!(
                    "capability `{}` sends HTTP requests to component `{}`, but it exports neither wasi:http/incoming-handler@0.2 nor wasi:http/handler@0.3 (it exports: {})",
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
        let address = match http_override {
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
            component_id: target.id.clone(),
        });
    }
    routes
}

pub(crate) fn check_providers(app: &Application, problems: &mut Vec<Problem>) {
    for p in &app.providers {
        if p.builtin.is_none() {
            let available: Vec<_> = Builtin::all()
                .map(|b| format!("`trellis+builtin://{b}`"))
                .collect();
            let what = if p.image_ref.ends_with(".par.gz") {
                "a provider archive that matches no built-in provider; external providers are not supported yet"
            } else {
                "not a built-in provider; external providers are not supported yet (Trellis runs its built-in providers inside the host)"
            };
            problems.push(
                Problem::new(format!(
                    "capability `{}` ({}:{}): `{}` is {what}",
                    p.name,
                    app.manifest_path.display(),
                    p.line,
                    p.image_ref
                ))
                .hint(format!(
                    "use a wasmCloud provider image (`ghcr.io/wasmcloud/keyvalue-redis:<tag>`, `http-server`, `http-client`, `keyvalue-nats`, `messaging-nats`, `blobstore-fs`, `blobstore-nats`) or one of {}",
                    available.join(", ")
                )),
            );
        }
    }
}

/// Every import that neither the host nor a link from this component serves is a problem,
/// reported per package with the link trait that would fix it. The one exception is
/// `wasi:http/outgoing-handler`, which the standard `wasi:http/proxy` world always imports
/// (componentize-py, componentize-js and `wasmtime serve` components carry it whether they
/// send requests or not): without a link it deploys with a warning, and every request it
/// sends is refused with `http-request-denied`.
fn check_imports(
    app: &Application,
    name: &str,
    line: usize,
    component: &impl Interfaces,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    let mut missing: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for import in component.imports() {
        // Types only (wasmCloud's `wasmcloud:task-manager/types` and the like): nothing to
        // serve, so nothing to link.
        if classify(import) == ImportSource::Host || component.types_only_imports().contains(import)
        {
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
        if links.is_empty()
            && ((n.namespace, n.package, n.interface) == OUTGOING_HTTP
                || (n.namespace, n.package, n.interface) == OUTGOING_HTTP_P3)
        {
            warnings.push(
                Problem::new(format!(
                    "component `{name}` ({}:{line}) imports `{import}` but has no link to an HTTP client: it deploys, and every outgoing request it makes is refused (`http-request-denied`)",
                    app.manifest_path.display(),
                ))
                .hint(format!(
                    "if it does send requests, link it to an HTTP client:\n\
                     - type: link\n\
                     \x20 properties:\n\
                     \x20   namespace: wasi\n\
                     \x20   package: http\n\
                     \x20   interfaces: [outgoing-handler]\n\
                     \x20   target:\n\
                     \x20     name: {}",
                    suggest_target(app, "wasi", "http")
                )),
            );
            continue;
        }
        // A key-value provider that watches keys for the component serves its key-value
        // imports too: the component needs them to use the buckets it is handed, and
        // wasmCloud's http-keyvalue-watcher example has no other key-value link.
        if links.is_empty()
            && (n.namespace, n.package) == ("wasi", "keyvalue")
            && watcher_links_to(app, name).next().is_some()
        {
            continue;
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
fn check_component_links<C: Interfaces>(
    app: &Application,
    loaded: &BTreeMap<String, Checked<C>>,
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

/// The config `who` reads from `names`, later names winning. A secret reference among them
/// gives its revealed value under the reference's name (how providers read secrets, such
/// as `POSTGRES_PASSWORD`).
pub(crate) fn merge_config(
    app: &Application,
    who: &str,
    names: &[String],
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, String> {
    let mut merged = BTreeMap::new();
    for name in names {
        if is_secret_reference(name) {
            for (key, value) in reveal_all(app, who, std::slice::from_ref(name), problems) {
                match value {
                    SecretValue::String(s) => {
                        merged.insert(key, s);
                    }
                    SecretValue::Bytes(bytes) => match String::from_utf8(bytes) {
                        Ok(s) => {
                            merged.insert(key, s);
                        }
                        Err(_) => problems.push(
                            Problem::new(format!("{who} reads secret `{key}` as config, but it is binary"))
                                .hint("config values are text: store the secret as text (`trellis secret put` without `--binary`)"),
                        ),
                    },
                }
            }
            continue;
        }
        match app.configs.get(name) {
            Some(values) => merged.extend(values.iter().map(|(k, v)| (k.clone(), v.clone()))),
            None => problems.push(
                Problem::new(format!("{who} uses config `{name}`, which this manifest does not define and no stored config has that name"))
                    .hint(format!("store it first (`trellis config put {name} key=value`; for a `trellis up` project, before it starts, `trellis config put --local {name} key=value` in its folder), or give it values where it is referenced:\n- name: {name}\n  properties:\n    key: value")),
            ),
        }
    }
    merged
}

/// The secrets behind the references `names`, by the names `who` reads them under; a
/// reference that could not be revealed is a problem saying why (never the value).
fn reveal_all(
    app: &Application,
    who: &str,
    names: &[String],
    problems: &mut Vec<Problem>,
) -> Vec<(String, SecretValue)> {
    let mut out = Vec::new();
    for name in names {
        let Some(reference) = app.configs.get(name).and_then(SecretReference::from_config) else {
            problems.push(
                Problem::new(format!("{who} uses secret reference `{name}`, which is not defined"))
                    .hint("reference secrets with `secrets:` in the manifest (name and properties: policy, key)"),
            );
            continue;
        };
        match app.revealed.get(name) {
            Some(Ok(value)) => out.push((reference.name, value.clone())),
            Some(Err(reason)) => problems.push(Problem::new(format!(
                "{who} uses secret `{}`: {reason}",
                reference.name
            ))),
            None => problems.push(Problem::new(format!(
                "{who} uses secret `{}` (stored secret `{}`), which this host could not look up",
                reference.name, reference.key
            ))),
        }
    }
    out
}

/// A messaging provider delivering a subscription's messages to a component.
pub(crate) struct SubscriptionLink {
    pub(crate) provider: String,
    pub(crate) component: String,
    /// The link's source config without `subscriptions` (it picks the backend).
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) specs: Vec<trellis_messaging::SubscriptionSpec>,
}

/// Links from the wadm status provider (`crate::wadm`) to a component of the app: the
/// component must export `wasmcloud:wadm/handler`, and the link must name the app whose
/// status it receives (`app_name`, in the link's source config or the provider's).
fn wadm_status_links<C: Interfaces>(
    app: &Application,
    checked: &BTreeMap<String, Checked<C>>,
    problems: &mut Vec<Problem>,
) {
    for link in &app.links {
        let Some(provider) = app.provider(&link.source) else {
            continue;
        };
        if provider.builtin.map(|b| b.name()) != Some(crate::wadm::BUILTIN)
            || !link.link.carries("wasmcloud", "wadm", "handler")
        {
            continue;
        }
        if let Some(c) = checked.get(&link.target)
            && !c
                .component
                .exports_interface("wasmcloud", "wadm", "handler")
        {
            problems.push(Problem::new(format!(
                "capability `{}` delivers app status to component `{}`, but it does not export wasmcloud:wadm/handler@0.2.0 (it exports: {})",
                provider.name,
                link.target,
                c.component.exports().join(", ")
            )));
        }
        let mut names = provider.config.clone();
        names.extend(link.link.source_config.iter().cloned());
        let mut ignored = Vec::new();
        let config = merge_config(
            app,
            &format!("capability `{}`", provider.name),
            &names,
            &mut ignored,
        );
        if !config.keys().any(|k| k.eq_ignore_ascii_case("app_name")) {
            problems.push(
                Problem::new(format!(
                    "capability `{}` ({}:{}) delivers app status to `{}`, but its link names no app",
                    provider.name,
                    app.manifest_path.display(),
                    provider.line,
                    link.target
                ))
                .hint("add `app_name: <the app to watch>` to the link's `source` config"),
            );
        }
    }
}

/// Links from a messaging provider to a component's `wasmcloud:messaging/handler` (0.2.0) or
/// `incoming-handler` (0.3.0). The link may list either name whichever the component
/// exports: wasmCloud's 0.3.0 examples list `[handler]`.
fn message_subscriptions<C: Interfaces>(
    app: &Application,
    checked: &BTreeMap<String, Checked<C>>,
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
        if !link.link.carries("wasmcloud", "messaging", "handler")
            && !link
                .link
                .carries("wasmcloud", "messaging", "incoming-handler")
        {
            continue;
        }
        let Some(c) = checked.get(&link.target) else {
            continue;
        };
        let exports = |interface| {
            c.component
                .exports_interface("wasmcloud", "messaging", interface)
        };
        if !exports("handler") && !exports("incoming-handler") {
            problems.push(Problem::new(format!(
                "capability `{}` delivers messages to component `{}`, but it exports neither wasmcloud:messaging/handler@0.2.0 nor incoming-handler@0.3.0 (it exports: {})",
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

/// A key-value provider reporting changes to watched keys to a component's
/// `wasi:keyvalue/watcher` export.
pub(crate) struct WatchLink {
    pub(crate) provider: String,
    pub(crate) component: String,
    /// The link's config, provider's first, without `watch` (it picks the backend).
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) spec: WatchSpec,
}

/// The config key holding what a watcher link watches, as wasmCloud's providers read it.
pub(crate) const WATCH_KEY: &str = "watch";

/// Links from a key-value provider to a component that carry `wasi:keyvalue/watcher` (or the
/// older `watch`).
pub(crate) fn watcher_links_to<'a>(
    app: &'a Application,
    component: &'a str,
) -> impl Iterator<Item = &'a LinkSpec> + 'a {
    app.links.iter().filter(move |l| {
        l.target == component
            && app
                .provider(&l.source)
                .and_then(|p| p.builtin)
                .and_then(|b| b.provides())
                == Some(("wasi", "keyvalue"))
            && (l.link.carries("wasi", "keyvalue", "watcher")
                || l.link.carries("wasi", "keyvalue", "watch"))
    })
}

/// The config of a watcher link: the provider's, then the link's source config (where
/// wasmCloud's provider reads it), then its target config (where wasmCloud's example and
/// README put the provider's `url` and `watch`); and the `watch` value, taken out.
pub(crate) fn watcher_link_config(
    app: &Application,
    link: &LinkSpec,
    problems: &mut Vec<Problem>,
) -> (BTreeMap<String, String>, String) {
    let mut names = app
        .provider(&link.source)
        .map(|p| p.config.clone())
        .unwrap_or_default();
    names.extend(link.link.source_config.iter().cloned());
    names.extend(link.link.target_config.iter().cloned());
    let mut config = merge_config(
        app,
        &format!("capability `{}`", link.source),
        &names,
        problems,
    );
    let watch = take_ci(&mut config, WATCH_KEY).unwrap_or_default();
    (config, watch)
}

/// Removes every key equal to `key` ignoring case; returns the last value.
pub(crate) fn take_ci(config: &mut BTreeMap<String, String>, key: &str) -> Option<String> {
    let keys: Vec<String> = config
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(key))
        .cloned()
        .collect();
    keys.into_iter().filter_map(|k| config.remove(&k)).last()
}

/// Links from a key-value provider to a component's `wasi:keyvalue/watcher`, with what each
/// watches (`watch: SET@key,DEL@key`). A link that watches nothing deploys with a warning, as
/// wasmCloud's example manifest does; a `watch` that does not parse is a problem.
fn key_watches<C: Interfaces>(
    app: &Application,
    checked: &BTreeMap<String, Checked<C>>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Vec<WatchLink> {
    let mut out = Vec::new();
    for (name, c) in checked {
        for link in watcher_links_to(app, name) {
            if !c.component.exports_interface("wasi", "keyvalue", "watcher") {
                problems.push(Problem::new(format!(
                    "capability `{}` reports changes to watched keys to component `{name}`, but it does not export wasi:keyvalue/watcher (it exports: {})",
                    link.source,
                    c.component.exports().join(", ")
                )).hint("export `wasi:keyvalue/watcher@0.2.0-draft` from the component, or remove `watcher` from the link's interfaces"));
                continue;
            }
            let (config, watch) = watcher_link_config(app, link, problems);
            match WatchSpec::parse(&watch) {
                Ok(spec) if spec.is_empty() => warnings.push(
                    Problem::new(format!(
                        "capability `{}` links to component `{name}`'s wasi:keyvalue/watcher but watches no keys: no change will be delivered",
                        link.source
                    ))
                    .hint("add `watch: SET@some-key,DEL@some-key` (comma-separated) to the link's source config"),
                ),
                Ok(spec) => out.push(WatchLink {
                    provider: link.source.clone(),
                    component: name.clone(),
                    config,
                    spec,
                }),
                Err(e) => problems.push(Problem::new(format!(
                    "capability `{}` link to `{name}`: {e}",
                    link.source
                ))),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component known only by what it imports and exports.
    struct Shape {
        imports: Vec<String>,
        exports: Vec<String>,
        types_only: Vec<String>,
    }

    impl Interfaces for Shape {
        fn imports(&self) -> &[String] {
            &self.imports
        }
        fn exports(&self) -> &[String] {
            &self.exports
        }
        fn types_only_imports(&self) -> &[String] {
            &self.types_only
        }
    }

    fn shape(imports: &[&str], exports: &[&str]) -> Shape {
        Shape {
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: exports.iter().map(|s| s.to_string()).collect(),
            types_only: Vec::new(),
        }
    }

    #[test]
    fn types_only_imports_need_no_link() {
        let app = app(WEB);
        let types = "wasmcloud:task-manager/types@0.1.0";
        let mut web = shape(&[types], &[]);
        web.types_only.push(types.to_owned());
        let (_, problems) = run(&app, vec![("web", web)]);
        assert_eq!(problems, Vec::<String>::new());
        // The same import with functions in it needs its link.
        let (_, problems) = run(&app, vec![("web", shape(&[types], &[]))]);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    const HTTP: &str = "wasi:http/incoming-handler@0.2.0";

    fn app(components: &str) -> Application {
        let yaml = format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: demo\nspec:\n  components:\n{components}"
        );
        trellis_manifest::parse(&yaml, std::path::Path::new("/apps/demo.yaml"))
            .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    fn run(app: &Application, loaded: Vec<(&str, Shape)>) -> (CheckedApp<Shape>, Vec<String>) {
        let mut problems = Vec::new();
        check_providers(app, &mut problems);
        let loaded = loaded.into_iter().map(|(n, s)| (n.to_owned(), s)).collect();
        let checked = check(app, loaded, None, &mut problems);
        (
            checked,
            problems
                .iter()
                .map(|p| format!("{}\n{}", p.message, p.hint.as_deref().unwrap_or_default()))
                .collect(),
        )
    }

    const WEB: &str = "    - name: web
      type: component
      properties:
        image: localhost:5000/demo/web:0.1.0
";

    const HTTP_SERVER: &str = "    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
        - type: link
          properties:
            target:
              name: web
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: listen
                  properties:
                    address: 127.0.0.1:8123
";

    #[test]
    fn a_served_app_has_its_route_and_no_problem() {
        let app = app(&format!("{WEB}{HTTP_SERVER}"));
        let (checked, problems) = run(
            &app,
            vec![(
                "web",
                shape(&["wasi:io/streams@0.2.0", "wasi:logging/logging"], &[HTTP]),
            )],
        );
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(checked.routes.len(), 1);
        assert_eq!(checked.routes[0].address.to_string(), "127.0.0.1:8123");
        assert_eq!(checked.routes[0].provider, "httpserver");
        assert!(checked.components.contains_key("web"));
    }

    #[test]
    fn an_import_without_a_link_names_the_import_and_the_fix() {
        let app = app(WEB);
        let (_, problems) = run(
            &app,
            vec![("web", shape(&["wasi:keyvalue/store@0.2.0-draft"], &[HTTP]))],
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("`wasi:keyvalue/store@0.2.0-draft`"),
            "{}",
            problems[0]
        );
        assert!(problems[0].contains("namespace: wasi"), "{}", problems[0]);
        assert!(
            problems[0].contains("trellis+builtin://keyvalue-local"),
            "the catalogue's suggestion: {}",
            problems[0]
        );
    }

    /// The `wasi:http/proxy` world imports the outgoing handler whether the code sends
    /// requests or not: unlinked, it deploys with one warning instead of a problem.
    #[test]
    fn an_unlinked_outgoing_handler_is_a_warning_not_a_problem() {
        let app = app(WEB);
        let (checked, problems) = run(
            &app,
            vec![(
                "web",
                shape(&["wasi:http/outgoing-handler@0.2.12"], &[HTTP]),
            )],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(checked.warnings.len(), 1, "{:?}", checked.warnings);
        let warning = &checked.warnings[0];
        assert!(
            warning
                .message
                .contains("`wasi:http/outgoing-handler@0.2.12`")
                && warning.message.contains("http-request-denied"),
            "{}",
            warning.message
        );
        assert!(
            warning
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("interfaces: [outgoing-handler]")),
            "{warning:?}"
        );
        // Other imports of wasi:http still need their link.
        let (checked, problems) = run(
            &app,
            vec![("web", shape(&["wasi:http/incoming-handler@0.2.0"], &[HTTP]))],
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(checked.warnings.is_empty());
    }

    #[test]
    fn a_link_to_the_wrong_kind_of_provider_is_refused() {
        let app = app(&format!(
            "{WEB}      traits:
        - type: link
          properties:
            target:
              name: blobs
            namespace: wasi
            package: keyvalue
            interfaces: [store]
    - name: blobs
      type: capability
      properties:
        image: ghcr.io/wasmcloud/blobstore-fs:0.10.1
"
        ));
        let (_, problems) = run(
            &app,
            vec![("web", shape(&["wasi:keyvalue/store@0.2.0-draft"], &[]))],
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("does not provide wasi:keyvalue"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn companions_are_served_by_the_link_that_lists_the_main_interface() {
        let app = app(&format!(
            "{WEB}      traits:
        - type: link
          properties:
            target:
              name: blobs
            namespace: wasi
            package: blobstore
            interfaces: [blobstore]
    - name: blobs
      type: capability
      properties:
        image: ghcr.io/wasmcloud/blobstore-fs:0.10.1
"
        ));
        let imports = [
            "wasi:blobstore/blobstore@0.2.0-draft",
            "wasi:blobstore/container@0.2.0-draft",
            "wasi:blobstore/types@0.2.0-draft",
        ];
        let (_, problems) = run(&app, vec![("web", shape(&imports, &[]))]);
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn http_server_links_need_a_component_that_serves_http() {
        let app = app(&format!("{WEB}{HTTP_SERVER}"));
        let (checked, problems) = run(&app, vec![("web", shape(&[], &[]))]);
        assert!(checked.routes.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains(
                "exports neither wasi:http/incoming-handler@0.2 nor wasi:http/handler@0.3"
            ),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn a_message_handler_link_must_subscribe_to_something() {
        let app = app(&format!(
            "{WEB}    - name: nats
      type: capability
      properties:
        image: ghcr.io/wasmcloud/messaging-nats:0.23.1
      traits:
        - type: link
          properties:
            target:
              name: web
            namespace: wasmcloud
            package: messaging
            interfaces: [handler]
"
        ));
        let (checked, problems) = run(
            &app,
            vec![("web", shape(&[], &["wasmcloud:messaging/handler@0.2.0"]))],
        );
        assert!(checked.subscriptions.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("subscribes to nothing"),
            "{}",
            problems[0]
        );
    }

    /// The links of wasmCloud's echo-messaging-0-3-0 example: `[consumer]` from the
    /// component, `[handler]` to it with `subscriptions`.
    const ECHO_V3: &str = "    - name: echo
      type: component
      properties:
        image: localhost:5000/echo:0.1.0
      traits:
        - type: link
          properties:
            target:
              name: nats
            namespace: wasmcloud
            package: messaging
            interfaces: [consumer]
    - name: nats
      type: capability
      properties:
        image: ghcr.io/wasmcloud/messaging-nats:0.27.0
      traits:
        - type: link
          properties:
            target:
              name: echo
            namespace: wasmcloud
            package: messaging
            interfaces: [handler]
            source:
              config:
                - name: simple-subscription
                  properties:
                    subscriptions: wasmcloud.echo
";

    #[test]
    fn a_messaging_0_3_0_component_deploys_with_wasmclouds_echo_links() {
        let echo_app = app(ECHO_V3);
        let echo = shape(
            &[
                "wasmcloud:messaging/types@0.3.0",
                "wasmcloud:messaging/request-reply@0.3.0",
                "wasmcloud:messaging/producer@0.3.0",
            ],
            &["wasmcloud:messaging/incoming-handler@0.3.0"],
        );
        let (checked, problems) = run(&echo_app, vec![("echo", echo)]);
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(checked.subscriptions.len(), 1);
        assert_eq!(checked.subscriptions[0].component, "echo");
        assert_eq!(checked.subscriptions[0].specs[0].subject, "wasmcloud.echo");

        // A link listing `incoming-handler` works as well; a component exporting no handler
        // is told which exports would do.
        let listed = app(&ECHO_V3.replace("[handler]", "[incoming-handler]"));
        let echo = shape(&[], &["wasmcloud:messaging/incoming-handler@0.3.0"]);
        let (checked, problems) = run(&listed, vec![("echo", echo)]);
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(checked.subscriptions.len(), 1);
        let (_, problems) = run(&echo_app, vec![("echo", shape(&[], &[]))]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .contains("neither wasmcloud:messaging/handler@0.2.0 nor incoming-handler@0.3.0"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn undefined_config_and_unknown_providers_are_reported_together() {
        let app = app(&format!(
            "{WEB}    - name: mystery
      type: capability
      properties:
        image: ghcr.io/example/provider:1
"
        ));
        let mut app = app;
        app.components[0].config.push("nowhere".into());
        let (_, problems) = run(&app, vec![("web", shape(&[], &[]))]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0]
                .contains("not a built-in provider; external providers are not supported yet"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].contains(
                "config `nowhere`, which this manifest does not define and no stored config has that name"
            ) && problems[1].contains("trellis config put nowhere key=value"),
            "{}",
            problems[1]
        );
    }

    /// wasmCloud's example manifests name first-party providers by their archives: those are
    /// the built-ins; any other archive is an external provider, refused.
    #[test]
    fn first_party_provider_archives_are_built_ins_and_others_are_refused() {
        let app = app(&format!(
            "{WEB}    - name: blobs
      type: capability
      properties:
        image: file://../../../../src/bin/blobstore-fs-provider/build/blobstore-fs-provider.par.gz
    - name: mine
      type: capability
      properties:
        image: file://./build/my-custom-provider.par.gz
"
        ));
        assert_eq!(
            app.provider("blobs")
                .and_then(|p| p.builtin)
                .map(|b| b.name()),
            Some("blobstore-fs")
        );
        let (_, problems) = run(&app, vec![("web", shape(&[], &[]))]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("`mine`")
                && problems[0].contains("a provider archive that matches no built-in provider; external providers are not supported yet"),
            "{}",
            problems[0]
        );
    }

    /// A key-value provider linked to `web`'s watcher with `watch` (when not empty).
    fn watched_web(watch: &str) -> Application {
        let config = if watch.is_empty() {
            String::new()
        } else {
            format!(
                "            source:\n              config:\n                - name: w\n                  properties:\n                    watch: {watch}\n"
            )
        };
        app(&format!(
            "{WEB}    - name: kv
      type: capability
      properties:
        image: ghcr.io/wasmcloud/keyvalue-redis:0.30.0
      traits:
        - type: link
          properties:
            target:
              name: web
            namespace: wasi
            package: keyvalue
            interfaces: [watcher]
{config}"
        ))
    }

    const STORE: &str = "wasi:keyvalue/store@0.2.0-draft";
    const WATCHER: &str = "wasi:keyvalue/watcher@0.2.0-draft";

    /// wasmCloud's http-keyvalue-watcher example imports the store with no link of its own:
    /// the provider that watches for it serves it.
    #[test]
    fn a_watcher_link_delivers_what_it_watches_and_serves_the_key_value_imports() {
        let app = watched_web("SET@a,del@a,SET@b");
        let (checked, problems) = run(&app, vec![("web", shape(&[STORE], &[WATCHER]))]);
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(checked.watches.len(), 1);
        let watch = &checked.watches[0];
        assert_eq!(
            (watch.provider.as_str(), watch.component.as_str()),
            ("kv", "web")
        );
        assert_eq!(watch.spec.keys().len(), 2);
        assert!(watch.spec.deletes.contains("a") && !watch.spec.deletes.contains("b"));
        assert!(
            !watch.config.keys().any(|k| k.eq_ignore_ascii_case("watch")),
            "`watch` does not pick the backend: {:?}",
            watch.config
        );
    }

    #[test]
    fn a_watcher_link_needs_the_export_and_a_readable_watch() {
        let (_, problems) = run(
            &watched_web("SET@a"),
            vec![("web", shape(&[STORE], &[HTTP]))],
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("does not export wasi:keyvalue/watcher"),
            "{}",
            problems[0]
        );
        let (_, problems) = run(
            &watched_web("GET@a"),
            vec![("web", shape(&[STORE], &[WATCHER]))],
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("`GET@a`") && problems[0].contains("SET@counter"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn a_watcher_link_that_watches_nothing_deploys_with_a_warning() {
        let (checked, problems) = run(&watched_web(""), vec![("web", shape(&[STORE], &[WATCHER]))]);
        assert_eq!(problems, Vec::<String>::new());
        assert!(checked.watches.is_empty());
        assert_eq!(checked.warnings.len(), 1);
        assert!(
            checked.warnings[0].message.contains("watches no keys"),
            "{}",
            checked.warnings[0].message
        );
    }
}
