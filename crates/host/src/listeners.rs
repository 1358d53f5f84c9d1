//! The HTTP listeners this host opens for lattice links, and how they close: which
//! (provider, component) pairs are served already, which routes could not bind yet (retried
//! on every health check), and per component the signal that closes its listeners and the
//! receivers that fire once each has drained.

use crate::deploy::Route;
use crate::sync;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::sync::{oneshot, watch};

/// One component's listeners: the signal that closes them, and one receiver per listener
/// that fires once it has drained.
pub(crate) type ComponentListeners = (watch::Sender<bool>, Vec<oneshot::Receiver<()>>);

/// The HTTP listeners of this host.
#[derive(Default)]
pub(crate) struct Listeners {
    /// (HTTP provider id, component id) pairs already served for lattice links.
    served: Mutex<HashSet<(String, String)>>,
    /// Routes whose address could not be bound yet.
    pending: Mutex<Vec<Route>>,
    /// Per component id.
    closing: Mutex<HashMap<String, ComponentListeners>>,
}

impl Listeners {
    /// Records that `provider` serves `component`; `false` if it already did.
    pub(crate) fn mark_served(&self, provider: &str, component: &str) -> bool {
        sync::lock(&self.served).insert((provider.to_owned(), component.to_owned()))
    }

    /// Forgets that `provider` serves `component` (its address was unusable).
    pub(crate) fn unmark_served(&self, provider: &str, component: &str) {
        sync::lock(&self.served).remove(&(provider.to_owned(), component.to_owned()));
    }

    /// Forgets every pair served by provider `id` (it stopped).
    pub(crate) fn forget_provider(&self, id: &str) {
        sync::lock(&self.served).retain(|(provider, _)| provider != id);
    }

    /// Forgets every pair serving component `id` (it left this host).
    pub(crate) fn forget_component(&self, id: &str) {
        sync::lock(&self.served).retain(|(_, component)| component != id);
    }

    /// Keeps a route to bind on the next health check.
    pub(crate) fn retry_later(&self, route: Route) {
        sync::lock(&self.pending).push(route);
    }

    /// Every route waiting to be bound, taken out to try again.
    pub(crate) fn take_pending(&self) -> Vec<Route> {
        std::mem::take(&mut *sync::lock(&self.pending))
    }

    /// The address provider `name` still fails to bind, if any.
    pub(crate) fn pending_address(&self, provider: &str) -> Option<SocketAddr> {
        sync::lock(&self.pending)
            .iter()
            .find(|r| r.provider == provider)
            .map(|r| r.address)
    }

    /// For a new listener of component `id`: the signal to stop it and where to say it has
    /// closed.
    pub(crate) fn open(&self, id: &str) -> (watch::Receiver<bool>, oneshot::Sender<()>) {
        let (closed_tx, closed_rx) = oneshot::channel();
        let mut closing = sync::lock(&self.closing);
        let entry = closing
            .entry(id.to_owned())
            .or_insert_with(|| (watch::channel(false).0, Vec::new()));
        entry.1.push(closed_rx);
        (entry.0.subscribe(), closed_tx)
    }

    /// Takes component `id`'s listeners out, to close them.
    pub(crate) fn close(&self, id: &str) -> Option<ComponentListeners> {
        sync::lock(&self.closing).remove(id)
    }
}
