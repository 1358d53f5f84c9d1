//! A compiled component and the names of what it imports and exports, which the host checks
//! against the manifest's links before anything runs.

use crate::imports::InterfaceName;
use trellis_control::ComponentId;

/// A compiled component and what it imports and exports.
#[derive(Clone)]
pub struct Component {
    pub(crate) id: ComponentId,
    pub(crate) component: wasmtime::component::Component,
    pub(crate) imports: Vec<String>,
    pub(crate) exports: Vec<String>,
    /// Imports of interfaces that hold types only: nothing to link.
    pub(crate) types_only: Vec<String>,
    pub(crate) from_cache: bool,
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("id", &self.id)
            .field("imports", &self.imports)
            .field("exports", &self.exports)
            .field("from_cache", &self.from_cache)
            .finish_non_exhaustive()
    }
}

impl Component {
    /// The component's id.
    pub fn id(&self) -> &ComponentId {
        &self.id
    }

    /// Fully qualified import names, for example `wasi:http/types@0.2.0`.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// The imports of interfaces that hold types only (no functions, no resources), for
    /// example `wasmcloud:task-manager/types@0.1.0`: they need no link.
    pub fn types_only_imports(&self) -> &[String] {
        &self.types_only
    }

    /// Fully qualified export names, for example `wasi:http/incoming-handler@0.2.0`.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    /// Whether it exports `namespace:package/interface` at any version.
    pub fn exports_interface(&self, namespace: &str, package: &str, interface: &str) -> bool {
        self.exports.iter().any(|e| {
            InterfaceName::parse(e).is_some_and(|n| {
                n.namespace == namespace && n.package == package && n.interface == interface
            })
        })
    }

    /// Whether the compiled code came from the compile cache rather than from compiling.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }
}
