//! The wasmCloud v1 control interface over NATS (`wasmbus.ctl.v1.{lattice}.…`).
//!
//! Requests addressed to this host (`host.get.{id}`, `label.put.{id}`, …) arrive on a
//! subscription of their own; lattice-wide requests that one host should answer (links,
//! config, claims) arrive through a queue group shared by every host, and read and write the
//! shared state in JetStream KV, so the answer is the same whichever host gives it. Every
//! reply is the `{success, message, response}` envelope; a malformed request gets
//! `success: false` with what was wrong, never silence.

use crate::Host;
use futures::StreamExt as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use trellis_control::{CtlResponse, HostSummary, Link};
use trellis_lattice::state::LatticeState;

/// The queue group hosts share for lattice-wide requests.
const QUEUE_GROUP: &str = "trellis-ctl";

/// Why the control interface could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Subscribing failed.
    #[error("cannot subscribe to the control interface: {0}")]
    Subscribe(String),
    /// The shared state could not be opened.
    #[error(transparent)]
    State(#[from] trellis_lattice::state::StateError),
}

#[derive(Deserialize)]
struct LabelRequest {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct DeleteLinkRequest {
    source_id: String,
    #[serde(default = "default_link_name")]
    name: String,
    wit_namespace: String,
    wit_package: String,
}

fn default_link_name() -> String {
    "default".into()
}

fn reply<T: serde::Serialize>(response: &CtlResponse<T>) -> bytes::Bytes {
    serde_json::to_vec(response).unwrap_or_default().into()
}

fn parse<T: for<'de> Deserialize<'de>>(payload: &[u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(payload).map_err(|e| format!("invalid {what} request: {e}"))
}

impl Host {
    /// Starts answering the control interface on NATS; returns once subscribed. A host on
    /// an in-process lattice answers through [`Host::serve_admin`] instead.
    pub async fn serve_control(self: &Arc<Self>) -> Result<(), ControlError> {
        let Some(nats) = self.lattice.connections().cloned() else {
            return Ok(());
        };
        let client = nats.ctl.clone();
        let state = LatticeState::open(client.clone(), self.lattice.name()).await?;
        let _ = self.control_state.set(state.clone());
        let prefix = format!("wasmbus.ctl.v1.{}", self.lattice.name());
        let sub = |e: async_nats::SubscribeError| ControlError::Subscribe(e.to_string());
        let mut subscriptions = vec![
            client
                .subscribe(format!("{prefix}.host.ping"))
                .await
                .map_err(sub)?,
            client
                .subscribe(format!("{prefix}.*.*.{}", self.id))
                .await
                .map_err(sub)?,
        ];
        // Every host hears every auction and answers only when it can take the work.
        for subject in ["component.auction", "provider.auction"] {
            subscriptions.push(
                client
                    .subscribe(format!("{prefix}.{subject}"))
                    .await
                    .map_err(sub)?,
            );
        }
        for subject in ["link.*", "config.*.*", "claims.get"] {
            subscriptions.push(
                client
                    .queue_subscribe(format!("{prefix}.{subject}"), QUEUE_GROUP.into())
                    .await
                    .map_err(sub)?,
            );
        }
        // Links put through any host may start HTTP listeners here.
        let mut link_events = client
            .subscribe(format!("wasmbus.evt.{}.linkdef_set", self.lattice.name()))
            .await
            .map_err(sub)?;
        {
            let host = Arc::downgrade(self);
            let state = state.clone();
            self.spawn_background(async move {
                while let Some(message) = link_events.next().await {
                    let Some(host) = host.upgrade() else { break };
                    let link =
                        serde_json::from_slice::<trellis_control::CloudEvent>(&message.payload)
                            .ok()
                            .and_then(|event| serde_json::from_value::<Link>(event.data).ok());
                    if let Some(link) = link {
                        host.apply_http_link(&link, &state).await;
                    }
                }
            });
        }
        let mut messages = futures::stream::select_all(subscriptions);
        let host = Arc::downgrade(self);
        let state = Arc::new(state);
        self.spawn_background(async move {
            while let Some(message) = messages.next().await {
                let Some(host) = host.upgrade() else { break };
                let Some(reply_to) = message.reply.clone() else {
                    continue;
                };
                let operation = message
                    .subject
                    .strip_prefix(prefix.as_str())
                    .unwrap_or_default()
                    .trim_start_matches('.')
                    .to_owned();
                let client = client.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    if operation.ends_with(".auction") {
                        // A host that cannot take the workload stays silent, as in wasmCloud.
                        if let Some(body) = host.auction(&operation, &message.payload) {
                            let _ = client.publish(reply_to, body).await;
                        }
                        return;
                    }
                    let body = host
                        .handle_control(&operation, &message.payload, &state)
                        .await;
                    if let Err(e) = client.publish(reply_to, body).await {
                        tracing::warn!(%operation, error = %e, "cannot reply to a control request");
                    }
                    if host.is_stop_for_me(&operation) {
                        // The reply must reach NATS before the process exits.
                        let _ = client.flush().await;
                        let _ = host.stop_request.send(true);
                    }
                });
            }
        });
        // The deployment manager: its API on every host, its reconciler on one at a time.
        let apps = trellis_lattice::apps::AppStore::open(nats.ctl.clone(), self.lattice.name())
            .await
            .map_err(|e| ControlError::Subscribe(e.to_string()))?;
        self.serve_app_api(apps.clone())
            .await
            .map_err(ControlError::Subscribe)?;
        if let Some(state) = self.control_state.get().cloned() {
            self.start_reconciler(apps, state, self.config.reconcile_interval);
        }
        tracing::info!(lattice = %self.lattice.name(), host_id = %self.id, "serving the control interface");
        Ok(())
    }

    /// Answers one control request (`operation` is the subject after
    /// `wasmbus.ctl.v1.{lattice}.`, for example `host.ping` or `config.get.db`) with the JSON
    /// reply envelope, whatever transport it came on.
    pub async fn control_request(
        self: &Arc<Self>,
        operation: &str,
        payload: &[u8],
    ) -> bytes::Bytes {
        let state = self
            .control_state
            .get_or_init(LatticeState::in_memory)
            .clone();
        let body = self.handle_control(operation, payload, &state).await;
        if self.is_stop_for_me(operation) {
            // The HTTP server drains in-flight requests, so this reply is still written.
            let _ = self.stop_request.send(true);
        }
        body
    }

    /// Answers an auction when this host's labels satisfy the constraints and it does not
    /// already run the provider; `None` means stay silent.
    fn auction(&self, operation: &str, payload: &[u8]) -> Option<bytes::Bytes> {
        let request: serde_json::Value = serde_json::from_slice(payload).ok()?;
        let constraints: BTreeMap<String, String> =
            serde_json::from_value(request.get("constraints").cloned().unwrap_or_default())
                .unwrap_or_default();
        let labels = self.labels();
        if !constraints.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return None;
        }
        let host_id = self.id.to_string();
        let ack = match operation {
            "component.auction" => serde_json::json!({
                "component_ref": request.get("component_ref").cloned().unwrap_or_default(),
                "component_id": request.get("component_id").cloned().unwrap_or_default(),
                "host_id": host_id,
                "constraints": constraints,
            }),
            "provider.auction" => {
                let provider_id = request
                    .get("provider_id")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                if self
                    .inventory()
                    .providers
                    .iter()
                    .any(|p| p.id.as_str() == provider_id)
                {
                    return None;
                }
                serde_json::json!({
                    "provider_ref": request.get("provider_ref").cloned().unwrap_or_default(),
                    "provider_id": provider_id,
                    "host_id": host_id,
                    "constraints": constraints,
                })
            }
            _ => return None,
        };
        Some(reply(&CtlResponse::ok(ack)))
    }

    fn is_stop_for_me(&self, operation: &str) -> bool {
        operation.strip_prefix("host.stop.") == Some(self.id.as_str())
    }

    async fn handle_control(
        self: &Arc<Self>,
        operation: &str,
        payload: &[u8],
        state: &LatticeState,
    ) -> bytes::Bytes {
        let tokens: Vec<&str> = operation.splitn(3, '.').collect();
        tracing::debug!(%operation, "control request");
        match tokens.as_slice() {
            ["host", "ping"] => reply(&CtlResponse::ok(self.summary())),
            ["host", "get", id] if *id == self.id.as_str() => {
                reply(&CtlResponse::ok(self.inventory()))
            }
            // The caller stops the host once the reply is on its way (`stop_after_reply`).
            ["host", "stop", id] if *id == self.id.as_str() => reply(&CtlResponse::<()>::success()),
            ["label", verb @ ("put" | "del"), id] if *id == self.id.as_str() => {
                reply(&self.change_label(verb, payload))
            }
            [_, _, id] if ["host", "label"].contains(&tokens[0]) && *id != self.id.as_str() => {
                reply(&CtlResponse::<()>::error(format!(
                    "no host `{id}` here; this host is {}",
                    self.id
                )))
            }
            ["config", "put", name] => reply(&self.put_config(name, payload, state).await),
            ["config", "get", name] => reply(&match state.get_config(name).await {
                Ok(values) => CtlResponse {
                    success: true,
                    message: String::new(),
                    response: values,
                },
                Err(e) => CtlResponse::error(e.to_string()),
            }),
            ["config", "del", name] => reply(&match state.delete_config(name).await {
                Ok(()) => {
                    self.publish("config_deleted", serde_json::json!({"config_name": name}));
                    CtlResponse::<()>::success()
                }
                Err(e) => CtlResponse::error(e.to_string()),
            }),
            ["link", "put"] => {
                let response = self.put_link(payload, state).await;
                if response.success && self.lattice.connections().is_none() {
                    // Embedded: no event comes back over NATS, so apply it here.
                    self.apply_http_links(state).await;
                }
                reply(&response)
            }
            ["link", "del"] => reply(&self.delete_link(payload, state).await),
            ["link", "get"] => reply(&match state.links().await {
                Ok(links) => CtlResponse::ok(links),
                Err(e) => CtlResponse::error(e.to_string()),
            }),
            ["claims", "get"] => reply(&CtlResponse::ok(Vec::<BTreeMap<String, String>>::new())),
            ["component", "scale", id] if *id == self.id.as_str() => {
                reply(&self.scale_component(payload, state))
            }
            ["component", "update", id] if *id == self.id.as_str() => {
                reply(&self.update_component(payload, state))
            }
            ["provider", "stop", id] if *id == self.id.as_str() => {
                reply(&self.stop_provider(payload))
            }
            ["provider", "start", id] if *id == self.id.as_str() => {
                reply(&self.start_provider(payload, state))
            }
            [noun @ ("component" | "provider"), verb, _] => reply(&CtlResponse::<()>::error(
                format!("{noun}.{verb} is not supported by this version of Trellis yet"),
            )),
            _ => reply(&CtlResponse::<()>::error(format!(
                "unknown control operation `{operation}`"
            ))),
        }
    }

    /// What `host.ping` answers.
    fn summary(&self) -> HostSummary {
        let inventory = self.inventory();
        let nats = self.lattice.connections();
        HostSummary {
            id: self.id.clone(),
            friendly_name: self.friendly_name.clone(),
            labels: inventory.labels,
            lattice: self.lattice.name().to_owned(),
            uptime_seconds: inventory.uptime_seconds,
            uptime_human: Some(inventory.uptime_human),
            version: Some(inventory.version),
            ctl_host: nats.map(|n| n.ctl_url.clone()),
            rpc_host: nats.map(|n| n.rpc_url.clone()),
        }
    }

    fn change_label(&self, verb: &str, payload: &[u8]) -> CtlResponse<()> {
        let request: LabelRequest = match parse(payload, "label") {
            Ok(r) => r,
            Err(e) => return CtlResponse::error(e),
        };
        if request.key.starts_with("hostcore.") {
            return CtlResponse::error(format!(
                "label `{}` is set by the host and cannot be changed",
                request.key
            ));
        }
        if request.key.is_empty() {
            return CtlResponse::error("a label needs a non-empty key");
        }
        let labels = {
            let mut labels = self.labels.lock().unwrap_or_else(|e| e.into_inner());
            if verb == "put" {
                labels.insert(request.key, request.value);
            } else if labels.remove(&request.key).is_none() {
                return CtlResponse::error(format!("this host has no label `{}`", request.key));
            }
            labels.clone()
        };
        self.publish("labels_changed", serde_json::json!({"labels": labels}));
        CtlResponse::success()
    }

    async fn put_config(
        &self,
        name: &str,
        payload: &[u8],
        state: &LatticeState,
    ) -> CtlResponse<()> {
        let values: BTreeMap<String, String> = match parse(payload, "config") {
            Ok(v) => v,
            Err(e) => {
                return CtlResponse::error(format!("{e} (expected a JSON object of strings)"));
            }
        };
        match state.put_config(name, &values).await {
            Ok(()) => {
                self.publish("config_set", serde_json::json!({"config_name": name}));
                CtlResponse::success()
            }
            Err(e) => CtlResponse::error(e.to_string()),
        }
    }

    async fn put_link(&self, payload: &[u8], state: &LatticeState) -> CtlResponse<()> {
        let link: Link = match parse(payload, "link") {
            Ok(l) => l,
            Err(e) => return CtlResponse::error(e),
        };
        let missing: Vec<&str> = [
            ("source_id", link.source_id.as_str()),
            ("target", link.target.as_str()),
            ("wit_namespace", link.wit_namespace.as_str()),
            ("wit_package", link.wit_package.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| k)
        .collect();
        let result = if !missing.is_empty() {
            Err(format!("a link needs {}", missing.join(", ")))
        } else if link.interfaces.is_empty() {
            Err("a link needs at least one interface".to_owned())
        } else {
            state.put_link(&link).await.map_err(|e| e.to_string())
        };
        match result {
            Ok(()) => {
                self.publish(
                    "linkdef_set",
                    serde_json::to_value(&link).unwrap_or_default(),
                );
                CtlResponse::success()
            }
            Err(e) => {
                let mut data = serde_json::to_value(&link).unwrap_or_default();
                if let Some(map) = data.as_object_mut() {
                    map.insert("message".into(), e.clone().into());
                }
                self.publish("linkdef_set_failed", data);
                CtlResponse::error(e)
            }
        }
    }

    async fn delete_link(&self, payload: &[u8], state: &LatticeState) -> CtlResponse<()> {
        let request: DeleteLinkRequest = match parse(payload, "link delete") {
            Ok(r) => r,
            Err(e) => return CtlResponse::error(e),
        };
        match state
            .delete_link(
                &request.source_id,
                &request.name,
                &request.wit_namespace,
                &request.wit_package,
            )
            .await
        {
            Ok(removed) => {
                if let Some(link) = removed {
                    self.publish(
                        "linkdef_deleted",
                        serde_json::to_value(&link).unwrap_or_default(),
                    );
                }
                CtlResponse::success()
            }
            Err(e) => CtlResponse::error(e.to_string()),
        }
    }
}
