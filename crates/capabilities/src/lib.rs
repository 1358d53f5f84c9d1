//! The capability catalogue: what Trellis knows about each WIT package a component may
//! import or export, in one table that the manifest checks, the runtime's import
//! classification, the host's deploy checks and its provider registry all read.
//!
//! A [`Capability`] names a WIT package and says, per interface, who serves it: the host
//! itself, for every component, without a link (`wasi:cli`, `wasi:logging`, …); a
//! capability provider, through a link from the component (`wasi:keyvalue`, …); or nobody,
//! because the host calls it as an export (`wasi:http/incoming-handler`). Companion
//! interfaces exist only to go with the package's others (`wasmcloud:messaging/types`) and
//! are served by the same link. The built-in providers that serve each capability, and the
//! wasmCloud images that select them, are [`BuiltinProvider`]s.
//!
//! ```
//! use trellis_capabilities::{Served, find};
//! let kv = find("wasi", "keyvalue").unwrap();
//! assert_eq!(kv.served("store"), Served::ByLink);
//! assert_eq!(find("wasi", "logging").unwrap().served("logging"), Served::ByHost);
//! assert_eq!(find("wasi", "http").unwrap().served("incoming-handler"), Served::HostInvoked);
//! ```
//!
//! Adding a capability: one entry in [`CATALOGUE`], the interface crate and its linker
//! binding in the runtime (see ARCHITECTURE.md, "Recipes").

/// One WIT package and how each of its interfaces is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// The WIT namespace, for example `wasi`.
    pub namespace: &'static str,
    /// The WIT package, for example `keyvalue`.
    pub package: &'static str,
    /// The interfaces a link may name, as wadm lists them: a link naming another interface
    /// of this package is almost certainly a typo. Empty: the package is never linked.
    pub link_interfaces: &'static [&'static str],
    /// Interfaces the host serves to every component without a link; `&["*"]` for all.
    pub host_interfaces: &'static [&'static str],
    /// Interfaces that come with a link to this package although manifests written for
    /// wasmCloud do not list them (types the linked interfaces use).
    pub companions: &'static [&'static str],
    /// Exports the host itself calls (HTTP requests, messages, `run`), never served to or
    /// called by other components through links.
    pub host_invoked: &'static [&'static str],
    /// The provider image to suggest when a component imports this package without a link.
    pub suggested_image: Option<&'static str>,
}

/// Who serves one imported interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The host, for every component, without a link.
    ByHost,
    /// A link from the component: to a provider of this capability, or to a component.
    ByLink,
    /// Nobody: the host calls it as an export.
    HostInvoked,
}

impl Capability {
    /// Who serves `interface` of this package when a component imports it.
    pub fn served(&self, interface: &str) -> Served {
        if self.host_interfaces.contains(&"*") || self.host_interfaces.contains(&interface) {
            Served::ByHost
        } else if self.host_invoked.contains(&interface) {
            Served::HostInvoked
        } else {
            Served::ByLink
        }
    }

    /// Whether a link to this package that lists `listed` also serves `interface`: listed
    /// itself, or a companion of the package.
    pub fn link_serves(&self, listed: &[String], interface: &str) -> bool {
        listed.iter().any(|i| i == interface) || self.companions.contains(&interface)
    }

    /// Whether built-in providers serve this package (a link to it goes to a provider).
    pub fn provider_served(&self) -> bool {
        BUILTINS
            .iter()
            .any(|b| b.provides == Some((self.namespace, self.package)))
    }
}

/// Every package the host knows. Packages not listed are custom: served by links to
/// components that export them.
pub const CATALOGUE: &[Capability] = &[
    host_package("wasi", "cli"),
    host_package("wasi", "io"),
    host_package("wasi", "clocks"),
    host_package("wasi", "random"),
    host_package("wasi", "filesystem"),
    host_package("wasi", "sockets"),
    Capability {
        link_interfaces: &["logging"],
        ..host_package("wasi", "logging")
    },
    Capability {
        link_interfaces: &["runtime", "store"],
        ..host_package("wasi", "config")
    },
    // `set-link-name`: which of a component's links (by name) its calls go through.
    host_package("wasmcloud", "bus"),
    // The secrets the manifest gives the component (`secrets:`), revealed on request.
    host_package("wasmcloud", "secrets"),
    Capability {
        namespace: "wasi",
        package: "http",
        // WASI 0.2's names (what wadm manifests list), then WASI 0.3's: `handler` is the
        // export that takes requests, `client` the import that sends them.
        link_interfaces: &["incoming-handler", "outgoing-handler", "handler", "client"],
        // Plumbing shared by the incoming and outgoing handlers; making an outgoing request
        // (`outgoing-handler`, or `client` in WASI 0.3) needs a link to an HTTP client
        // provider.
        host_interfaces: &["types"],
        // A link from a component to an HTTP client serves WASI 0.3's `client` whether it
        // lists that or wadm's `outgoing-handler`.
        companions: &["client"],
        host_invoked: &["incoming-handler", "handler"],
        suggested_image: Some("ghcr.io/wasmcloud/http-client:0.13.1"),
    },
    Capability {
        namespace: "wasi",
        package: "keyvalue",
        // `watcher` is the link from a provider to a component that exports it; `watch` is
        // the name of that interface in older drafts, which wadm also accepts.
        link_interfaces: &["atomics", "store", "batch", "watcher", "watch"],
        host_interfaces: &[],
        companions: &[],
        // Changes to watched keys, delivered by the host.
        host_invoked: &["watcher"],
        suggested_image: Some("trellis+builtin://keyvalue-local"),
    },
    Capability {
        namespace: "wasi",
        package: "blobstore",
        link_interfaces: &["blobstore", "container", "types"],
        host_interfaces: &[],
        // Manifests list `[blobstore]`; components also import what it uses.
        companions: &["container", "types"],
        host_invoked: &[],
        suggested_image: Some("ghcr.io/wasmcloud/blobstore-fs:0.10.1"),
    },
    // 0.2.0 (`consumer`, `handler`) and 0.3.0 (`producer`, `request-reply`,
    // `incoming-handler`) side by side, on one link to one provider.
    Capability {
        namespace: "wasmcloud",
        package: "messaging",
        link_interfaces: &[
            "consumer",
            "handler",
            "types",
            "producer",
            "request-reply",
            "incoming-handler",
        ],
        host_interfaces: &[],
        // Manifests list `[consumer]` (wasmCloud's 0.3.0 examples too); components also
        // import the types, and a 0.3.0 component `producer` and `request-reply`. A link
        // listing any of these serves all of them.
        companions: &["types", "consumer", "producer", "request-reply"],
        host_invoked: &["handler", "incoming-handler"],
        suggested_image: Some("ghcr.io/wasmcloud/messaging-nats:0.23.1"),
    },
    Capability {
        namespace: "wasmcloud",
        package: "postgres",
        link_interfaces: &["query", "prepared"],
        host_interfaces: &[],
        // Types only: needs no link, and comes with one.
        companions: &["types"],
        host_invoked: &[],
        suggested_image: Some("ghcr.io/wasmcloud/sqldb-postgres:0.10.0"),
    },
    // The wadm status provider calls `handler` (an ordinary export, through the host's
    // call path); `client`, a component asking wadm, is not served yet.
    Capability {
        namespace: "wasmcloud",
        package: "wadm",
        link_interfaces: &["handler", "client"],
        host_interfaces: &[],
        companions: &["types"],
        host_invoked: &[],
        suggested_image: None,
    },
    // wRPC names wadm accepts on links; Trellis serves none of them.
    wadm_only("wrpc", "http", &["incoming-handler", "outgoing-handler"]),
    wadm_only("wrpc", "keyvalue", &["atomics", "store"]),
    wadm_only("wrpc", "blobstore", &["blobstore"]),
];

/// `wasi:cli/run` is an export the host calls; every other `wasi:cli` interface is served
/// by the host.
const fn host_package(namespace: &'static str, package: &'static str) -> Capability {
    Capability {
        namespace,
        package,
        link_interfaces: &[],
        host_interfaces: &["*"],
        companions: &[],
        host_invoked: &["run"],
        suggested_image: None,
    }
}

const fn wadm_only(
    namespace: &'static str,
    package: &'static str,
    link_interfaces: &'static [&'static str],
) -> Capability {
    Capability {
        namespace,
        package,
        link_interfaces,
        host_interfaces: &[],
        companions: &[],
        host_invoked: &[],
        suggested_image: None,
    }
}

/// Packages where one link-name choice (`wasmcloud:bus/lattice.set-link-name`) covers every
/// interface: naming any of them moves all of the package's calls to that link. For
/// messaging, 0.2.0's `consumer` and 0.3.0's `producer` and `request-reply` are one
/// capability on one link.
pub const ONE_LINK_CHOICE: &[(&str, &str)] = &[("wasmcloud", "messaging")];

/// The key one instance's link-name choice for `namespace:package/interface` is kept under:
/// the package, for the packages in [`ONE_LINK_CHOICE`], else the interface.
pub fn link_choice_key(namespace: &str, package: &str, interface: &str) -> String {
    if ONE_LINK_CHOICE.contains(&(namespace, package)) {
        format!("{namespace}:{package}")
    } else {
        format!("{namespace}:{package}/{interface}")
    }
}

/// The catalogue entry of `namespace:package`, if the host knows the package.
pub fn find(namespace: &str, package: &str) -> Option<&'static Capability> {
    CATALOGUE
        .iter()
        .find(|c| c.namespace == namespace && c.package == package)
}

/// Who serves the import `namespace:package/interface` (custom packages: a link).
pub fn served(namespace: &str, package: &str, interface: &str) -> Served {
    find(namespace, package).map_or(Served::ByLink, |c| c.served(interface))
}

/// Whether the host calls the export `namespace:package/interface` itself (HTTP requests,
/// messages, `wasi:cli/run`), so it is never served to other components through links.
pub fn host_invoked(namespace: &str, package: &str, interface: &str) -> bool {
    find(namespace, package).is_some_and(|c| c.host_invoked.contains(&interface))
}

/// A capability provider built into the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinProvider {
    /// Its short name, for example `keyvalue-redis`: `wasmcloud+builtin://NAME`,
    /// `trellis+builtin://NAME` and `ghcr.io/wasmcloud/NAME:TAG` select it.
    pub name: &'static str,
    /// The capability it serves to components that link to it, as `(namespace, package)`;
    /// `None` for the HTTP server, which calls components instead.
    pub provides: Option<(&'static str, &'static str)>,
    /// What it is, for people.
    pub summary: &'static str,
}

/// Every built-in provider.
pub const BUILTINS: &[BuiltinProvider] = &[
    BuiltinProvider {
        name: "http-server",
        provides: None,
        summary: "`wasi:http/incoming-handler` served from a listening socket",
    },
    BuiltinProvider {
        name: "http-client",
        provides: Some(("wasi", "http")),
        summary: "`wasi:http/outgoing-handler` for calls out",
    },
    BuiltinProvider {
        name: "keyvalue-redis",
        provides: Some(("wasi", "keyvalue")),
        summary: "`wasi:keyvalue` backed by Redis",
    },
    BuiltinProvider {
        name: "keyvalue-nats",
        provides: Some(("wasi", "keyvalue")),
        summary: "`wasi:keyvalue` backed by NATS JetStream KV",
    },
    BuiltinProvider {
        name: "messaging-nats",
        provides: Some(("wasmcloud", "messaging")),
        summary: "`wasmcloud:messaging` over NATS",
    },
    BuiltinProvider {
        name: "blobstore-fs",
        provides: Some(("wasi", "blobstore")),
        summary: "`wasi:blobstore` on the local file system",
    },
    BuiltinProvider {
        name: "blobstore-nats",
        provides: Some(("wasi", "blobstore")),
        summary: "`wasi:blobstore` on NATS JetStream object stores",
    },
    BuiltinProvider {
        name: "keyvalue-memory",
        provides: Some(("wasi", "keyvalue")),
        summary: "`wasi:keyvalue` in memory, gone when the host stops",
    },
    BuiltinProvider {
        name: "keyvalue-local",
        provides: Some(("wasi", "keyvalue")),
        summary: "`wasi:keyvalue` in a durable file beside the manifest (redb)",
    },
    BuiltinProvider {
        name: "sqldb-postgres",
        provides: Some(("wasmcloud", "postgres")),
        summary: "`wasmcloud:postgres` on a PostgreSQL server",
    },
    BuiltinProvider {
        name: "wadm",
        provides: None,
        summary: "app status changes from the lattice's reconciler to `wasmcloud:wadm/handler`",
    },
    BuiltinProvider {
        name: "messaging-local",
        provides: Some(("wasmcloud", "messaging")),
        summary: "`wasmcloud:messaging` inside the host process, with no broker",
    },
];

/// The built-in provider called `name`.
pub fn builtin(name: &str) -> Option<&'static BuiltinProvider> {
    BUILTINS.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_matches_what_the_host_serves() {
        for (ns, pkg, iface, expected) in [
            ("wasi", "cli", "stdout", Served::ByHost),
            ("wasi", "cli", "run", Served::ByHost),
            ("wasi", "io", "streams", Served::ByHost),
            ("wasi", "config", "store", Served::ByHost),
            ("wasi", "http", "types", Served::ByHost),
            ("wasi", "http", "outgoing-handler", Served::ByLink),
            ("wasi", "http", "incoming-handler", Served::HostInvoked),
            ("wasmcloud", "messaging", "handler", Served::HostInvoked),
            ("wasmcloud", "messaging", "consumer", Served::ByLink),
            (
                "wasmcloud",
                "messaging",
                "incoming-handler",
                Served::HostInvoked,
            ),
            ("wasmcloud", "messaging", "request-reply", Served::ByLink),
            ("wasmcloud", "messaging", "producer", Served::ByLink),
            ("wasi", "keyvalue", "store", Served::ByLink),
            ("wasmcloud", "postgres", "query", Served::ByLink),
            ("wasmcloud", "postgres", "prepared", Served::ByLink),
            ("example", "greeter", "greet", Served::ByLink),
        ] {
            assert_eq!(served(ns, pkg, iface), expected, "{ns}:{pkg}/{iface}");
        }
    }

    #[test]
    fn every_provided_capability_is_catalogued_and_suggests_a_built_in() {
        for b in BUILTINS {
            let Some((ns, pkg)) = b.provides else {
                continue;
            };
            let c = find(ns, pkg).unwrap_or_else(|| panic!("{ns}:{pkg} of {}", b.name));
            assert!(c.provider_served());
            let image = c.suggested_image.expect("a suggestion");
            let name = image
                .rsplit('/')
                .next()
                .and_then(|n| n.split(':').next())
                .expect("a name");
            assert_eq!(
                builtin(name).and_then(|s| s.provides),
                Some((ns, pkg)),
                "{image} must select a provider of {ns}:{pkg}"
            );
        }
    }

    #[test]
    fn exports_the_host_calls() {
        assert!(host_invoked("wasi", "http", "incoming-handler"));
        assert!(host_invoked("wasmcloud", "messaging", "handler"));
        assert!(host_invoked("wasmcloud", "messaging", "incoming-handler"));
        assert!(host_invoked("wasi", "cli", "run"));
        assert!(!host_invoked("example", "greeter", "greet"));
        assert!(!host_invoked("wasi", "keyvalue", "store"));
        assert!(host_invoked("wasi", "keyvalue", "watcher"));
    }

    #[test]
    fn messaging_shares_one_link_choice() {
        assert_eq!(
            link_choice_key("wasmcloud", "messaging", "request-reply"),
            link_choice_key("wasmcloud", "messaging", "consumer")
        );
        assert_eq!(
            link_choice_key("wasi", "keyvalue", "store"),
            "wasi:keyvalue/store"
        );
    }

    #[test]
    fn companions_come_with_a_link() {
        let blob = find("wasi", "blobstore").expect("blobstore");
        let listed = ["blobstore".to_owned()];
        assert!(blob.link_serves(&listed, "container"));
        assert!(blob.link_serves(&listed, "types"));
        let pg = find("wasmcloud", "postgres").expect("postgres");
        assert!(pg.link_serves(&["query".to_owned()], "types"));
        assert!(!pg.link_serves(&["query".to_owned()], "prepared"));
        let kv = find("wasi", "keyvalue").expect("keyvalue");
        assert!(!kv.link_serves(&["store".to_owned()], "atomics"));
        // wasmCloud's 0.3.0 example links `[consumer]` and imports `request-reply`.
        let messaging = find("wasmcloud", "messaging").expect("messaging");
        let consumer = ["consumer".to_owned()];
        for interface in ["types", "producer", "request-reply"] {
            assert!(messaging.link_serves(&consumer, interface), "{interface}");
        }
        assert!(messaging.link_serves(&["producer".to_owned()], "consumer"));
        assert!(!messaging.link_serves(&consumer, "incoming-handler"));
    }
}
