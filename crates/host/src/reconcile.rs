//! The active reconciler: one per lattice, inside whichever host holds the lease in the app
//! store. Every tick (and whenever the app API changes something) it observes the lattice
//! (every host's inventory, the links and config), asks the pure planner
//! ([`trellis_reconciler::plan`]) what to change, sends those changes as ordinary control
//! requests, and records each app's status. Observation is level-triggered: a host that
//! stops answering is simply absent from the next observation, and its share moves.

use crate::Host;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use trellis_control::{CtlResponse, HostInventory};
use trellis_lattice::apps::AppStore;
use trellis_lattice::client::CtlClient;
use trellis_lattice::state::LatticeState;
use trellis_reconciler::{Action, DesiredApp, Observed, ObservedHost};

/// The label a host carries while it is drained: the reconciler places nothing new on it
/// and moves its managed workloads elsewhere.
pub const DRAINING_LABEL: &str = "trellis.dev/draining";

/// How the reconciler sees and changes the lattice: over NATS on a lattice, or by asking
/// this host directly in embedded mode (one host, no NATS) — the same requests either way.
#[derive(Clone)]
pub(crate) enum Plane {
    /// The lattice's control interface on the control connection.
    Nats {
        ctl: Box<CtlClient>,
        nats: async_nats::Client,
    },
    /// This host's own control requests.
    Local,
}

impl Host {
    /// Wakes the reconciler loop early (an app was deployed, undeployed or deleted).
    pub(crate) fn wake_reconciler(&self) {
        self.reconcile_wake.notify_one();
    }

    /// Competes for the reconciler lease every `interval` and, while holding it, reconciles.
    pub(crate) fn start_reconciler(
        self: &Arc<Self>,
        store: AppStore,
        state: LatticeState,
        interval: Duration,
    ) {
        let plane = match self.lattice.connections() {
            Some(nats) => Plane::Nats {
                ctl: Box::new(CtlClient::new(nats.ctl.clone(), self.lattice.name())),
                nats: nats.ctl.clone(),
            },
            None => Plane::Local,
        };
        let host = Arc::downgrade(self);
        self.spawn_background(async move {
            let mut leading = false;
            loop {
                let Some(me) = host.upgrade() else { break };
                let wake = me.reconcile_wake.clone();
                match store.try_lead(me.id.as_str(), interval * 3).await {
                    Ok(true) => {
                        if !leading {
                            tracing::info!(host_id = %me.id, "this host now runs the lattice's reconciler");
                            leading = true;
                        }
                        me.reconcile_once(&store, &state, &plane).await;
                    }
                    Ok(false) => leading = false,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach the app store; not reconciling");
                        leading = false;
                    }
                }
                drop(me);
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = wake.notified() => {}
                }
            }
        });
    }

    async fn reconcile_once(
        self: &Arc<Self>,
        store: &AppStore,
        state: &LatticeState,
        plane: &Plane,
    ) {
        let records = match store.all().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read apps");
                return;
            }
        };
        let mut desired = Vec::new();
        let mut undeployed = Vec::new();
        let mut broken = BTreeMap::new();
        for record in &records {
            if record.undeploying {
                undeployed.push(record.name.clone());
            }
            let Some(version) = record.deployed.as_deref() else {
                continue;
            };
            let Some(stored) = record.version(Some(version)) else {
                continue;
            };
            let text = stored.manifest.to_string();
            let origin = std::path::PathBuf::from(format!("/apps/{}.json", record.name));
            match trellis_manifest::parse(&text, &origin) {
                Ok(mut app) => {
                    if matches!(plane, Plane::Local) {
                        // One host takes everything: placement requirements do not apply.
                        for c in &mut app.components {
                            c.scale
                                .spread
                                .iter_mut()
                                .for_each(|s| s.requirements.clear());
                        }
                        for p in &mut app.providers {
                            p.scale
                                .spread
                                .iter_mut()
                                .for_each(|s| s.requirements.clear());
                        }
                    }
                    desired.push(DesiredApp {
                        name: record.name.clone(),
                        version: version.to_owned(),
                        app,
                    })
                }
                Err(e) => {
                    broken.insert(record.name.clone(), e.to_string());
                }
            }
        }
        let observed = match self.observe(plane, state, &desired).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "cannot observe the lattice");
                return;
            }
        };
        let plan = trellis_reconciler::plan(&desired, &undeployed, &observed);
        // New placements first; what they replace goes only once they run, so a move (a
        // drain, a lost host coming back, an upgrade) never leaves a gap.
        let (removals, mut additions): (Vec<&Action>, Vec<&Action>) =
            plan.actions.iter().partition(|a| is_removal(a));
        // Config and links first: a component reads its links and config when it starts.
        additions.sort_by_key(|a| match a {
            Action::PutConfig { .. } => 0,
            Action::PutLink(_) => 1,
            Action::StartProvider { .. } => 2,
            _ => 3,
        });
        for action in &additions {
            if let Err(e) = self.execute(plane, action).await {
                tracing::warn!(?action, error = %e, "reconciler action failed");
            }
        }
        if !removals.is_empty() && additions.iter().any(|a| placement(a).is_some()) {
            self.wait_until_placed(plane, &additions).await;
        }
        for action in &removals {
            if let Err(e) = self.execute(plane, action).await {
                tracing::warn!(?action, error = %e, "reconciler action failed");
            }
        }
        for (app, status) in &plan.status {
            let mut wadm = crate::apps::status_json(status.status.as_str(), &status.message);
            wadm["scalers"] = serde_json::Value::Array(
                status
                    .components
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "id": c.name, "kind": c.kind, "name": c.name,
                            "status": {"type": c.status, "message": c.message},
                        })
                    })
                    .collect(),
            );
            self.set_status(store, plane, app, wadm).await;
        }
        for (app, reason) in broken {
            self.set_status(
                store,
                plane,
                &app,
                crate::apps::status_json("failed", &reason),
            )
            .await;
        }
        // An undeployed app whose managed resources are all gone is done.
        for name in &undeployed {
            let leftover = observed.hosts.iter().any(|h| {
                h.components
                    .iter()
                    .any(|c| managed_by(&c.annotations, name))
                    || h.providers.iter().any(|p| managed_by(&p.annotations, name))
            });
            if !leftover {
                self.set_status(
                    store,
                    plane,
                    name,
                    crate::apps::status_json("undeployed", ""),
                )
                .await;
                let _ = store.finish_cleanup(name).await;
            }
        }
    }

    /// Records an app's status and, when it changed, publishes it on
    /// `wadm.status.{lattice}.{app}`.
    async fn set_status(
        &self,
        store: &AppStore,
        plane: &Plane,
        app: &str,
        status: serde_json::Value,
    ) {
        if store.status(app).await.ok().flatten().as_ref() == Some(&status) {
            return;
        }
        if let Err(e) = store.put_status(app, &status).await {
            tracing::warn!(%app, error = %e, "cannot store an app's status");
        }
        if let Plane::Nats { nats, .. } = plane {
            let subject = format!("wadm.status.{}.{app}", self.lattice.name());
            let _ = nats
                .publish(
                    subject,
                    serde_json::to_vec(&status).unwrap_or_default().into(),
                )
                .await;
        }
    }
}

/// Actions that take something away.
fn is_removal(action: &Action) -> bool {
    matches!(
        action,
        Action::ScaleComponent { count: 0, .. }
            | Action::StopProvider { .. }
            | Action::DeleteLink { .. }
            | Action::DeleteConfig { .. }
    )
}

/// The (host, id, image) an action places, if it places something.
fn placement(action: &Action) -> Option<(&str, &str, &str)> {
    match action {
        Action::ScaleComponent {
            host_id,
            component_id,
            image_ref,
            count,
            ..
        } if *count > 0 => Some((host_id.as_str(), component_id.as_str(), image_ref)),
        Action::StartProvider {
            host_id,
            provider_id,
            image_ref,
            ..
        } => Some((host_id.as_str(), provider_id.as_str(), image_ref)),
        _ => None,
    }
}

impl Host {
    /// Waits (up to 10 s) until every placement in `actions` shows in its host's inventory.
    async fn wait_until_placed(&self, plane: &Plane, actions: &[&Action]) {
        let wanted: Vec<(&str, &str, &str)> = actions.iter().filter_map(|a| placement(a)).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            let mut all = true;
            for (host, id, image) in &wanted {
                let placed = match self.inventory_of(plane, host).await {
                    Some(inv) => {
                        inv.components
                            .iter()
                            .any(|c| c.id.as_str() == *id && c.image_ref == *image)
                            || inv.providers.iter().any(|p| p.id.as_str() == *id)
                    }
                    None => true, // a host that does not answer cannot hold up the others
                };
                all &= placed;
            }
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!("new placements did not all show within 10s; going on");
    }

    async fn inventory_of(&self, plane: &Plane, host: &str) -> Option<HostInventory> {
        match plane {
            Plane::Nats { ctl, .. } => ctl.inventory(host).await.ok(),
            Plane::Local => Some(self.inventory()),
        }
    }

    /// Every host's inventory, the lattice's links, and the config the desired apps name.
    async fn observe(
        &self,
        plane: &Plane,
        state: &LatticeState,
        desired: &[DesiredApp],
    ) -> Result<Observed, String> {
        let mut observed = Vec::new();
        match plane {
            Plane::Nats { ctl, .. } => {
                for summary in ctl.hosts().await.map_err(|e| e.to_string())? {
                    // A host that answered the ping but not this request is left out this round.
                    if let Ok(inventory) = ctl.inventory(summary.id.as_str()).await {
                        observed.push(observed_host(inventory));
                    }
                }
            }
            Plane::Local => observed.push(observed_host(self.inventory())),
        }
        let links = state.links().await.map_err(|e| e.to_string())?;
        let mut configs = BTreeMap::new();
        for app in desired {
            for name in app.app.configs.keys() {
                if let Ok(Some(values)) = state.get_config(name).await {
                    configs.insert(name.clone(), values);
                }
            }
        }
        Ok(Observed {
            hosts: observed,
            links,
            configs,
        })
    }

    /// Sends one action as a control request and checks the reply.
    async fn execute(self: &Arc<Self>, plane: &Plane, action: &Action) -> Result<(), String> {
        let (operation, body) = control_request(action);
        let payload = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).map_err(|e| e.to_string())?
        };
        let reply = match plane {
            Plane::Nats { nats, .. } => {
                let subject = format!("wasmbus.ctl.v1.{}.{operation}", self.lattice.name());
                tokio::time::timeout(
                    Duration::from_secs(5),
                    nats.request(subject.clone(), payload.into()),
                )
                .await
                .map_err(|_| format!("no answer on {subject}"))?
                .map_err(|e| format!("{subject}: {e}"))?
                .payload
            }
            Plane::Local => self.control_request(&operation, &payload).await,
        };
        let response: CtlResponse<serde_json::Value> =
            serde_json::from_slice(&reply).map_err(|e| format!("{operation}: {e}"))?;
        if response.success {
            Ok(())
        } else {
            Err(response.message)
        }
    }
}

fn managed_by(annotations: &BTreeMap<String, String>, app: &str) -> bool {
    trellis_reconciler::managed_app(annotations) == Some(app)
}

fn observed_host(inventory: HostInventory) -> ObservedHost {
    let mut host = ObservedHost::from(&inventory);
    host.draining = inventory.labels.get(DRAINING_LABEL).map(String::as_str) == Some("true");
    host
}

/// The control operation (the subject after `wasmbus.ctl.v1.{lattice}.`) and body of an
/// action.
fn control_request(action: &Action) -> (String, serde_json::Value) {
    match action {
        Action::ScaleComponent {
            host_id,
            component_id,
            image_ref,
            count,
            config,
            annotations,
        } => (
            format!("component.scale.{host_id}"),
            serde_json::json!({"host_id": host_id, "component_id": component_id, "component_ref": image_ref, "count": count, "config": config, "annotations": annotations, "allow_update": true}),
        ),
        Action::StartProvider {
            host_id,
            provider_id,
            image_ref,
            config,
            annotations,
        } => (
            format!("provider.start.{host_id}"),
            serde_json::json!({"host_id": host_id, "provider_id": provider_id, "provider_ref": image_ref, "config": config, "annotations": annotations}),
        ),
        Action::StopProvider {
            host_id,
            provider_id,
        } => (
            format!("provider.stop.{host_id}"),
            serde_json::json!({"host_id": host_id, "provider_id": provider_id}),
        ),
        Action::PutConfig { name, values } => (
            format!("config.put.{name}"),
            serde_json::to_value(values).unwrap_or_default(),
        ),
        Action::DeleteConfig { name } => (format!("config.del.{name}"), serde_json::Value::Null),
        Action::PutLink(link) => (
            "link.put".to_owned(),
            serde_json::to_value(link).unwrap_or_default(),
        ),
        Action::DeleteLink {
            source_id,
            wit_namespace,
            wit_package,
            name,
        } => (
            "link.del".to_owned(),
            serde_json::json!({"source_id": source_id, "wit_namespace": wit_namespace, "wit_package": wit_package, "name": name}),
        ),
    }
}
