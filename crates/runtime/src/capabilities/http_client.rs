//! `wasi:http/outgoing-handler` through the linked [`trellis_http_client::HttpClient`].
//!
//! wasmtime-wasi-http builds the request from the guest's resources and hands it to these
//! hooks; they send it on the provider's pooled client, so connections are reused across
//! requests and instances, and the provider's allow-list is checked before connecting.

use super::Linked;
use bytes::Bytes;
use http_body_util::BodyExt;
use trellis_http_client::{HttpClient, SendError};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Per-instance hooks: the component's HTTP client link, if it has one.
pub(crate) struct OutgoingHooks {
    pub(crate) client: Option<Linked<HttpClient>>,
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
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        drop(fut);
        let client = match &self.client {
            None => {
                // Said once, at deploy; a line per request would flood the log.
                tracing::debug!(
                    "outgoing HTTP request from a component with no HTTP client link: denied"
                );
                return Box::new(async { Err(Error::HttpRequestDenied) });
            }
            Some(linked) => match linked.ready() {
                Ok(client) => client.clone(),
                Err(reason) => {
                    tracing::warn!(%reason, "outgoing HTTP request to a failed provider");
                    return Box::new(async { Err(Error::DestinationUnavailable) });
                }
            },
        };
        Box::new(async move {
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
        })
    }
}
