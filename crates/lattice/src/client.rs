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
        let url = format!("{base}/v1/{suffix}");
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
                let payload = self
                    .http_request(base, client, &format!("ctl/{suffix}"), body)
                    .await?;
                return parse_envelope(&subject, &payload);
            }
        };
        let reply = self.nats_request(nats, subject.clone(), body).await?;
        parse_envelope(&subject, &reply)
    }

    /// One request/reply on NATS, with this client's timeout and errors that say what to
    /// check.
    async fn nats_request(
        &self,
        nats: &async_nats::Client,
        subject: String,
        body: Vec<u8>,
    ) -> Result<bytes::Bytes, CtlError> {
        match tokio::time::timeout(self.timeout, nats.request(subject.clone(), body.into())).await {
            Err(_) => Err(CtlError::TimedOut {
                subject,
                timeout: self.timeout,
            }),
            Ok(Err(e)) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => {
                Err(CtlError::NoResponders {
                    lattice: self.lattice.clone(),
                    subject,
                })
            }
            Ok(Err(e)) if e.kind() == async_nats::client::RequestErrorKind::TimedOut => {
                Err(CtlError::TimedOut {
                    subject,
                    timeout: self.timeout,
                })
            }
            Ok(Err(e)) => Err(CtlError::Nats(e.to_string())),
            Ok(Ok(reply)) => Ok(reply.payload),
        }
    }

    /// A request to the deployment manager's API: `wadm.api.{lattice}.model.{operation}` on
    /// a lattice, `POST {base}/v1/wadm/{operation}` on an embedded host. Returns the answer's
    /// JSON (wadm's shapes: `result`, `message`, …).
    pub async fn app_request(
        &self,
        operation: &str,
        body: Vec<u8>,
    ) -> Result<serde_json::Value, CtlError> {
        let subject = format!("wadm.api.{}.model.{operation}", self.lattice);
        let payload = match &self.transport {
            Transport::Http { base, client } => {
                self.http_request(base, client, &format!("wadm/{operation}"), body)
                    .await?
            }
            Transport::Nats(nats) => self.nats_request(nats, subject.clone(), body).await?,
        };
        serde_json::from_slice(&payload).map_err(|e| CtlError::Nats(format!("{subject}: {e}")))
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

    /// Runs a running component from a new image (`component.update`), keeping its count
    /// and config. Watch for `component_scaled` (with the new `image_ref`) or
    /// `component_scale_failed`.
    pub async fn update_component(
        &self,
        host_id: &str,
        component_id: &str,
        new_component_ref: &str,
    ) -> Result<(), CtlError> {
        self.command(
            &format!("component.update.{host_id}"),
            &serde_json::json!({
                "host_id": host_id, "component_id": component_id,
                "new_component_ref": new_component_ref, "annotations": {},
            }),
        )
        .await
    }

    /// Stops a provider on a host (`provider.stop`). Watch for `provider_stopped`.
    pub async fn stop_provider(&self, host_id: &str, provider_id: &str) -> Result<(), CtlError> {
        self.command(
            &format!("provider.stop.{host_id}"),
            &serde_json::json!({"host_id": host_id, "provider_id": provider_id}),
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

    /// Every event on the lattice from now on: over NATS a subscription to
    /// `wasmbus.evt.{lattice}.>`; for an embedded host the newline-delimited JSON of
    /// `GET {base}/v1/events`, which ends when the host stops.
    pub async fn events(&self) -> Result<impl Stream<Item = CloudEvent> + use<>, CtlError> {
        let nats = match &self.transport {
            Transport::Nats(nats) => nats,
            Transport::Http { base, client } => {
                return Ok(self.http_events(base, client).await?.right_stream());
            }
        };
        let subscription = nats
            .subscribe(format!("wasmbus.evt.{}.>", self.lattice))
            .await
            .map_err(|e| CtlError::Nats(e.to_string()))?;
        Ok(subscription
            .filter_map(|m| async move { serde_json::from_slice(&m.payload).ok() })
            .left_stream())
    }

    /// Opens the embedded host's event stream. The timeout covers the answer's head only:
    /// the body stays open as long as the host runs.
    async fn http_events(
        &self,
        base: &str,
        client: &hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            http_body_util::Full<bytes::Bytes>,
        >,
    ) -> Result<impl Stream<Item = CloudEvent> + use<>, CtlError> {
        use http_body_util::BodyExt as _;
        let url = format!("{base}/v1/events");
        let request = http::Request::get(&url)
            .header(http::header::ACCEPT, "application/x-ndjson")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .map_err(|e| CtlError::Nats(format!("bad admin URL `{url}`: {e}")))?;
        let timed_out = || CtlError::TimedOut {
            subject: url.clone(),
            timeout: self.timeout,
        };
        let response = tokio::time::timeout(self.timeout, client.request(request))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| {
                CtlError::Nats(format!(
                    "cannot reach the embedded host at {base}: {e}; is `trellis up` running (it prints its control interface address)?"
                ))
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = tokio::time::timeout(self.timeout, response.into_body().collect())
                .await
                .map_err(|_| timed_out())?
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
                .unwrap_or_default();
            return Err(CtlError::Refused(format!(
                "{url} answered {status}: {body}; does this host stream events (a Trellis older than this CLI does not)?"
            )));
        }
        Ok(ndjson_events(
            http_body_util::BodyDataStream::new(response.into_body()),
            url,
        ))
    }
}

/// One CloudEvent per line of `chunks` (newline-delimited JSON, split anywhere). Blank lines
/// are skipped; a line that is not a CloudEvent, or a failing read, ends the stream with a
/// warning naming `source`.
fn ndjson_events<S, E>(chunks: S, source: String) -> impl Stream<Item = CloudEvent>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    struct Lines<S> {
        chunks: S,
        buffer: Vec<u8>,
        ended: bool,
        source: String,
    }
    fn parse(line: &[u8], source: &str) -> Option<CloudEvent> {
        serde_json::from_slice(line)
            .inspect_err(|e| {
                tracing::warn!(
                    %source,
                    error = %e,
                    line = %String::from_utf8_lossy(line),
                    "not a CloudEvent; the event stream ends here"
                );
            })
            .ok()
    }
    let lines = Lines {
        chunks,
        buffer: Vec::new(),
        ended: false,
        source,
    };
    futures::stream::unfold(lines, |mut lines| async move {
        loop {
            if let Some(newline) = lines.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = lines.buffer.drain(..=newline).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return parse(line, &lines.source).map(|event| (event, lines));
            }
            if lines.ended {
                // A last line without its newline.
                let rest = std::mem::take(&mut lines.buffer);
                let rest = rest.trim_ascii();
                if rest.is_empty() {
                    return None;
                }
                return parse(rest, &lines.source).map(|event| (event, lines));
            }
            match lines.chunks.next().await {
                Some(Ok(chunk)) => lines.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    tracing::warn!(source = %lines.source, error = %e, "the event stream broke off");
                    return None;
                }
                None => lines.ended = true,
            }
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event_line(name: &str) -> String {
        format!(
            "{{\"specversion\":\"1.0\",\"id\":\"{name}-id\",\"source\":\"Nhost\",\"type\":\"com.wasmcloud.lattice.{name}\",\"datacontenttype\":\"application/json\",\"time\":\"2026-01-01T00:00:00Z\",\"data\":{{}}}}\n"
        )
    }

    async fn names(chunks: Vec<Result<bytes::Bytes, String>>) -> Vec<String> {
        ndjson_events(futures::stream::iter(chunks), "test".into())
            .map(|e| e.name().to_owned())
            .collect()
            .await
    }

    #[tokio::test]
    async fn ndjson_lines_split_anywhere_become_events() {
        let all = format!(
            "{}\n\r\n{}{}",
            event_line("config_set"),
            event_line("labels_changed"),
            event_line("host_stopped").trim_end()
        );
        // Every split point, including inside a line and between \r and \n.
        for cut in 0..all.len() {
            let chunks = vec![
                Ok(bytes::Bytes::copy_from_slice(&all.as_bytes()[..cut])),
                Ok(bytes::Bytes::copy_from_slice(&all.as_bytes()[cut..])),
            ];
            assert_eq!(
                names(chunks).await,
                ["config_set", "labels_changed", "host_stopped"],
                "cut at {cut}"
            );
        }
    }

    #[tokio::test]
    async fn a_malformed_line_or_a_broken_read_ends_the_stream() {
        let chunks = vec![
            Ok(bytes::Bytes::from(event_line("config_set"))),
            Ok(bytes::Bytes::from_static(b"not json\n")),
            Ok(bytes::Bytes::from(event_line("labels_changed"))),
        ];
        assert_eq!(names(chunks).await, ["config_set"]);
        let chunks = vec![
            Ok(bytes::Bytes::from(event_line("config_set"))),
            Err("reset".to_owned()),
            Ok(bytes::Bytes::from(event_line("labels_changed"))),
        ];
        assert_eq!(names(chunks).await, ["config_set"]);
    }
}
