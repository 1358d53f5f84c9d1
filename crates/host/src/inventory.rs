//! What this host runs, as the inventory shows it: components and providers behind one lock,
//! so a reader never sees a deployment half-shown (its components without its providers).

use crate::providers::ProviderState;
use crate::sync;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use trellis_control::{ComponentDescription, ComponentId, ProviderDescription, ProviderId};
use trellis_manifest::Builtin;

/// Annotations shown for a component or provider.
type Annotations = BTreeMap<String, String>;

/// The components and providers running here.
#[derive(Default)]
pub(crate) struct Workloads {
    shown: Mutex<Shown>,
}

#[derive(Default)]
struct Shown {
    components: Vec<ComponentDescription>,
    providers: Vec<(Arc<ProviderState>, Annotations)>,
}

impl Workloads {
    /// Both lists, as one consistent snapshot.
    pub(crate) fn describe(&self) -> (Vec<ComponentDescription>, Vec<ProviderDescription>) {
        let shown = sync::lock(&self.shown);
        let providers = shown
            .providers
            .iter()
            .map(|(p, annotations)| ProviderDescription {
                id: p.id.clone(),
                image_ref: Some(p.image_ref.clone()),
                name: Some(p.name.clone()),
                annotations: annotations.clone(),
                revision: 0,
                status: p.status(),
            })
            .collect();
        (shown.components.clone(), providers)
    }

    /// Shows `components` (replacing entries with the same id: a component started again)
    /// and those of `providers` not shown yet, at once; returns the providers added.
    pub(crate) fn show(
        &self,
        components: Vec<ComponentDescription>,
        providers: &[Arc<ProviderState>],
        annotations: &Annotations,
    ) -> Vec<Arc<ProviderState>> {
        let mut shown = sync::lock(&self.shown);
        shown
            .components
            .retain(|c| !components.iter().any(|n| n.id == c.id));
        shown.components.extend(components);
        let added: Vec<Arc<ProviderState>> = providers
            .iter()
            .filter(|p| !shown.providers.iter().any(|(s, _)| s.id == p.id))
            .cloned()
            .collect();
        shown
            .providers
            .extend(added.iter().map(|p| (p.clone(), annotations.clone())));
        added
    }

    /// Forgets component `id`.
    pub(crate) fn remove_component(&self, id: &ComponentId) {
        sync::lock(&self.shown).components.retain(|c| c.id != *id);
    }

    /// Every provider running here.
    pub(crate) fn providers(&self) -> Vec<Arc<ProviderState>> {
        sync::lock(&self.shown)
            .providers
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// The provider with id `id`.
    pub(crate) fn provider(&self, id: &str) -> Option<Arc<ProviderState>> {
        self.find_provider(|p| p.id.as_str() == id)
    }

    /// The provider that a manifest entry called `name` started.
    pub(crate) fn provider_named(&self, name: &str) -> Option<Arc<ProviderState>> {
        self.find_provider(|p| p.name == name)
    }

    /// The HTTP server provider with id `id`.
    pub(crate) fn http_server(&self, id: &str) -> Option<Arc<ProviderState>> {
        self.find_provider(|p| p.id.as_str() == id && p.builtin == Builtin::HTTP_SERVER)
    }

    fn find_provider(&self, found: impl Fn(&ProviderState) -> bool) -> Option<Arc<ProviderState>> {
        sync::lock(&self.shown)
            .providers
            .iter()
            .find(|(p, _)| found(p))
            .map(|(p, _)| p.clone())
    }

    /// Takes provider `id` out of the inventory.
    pub(crate) fn remove_provider(&self, id: &ProviderId) -> Option<Arc<ProviderState>> {
        let mut shown = sync::lock(&self.shown);
        let index = shown.providers.iter().position(|(p, _)| p.id == *id)?;
        Some(shown.providers.remove(index).0)
    }
}
