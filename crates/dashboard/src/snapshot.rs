//! `GET /api/snapshot`: the lattice at one moment, read through the control interface with
//! the requests `trellis get …` sends (`host.ping`, `host.get`, `trellis.stats`,
//! `link.get`, wadm's `model.list`), the hosts' in parallel. A part that cannot be read
//! is said in [`Snapshot::problems`] (or [`HostView::error`]) and the rest is still shown:
//! a dashboard is most needed when something is broken.

use futures::future::join_all;
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};
use trellis_control::stats::HostStats;
use trellis_control::wadm::StatusType;
use trellis_control::{
    ComponentDescription, HostSummary, Link, PendingComponent, ProviderDescription,
};
use trellis_lattice::client::CtlClient;

/// What the page shows, at one moment.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// The lattice's name.
    pub lattice: String,
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Every host that answered the ping, by name.
    pub hosts: Vec<HostView>,
    /// Every link in the lattice.
    pub links: Vec<Link>,
    /// Every app the deployment manager knows.
    pub apps: Vec<AppView>,
    /// What could not be read, for people.
    pub problems: Vec<String>,
}

/// One host: its summary (id, name, labels, uptime, version), its inventory and counters.
#[derive(Debug, Serialize)]
pub struct HostView {
    /// What the host said to the ping.
    #[serde(flatten)]
    pub summary: HostSummary,
    /// Its running components, with their image and instance limit.
    pub components: Vec<ComponentDescription>,
    /// Components it is still starting, or failed to start.
    pub pending_components: Vec<PendingComponent>,
    /// Its providers, with their health and why they failed.
    pub providers: Vec<ProviderDescription>,
    /// Its answer to `trellis.stats`, unless it gave none (a host older than the
    /// dashboard, or a wasmCloud host, does not know the request).
    pub stats: Option<HostStats>,
    /// Why its inventory could not be read.
    pub error: Option<String>,
}

/// One app, as the deployment manager reports it.
#[derive(Debug, Serialize)]
pub struct AppView {
    /// The app's name.
    pub name: String,
    /// Its latest version.
    pub version: String,
    /// The version deployed, if any.
    pub deployed_version: Option<String>,
    /// Its status.
    pub status: StatusType,
    /// Why, for people.
    pub status_message: String,
}

impl Snapshot {
    /// Reads the lattice through `client`.
    pub async fn gather(client: &CtlClient, lattice: &str) -> Self {
        let mut problems = Vec::new();
        let (hosts, links, apps) = tokio::join!(client.hosts(), client.links(), client.list_apps());
        let hosts = hosts.unwrap_or_else(|e| {
            problems.push(format!("cannot list the hosts: {e}"));
            Vec::new()
        });
        let links = links.unwrap_or_else(|e| {
            problems.push(format!("cannot read the links: {e}"));
            Vec::new()
        });
        let apps = apps
            .map(|apps| {
                apps.into_iter()
                    .map(|a| AppView {
                        name: a.name,
                        version: a.version,
                        deployed_version: a.deployed_version,
                        status: a.status,
                        status_message: a.status_message,
                    })
                    .collect()
            })
            .unwrap_or_else(|e| {
                problems.push(format!("cannot read the apps: {e}"));
                Vec::new()
            });
        let hosts = join_all(hosts.into_iter().map(|summary| host_view(client, summary))).await;
        Self {
            lattice: lattice.to_owned(),
            at_ms: now_ms(),
            hosts,
            links,
            apps,
            problems,
        }
    }
}

async fn host_view(client: &CtlClient, summary: HostSummary) -> HostView {
    let (inventory, stats) = tokio::join!(client.inventory(&summary.id), client.stats(&summary.id));
    let stats = stats
        .inspect_err(|e| {
            tracing::debug!(host_id = %summary.id, error = %e, "no trellis.stats from this host");
        })
        .ok();
    match inventory {
        Ok(inventory) => HostView {
            summary,
            components: inventory.components,
            pending_components: inventory.pending_components,
            providers: inventory.providers,
            stats,
            error: None,
        },
        Err(e) => HostView {
            summary,
            components: Vec::new(),
            pending_components: Vec::new(),
            providers: Vec::new(),
            stats,
            error: Some(format!("cannot read its inventory: {e}")),
        },
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
