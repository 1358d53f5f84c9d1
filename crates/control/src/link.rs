//! Links: what connects a source's imports to a target's exports.

use crate::{LinkName, WorkloadId};
use serde::{Deserialize, Serialize};

/// A link as the control interface carries it.
///
/// `source_id` and `target` are ids of components or providers; `wit_namespace`,
/// `wit_package` and `interfaces` name the WIT interfaces the link carries, for example
/// `wasi` / `http` / `[incoming-handler]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The id of the caller.
    pub source_id: WorkloadId,
    /// The id of the callee.
    pub target: WorkloadId,
    /// The link name.
    #[serde(default)]
    pub name: LinkName,
    /// WIT namespace, for example `wasi`.
    pub wit_namespace: String,
    /// WIT package, for example `keyvalue`.
    pub wit_package: String,
    /// WIT interfaces, for example `["store", "atomics"]`.
    pub interfaces: Vec<String>,
    /// Names of named config given to the source.
    #[serde(default)]
    pub source_config: Vec<String>,
    /// Names of named config given to the target.
    #[serde(default)]
    pub target_config: Vec<String>,
}

impl Link {
    /// Whether this link carries the import `namespace:package/interface`.
    pub fn carries(&self, namespace: &str, package: &str, interface: &str) -> bool {
        self.wit_namespace == namespace
            && self.wit_package == package
            && self.interfaces.iter().any(|i| i == interface)
    }
}
