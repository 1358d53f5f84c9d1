//! Which imports the host serves by itself and which need a link.
//!
//! The host checks every component's imports against the capability catalogue and the
//! manifest's links before anything runs, so a missing link is reported at deploy time with
//! the import's name rather than as an instantiation failure on the first request.

/// A parsed `namespace:package/interface@version` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceName<'a> {
    /// For example `wasi`.
    pub namespace: &'a str,
    /// For example `keyvalue`.
    pub package: &'a str,
    /// For example `store`.
    pub interface: &'a str,
    /// For example `0.2.0-draft`, when versioned.
    pub version: Option<&'a str>,
}

impl<'a> InterfaceName<'a> {
    /// Parses an interface name; `None` for names that are not interfaces (bare functions).
    pub fn parse(name: &'a str) -> Option<Self> {
        let (path, version) = match name.split_once('@') {
            Some((p, v)) => (p, Some(v)),
            None => (name, None),
        };
        let (ns_pkg, interface) = path.split_once('/')?;
        let (namespace, package) = ns_pkg.split_once(':')?;
        Some(Self {
            namespace,
            package,
            interface,
            version,
        })
    }
}

/// Who serves an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportSource {
    /// The host serves it to every component without a link.
    Host,
    /// It must be satisfied by a link to a provider or another component.
    Link,
}

/// Classifies one import name as the component model reports it, from the capability
/// catalogue ([`trellis_capabilities`]): packages the host serves to everyone (WASI CLI, IO,
/// clocks, random, filesystem, sockets, logging, config, and `wasi:http/types`) need no
/// link; everything else does.
pub fn classify(import: &str) -> ImportSource {
    let Some(name) = InterfaceName::parse(import) else {
        // A bare function import cannot come from a provider; only a link to a component
        // that exports it could satisfy it.
        return ImportSource::Link;
    };
    match trellis_capabilities::served(name.namespace, name.package, name.interface) {
        trellis_capabilities::Served::ByHost => ImportSource::Host,
        trellis_capabilities::Served::ByLink | trellis_capabilities::Served::HostInvoked => {
            ImportSource::Link
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versioned_and_unversioned_names() {
        let n = InterfaceName::parse("wasi:keyvalue/store@0.2.0-draft").expect("parse");
        assert_eq!(
            (n.namespace, n.package, n.interface, n.version),
            ("wasi", "keyvalue", "store", Some("0.2.0-draft"))
        );
        let n = InterfaceName::parse("wasi:logging/logging").expect("parse");
        assert_eq!(n.version, None);
        assert!(InterfaceName::parse("run").is_none());
    }

    #[test]
    fn classifies_host_and_link_imports() {
        assert_eq!(classify("wasi:io/streams@0.2.0"), ImportSource::Host);
        assert_eq!(classify("wasi:http/types@0.2.3"), ImportSource::Host);
        assert_eq!(
            classify("wasi:config/runtime@0.2.0-draft"),
            ImportSource::Host
        );
        assert_eq!(
            classify("wasi:http/outgoing-handler@0.2.0"),
            ImportSource::Link
        );
        assert_eq!(
            classify("wasi:keyvalue/store@0.2.0-draft"),
            ImportSource::Link
        );
        assert_eq!(classify("example:greeter/greet"), ImportSource::Link);
    }
}
