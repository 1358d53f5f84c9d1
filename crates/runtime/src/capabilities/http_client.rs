//! `wasi:http/outgoing-handler` through the linked [`trellis_http_client::HttpClient`].
//!
//! wasmtime-wasi-http builds the request from the guest's resources and hands it to these
//! hooks; they send it on the provider's pooled client, so connections are reused across
//! requests and instances, and the provider's allow-list is checked before connecting.

use super::Linked;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use tracing::Instrument as _;
use trellis_http_client::{HttpClient, SendError};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Per-instance hooks: the component's HTTP client link, if it has one.
pub(crate) struct OutgoingHooks {
    pub(crate) client: Option<Linked<HttpClient>>,
    /// Told of every request (the host's metrics), and asked for the trace context.
    pub(crate) observer: Option<Arc<dyn crate::Observer>>,
    /// The request a reused instance is serving alone ([`crate::reuse`]).
    pub(crate) request_span: Option<tracing::Span>,
}

type Sent = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for OutgoingHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        drop(fut);
        let linked = match &self.client {
            None => {
                // Said once, at deploy; a line per request would flood the log.
                tracing::debug!(
                    "outgoing HTTP request from a component with no HTTP client link: denied"
                );
                return Box::new(async { Err(Error::HttpRequestDenied) });
            }
            Some(linked) => linked,
        };
        let observing = super::Observing {
            observer: self.observer.as_ref(),
            request_span: self.request_span.as_ref(),
        };
        let span = observing.child(|| request_span(linked, &request));
        let observed = {
            let (linked, observer) = (linked.clone(), self.observer.clone());
            move |result: &Sent| {
                let observing = super::Observing {
                    observer: observer.as_ref(),
                    request_span: None,
                };
                observing.observe(Some(&linked), CAPABILITY, "send", result);
            }
        };
        let client = match linked.ready() {
            Ok(client) => client.clone(),
            Err(reason) => {
                tracing::warn!(%reason, "outgoing HTTP request to a failed provider");
                let failed = Err(Error::DestinationUnavailable);
                observed(&failed);
                return Box::new(async { failed });
            }
        };
        // The service called joins the request's trace, unless the guest set its own context.
        if let Some(traceparent) = observing
            .observer
            .and_then(|o| span.in_scope(|| o.traceparent()))
            && let Ok(value) = http::HeaderValue::from_str(&traceparent)
        {
            request.headers_mut().entry("traceparent").or_insert(value);
        }
        let send = async move {
            let request = request.map(|body| {
                body.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                    .boxed_unsync()
            });
            let response = client.send(request).await.map_err(|e| {
                tracing::debug!(error = %e, "outgoing HTTP request failed");
                match e {
                    SendError::Denied { .. } => Error::HttpRequestDenied,
                    SendError::Protected(address) => {
                        tracing::warn!(%address, "a component tried to reach the host's control surface; refused");
                        Error::HttpRequestDenied
                    }
                    SendError::NoHost(_) => Error::HttpRequestUriInvalid,
                    SendError::ConnectTimeout(_) => Error::ConnectionTimeout,
                    SendError::FirstByteTimeout(_) => Error::ConnectionReadTimeout,
                    SendError::ConnectionRefused(_) => Error::ConnectionRefused,
                    // What `wasmtime serve` answers for a name that does not resolve.
                    SendError::Dns(_) => Error::DnsError {
                        rcode: Some("address not available".to_owned()),
                        info_code: None,
                    },
                    SendError::Other(m) => Error::InternalError(Some(m)),
                }
            })?;
            let response = response.map(|body| {
                body.map_err(Error::Hyper)
                    .map_frame(|f| f.map_data(Bytes::from))
                    .boxed_unsync()
            });
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        };
        Box::new(
            async move {
                let sent = send.await;
                observed(&sent);
                sent
            }
            .instrument(span),
        )
    }
}

const CAPABILITY: &str = "http-client";

/// The span of one outgoing request, named by its method as OpenTelemetry's HTTP conventions
/// name client spans (a method outside the standard ones is `HTTP`).
fn request_span<B>(linked: &Linked<HttpClient>, request: &http::Request<B>) -> tracing::Span {
    let method = request.method();
    let name = match *method {
        http::Method::GET
        | http::Method::HEAD
        | http::Method::POST
        | http::Method::PUT
        | http::Method::DELETE
        | http::Method::CONNECT
        | http::Method::OPTIONS
        | http::Method::TRACE
        | http::Method::PATCH => method.as_str(),
        _ => "HTTP",
    };
    let uri = request.uri();
    tracing::info_span!(
        "capability",
        otel.name = name,
        otel.kind = "client",
        provider_id = %linked.provider_id,
        operation = "send",
        http.request.method = %method,
        server.address = uri.host().unwrap_or_default(),
        url.path = uri.path(),
    )
}
