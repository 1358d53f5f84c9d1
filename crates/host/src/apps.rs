//! The deployment manager's API, as wadm serves it (`wadm.api.{lattice}.model.…`), answered
//! by every host through a queue group, with the shapes the published `wadm-client` /
//! `wadm-types` crates expect. Manifests and deploy state live in the lattice's
//! [`AppStore`]; the active reconciler (see `reconcile.rs`) does the work.

use crate::Host;
use futures::StreamExt as _;
use serde_json::{Value, json};
use std::sync::Arc;
use trellis_lattice::apps::{AppStore, AppStoreError, PutOutcome};

/// The queue group every host answers the API in.
const API_GROUP: &str = "trellis-wadm-api";

/// The status wadm reports for an app no reconciler has looked at yet.
pub(crate) fn status_json(kind: &str, message: &str) -> Value {
    json!({"status": {"type": kind, "message": message}, "scalers": []})
}

/// The manifest of a `put`: its name, its `version` annotation, and itself as JSON.
fn read_manifest(body: &[u8]) -> Result<(String, Option<String>, Value), String> {
    let text = std::str::from_utf8(body).map_err(|_| "the manifest is not UTF-8".to_owned())?;
    // Checked as `trellis up` checks it, so a bad manifest is refused at the door with the
    // same messages (file:line, field paths).
    let app = trellis_manifest::parse(text, std::path::Path::new("/api/manifest.yaml"))
        .map_err(|e| e.to_string())?;
    let value: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let version = value
        .pointer("/metadata/annotations/version")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((app.name, version, value))
}

/// The manifest as wadm returns it: with its version in `metadata.annotations.version` (wadm
/// sets it on put), so clients can tell which version they got, and always with
/// `metadata.annotations`, which `wadm-types` requires.
fn with_version(manifest: &Value, version: &str) -> Value {
    let mut manifest = manifest.clone();
    if let Some(metadata) = manifest.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        if let Some(annotations) = annotations.as_object_mut() {
            annotations
                .entry("version")
                .or_insert_with(|| Value::String(version.to_owned()));
        }
    }
    manifest
}

fn error_message(e: &AppStoreError) -> String {
    e.to_string()
}

impl Host {
    /// Embedded mode's app store; the first call starts its reconciler (this host is the
    /// whole lattice, so it always holds the lease) and makes lattice links put through the
    /// control interface serve HTTP here.
    pub(crate) fn embedded_apps(self: &Arc<Self>) -> AppStore {
        let mut started = false;
        let store = self
            .embedded_apps
            .get_or_init(|| {
                started = true;
                match self.config.apps_file.as_deref().map(AppStore::local) {
                    Some(Ok(store)) => store,
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "apps will not be kept between runs");
                        AppStore::in_memory()
                    }
                    None => AppStore::in_memory(),
                }
            })
            .clone();
        if started {
            let state = self
                .control_state
                .get_or_init(trellis_lattice::state::LatticeState::in_memory)
                .clone();
            self.start_reconciler(store.clone(), state.clone(), self.config.reconcile_interval);
            let mut events = self.lattice.subscribe_events();
            let host = Arc::downgrade(self);
            self.spawn_background(async move {
                loop {
                    let event = match events.recv().await {
                        Ok(e) => e,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    };
                    if !event.ty.ends_with(".linkdef_set") {
                        continue;
                    }
                    let Some(host) = host.upgrade() else { break };
                    if let Ok(link) = serde_json::from_value::<trellis_control::Link>(event.data) {
                        host.apply_http_link(&link, &state).await;
                    }
                }
            });
        }
        store
    }

    /// Keeps the app `trellis up` deployed in embedded mode's app store, as deployed, so
    /// `trellis app … --embedded` sees it and the reconciler keeps it.
    pub async fn register_app(self: &Arc<Self>, manifest: &str) -> Result<(), String> {
        let (name, version, value) = read_manifest(manifest.as_bytes())?;
        let store = self.embedded_apps();
        store
            .put(&name, value, version)
            .await
            .map_err(|e| e.to_string())?;
        store.deploy(&name, None).await.map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Answers the wadm API on the control connection, next to the control interface.
    pub(crate) async fn serve_app_api(self: &Arc<Self>, store: AppStore) -> Result<(), String> {
        let Some(nats) = self.lattice.connections().cloned() else {
            return Ok(());
        };
        let client = nats.ctl.clone();
        let prefix = format!("wadm.api.{}.model", self.lattice.name());
        let mut requests = client
            .queue_subscribe(format!("{prefix}.>"), API_GROUP.into())
            .await
            .map_err(|e| e.to_string())?;
        let host = Arc::downgrade(self);
        self.spawn_background(async move {
            while let Some(message) = requests.next().await {
                let Some(host) = host.upgrade() else { break };
                let Some(reply) = message.reply.clone() else {
                    continue;
                };
                let operation = message
                    .subject
                    .strip_prefix(prefix.as_str())
                    .unwrap_or_default()
                    .trim_start_matches('.')
                    .to_owned();
                let (client, store) = (client.clone(), store.clone());
                tokio::spawn(async move {
                    let body = host.app_request(&store, &operation, &message.payload).await;
                    let bytes = serde_json::to_vec(&body).unwrap_or_default();
                    if let Err(e) = client.publish(reply, bytes.into()).await {
                        tracing::warn!(%operation, error = %e, "cannot answer an app API request");
                    }
                });
            }
        });
        Ok(())
    }

    /// Answers one app API request (`operation`: `put`, `get.NAME`, `list`, …).
    pub(crate) async fn app_request(
        &self,
        store: &AppStore,
        operation: &str,
        body: &[u8],
    ) -> Value {
        let (verb, name) = match operation.split_once('.') {
            Some((verb, name)) => (verb, name),
            None => (operation, ""),
        };
        let version: Option<String> = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("version").and_then(Value::as_str).map(str::to_owned));
        match verb {
            "put" => match read_manifest(body) {
                Err(message) => {
                    json!({"result": "error", "message": message, "name": "", "current_version": "", "total_versions": 0})
                }
                Ok((name, annotated, manifest)) => {
                    match store.put(&name, manifest, annotated).await {
                        Ok(PutOutcome::Created { version }) => {
                            json!({"result": "created", "name": name, "current_version": version, "total_versions": 1, "message": format!("app `{name}` stored as version {version}")})
                        }
                        Ok(PutOutcome::NewVersion { version, total }) => {
                            json!({"result": "newversion", "name": name, "current_version": version, "total_versions": total, "message": format!("app `{name}` stored as version {version}")})
                        }
                        Ok(PutOutcome::Unchanged { version, total }) => {
                            json!({"result": "newversion", "name": name, "current_version": version, "total_versions": total, "message": format!("app `{name}` is unchanged: same content as version {version}")})
                        }
                        Err(e) => {
                            json!({"result": "error", "name": name, "current_version": "", "total_versions": 0, "message": error_message(&e)})
                        }
                    }
                }
            },
            "get" => match store.get(name).await {
                Ok(Some(record)) => match record.version(version.as_deref()) {
                    Some(v) => {
                        json!({"result": "success", "message": "", "manifest": with_version(&v.manifest, &v.version)})
                    }
                    None => {
                        json!({"result": "notfound", "message": format!("app `{name}` has no version `{}`", version.unwrap_or_default())})
                    }
                },
                Ok(None) => {
                    json!({"result": "notfound", "message": format!("no app named `{name}`")})
                }
                Err(e) => json!({"result": "error", "message": error_message(&e)}),
            },
            "list" => match store.all().await {
                Ok(records) => {
                    let mut out = Vec::new();
                    for r in records.into_iter().filter(|r| !r.deleted) {
                        let status = store
                            .status(&r.name)
                            .await
                            .ok()
                            .flatten()
                            .unwrap_or_else(|| status_json("undeployed", ""));
                        let latest = r.versions.last();
                        out.push(json!({
                            "name": r.name,
                            "version": latest.map(|v| v.version.clone()).unwrap_or_default(),
                            "description": latest.and_then(|v| v.manifest.pointer("/metadata/annotations/description").cloned()),
                            "deployed_version": r.deployed,
                            "status": status["status"]["type"],
                            "status_message": status["status"]["message"],
                            "detailed_status": status,
                        }));
                    }
                    Value::Array(out)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list apps");
                    Value::Array(Vec::new())
                }
            },
            "versions" => match store.get(name).await {
                Ok(Some(r)) => {
                    json!({"result": "success", "message": "", "versions": r.versions.iter().map(|v| json!({"version": v.version, "deployed": r.deployed.as_deref() == Some(v.version.as_str())})).collect::<Vec<_>>()})
                }
                Ok(None) => {
                    json!({"result": "notfound", "message": format!("no app named `{name}`"), "versions": []})
                }
                Err(e) => json!({"result": "error", "message": error_message(&e), "versions": []}),
            },
            "del" => match store.delete(name, version.as_deref()).await {
                Ok((true, undeploy)) => {
                    self.wake_reconciler();
                    json!({"result": "deleted", "message": format!("app `{name}` deleted"), "undeploy": undeploy})
                }
                Ok((false, _)) => {
                    json!({"result": "noop", "message": format!("nothing to delete for app `{name}`"), "undeploy": false})
                }
                Err(e) => {
                    json!({"result": "error", "message": error_message(&e), "undeploy": false})
                }
            },
            "deploy" => match store.deploy(name, version.as_deref()).await {
                Ok(version) => {
                    let _ = store
                        .put_status(
                            name,
                            &status_json("reconciling", &format!("deploying version {version}")),
                        )
                        .await;
                    self.wake_reconciler();
                    json!({"result": "acknowledged", "message": format!("deploying version {version} of app `{name}`"), "name": name, "version": version})
                }
                Err(AppStoreError::NotFound(message)) => {
                    json!({"result": "notfound", "message": message, "name": name})
                }
                Err(e) => json!({"result": "error", "message": error_message(&e), "name": name}),
            },
            "undeploy" => match store.undeploy(name).await {
                Ok(()) => {
                    self.wake_reconciler();
                    json!({"result": "acknowledged", "message": format!("undeploying app `{name}`"), "name": name})
                }
                Err(AppStoreError::NotFound(message)) => {
                    json!({"result": "notfound", "message": message, "name": name})
                }
                Err(e) => json!({"result": "error", "message": error_message(&e), "name": name}),
            },
            "status" => match store.get(name).await {
                Ok(Some(r)) => {
                    let status = match store.status(name).await {
                        Ok(Some(s)) => s,
                        _ if r.deployed.is_some() => {
                            status_json("reconciling", "waiting for the reconciler")
                        }
                        _ => status_json("undeployed", ""),
                    };
                    json!({"result": "ok", "message": "", "status": status})
                }
                Ok(None) => {
                    json!({"result": "notfound", "message": format!("no app named `{name}`")})
                }
                Err(e) => json!({"result": "error", "message": error_message(&e)}),
            },
            other => {
                json!({"result": "error", "message": format!("unknown app API operation `{other}`; use put, get, list, versions, del, deploy, undeploy or status")})
            }
        }
    }
}
