//! What a host runs, as `host.get` and heartbeats report it.

use crate::{ComponentId, HostId, ProviderId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What `host.ping` answers: who a host is, without its inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    /// The host's id.
    pub id: HostId,
    /// A human-friendly name.
    #[serde(default)]
    pub friendly_name: String,
    /// Host labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The lattice it belongs to.
    #[serde(default)]
    pub lattice: String,
    /// Seconds since it started.
    #[serde(default)]
    pub uptime_seconds: u64,
    /// Uptime for people.
    #[serde(default)]
    pub uptime_human: Option<String>,
    /// Its version (semver).
    #[serde(default)]
    pub version: Option<String>,
    /// The control connection's server.
    #[serde(default)]
    pub ctl_host: Option<String>,
    /// The RPC connection's server.
    #[serde(default)]
    pub rpc_host: Option<String>,
}

/// The inventory of one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInventory {
    /// The host's id.
    pub host_id: HostId,
    /// A human-friendly name.
    pub friendly_name: String,
    /// Host labels, including the automatic `hostcore.*` ones.
    pub labels: BTreeMap<String, String>,
    /// The Trellis version (semver).
    pub version: String,
    /// Seconds since the host started.
    pub uptime_seconds: u64,
    /// Uptime for people, for example `1h 2m 3s`.
    pub uptime_human: String,
    /// Components running on the host.
    pub components: Vec<ComponentDescription>,
    /// Providers running (or failed) on the host.
    pub providers: Vec<ProviderDescription>,
    /// Components asked for through `component.scale`/`component.update` that are not
    /// running that way yet: being fetched and compiled, or failed to (a Trellis extension;
    /// wasmCloud clients ignore unknown fields).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_components: Vec<PendingComponent>,
}

/// A component a host was asked to run that is not running as asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingComponent {
    /// The component id.
    pub id: ComponentId,
    /// The image asked for.
    pub image_ref: String,
    /// The instances asked for.
    pub max_instances: u32,
    /// Where it stands.
    #[serde(flatten)]
    pub state: PendingState,
}

/// Where a pending component stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PendingState {
    /// Its image is being fetched (pulled from a registry or the lattice, or read) and
    /// compiled; `since` is when that began (RFC 3339).
    Starting {
        /// When the host began.
        since: String,
    },
    /// It could not start; the previous version, if any, still runs. Cleared when a later
    /// request for the same component succeeds or stops it.
    Failed {
        /// Why, for people (the same text as the `component_scale_failed` event).
        reason: String,
    },
}

/// One component in an inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentDescription {
    /// The component id.
    pub id: ComponentId,
    /// Where it came from, for example `file:///app/build/hello.wasm`.
    pub image_ref: String,
    /// The name in the manifest, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Annotations, for example which app manages it.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Revision of the component.
    #[serde(default)]
    pub revision: i32,
    /// The maximum number of concurrent instances on this host.
    pub max_instances: u32,
}

/// One provider in an inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderDescription {
    /// The provider id.
    pub id: ProviderId,
    /// The image reference it was started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<String>,
    /// The name in the manifest, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Revision of the provider.
    #[serde(default)]
    pub revision: i32,
    /// Whether it runs, and why not when it does not (a Trellis extension; wasmCloud clients
    /// ignore unknown fields).
    #[serde(default)]
    pub status: ProviderStatus,
}

/// The health of a provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ProviderStatus {
    /// Started and serving.
    #[default]
    Running,
    /// Could not start (or was stopped).
    Failed {
        /// What went wrong, for people.
        reason: String,
    },
    /// Started, but its health check fails now (for example its backend went away); it
    /// turns `running` again by itself when the check passes.
    Unhealthy {
        /// What the health check said.
        reason: String,
    },
}
