//! `trellis.stats.{host_id}`'s answer (Trellis's own; wasmCloud v1 has no such operation):
//! what one host has counted since it started, per component and per provider. The same
//! counters are exposed to Prometheus on `--metrics`; this is how the dashboard and the CLI
//! read them over the control interface, in both modes. Counters only grow: a rate is the
//! difference between two answers divided by the time between them.

use crate::{ComponentId, HostId, ProviderId};
use serde::{Deserialize, Serialize};

/// One host's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostStats {
    /// The host that counted.
    pub host_id: HostId,
    /// Milliseconds since the Unix epoch when the host answered (for rates).
    #[serde(default)]
    pub at_ms: u64,
    /// Every component running on the host.
    #[serde(default)]
    pub components: Vec<ComponentStats>,
    /// Every provider running on the host.
    #[serde(default)]
    pub providers: Vec<ProviderStats>,
}

/// What a host counted for one component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentStats {
    /// The component.
    pub component_id: ComponentId,
    /// Instances running a request, message or call right now.
    #[serde(default)]
    pub instances_in_use: u64,
    /// The most that may run at once on this host.
    #[serde(default)]
    pub max_instances: u64,
    /// Requests waiting for an instance right now.
    #[serde(default)]
    pub queued: u64,
    /// HTTP requests answered, by status class: `2xx`, `3xx`, `4xx`, `5xx`.
    #[serde(default)]
    pub requests: std::collections::BTreeMap<String, u64>,
    /// Messages handled and calls served (anything but HTTP).
    #[serde(default)]
    pub invocations: u64,
    /// Requests, messages and calls that failed (5xx included).
    #[serde(default)]
    pub errors: u64,
    /// Instances that trapped.
    #[serde(default)]
    pub traps: u64,
    /// Requests stopped at their deadline.
    #[serde(default)]
    pub deadline_hits: u64,
    /// Instances refused memory beyond their limit.
    #[serde(default)]
    pub memory_limit_hits: u64,
}

/// What a host counted for one provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderStats {
    /// The provider.
    pub provider_id: ProviderId,
    /// Whether it is running and healthy.
    #[serde(default)]
    pub healthy: bool,
    /// Operations components asked of it.
    #[serde(default)]
    pub operations: u64,
    /// Of those, the ones that failed.
    #[serde(default)]
    pub errors: u64,
}
