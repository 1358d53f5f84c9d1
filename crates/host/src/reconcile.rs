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
use trellis_control::error_text;
use trellis_control::wadm::{AppStatusReport, ScalerStatus, StatusInfo, StatusType};
use trellis_control::{HostId, HostInventory};
use trellis_lattice::apps::AppStore;
use trellis_lattice::client::{CtlClient, CtlError};
use trellis_lattice::state::LatticeState;
use trellis_reconciler::{Action, DesiredApp, Observed, ObservedHost};

/// The label a host carries while it is drained: the reconciler places nothing new on it
/// and moves its managed workloads elsewhere.
pub const DRAINING_LABEL: &str = "trellis.dev/draining";

impl Host {
    /// Wakes the reconciler loop early (an app was deployed, undeployed or deleted).
    pub(crate) fn wake_reconciler(&self) {
        self.control.reconcile_wake.notify_one();
    }

    /// Competes for the reconciler lease every `interval` and, while holding it, reconciles.
    pub(crate) fn start_reconciler(
        self: &Arc<Self>,
        store: AppStore,
        state: LatticeState,
        interval: Duration,
    ) {
        // The same requests either way: over NATS on a lattice, to this host in process when
        // embedded (one host, no NATS).
        let client = CtlClient::for_lattice(&self.lattice, crate::control::Handler::new(self))
            .with_signer(self.config.control_key.clone());
        self.follow_scale_results();
        let host = Arc::downgrade(self);
        self.spawn_background(async move {
            let mut leading = false;
            loop {
                let Some(me) = host.upgrade() else { break };
                let wake = me.control.reconcile_wake.clone();
                match store.try_lead(me.id.as_str(), interval * 3).await {
                    Ok(true) => {
                        if !leading {
                            tracing::info!(host_id = %me.id, "this host now runs the lattice's reconciler");
                            leading = true;
                        }
                        me.reconcile_once(&store, &state, &client).await;
                    }
                    Ok(false) => leading = false,
                    Err(e) => {
                        tracing::warn!(error = %error_text(&e), "cannot reach the app store; not reconciling");
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

    /// Keeps [`ControlPlane::scale_failures`](crate::control::ControlPlane) current from the
    /// lattice's `component_scale_failed` and `component_scaled` events, whichever host sends
    /// them.
    fn follow_scale_results(self: &Arc<Self>) {
        let host = Arc::downgrade(self);
        let lattice = self.lattice.clone();
        self.spawn_background(async move {
            use futures::StreamExt as _;
            let (failed, scaled) = match tokio::try_join!(
                lattice.watch_events("component_scale_failed"),
                lattice.watch_events("component_scaled"),
            ) {
                Ok(streams) => streams,
                Err(e) => {
                    tracing::warn!(error = %error_text(&e), "cannot follow component scale events; app status will not say why a component did not start");
                    return;
                }
            };
            let mut events = futures::stream::select(failed, scaled);
            while let Some(event) = events.next().await {
                let Some(me) = host.upgrade() else { break };
                let text = |key: &str| {
                    event
                        .data
                        .get(key)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned()
                };
                let component = text("component_id");
                let key = (event.source.clone(), component.clone());
                let mut failures = crate::sync::lock(&me.control.scale_failures);
                if event.ty.ends_with(".component_scale_failed") {
                    failures.insert(
                        key,
                        trellis_reconciler::FailedComponent {
                            id: trellis_control::ComponentId::new(component),
                            image_ref: text("image_ref"),
                            reason: text("error"),
                        },
                    );
                } else {
                    failures.remove(&key);
                }
            }
        });
    }

    async fn reconcile_once(
        self: &Arc<Self>,
        store: &AppStore,
        state: &LatticeState,
        client: &CtlClient,
    ) {
        let records = match store.all().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %error_text(&e), "cannot read apps");
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
                    if client.is_local() {
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
        let observed = match self.observe(client, state, &desired).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %error_text(&e), "cannot observe the lattice");
                return;
            }
        };
        let plan = trellis_reconciler::plan(&desired, &undeployed, &observed);
        // New placements first; what they replace goes only once they run, so a move (a
        // drain, a lost host coming back, an upgrade) never leaves a gap.
        let (removals, mut additions): (Vec<&Action>, Vec<&Action>) =
            plan.actions.iter().partition(|a| a.is_removal());
        // Config and links first: a component reads its links and config when it starts.
        additions.sort_by_key(|a| match a {
            Action::PutConfig { .. } => 0,
            Action::PutLink(_) => 1,
            Action::StartProvider { .. } => 2,
            _ => 3,
        });
        for action in &additions {
            self.reconciler_act(client, action).await;
        }
        if !removals.is_empty() && additions.iter().any(|a| a.placement().is_some()) {
            wait_until_placed(client, &additions).await;
        }
        for action in &removals {
            self.reconciler_act(client, action).await;
        }
        for (app, status) in &plan.status {
            let report = AppStatusReport {
                status: StatusInfo {
                    kind: status.status,
                    message: status.message.clone(),
                },
                scalers: status
                    .components
                    .iter()
                    .map(|c| ScalerStatus {
                        id: c.name.clone(),
                        kind: c.kind,
                        name: c.name.clone(),
                        status: StatusInfo {
                            kind: c.status,
                            message: c.message.clone(),
                        },
                    })
                    .collect(),
                version: desired
                    .iter()
                    .find(|d| d.name == *app)
                    .map(|d| d.version.clone())
                    .unwrap_or_default(),
            };
            self.set_status(store, app, report).await;
        }
        for (app, reason) in broken {
            self.set_status(
                store,
                &app,
                AppStatusReport::new(StatusType::Failed, reason),
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
                    name,
                    AppStatusReport::new(StatusType::Undeployed, ""),
                )
                .await;
                let _ = store.finish_cleanup(name).await;
            }
        }
    }

    /// Records an app's status and, when it changed, publishes it on
    /// `wadm.status.{lattice}.{app}`.
    /// Sends one action, counted in the metrics by its operation.
    async fn reconciler_act(&self, client: &CtlClient, action: &Action) {
        let request = action.request();
        let operation = request.operation();
        let kind = crate::control::operation_kind(&operation);
        let result = client.command(&request).await;
        self.metrics.reconciler_action(kind, result.is_ok());
        if let Err(e) = result {
            tracing::warn!(?action, error = %error_text(&e), "reconciler action failed");
        }
    }

    async fn set_status(&self, store: &AppStore, app: &str, status: AppStatusReport) {
        if store.status(app).await.ok().flatten().as_ref() == Some(&status) {
            return;
        }
        if let Err(e) = store.put_status(app, &status).await {
            tracing::warn!(%app, error = %error_text(&e), "cannot store an app's status");
        }
        self.lattice.publish_app_status(app, &status).await;
    }
}

/// Waits (up to 10 s) until every placement in `actions` shows in its host's inventory.
async fn wait_until_placed(client: &CtlClient, actions: &[&Action]) {
    let wanted: Vec<(&HostId, &str, &str)> = actions.iter().filter_map(|a| a.placement()).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let mut all = true;
        for (host, id, image) in &wanted {
            let placed = match client.inventory(host).await {
                Ok(inv) => {
                    inv.components
                        .iter()
                        .any(|c| c.id.as_str() == *id && c.image_ref == *image)
                        || inv.providers.iter().any(|p| p.id.as_str() == *id)
                }
                Err(_) => true, // a host that does not answer cannot hold up the others
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

impl Host {
    /// Every host's inventory, the lattice's links, and the config the desired apps name.
    async fn observe(
        &self,
        client: &CtlClient,
        state: &LatticeState,
        desired: &[DesiredApp],
    ) -> Result<Observed, ObserveError> {
        let mut observed = Vec::new();
        for summary in client.hosts().await? {
            // A host that answered the ping but not this request is left out this round.
            if let Ok(inventory) = client.inventory(&summary.id).await {
                observed.push(observed_host(inventory));
            }
        }
        {
            let mut failures = crate::sync::lock(&self.control.scale_failures);
            // Hosts that are gone take their failures with them.
            failures.retain(|(host, _), _| observed.iter().any(|h| h.id.as_str() == host));
            for ((host, _), failed) in failures.iter() {
                if let Some(h) = observed.iter_mut().find(|h| h.id.as_str() == host) {
                    h.failed_components.push(failed.clone());
                }
            }
        }
        let links = state.links().await?;
        let mut configs = BTreeMap::new();
        for app in desired {
            // What the apps define, to compare, and what they expect stored, to check.
            for name in app.app.configs.keys().chain(app.app.stored_config_names()) {
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
}

/// Why the lattice could not be observed this round.
#[derive(Debug, thiserror::Error)]
enum ObserveError {
    #[error(transparent)]
    Hosts(#[from] CtlError),
    #[error(transparent)]
    Links(#[from] trellis_lattice::state::StateError),
}

fn managed_by(annotations: &BTreeMap<String, String>, app: &str) -> bool {
    trellis_reconciler::managed_app(annotations) == Some(app)
}

fn observed_host(inventory: HostInventory) -> ObservedHost {
    let mut host = ObservedHost::from(&inventory);
    host.draining = inventory.labels.get(DRAINING_LABEL).map(String::as_str) == Some("true");
    host
}
