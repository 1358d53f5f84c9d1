//! Link names: a component may hold several links that carry one interface (a key-value store
//! for a cache and another for sessions), told apart by the links' `name`s. Each instance
//! starts on the link named `default` for every interface, and moves an interface to another
//! link with `wasmcloud:bus/lattice.set-link-name` ([`crate::bus`]).
//!
//! [`Links`] is what the host hands over when it deploys a component: the backends of its
//! links to providers, by link name, and every `(link name, interface)` pair its links carry.
//! [`Selection`] is one instance's choice, consulted by the capability views when a guest opens
//! a bucket, a container or sends a request, and by calls to other components.

use crate::capabilities::messaging_v3::MessagingLinks;
use crate::capabilities::{Capabilities, Linked};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use trellis_control::LinkName;

/// A component's links, by name; fixed when the component is deployed.
#[derive(Clone, Default)]
pub struct Links {
    default: Capabilities,
    named: BTreeMap<LinkName, Capabilities>,
    carried: BTreeSet<(LinkName, String)>,
    none: Capabilities,
}

impl Links {
    /// Links whose only backends are `capabilities`, under the name `default`.
    pub fn with_default(capabilities: Capabilities) -> Self {
        Self {
            default: capabilities,
            ..Self::default()
        }
    }

    /// The backends of the links named `name` to providers; mutable, to fill in.
    pub fn capabilities_mut(&mut self, name: &LinkName) -> &mut Capabilities {
        if name.as_str() == DEFAULT {
            &mut self.default
        } else {
            self.named.entry(name.clone()).or_default()
        }
    }

    /// Records that the link named `name` carries `namespace:package/interface`, and the
    /// package's companions, which come with any link to it ([`trellis_capabilities`]).
    pub fn carry(&mut self, name: &LinkName, namespace: &str, package: &str, interface: &str) {
        self.carried
            .insert((name.clone(), interface_key(namespace, package, interface)));
        let companions =
            trellis_capabilities::find(namespace, package).map_or(&[][..], |c| c.companions);
        for companion in companions {
            self.carried
                .insert((name.clone(), interface_key(namespace, package, companion)));
        }
    }

    /// The backends of the links named `default`.
    pub(crate) fn default_capabilities(&self) -> &Capabilities {
        &self.default
    }

    /// The backends of the links named `name` (none when there is no such link).
    pub(crate) fn capabilities(&self, name: &str) -> &Capabilities {
        if name == DEFAULT {
            &self.default
        } else {
            self.named
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map_or(&self.none, |(_, c)| c)
        }
    }

    /// Whether a link named `name` carries `interface` (`namespace:package/interface`).
    pub(crate) fn carries(&self, name: &str, interface: &str) -> bool {
        self.carried
            .iter()
            .any(|(n, i)| n.as_str() == name && i == interface)
    }
}

impl MessagingLinks for Links {
    fn messaging(&self, link_name: &str) -> Option<&Linked<dyn trellis_messaging::Messaging>> {
        self.capabilities(link_name).messaging.as_ref()
    }
}

const DEFAULT: &str = "default";

/// The key an interface is selected by: `namespace:package/interface`, without a version, as
/// `set-link-name` names it.
pub(crate) fn interface_key(namespace: &str, package: &str, interface: &str) -> String {
    format!("{namespace}:{package}/{interface}")
}

/// The key a choice for `interface` (`namespace:package/interface`) is kept under: one per
/// package for packages whose interfaces share one choice (`wasmcloud:messaging`: 0.2.0's
/// `consumer` and 0.3.0's `producer` and `request-reply` go through one link), else one per
/// interface.
fn choice_key(interface: &str) -> Cow<'_, str> {
    let parsed = interface
        .split_once('/')
        .and_then(|(ns_pkg, i)| ns_pkg.split_once(':').map(|(ns, pkg)| (ns, pkg, i)));
    match parsed {
        Some((ns, pkg, i)) => Cow::Owned(trellis_capabilities::link_choice_key(ns, pkg, i)),
        None => Cow::Borrowed(interface),
    }
}

/// One instance's link name per interface: `default` unless the guest chose another.
#[derive(Default)]
pub(crate) struct Selection {
    names: HashMap<String, String>,
}

impl Selection {
    /// The link name the instance's calls of `interface` go through.
    pub(crate) fn name(&self, interface: &str) -> &str {
        if self.names.is_empty() {
            return DEFAULT;
        }
        self.names
            .get(choice_key(interface).as_ref())
            .map_or(DEFAULT, String::as_str)
    }

    /// Sends later calls of `interface` through the link named `name`.
    pub(crate) fn set(&mut self, interface: String, name: &str) {
        let key = choice_key(&interface).into_owned();
        if name == DEFAULT {
            self.names.remove(&key);
        } else {
            self.names.insert(key, name.to_owned());
        }
    }

    /// The backends for `interface` under the instance's current choice.
    pub(crate) fn capabilities<'a>(&self, links: &'a Links, interface: &str) -> &'a Capabilities {
        links.capabilities(self.name(interface))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_starts_on_default_and_moves_alone() {
        let mut s = Selection::default();
        assert_eq!(s.name("wasi:keyvalue/store"), "default");
        s.set("wasi:keyvalue/store".into(), "cache");
        assert_eq!(s.name("wasi:keyvalue/store"), "cache");
        assert_eq!(s.name("wasi:keyvalue/atomics"), "default");
        s.set("wasi:keyvalue/store".into(), "default");
        assert_eq!(s.name("wasi:keyvalue/store"), "default");
    }

    #[test]
    fn messaging_interfaces_share_one_choice() {
        let mut s = Selection::default();
        s.set("wasmcloud:messaging/request-reply".into(), "other");
        assert_eq!(s.name("wasmcloud:messaging/consumer"), "other");
        assert_eq!(s.name("wasmcloud:messaging/producer"), "other");
        assert_eq!(s.name("wasi:keyvalue/store"), "default");
        let mut links = Links::default();
        let other = LinkName::new("other".to_owned());
        links.carry(&other, "wasmcloud", "messaging", "consumer");
        assert!(links.carries("other", "wasmcloud:messaging/request-reply"));
        assert!(links.carries("other", "wasmcloud:messaging/producer"));
        assert!(!links.carries("other", "wasmcloud:messaging/incoming-handler"));
    }

    #[test]
    fn links_answer_by_name() {
        let mut links = Links::default();
        let cache = LinkName::new("cache".to_owned());
        links.carry(&cache, "wasi", "keyvalue", "store");
        links.capabilities_mut(&cache);
        assert!(links.carries("cache", "wasi:keyvalue/store"));
        assert!(!links.carries("default", "wasi:keyvalue/store"));
        assert!(!links.carries("cache", "wasi:keyvalue/atomics"));
    }
}
