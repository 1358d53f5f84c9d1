//! The deployment manager's API, as wadm serves it (`wadm.api.{lattice}.model.…`), answered
//! by every host with the shapes the published `wadm-client` / `wadm-types` crates expect
//! ([`trellis_control::wadm`]). Manifests and deploy state live in the lattice's
//! [`AppStore`]; the active reconciler (see `reconcile.rs`) does the work.

use crate::Host;
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use trellis_control::error_text;
use trellis_control::wadm::{
    ApiResult, AppRequest, AppStatusReport, AppSummary, DeleteReply, DeployReply, ErrorReply,
    GetReply, PutReply, StatusReply, StatusType, VersionInfo, VersionsReply,
};
use trellis_lattice::apps::{AppStore, PutOutcome};

/// A manifest `trellis up` or the app API could not take.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Not UTF-8.
    #[error("the manifest is not UTF-8")]
    NotUtf8,
    /// Not a valid manifest; the message has file:line and field paths.
    #[error(transparent)]
    Invalid(#[from] Box<trellis_manifest::ManifestError>),
    /// Valid, but not YAML serde could read back as a value (should not happen).
    #[error("cannot read the manifest as YAML")]
    Yaml(#[source] serde_yaml::Error),
    /// The app store refused it.
    #[error(transparent)]
    Store(#[from] trellis_lattice::apps::AppStoreError),
}

/// The manifest of a `put`: its name, its `version` annotation, and itself as JSON.
fn read_manifest(body: &[u8]) -> Result<(String, Option<String>, Value), RegisterError> {
    let text = std::str::from_utf8(body).map_err(|_| RegisterError::NotUtf8)?;
    // Checked as `trellis up` checks it, so a bad manifest is refused at the door with the
    // same messages (file:line, field paths).
    let app = trellis_manifest::parse(text, std::path::Path::new("/api/manifest.yaml"))
        .map_err(Box::new)?;
    let value: Value = serde_yaml::from_str(text).map_err(RegisterError::Yaml)?;
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

fn to_json(reply: &impl serde::Serialize) -> Bytes {
    // Plain structs of strings and JSON values: serialising them cannot fail.
    serde_json::to_vec(reply).unwrap_or_default().into()
}

impl Host {
    /// The app store: the lattice's (JetStream KV) once [`Host::serve_control`] opened it;
    /// otherwise embedded mode's, whose first use starts its reconciler (this host is the
    /// whole lattice, so it always holds the lease) and makes lattice links put through the
    /// control interface serve HTTP here.
    pub(crate) fn app_store(self: &Arc<Self>) -> AppStore {
        let mut started = false;
        let store = self
            .control
            .apps
            .get_or_init(|| {
                started = true;
                match self.config.apps_file.as_deref().map(AppStore::local) {
                    Some(Ok(store)) => store,
                    Some(Err(e)) => {
                        tracing::error!(error = %error_text(&e), "apps will not be kept between runs");
                        AppStore::in_memory()
                    }
                    None => AppStore::in_memory(),
                }
            })
            .clone();
        if started {
            let state = self.control_state();
            self.start_reconciler(store.clone(), state.clone(), self.config.reconcile_interval);
            let host = Arc::downgrade(self);
            let lattice = self.lattice.clone();
            self.spawn_background(async move {
                use futures::StreamExt as _;
                let Ok(mut events) = lattice.watch_events("linkdef_set").await else {
                    return;
                };
                while let Some(event) = events.next().await {
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
    pub async fn register_app(self: &Arc<Self>, manifest: &str) -> Result<(), RegisterError> {
        let (name, version, value) = read_manifest(manifest.as_bytes())?;
        let store = self.app_store();
        store.put(&name, value, version).await?;
        store.deploy(&name, None).await?;
        // Applied now, not at the next tick (`trellis dev` waits for it).
        self.wake_reconciler();
        Ok(())
    }

    /// The status the reconciler last recorded for app `name` (`None`: not recorded yet, or
    /// no such app).
    pub async fn app_status(self: &Arc<Self>, name: &str) -> Option<AppStatusReport> {
        self.app_store().status(name).await.ok().flatten()
    }

    /// Answers one app API request with wadm's reply JSON.
    pub(crate) async fn app_request(&self, store: &AppStore, request: AppRequest) -> Bytes {
        match request {
            AppRequest::Put(body) => to_json(&self.put_app(store, &body).await),
            AppRequest::Get { name, version } => to_json(&match store.get(&name).await {
                Ok(Some(record)) => match record.version(version.as_deref()) {
                    Some(v) => GetReply {
                        result: ApiResult::Success,
                        message: String::new(),
                        manifest: Some(with_version(&v.manifest, &v.version)),
                    },
                    None => GetReply {
                        result: ApiResult::NotFound,
                        message: format!(
                            "app `{name}` has no version `{}`",
                            version.unwrap_or_default()
                        ),
                        manifest: None,
                    },
                },
                Ok(None) => GetReply {
                    result: ApiResult::NotFound,
                    message: format!("no app named `{name}`"),
                    manifest: None,
                },
                Err(e) => GetReply {
                    result: ApiResult::Error,
                    message: error_text(&e),
                    manifest: None,
                },
            }),
            AppRequest::List => to_json(&self.list_apps(store).await),
            AppRequest::Versions { name } => to_json(&match store.get(&name).await {
                Ok(Some(r)) => VersionsReply {
                    result: ApiResult::Success,
                    message: String::new(),
                    versions: r
                        .versions
                        .iter()
                        .map(|v| VersionInfo {
                            version: v.version.clone(),
                            deployed: r.deployed.as_deref() == Some(v.version.as_str()),
                        })
                        .collect(),
                },
                Ok(None) => VersionsReply {
                    result: ApiResult::NotFound,
                    message: format!("no app named `{name}`"),
                    versions: Vec::new(),
                },
                Err(e) => VersionsReply {
                    result: ApiResult::Error,
                    message: error_text(&e),
                    versions: Vec::new(),
                },
            }),
            AppRequest::Delete { name, version } => {
                to_json(&match store.delete(&name, version.as_deref()).await {
                    Ok((true, undeploy)) => {
                        self.wake_reconciler();
                        DeleteReply {
                            result: ApiResult::Deleted,
                            message: format!("app `{name}` deleted"),
                            undeploy,
                        }
                    }
                    Ok((false, _)) => DeleteReply {
                        result: ApiResult::Noop,
                        message: format!("nothing to delete for app `{name}`"),
                        undeploy: false,
                    },
                    Err(e) => DeleteReply {
                        result: ApiResult::Error,
                        message: error_text(&e),
                        undeploy: false,
                    },
                })
            }
            AppRequest::Deploy { name, version } => {
                let reply = match store.deploy(&name, version.as_deref()).await {
                    Ok(version) => {
                        let _ = store
                            .put_status(
                                &name,
                                &AppStatusReport::new(
                                    StatusType::Reconciling,
                                    format!("deploying version {version}"),
                                ),
                            )
                            .await;
                        self.wake_reconciler();
                        DeployReply {
                            result: ApiResult::Acknowledged,
                            message: format!("deploying version {version} of app `{name}`"),
                            name,
                            version: Some(version),
                        }
                    }
                    Err(e) => store_refused(name, e),
                };
                to_json(&reply)
            }
            AppRequest::Undeploy { name } => to_json(&match store.undeploy(&name).await {
                Ok(()) => {
                    self.wake_reconciler();
                    DeployReply {
                        result: ApiResult::Acknowledged,
                        message: format!("undeploying app `{name}`"),
                        name,
                        version: None,
                    }
                }
                Err(e) => store_refused(name, e),
            }),
            AppRequest::Status { name } => to_json(&match store.get(&name).await {
                Ok(Some(r)) => {
                    let status = match store.status(&name).await {
                        Ok(Some(s)) => s,
                        _ if r.deployed.is_some() => AppStatusReport::new(
                            StatusType::Reconciling,
                            "waiting for the reconciler",
                        ),
                        _ => AppStatusReport::new(StatusType::Undeployed, ""),
                    };
                    StatusReply {
                        result: ApiResult::Ok,
                        message: String::new(),
                        status: Some(status),
                    }
                }
                Ok(None) => StatusReply {
                    result: ApiResult::NotFound,
                    message: format!("no app named `{name}`"),
                    status: None,
                },
                Err(e) => StatusReply {
                    result: ApiResult::Error,
                    message: error_text(&e),
                    status: None,
                },
            }),
            AppRequest::Unknown(operation) => to_json(&ErrorReply {
                result: ApiResult::Error,
                message: format!(
                    "unknown app API operation `{operation}`; use put, get, list, versions, del, deploy, undeploy or status"
                ),
            }),
        }
    }

    async fn put_app(&self, store: &AppStore, body: &[u8]) -> PutReply {
        let refused = |name: String, message: String| PutReply {
            result: ApiResult::Error,
            name,
            current_version: String::new(),
            total_versions: 0,
            message,
        };
        let (name, annotated, manifest) = match read_manifest(body) {
            Ok(m) => m,
            Err(e) => return refused(String::new(), e.to_string()),
        };
        let stored = |result, version: String, total| PutReply {
            result,
            message: format!("app `{name}` stored as version {version}"),
            name: name.clone(),
            current_version: version,
            total_versions: total,
        };
        match store.put(&name, manifest, annotated).await {
            Ok(PutOutcome::Created { version }) => stored(ApiResult::Created, version, 1),
            Ok(PutOutcome::NewVersion { version, total }) => {
                stored(ApiResult::NewVersion, version, total)
            }
            Ok(PutOutcome::Unchanged { version, total }) => PutReply {
                result: ApiResult::NewVersion,
                message: format!("app `{name}` is unchanged: same content as version {version}"),
                name: name.clone(),
                current_version: version,
                total_versions: total,
            },
            Err(e) => refused(name.clone(), error_text(&e)),
        }
    }

    async fn list_apps(&self, store: &AppStore) -> Vec<AppSummary> {
        let records = match store.all().await {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error = %error_text(&e), "cannot list apps");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for r in records.into_iter().filter(|r| !r.deleted) {
            let status = store
                .status(&r.name)
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| AppStatusReport::new(StatusType::Undeployed, ""));
            let latest = r.versions.last();
            out.push(AppSummary {
                version: latest.map(|v| v.version.clone()).unwrap_or_default(),
                description: latest.and_then(|v| {
                    v.manifest
                        .pointer("/metadata/annotations/description")
                        .cloned()
                }),
                deployed_version: r.deployed,
                status: status.status.kind,
                status_message: status.status.message.clone(),
                detailed_status: status,
                name: r.name,
            });
        }
        out
    }
}

/// The reply to a deploy or undeploy the store refused.
fn store_refused(name: String, e: trellis_lattice::apps::AppStoreError) -> DeployReply {
    let (result, message) = match e {
        trellis_lattice::apps::AppStoreError::NotFound(message) => (ApiResult::NotFound, message),
        e => (ApiResult::Error, error_text(&e)),
    };
    DeployReply {
        result,
        message,
        name,
        version: None,
    }
}
