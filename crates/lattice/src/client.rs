//! A client for the control interface and the app API: what `trellis get …`, `trellis app …`
//! and the reconciler use, and what scripts can use. It speaks the same subjects and JSON as
//! wasmCloud's `wasmcloud-control-interface` and `wadm-client` crates, built from the typed
//! requests of [`trellis_control`].
//!
//! Three transports carry the same requests: NATS (a lattice), an embedded host's local HTTP
//! admin endpoint (`trellis up`), and a [`ControlHandler`] in the same process (the
//! reconciler of an embedded host acting on its own host).

use crate::serve::ControlHandler;
use futures::{Stream, StreamExt as _};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use trellis_control::ctl::{
    CallComponent, CallReply, DeleteLink, HostLabel, ScaleComponent, StartProvider, StopHost,
    StopProvider, UpdateComponent,
};
use trellis_control::wadm::{
    AppRequest, AppSummary, DeleteReply, DeployReply, GetReply, PutReply, StatusReply,
    VersionsReply,
};
use trellis_control::{
    CloudEvent, ComponentId, CtlRequest, CtlResponse, HostId, HostInventory, HostSummary, Link,
    ProviderId,
};

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
    /// The host answered `success: false`, or the admin endpoint refused the request.
    #[error("refused: {0}")]
    Refused(String),
    /// The answer was not the expected JSON.
    #[error("unexpected answer on {subject}")]
    BadReply {
        /// The subject asked.
        subject: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// NATS failed.
    #[error("NATS request on {subject} failed")]
    Nats {
        /// The subject asked.
        subject: String,
        /// What NATS said.
        #[source]
        source: async_nats::Error,
    },
    /// The embedded host's endpoint refused the request for want of its token.
    #[error(
        "the embedded host at {base} refused the request: it needs its token. Run the command in the folder of its manifest (the CLI reads the token from .trellis/up/), or pass --admin-token (TRELLIS_ADMIN_TOKEN)"
    )]
    Unauthorized {
        /// The endpoint's address.
        base: String,
    },
    /// The embedded host's admin endpoint could not be reached.
    #[error(
        "cannot reach the embedded host at {base}; is `trellis up` running (it prints its control interface address)?"
    )]
    Unreachable {
        /// The endpoint's address.
        base: String,
        /// Why.
        #[source]
        source: async_nats::Error,
    },
    /// The host that answered in process is gone.
    #[error("the host is stopping")]
    HostGone,
}

/// A control-interface client for one lattice, over NATS, the local HTTP endpoint of an
/// embedded host (`trellis up`), or a handler in this process.
#[derive(Clone)]
pub struct CtlClient {
    transport: Transport,
    lattice: String,
    timeout: Duration,
    /// The embedded host's endpoint token, sent as `Authorization: Bearer …`.
    token: Option<String>,
    /// Signs NATS requests, for hosts in strict mode ([`crate::signing`]).
    signer: Option<Arc<crate::signing::Signer>>,
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

#[derive(Clone)]
enum Transport {
    Nats(async_nats::Client),
    Http { base: String, client: HttpClient },
    Local(Arc<dyn ControlHandler>),
}

/// How long `hosts` waits for more answers after the last one before it stops collecting:
/// hosts answer a ping within milliseconds, so a short silence means everyone has.
const PING_QUIET: Duration = Duration::from_millis(150);

/// How long a request waits for its answer unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl CtlClient {
    /// A client for `lattice` over `nats`, waiting up to [`DEFAULT_TIMEOUT`] for answers.
    pub fn new(nats: async_nats::Client, lattice: impl Into<String>) -> Self {
        Self {
            transport: Transport::Nats(nats),
            lattice: lattice.into(),
            timeout: DEFAULT_TIMEOUT,
            token: None,
            signer: None,
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
            timeout: DEFAULT_TIMEOUT,
            token: None,
            signer: None,
        }
    }

    /// Signs every NATS request with `signer` (hosts started with
    /// `--require-signed-control` refuse unsigned ones).
    pub fn with_signer(mut self, signer: Option<Arc<crate::signing::Signer>>) -> Self {
        self.signer = signer;
        self
    }

    /// Sends `token` with every request to an embedded host's endpoint (which refuses
    /// requests without its token).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// A client for `lattice`: over its NATS control connection when it has one, else
    /// straight to `local`, the one host of an in-process lattice.
    pub fn for_lattice(lattice: &crate::Lattice, local: Arc<dyn ControlHandler>) -> Self {
        let transport = match lattice.connections() {
            Some(nats) => Transport::Nats(nats.ctl.clone()),
            None => Transport::Local(local),
        };
        Self {
            transport,
            lattice: lattice.name().to_owned(),
            timeout: DEFAULT_TIMEOUT,
            token: None,
            signer: None,
        }
    }

    /// Sets how long a request waits for an answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether requests go to a host in this process (one host, no lattice).
    pub fn is_local(&self) -> bool {
        matches!(self.transport, Transport::Local(_))
    }

    /// Sends `request` and returns the reply envelope's `response`, or why it failed.
    pub async fn request<T: DeserializeOwned>(
        &self,
        request: &CtlRequest,
    ) -> Result<Option<T>, CtlError> {
        let subject = request.subject(&self.lattice);
        let payload = match &self.transport {
            Transport::Nats(nats) => {
                self.nats_request(nats, subject.clone(), request.body())
                    .await?
            }
            Transport::Http { base, client } => {
                let path = format!("ctl/{}", request.operation());
                self.http_request(base, client, &path, request.body())
                    .await?
            }
            Transport::Local(handler) => {
                // Through the same parsing as the other transports: one path for every request.
                let (operation, body) = (request.operation(), request.body());
                let answer = crate::serve::answer(&**handler, &operation, &body);
                tokio::time::timeout(self.timeout, answer)
                    .await
                    .map_err(|_| CtlError::TimedOut {
                        subject: subject.clone(),
                        timeout: self.timeout,
                    })?
                    .ok_or(CtlError::HostGone)?
            }
        };
        let envelope: CtlResponse<T> =
            serde_json::from_slice(&payload).map_err(|source| CtlError::BadReply {
                subject: subject.clone(),
                source,
            })?;
        if !envelope.success {
            return Err(CtlError::Refused(envelope.message));
        }
        Ok(envelope.response)
    }

    /// Sends a command: `Ok` means the host accepted it (the outcome is an event).
    pub async fn command(&self, request: &CtlRequest) -> Result<(), CtlError> {
        self.request::<serde_json::Value>(request).await.map(drop)
    }

    /// Sends an app API request and returns wadm's reply.
    pub async fn app<T: DeserializeOwned>(&self, request: &AppRequest) -> Result<T, CtlError> {
        let subject = request.subject(&self.lattice);
        let payload = match &self.transport {
            Transport::Nats(nats) => {
                self.nats_request(nats, subject.clone(), request.body())
                    .await?
            }
            Transport::Http { base, client } => {
                let path = format!("wadm/{}", request.operation());
                self.http_request(base, client, &path, request.body())
                    .await?
            }
            Transport::Local(handler) => {
                tokio::time::timeout(self.timeout, handler.app(request.clone()))
                    .await
                    .map_err(|_| CtlError::TimedOut {
                        subject: subject.clone(),
                        timeout: self.timeout,
                    })?
            }
        };
        serde_json::from_slice(&payload).map_err(|source| CtlError::BadReply { subject, source })
    }

    /// One request/reply on NATS, with this client's timeout and errors that say what to
    /// check.
    async fn nats_request(
        &self,
        nats: &async_nats::Client,
        subject: String,
        body: Vec<u8>,
    ) -> Result<bytes::Bytes, CtlError> {
        let sending = async {
            match &self.signer {
                Some(signer) => {
                    let headers = signer.headers(&subject, &body);
                    nats.request_with_headers(subject.clone(), headers, body.into())
                        .await
                }
                None => nats.request(subject.clone(), body.into()).await,
            }
        };
        match tokio::time::timeout(self.timeout, sending).await {
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
            Ok(Err(e)) => Err(CtlError::Nats {
                subject,
                source: e.into(),
            }),
            Ok(Ok(reply)) => Ok(reply.payload),
        }
    }

    async fn http_request(
        &self,
        base: &str,
        client: &HttpClient,
        path: &str,
        body: Vec<u8>,
    ) -> Result<bytes::Bytes, CtlError> {
        use http_body_util::BodyExt as _;
        let url = format!("{base}/v1/{path}");
        let unreachable = |source: async_nats::Error| CtlError::Unreachable {
            base: base.to_owned(),
            source,
        };
        let mut request =
            http::Request::post(&url).header(http::header::CONTENT_TYPE, "application/json");
        if let Some(token) = &self.token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| unreachable(e.into()))?;
        let exchange = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| unreachable(e.into()))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(e.into()))?
                .to_bytes();
            if status == http::StatusCode::UNAUTHORIZED {
                return Err(CtlError::Unauthorized {
                    base: base.to_owned(),
                });
            }
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

    /// Every host on the lattice. Returns as soon as answers stop arriving (not after a
    /// fixed wait), or after the timeout at the latest.
    pub async fn hosts(&self) -> Result<Vec<HostSummary>, CtlError> {
        let ping = CtlRequest::PingHosts;
        let nats = match &self.transport {
            Transport::Nats(nats) => nats,
            // An embedded host is the only host.
            Transport::Http { .. } | Transport::Local(_) => {
                return Ok(self.request(&ping).await?.into_iter().collect());
            }
        };
        let subject = ping.subject(&self.lattice);
        let nats_error = |source: async_nats::Error| CtlError::Nats {
            subject: subject.clone(),
            source,
        };
        let inbox = nats.new_inbox();
        let mut replies = nats
            .subscribe(inbox.clone())
            .await
            .map_err(|e| nats_error(e.into()))?;
        match &self.signer {
            Some(signer) => {
                let headers = signer.headers(&subject, b"");
                nats.publish_with_reply_and_headers(subject.clone(), inbox, headers, "".into())
                    .await
            }
            None => {
                nats.publish_with_reply(subject.clone(), inbox, "".into())
                    .await
            }
        }
        .map_err(|e| nats_error(e.into()))?;
        // A host that refuses the ping (strict mode) says why; said when nobody answers.
        let mut refusal = None;
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
                    } else if let Ok(CtlResponse {
                        success: false,
                        message,
                        ..
                    }) = serde_json::from_slice::<CtlResponse<()>>(&message.payload)
                    {
                        refusal = Some(message);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        if let (true, Some(message)) = (hosts.is_empty(), refusal) {
            return Err(CtlError::Refused(message));
        }
        hosts.sort_by(|a, b| a.friendly_name.cmp(&b.friendly_name));
        Ok(hosts)
    }

    /// One host's inventory.
    pub async fn inventory(&self, host_id: &HostId) -> Result<HostInventory, CtlError> {
        self.request(&CtlRequest::GetHost(host_id.clone()))
            .await?
            .ok_or_else(|| CtlError::Refused("the host sent no inventory".into()))
    }

    /// Calls a function that a component on host `call.host_id` exports, with arguments as
    /// text (JSON or WAVE), and returns what it returned: `trellis.call`, Trellis's own
    /// operation. A failure (no such component or function, a bad argument, a trap) is
    /// [`CtlError::Refused`] with the host's explanation.
    pub async fn call(&self, call: CallComponent) -> Result<CallReply, CtlError> {
        self.request(&CtlRequest::CallComponent(call))
            .await?
            .ok_or_else(|| CtlError::Refused("the host sent no results".into()))
    }

    /// What host `host_id` has counted: `trellis.stats`, Trellis's own operation.
    pub async fn stats(
        &self,
        host_id: &HostId,
    ) -> Result<trellis_control::stats::HostStats, CtlError> {
        self.request(&CtlRequest::GetStats(host_id.clone()))
            .await?
            .ok_or_else(|| CtlError::Refused("the host sent no stats".into()))
    }

    /// Every link in the lattice.
    pub async fn links(&self) -> Result<Vec<Link>, CtlError> {
        Ok(self
            .request(&CtlRequest::GetLinks)
            .await?
            .unwrap_or_default())
    }

    /// The claims of the signed components started on the lattice (`claims.get`), as
    /// wasmCloud v1's string maps.
    pub async fn claims(&self) -> Result<Vec<BTreeMap<String, String>>, CtlError> {
        Ok(self
            .request(&CtlRequest::GetClaims)
            .await?
            .unwrap_or_default())
    }

    /// Puts a link.
    pub async fn put_link(&self, link: &Link) -> Result<(), CtlError> {
        self.command(&CtlRequest::PutLink(link.clone())).await
    }

    /// Deletes a link.
    pub async fn delete_link(&self, link: DeleteLink) -> Result<(), CtlError> {
        self.command(&CtlRequest::DeleteLink(link)).await
    }

    /// Named config, if it exists.
    pub async fn get_config(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, CtlError> {
        self.request(&CtlRequest::GetConfig(name.to_owned())).await
    }

    /// Puts named config.
    pub async fn put_config(
        &self,
        name: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(), CtlError> {
        self.command(&CtlRequest::PutConfig {
            name: name.to_owned(),
            values: values.clone(),
        })
        .await
    }

    /// Deletes named config.
    pub async fn delete_config(&self, name: &str) -> Result<(), CtlError> {
        self.command(&CtlRequest::DeleteConfig(name.to_owned()))
            .await
    }

    /// Sets a label on a host.
    pub async fn put_label(
        &self,
        host_id: &HostId,
        key: &str,
        value: &str,
    ) -> Result<(), CtlError> {
        self.command(&CtlRequest::PutLabel(HostLabel {
            host_id: host_id.clone(),
            key: key.to_owned(),
            value: value.to_owned(),
        }))
        .await
    }

    /// Removes a label from a host.
    pub async fn delete_label(&self, host_id: &HostId, key: &str) -> Result<(), CtlError> {
        self.command(&CtlRequest::DeleteLabel(HostLabel {
            host_id: host_id.clone(),
            key: key.to_owned(),
            value: String::new(),
        }))
        .await
    }

    /// Runs `component_ref` as `component_id` on a host with at most `count` concurrent
    /// instances (0 stops it). Accepted means started; watch for `component_scaled` or
    /// `component_scale_failed`.
    pub async fn scale_component(
        &self,
        host_id: &HostId,
        component_id: &ComponentId,
        component_ref: &str,
        count: u32,
        config: &[String],
    ) -> Result<(), CtlError> {
        self.command(&CtlRequest::ScaleComponent(ScaleComponent {
            host_id: host_id.clone(),
            component_id: component_id.clone(),
            component_ref: component_ref.to_owned(),
            count,
            config: config.to_vec(),
            annotations: BTreeMap::new(),
            allow_update: true,
        }))
        .await
    }

    /// Starts a built-in provider on a host. Watch for `provider_started` or
    /// `provider_start_failed`.
    pub async fn start_provider(
        &self,
        host_id: &HostId,
        provider_id: &ProviderId,
        provider_ref: &str,
        config: &[String],
    ) -> Result<(), CtlError> {
        self.command(&CtlRequest::StartProvider(StartProvider {
            host_id: host_id.clone(),
            provider_id: provider_id.clone(),
            provider_ref: provider_ref.to_owned(),
            config: config.to_vec(),
            annotations: BTreeMap::new(),
        }))
        .await
    }

    /// Runs a running component from a new image (`component.update`), keeping its count
    /// and config. Watch for `component_scaled` (with the new `image_ref`) or
    /// `component_scale_failed`.
    pub async fn update_component(
        &self,
        host_id: &HostId,
        component_id: &ComponentId,
        new_component_ref: &str,
    ) -> Result<(), CtlError> {
        self.command(&CtlRequest::UpdateComponent(UpdateComponent {
            host_id: host_id.clone(),
            component_id: component_id.clone(),
            new_component_ref: new_component_ref.to_owned(),
            annotations: BTreeMap::new(),
        }))
        .await
    }

    /// Stops a provider on a host (`provider.stop`). Watch for `provider_stopped`.
    pub async fn stop_provider(
        &self,
        host_id: &HostId,
        provider_id: &ProviderId,
    ) -> Result<(), CtlError> {
        self.command(&CtlRequest::StopProvider(StopProvider {
            host_id: host_id.clone(),
            provider_id: provider_id.clone(),
        }))
        .await
    }

    /// Asks a host to stop.
    pub async fn stop_host(&self, host_id: &HostId) -> Result<(), CtlError> {
        self.command(&CtlRequest::StopHost(StopHost {
            host_id: host_id.clone(),
            timeout: None,
        }))
        .await
    }

    /// Stores a manifest (YAML or JSON) as a new version of its app.
    pub async fn put_app(&self, manifest: Vec<u8>) -> Result<PutReply, CtlError> {
        self.app(&AppRequest::Put(manifest)).await
    }

    /// A version of an app's manifest (the latest when `version` is `None`).
    pub async fn get_app(&self, name: &str, version: Option<String>) -> Result<GetReply, CtlError> {
        self.app(&AppRequest::Get {
            name: name.to_owned(),
            version,
        })
        .await
    }

    /// Every app with its status.
    pub async fn list_apps(&self) -> Result<Vec<AppSummary>, CtlError> {
        self.app(&AppRequest::List).await
    }

    /// An app's versions.
    pub async fn app_versions(&self, name: &str) -> Result<VersionsReply, CtlError> {
        self.app(&AppRequest::Versions {
            name: name.to_owned(),
        })
        .await
    }

    /// Deploys a version of an app (the latest when `version` is `None`).
    pub async fn deploy_app(
        &self,
        name: &str,
        version: Option<String>,
    ) -> Result<DeployReply, CtlError> {
        self.app(&AppRequest::Deploy {
            name: name.to_owned(),
            version,
        })
        .await
    }

    /// Undeploys an app.
    pub async fn undeploy_app(&self, name: &str) -> Result<DeployReply, CtlError> {
        self.app(&AppRequest::Undeploy {
            name: name.to_owned(),
        })
        .await
    }

    /// Deletes an app (undeploying it) or one of its versions.
    pub async fn delete_app(
        &self,
        name: &str,
        version: Option<String>,
    ) -> Result<DeleteReply, CtlError> {
        self.app(&AppRequest::Delete {
            name: name.to_owned(),
            version,
        })
        .await
    }

    /// An app's status.
    pub async fn app_status(&self, name: &str) -> Result<StatusReply, CtlError> {
        self.app(&AppRequest::Status {
            name: name.to_owned(),
        })
        .await
    }

    /// Every event on the lattice from now on: over NATS a subscription to
    /// `wasmbus.evt.{lattice}.>`; for an embedded host the newline-delimited JSON of
    /// `GET {base}/v1/events`, which ends when the host stops.
    pub async fn events(&self) -> Result<impl Stream<Item = CloudEvent> + use<>, CtlError> {
        self.stream(
            crate::event_subject(&self.lattice, ">"),
            "/v1/events",
            "an in-process client watches the lattice's events directly",
        )
        .await
    }

    /// Every component log line from now on, from every host: on NATS the lattice's log
    /// subjects, from an embedded host its `GET /v1/logs` stream.
    pub async fn follow_logs(
        &self,
    ) -> Result<impl Stream<Item = trellis_control::logs::LogRecord> + use<>, CtlError> {
        self.stream(
            trellis_control::logs::log_subject(&self.lattice, "*"),
            "/v1/logs",
            "an in-process client follows the host's logs directly",
        )
        .await
    }

    /// One `T` per message on `subject` over NATS, or per line of an embedded host's
    /// `path` stream; an in-process client is refused with `local`.
    async fn stream<T: DeserializeOwned + 'static>(
        &self,
        subject: String,
        path: &str,
        local: &str,
    ) -> Result<impl Stream<Item = T> + use<T>, CtlError> {
        let nats = match &self.transport {
            Transport::Nats(nats) => nats,
            Transport::Http { base, client } => {
                return Ok(self.http_ndjson(base, client, path).await?.right_stream());
            }
            Transport::Local(_) => return Err(CtlError::Refused(local.into())),
        };
        let subscription = nats
            .subscribe(subject.clone())
            .await
            .map_err(|e| CtlError::Nats {
                subject,
                source: e.into(),
            })?;
        Ok(subscription
            .filter_map(|m| async move { serde_json::from_slice(&m.payload).ok() })
            .left_stream())
    }

    /// The most recent log lines host `request.host_id` kept that pass the request's filter:
    /// `trellis.logs`, Trellis's own operation.
    pub async fn logs(
        &self,
        request: trellis_control::logs::LogsRequest,
    ) -> Result<Vec<trellis_control::logs::LogRecord>, CtlError> {
        Ok(self
            .request(&CtlRequest::GetLogs(request))
            .await?
            .unwrap_or_default())
    }

    /// Opens one of the embedded host's streams (`path`: `/v1/events`, `/v1/logs`). The
    /// timeout covers the answer's head only: the body stays open as long as the host runs.
    async fn http_ndjson<T: DeserializeOwned>(
        &self,
        base: &str,
        client: &HttpClient,
        path: &str,
    ) -> Result<impl Stream<Item = T> + use<T>, CtlError> {
        use http_body_util::BodyExt as _;
        let url = format!("{base}{path}");
        let unreachable = |source: async_nats::Error| CtlError::Unreachable {
            base: base.to_owned(),
            source,
        };
        let mut request =
            http::Request::get(&url).header(http::header::ACCEPT, "application/x-ndjson");
        if let Some(token) = &self.token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .map_err(|e| unreachable(e.into()))?;
        let timed_out = || CtlError::TimedOut {
            subject: url.clone(),
            timeout: self.timeout,
        };
        let response = tokio::time::timeout(self.timeout, client.request(request))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| unreachable(e.into()))?;
        let status = response.status();
        if status == http::StatusCode::UNAUTHORIZED {
            return Err(CtlError::Unauthorized {
                base: base.to_owned(),
            });
        }
        if !status.is_success() {
            let body = tokio::time::timeout(self.timeout, response.into_body().collect())
                .await
                .map_err(|_| timed_out())?
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
                .unwrap_or_default();
            return Err(CtlError::Refused(format!(
                "{url} answered {status}: {body}; does this host stream these (a Trellis older than this CLI does not)?"
            )));
        }
        Ok(ndjson(
            http_body_util::BodyDataStream::new(response.into_body()),
            url,
        ))
    }
}

/// One `T` (a CloudEvent, a log line) per line of `chunks` (newline-delimited JSON, split
/// anywhere). Blank lines are skipped; a line that is not a `T`, or a failing read, ends the
/// stream with a warning naming `source`.
fn ndjson<T, S, E>(chunks: S, source: String) -> impl Stream<Item = T>
where
    T: DeserializeOwned,
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    struct Lines<S> {
        chunks: S,
        buffer: Vec<u8>,
        ended: bool,
        source: String,
    }
    fn parse<T: DeserializeOwned>(line: &[u8], source: &str) -> Option<T> {
        serde_json::from_slice(line)
            .inspect_err(|e| {
                tracing::warn!(
                    %source,
                    error = %e,
                    line = %String::from_utf8_lossy(line),
                    "not what the stream carries; it ends here"
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
                    tracing::warn!(source = %lines.source, error = %e, "the stream broke off");
                    return None;
                }
                None => lines.ended = true,
            }
        }
    })
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
        ndjson(futures::stream::iter(chunks), "test".into())
            .map(|e: CloudEvent| e.name().to_owned())
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
