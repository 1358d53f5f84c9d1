//! What the REPL follows in the background: the lattice's events (printed above the prompt)
//! and the names completion offers (asked of the hosts when something may have changed:
//! after an event or a command, on Tab, and every few seconds).

use super::screen::Above;
use crate::ctl::{self, LatticeArgs};
use futures::StreamExt as _;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use trellis_lattice::client::CtlClient;

/// How long to wait before opening the event stream again.
const RECONNECT: Duration = Duration::from_secs(2);
/// How often names are refreshed when nothing asks for it.
const REFRESH: Duration = Duration::from_secs(10);
/// The least time between two refreshes, however many events arrive.
const REFRESH_GAP: Duration = Duration::from_millis(500);

/// Ids and names that completion offers.
#[derive(Clone, Default)]
pub(super) struct Names {
    pub(super) components: BTreeSet<String>,
    pub(super) providers: BTreeSet<String>,
    /// Ids and friendly names.
    pub(super) hosts: BTreeSet<String>,
    pub(super) links: BTreeSet<String>,
    pub(super) apps: BTreeSet<String>,
}

/// Prints the lattice's events above the prompt as `trellis events` would (all but
/// `host_heartbeat`, which `events` at the prompt still shows), opening the
/// stream again whenever it ends (a `trellis up` restarted, NATS away): the REPL outlives
/// the hosts it talks to. A lost or unavailable stream is said once, not at every retry.
pub(super) async fn events(
    lattice: LatticeArgs,
    above: mpsc::UnboundedSender<Above>,
    refresh: Arc<Notify>,
) {
    let mut down = false;
    loop {
        let opened = match ctl::connect(&lattice).await {
            Ok(client) => client.events().await.map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        match opened {
            Ok(stream) => {
                if down {
                    let _ = above.send(Above::Line("events: following the lattice again".into()));
                }
                let mut stream = Box::pin(stream);
                while let Some(event) = stream.next().await {
                    refresh.notify_one();
                    // A host's whole inventory, every half minute: no news to print.
                    if event.name() == "host_heartbeat" {
                        continue;
                    }
                    if above
                        .send(Above::Event(ctl::event_line(&event, lattice.output)))
                        .is_err()
                    {
                        return;
                    }
                }
                down = true;
                let _ = above.send(Above::Line(
                    "events: the event stream ended (did the host stop?); opening it again when it is back".into(),
                ));
            }
            Err(e) if !down => {
                down = true;
                let _ = above.send(Above::Line(format!(
                    "events: not following the lattice: {e:#}; trying again every {}s",
                    RECONNECT.as_secs()
                )));
            }
            Err(_) => {}
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

/// Keeps `names` up to date: at once, then whenever `refresh` is notified (at most every
/// [`REFRESH_GAP`]) and every [`REFRESH`]. Failures leave the last names in place.
pub(super) async fn names(lattice: LatticeArgs, names: Arc<Mutex<Names>>, refresh: Arc<Notify>) {
    let mut client: Option<CtlClient> = None;
    loop {
        if client.is_none() {
            client = ctl::connect(&lattice).await.ok();
        }
        if let Some(c) = &client {
            match gather(c).await {
                Ok(fresh) => *names.lock().unwrap_or_else(|e| e.into_inner()) = fresh,
                // Connect again next time: the host may have restarted elsewhere.
                Err(_) => client = None,
            }
        }
        tokio::time::sleep(REFRESH_GAP).await;
        let _ = tokio::time::timeout(REFRESH, refresh.notified()).await;
    }
}

/// Every name the hosts know now.
async fn gather(client: &CtlClient) -> anyhow::Result<Names> {
    let hosts = client.hosts().await?;
    let inventories =
        futures::future::join_all(hosts.iter().map(|h| client.inventory(&h.id))).await;
    let mut names = Names::default();
    for host in &hosts {
        names.hosts.insert(host.id.to_string());
        names.hosts.insert(host.friendly_name.clone());
    }
    for inventory in inventories.into_iter().flatten() {
        names
            .components
            .extend(inventory.components.iter().map(|c| c.id.to_string()));
        names.components.extend(
            inventory
                .pending_components
                .iter()
                .map(|c| c.id.to_string()),
        );
        names
            .providers
            .extend(inventory.providers.iter().map(|p| p.id.to_string()));
    }
    // Links and apps are optional extras: a host that cannot list them still completes ids.
    if let Ok(links) = client.links().await {
        names.links.extend(links.iter().map(|l| l.name.to_string()));
    }
    if let Ok(apps) = client.list_apps().await {
        names.apps.extend(apps.into_iter().map(|a| a.name));
    }
    Ok(names)
}
