//! The planner's inputs (desired apps, the observed lattice) and outputs (actions, status).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
pub use trellis_control::wadm::{EntryKind, StatusType};
use trellis_control::{
    ComponentDescription, ComponentId, HostId, HostInventory, Link, LinkName, ProviderDescription,
    ProviderId, ProviderStatus, WorkloadId,
};
use trellis_control::{CtlRequest, ctl};
use trellis_manifest::Application;

/// One deployed app: its name, the version deployed, and the normalised manifest.
///
/// Only `Serialize`: [`Application`] is produced by the manifest parser and has no
/// `Deserialize` (store the manifest text and parse it again instead).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredApp {
    /// The app name; resources the plan creates are annotated with it.
    pub name: String,
    /// The version deployed; resources the plan creates are annotated with it.
    pub version: String,
    /// The manifest.
    pub app: Application,
}

/// What the lattice looks like now, built by the caller from host inventories and lattice
/// state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// Every live host. A host that is gone is simply absent.
    #[serde(default)]
    pub hosts: Vec<ObservedHost>,
    /// Every link in the lattice.
    #[serde(default)]
    pub links: Vec<Link>,
    /// Named config present in the lattice.
    #[serde(default)]
    pub configs: BTreeMap<String, BTreeMap<String, String>>,
}

/// One host as its inventory shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedHost {
    /// The host id.
    pub id: HostId,
    /// The host's labels, matched against spread requirements.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Components running on the host.
    #[serde(default)]
    pub components: Vec<ObservedComponent>,
    /// Providers running (or failed) on the host.
    #[serde(default)]
    pub providers: Vec<ObservedProvider>,
    /// Set while the host is being drained: plan nothing new onto it, move its managed
    /// workloads off.
    #[serde(default)]
    pub draining: bool,
    /// Components this host last failed to start (its `component_scale_failed` events, not
    /// followed by a `component_scaled`), with the reason: shown in the app's status.
    #[serde(default)]
    pub failed_components: Vec<FailedComponent>,
}

/// A component a host could not start: which, from what image, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedComponent {
    /// The component id.
    pub id: ComponentId,
    /// The image it was asked to run.
    pub image_ref: String,
    /// Why it did not start, as the host said.
    pub reason: String,
}

/// One component on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedComponent {
    /// The component id.
    pub id: ComponentId,
    /// The image it runs.
    pub image_ref: String,
    /// Its maximum concurrent instances on this host (its share of the app's instances).
    pub max_instances: u32,
    /// Its annotations; [`crate::APP_ANNOTATION`] and [`crate::MANAGED_ANNOTATION`] say
    /// whether an app manages it.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// One provider on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedProvider {
    /// The provider id.
    pub id: ProviderId,
    /// The image it was started from, when the host reports it. `None` is never taken as a
    /// different image.
    #[serde(default)]
    pub image_ref: Option<String>,
    /// Its annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Why it is failed (`ProviderStatus::Failed`), `None` while it runs.
    #[serde(default)]
    pub failed: Option<String>,
    /// Why its health check fails (`ProviderStatus::Unhealthy`): it runs, but not well.
    #[serde(default)]
    pub unhealthy: Option<String>,
}

impl From<&ComponentDescription> for ObservedComponent {
    fn from(c: &ComponentDescription) -> Self {
        Self {
            id: c.id.clone(),
            image_ref: c.image_ref.clone(),
            max_instances: c.max_instances,
            annotations: c.annotations.clone(),
        }
    }
}

impl From<&ProviderDescription> for ObservedProvider {
    fn from(p: &ProviderDescription) -> Self {
        Self {
            id: p.id.clone(),
            image_ref: p.image_ref.clone(),
            annotations: p.annotations.clone(),
            failed: match &p.status {
                ProviderStatus::Failed { reason } => Some(reason.clone()),
                _ => None,
            },
            unhealthy: match &p.status {
                ProviderStatus::Unhealthy { reason } => Some(reason.clone()),
                _ => None,
            },
        }
    }
}

impl From<&HostInventory> for ObservedHost {
    /// The host as its inventory shows it, not draining.
    fn from(inv: &HostInventory) -> Self {
        Self {
            id: inv.host_id.clone(),
            labels: inv.labels.clone(),
            components: inv.components.iter().map(Into::into).collect(),
            providers: inv.providers.iter().map(Into::into).collect(),
            draining: false,
            failed_components: Vec::new(),
        }
    }
}

/// One command for the lattice. The caller turns each into a control-interface request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// `component.scale` on `host_id`; `count` 0 stops the component there.
    ScaleComponent {
        /// The host to scale on.
        host_id: HostId,
        /// The component.
        component_id: ComponentId,
        /// The image to run (for `count` 0, the image that runs now).
        image_ref: String,
        /// The component's share on this host (its max concurrent instances).
        count: u32,
        /// Names of the named config given to the component.
        config: Vec<String>,
        /// Annotations for the component (for `count` 0, the ones it has now).
        annotations: BTreeMap<String, String>,
    },
    /// `provider.start` on `host_id`.
    StartProvider {
        /// The host to start on.
        host_id: HostId,
        /// The provider.
        provider_id: ProviderId,
        /// The image to start.
        image_ref: String,
        /// Names of the named config given to the provider.
        config: Vec<String>,
        /// Annotations for the provider.
        annotations: BTreeMap<String, String>,
    },
    /// `provider.stop` on `host_id`.
    StopProvider {
        /// The host to stop on.
        host_id: HostId,
        /// The provider.
        provider_id: ProviderId,
    },
    /// `config.put.{name}`.
    PutConfig {
        /// The config name.
        name: String,
        /// Its values.
        values: BTreeMap<String, String>,
    },
    /// `config.del.{name}`. The planner never deletes config (it may be shared); the variant
    /// exists for callers that do.
    DeleteConfig {
        /// The config name.
        name: String,
    },
    /// `link.put`.
    PutLink(Link),
    /// `link.del`.
    DeleteLink {
        /// The link's source id.
        source_id: WorkloadId,
        /// The link's WIT namespace.
        wit_namespace: String,
        /// The link's WIT package.
        wit_package: String,
        /// The link name.
        name: LinkName,
    },
}

impl Action {
    /// The control request that carries this action out: the reconciler sends exactly these,
    /// through the same client as `trellis` commands.
    pub fn request(&self) -> CtlRequest {
        match self.clone() {
            Action::ScaleComponent {
                host_id,
                component_id,
                image_ref,
                count,
                config,
                annotations,
            } => CtlRequest::ScaleComponent(ctl::ScaleComponent {
                host_id,
                component_id,
                component_ref: image_ref,
                count,
                config,
                annotations,
                allow_update: true,
            }),
            Action::StartProvider {
                host_id,
                provider_id,
                image_ref,
                config,
                annotations,
            } => CtlRequest::StartProvider(ctl::StartProvider {
                host_id,
                provider_id,
                provider_ref: image_ref,
                config,
                annotations,
            }),
            Action::StopProvider {
                host_id,
                provider_id,
            } => CtlRequest::StopProvider(ctl::StopProvider {
                host_id,
                provider_id,
            }),
            Action::PutConfig { name, values } => CtlRequest::PutConfig { name, values },
            Action::DeleteConfig { name } => CtlRequest::DeleteConfig(name),
            Action::PutLink(link) => CtlRequest::PutLink(link),
            Action::DeleteLink {
                source_id,
                wit_namespace,
                wit_package,
                name,
            } => CtlRequest::DeleteLink(ctl::DeleteLink {
                source_id,
                name,
                wit_namespace,
                wit_package,
            }),
        }
    }

    /// Whether the action takes something away (removals wait until new placements run).
    pub fn is_removal(&self) -> bool {
        matches!(
            self,
            Action::ScaleComponent { count: 0, .. }
                | Action::StopProvider { .. }
                | Action::DeleteLink { .. }
                | Action::DeleteConfig { .. }
        )
    }

    /// The (host, id, image) an action places, if it places something.
    pub fn placement(&self) -> Option<(&HostId, &str, &str)> {
        match self {
            Action::ScaleComponent {
                host_id,
                component_id,
                image_ref,
                count,
                ..
            } if *count > 0 => Some((host_id, component_id.as_str(), image_ref)),
            Action::StartProvider {
                host_id,
                provider_id,
                image_ref,
                ..
            } => Some((host_id, provider_id.as_str(), image_ref)),
            _ => None,
        }
    }
}

/// The result of [`crate::plan`]: what to do, and how every app stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Commands in the order to send them: config, provider starts, component scale-ups,
    /// links; then link deletions, component stops (`count` 0), provider stops.
    pub actions: Vec<Action>,
    /// The status of every desired and every undeployed app, by app name.
    pub status: BTreeMap<String, AppStatus>,
}

/// How one app stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStatus {
    /// The aggregate of the entries' statuses and the app's own links and config.
    pub status: StatusType,
    /// Why, for people.
    pub message: String,
    /// One status per manifest entry, in manifest order: components, then providers.
    pub components: Vec<ComponentStatus>,
}

/// How one manifest entry stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentStatus {
    /// The entry's manifest name.
    pub name: String,
    /// Whether it is a component or a capability provider.
    pub kind: EntryKind,
    /// Its status.
    pub status: StatusType,
    /// Why, for people.
    pub message: String,
}
