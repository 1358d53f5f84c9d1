//! A client for the control interface: what `trellis get …`, `trellis link …` and friends
//! use, and what scripts can use. It speaks the same subjects and JSON as wasmCloud's
//! `wasmcloud-control-interface` crate.

use futures::{Stream, StreamExt as _};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::time::Duration;
use trellis_control::{CloudEvent, CtlResponse, HostInventory, HostSummary, Link};

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// Nobody subscribes to the subject: no host runs on this lattice (or on that id).
    #[error(
        "no host answered on lattice `{lattice}` ({subject}); is a `trellis host --lattice {lattice}` running and connected to the same NATS?"
    )]
    NoResponders {
        /// The lattice.
        lattice: String,
        /// The subject asked.
        subject: String,
    },
    /// No answer in time.
    #[error("no answer on {subject} within {timeout:?}")]
    TimedOut {
        /// The subject asked.
        subject: String,
        /// How long the client waited.
        timeout: Duration,
    },
    /// The host answered `success: false`.
    #[error("refused: {0}")]
    Refused(String),
    /// The answer was not the expected JSON.
    #[error("unexpected answer on {subject}: {reason}")]
    BadReply {
        /// The subject asked.
        subject: String,
        /// The parse error.
        reason: String,
    },
    /// NATS failed.
    #[error("NATS: {0}")]
    Nats(String),
}

/// A control-interface client for one lattice, over NATS or over the local HTTP endpoint
/// of an embedded host (`trellis up`).
#[derive(Clone)]
pub struct CtlClient {
    transport: Transport,
    lattice: String,
    timeout: Duration,
}

#[derive(Clone)]
enum Transport {
    Nats(async_nats::Client),
    Http {
        base: String,
        client: hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            http_body_util::Full<bytes::Bytes>,
        >,
    },
}

/// How long `hosts` waits for more answers after the last one before it stops collecting:
/// hosts answer a ping within milliseconds, so a short silence means everyone has.
const PING_QUIET: Duration = Duration::from_millis(150);

impl CtlClient {
    /// A client for `lattice` over `nats`, waiting up to 5 s for answers.
    pub fn new(nats: async_nats::Client, lattice: impl Into<String>) -> Self {
        Self {
            transport: Transport::Nats(nats),
            lattice: lattice.into(),
            timeout: Duration::from_secs(5),
        }
    }

    /// A client for the embedded host whose admin endpoint is at `base` (for example
    /// `http://127.0.0.1:7373`).
    pub fn embedded(base: impl Into<String>) -> Self {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        Self {
            transport: Transport::Http {
                base: base.into().trim_end_matches('/').to_owned(),
                client,
            },
            lattice: "embedded".into(),
            timeout: Duration::from_secs(5),
        }
    }

    async fn http_request(
        &self,
        base: &str,
        client: &hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            http_body_util::Full<bytes::Bytes>,
        >,
        suffix: &str,
        body: Vec<u8>,
    ) -> Result<bytes::Bytes, CtlError> {
        use http_body_util::BodyExt as _;
        let url = format!("{base}/v1/ctl/{suffix}");
        let request = http::Request::post(&url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| CtlError::Nats(format!("bad admin URL `{url}`: {e}")))?;
        let exchange = async {
            let response = client.request(request).await.map_err(|e| {
                CtlError::Nats(format!(
                    "cannot reach the embedded host at {base}: {e}; is `trellis up` running (it prints its control interface address)?"
                ))
            })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| CtlError::Nats(e.to_string()))?
                .to_bytes();
            if !status.is_success() {
                return Err(CtlError::Refused(
                    String::from_utf8_lossy(&body).trim().to_owned(),
                ));
            }
            Ok(body)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| CtlError::TimedOut {
                subject: url.clone(),
                timeout: self.timeout,
            })?
    }

    /// Sets how long a request waits for an answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn subject(&self, suffix: &str) -> String {
        format!("wasmbus.ctl.v1.{}.{suffix}", self.lattice)
    }

    async fn request<T: DeserializeOwned>(
        &self,
        suffix: &str,
        body: Vec<u8>,
    ) -> Result<Option<T>, CtlError> {
        let subject = self.subject(suffix);
        let nats = match &self.transport {
            Transport::Nats(nats) => nats,
            Transport::Http { base, client } => {
                let payload = self.http_request(base, client, suffix, body).await?;
                return parse_envelope(&subject, &payload);
            }
        };
        let reply =
            match tokio::time::timeout(self.timeout, nats.request(subject.clone(), body.into()))
                .await
            {
                Err(_) => {
                    return Err(CtlError::TimedOut {
                        subject,
                        timeout: self.timeout,
                    });
                }
                Ok(Err(e)) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => {
                    return Err(CtlError::NoResponders {
                        lattice: self.lattice.clone(),
                        subject,
                    });
                }
                Ok(Err(e)) if e.kind() == async_nats::client::RequestErrorKind::TimedOut => {
                    return Err(CtlError::TimedOut {
                        subject,
                        timeout: self.timeout,
                    });
                }
                Ok(Err(e)) => return Err(CtlError::Nats(e.to_string())),
                Ok(Ok(reply)) => reply,
            };
        parse_envelope(&subject, &reply.payload)
    }

    async fn command(&self, suffix: &str, body: &impl serde::Serialize) -> Result<(), CtlError> {
        let body = serde_json::to_vec(body).map_err(|e| CtlError::Nats(e.to_string()))?;
        self.request::<serde_json::Value>(suffix, body)
            .await
            .map(drop)
    }

    /// Every host on the lattice. Returns as soon as answers stop arriving (not after a
    /// fixed wait), or after the timeout at the latest.
    pub async fn hosts(&self) -> Result<Vec<HostSummary>, CtlError> {
        let nats = match &self.transport {
            Transport::Nats(nats) => nats,
            // An embedded host is the only host.
            Transport::Http { .. } => {
                return Ok(self
                    .request("host.ping", Vec::new())
                    .await?
                    .into_iter()
                    .collect());
            }
        };
        let inbox = nats.new_inbox();
        let mut replies = nats
            .subscribe(inbox.clone())
            .await
            .map_err(|e| CtlError::Nats(e.to_string()))?;
        nats.publish_with_reply(self.subject("host.ping"), inbox, "".into())
            .await
            .map_err(|e| CtlError::Nats(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut hosts = Vec::new();
        loop {
            // Before the first answer, wait up to the whole timeout; after, a short silence.
            let wait = if hosts.is_empty() {
                deadline.saturating_duration_since(tokio::time::Instant::now())
            } else {
                PING_QUIET.min(deadline.saturating_duration_since(tokio::time::Instant::now()))
            };
            match tokio::time::timeout(wait, replies.next()).await {
                Ok(Some(message)) => {
                    if let Ok(CtlResponse {
                        success: true,
                        response: Some(summary),
                        ..
                    }) = serde_json::from_slice::<CtlResponse<HostSummary>>(&message.payload)
                    {
                        hosts.push(summary);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        hosts.sort_by(|a, b| a.friendly_name.cmp(&b.friendly_name));
        Ok(hosts)
    }

    /// One host's inventory.
    pub async fn inventory(&self, host_id: &str) -> Result<HostInventory, CtlError> {
        self.request(&format!("host.get.{host_id}"), Vec::new())
            .await?
            .ok_or_else(|| CtlError::Refused("the host sent no inventory".into()))
    }

    /// Every link in the lattice.
    pub async fn links(&self) -> Result<Vec<Link>, CtlError> {
        Ok(self
            .request("link.get", Vec::new())
            .await?
            .unwrap_or_default())
    }

    /// Puts a link.
    pub async fn put_link(&self, link: &Link) -> Result<(), CtlError> {
        self.command("link.put", link).await
    }

    /// Deletes a link.
    pub async fn delete_link(
        &self,
        source_id: &str,
        name: &str,
        wit_namespace: &str,
        wit_package: &str,
    ) -> Result<(), CtlError> {
        self.command(
            "link.del",
            &serde_json::json!({"source_id": source_id, "name": name, "wit_namespace": wit_namespace, "wit_package": wit_package}),
        )
        .await
    }

    /// Named config, if it exists.
    pub async fn get_config(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, CtlError> {
        self.request(&format!("config.get.{name}"), Vec::new())
            .await
    }

    /// Puts named config.
    pub async fn put_config(
        &self,
        name: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(), CtlError> {
        self.command(&format!("config.put.{name}"), values).await
    }

    /// Deletes named config.
    pub async fn delete_config(&self, name: &str) -> Result<(), CtlError> {
        self.command(&format!("config.del.{name}"), &serde_json::json!({}))
            .await
    }

    /// Sets a label on a host.
    pub async fn put_label(&self, host_id: &str, key: &str, value: &str) -> Result<(), CtlError> {
        self.command(
            &format!("label.put.{host_id}"),
            &serde_json::json!({"key": key, "value": value}),
        )
        .await
    }

    /// Removes a label from a host.
    pub async fn delete_label(&self, host_id: &str, key: &str) -> Result<(), CtlError> {
        self.command(
            &format!("label.del.{host_id}"),
            &serde_json::json!({"key": key}),
        )
        .await
    }

    /// Runs `component_ref` as `component_id` on a host with at most `count` concurrent
    /// instances (0 stops it). Accepted means started; watch for `component_scaled` or
    /// `component_scale_failed`.
    pub async fn scale_component(
        &self,
        host_id: &str,
        component_id: &str,
        component_ref: &str,
        count: u32,
        config: &[String],
    ) -> Result<(), CtlError> {
        self.command(
            &format!("component.scale.{host_id}"),
            &serde_json::json!({
                "host_id": host_id, "component_id": component_id, "component_ref": component_ref,
                "count": count, "config": config, "allow_update": true,
            }),
        )
        .await
    }

    /// Starts a built-in provider on a host. Watch for `provider_started` or
    /// `provider_start_failed`.
    pub async fn start_provider(
        &self,
        host_id: &str,
        provider_id: &str,
        provider_ref: &str,
        config: &[String],
    ) -> Result<(), CtlError> {
        self.command(
            &format!("provider.start.{host_id}"),
            &serde_json::json!({
                "host_id": host_id, "provider_id": provider_id, "provider_ref": provider_ref, "config": config,
            }),
        )
        .await
    }

    /// Asks a host to stop.
    pub async fn stop_host(&self, host_id: &str) -> Result<(), CtlError> {
        self.command(
            &format!("host.stop.{host_id}"),
            &serde_json::json!({"host_id": host_id}),
        )
        .await
    }

    /// Every event on the lattice from now on.
    pub async fn events(&self) -> Result<impl Stream<Item = CloudEvent> + use<>, CtlError> {
        let Transport::Nats(nats) = &self.transport else {
            return Err(CtlError::Refused(
                "events stream over NATS; an embedded host logs them (TRELLIS_LOG=trellis_host=debug)".into(),
            ));
        };
        let subscription = nats
            .subscribe(format!("wasmbus.evt.{}.>", self.lattice))
            .await
            .map_err(|e| CtlError::Nats(e.to_string()))?;
        Ok(subscription.filter_map(|m| async move { serde_json::from_slice(&m.payload).ok() }))
    }
}

fn parse_envelope<T: DeserializeOwned>(
    subject: &str,
    payload: &[u8],
) -> Result<Option<T>, CtlError> {
    let envelope: CtlResponse<T> =
        serde_json::from_slice(payload).map_err(|e| CtlError::BadReply {
            subject: subject.to_owned(),
            reason: e.to_string(),
        })?;
    if !envelope.success {
        return Err(CtlError::Refused(envelope.message));
    }
    Ok(envelope.response)
}
