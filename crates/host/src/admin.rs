//! The control interface of an embedded host over local HTTP, for `trellis up`, which has no
//! NATS: `POST /v1/ctl/{operation}` with the request JSON as the body answers exactly what
//! `wasmbus.ctl.v1.{lattice}.{operation}` answers on a lattice, so the CLI and scripts work
//! the same in both modes. `GET /v1/events` streams every event the host publishes from then
//! on as newline-delimited JSON (one CloudEvent per line, `application/x-ndjson`), what
//! `wasmbus.evt.{lattice}.>` carries on a lattice; the stream ends when the host stops.
//! `GET /v1/logs` streams the components' log lines the same way (one
//! `trellis_control::logs::LogRecord` per line), what `trellis.logs.{lattice}.>` carries. It
//! listens on loopback only by default: it is an admin endpoint, and every request must
//! carry its token (`Authorization: Bearer TOKEN`); one without it gets 401 and changes
//! nothing. `trellis up` makes the token and writes it where the CLI finds it.
//!
//! Paths outside `/v1/` may go to another handler on the same listener (`trellis up` puts
//! the web dashboard there, which checks the same token on its API itself).

use crate::Host;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use std::sync::{Arc, Weak};
use tokio::sync::{broadcast, watch};
use trellis_control::CloudEvent;
use trellis_http_server::{
    BoxError, IncomingHandler, RequestBody, ResponseBody, ServerLimits, text_response,
};

/// Largest control request body accepted.
const MAX_CONTROL_BODY: u64 = 1 << 20;

struct Admin {
    host: Weak<Host>,
    /// What `Authorization: Bearer …` must say.
    token: String,
    /// Answers every path outside `/v1/`, when given.
    pages: Option<Arc<dyn IncomingHandler>>,
}

impl Admin {
    /// Whether `request` carries the token (compared in constant time).
    fn authorized(&self, request: &Request<RequestBody>) -> bool {
        trellis_http_server::bearer_matches(request, &self.token)
    }
}

impl IncomingHandler for Admin {
    fn handle(
        &self,
        target: Arc<str>,
        request: Request<RequestBody>,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        if let Some(pages) = &self.pages
            && !request.uri().path().starts_with("/v1/")
        {
            return pages.handle(target, request);
        }
        let host = self.host.upgrade();
        let authorized = self.authorized(&request);
        Box::pin(async move {
            if !authorized {
                return text_response(
                    StatusCode::UNAUTHORIZED,
                    "this control endpoint needs its token (Authorization: Bearer TOKEN): the trellis CLI reads it from .trellis/up/ beside the manifest; see `trellis up --help`\n",
                );
            }
            let Some(host) = host else {
                return text_response(StatusCode::SERVICE_UNAVAILABLE, "the host is stopping\n");
            };
            if request.uri().path() == "/v1/events" {
                if request.method() != http::Method::GET {
                    return text_response(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
                }
                return events_response(&host);
            }
            if request.uri().path() == "/v1/logs" {
                if request.method() != http::Method::GET {
                    return text_response(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
                }
                return ndjson_response(host.logs.follow(), host.shutdown.subscribe(), "log line");
            }
            if let Some(operation) = request.uri().path().strip_prefix("/v1/wadm/") {
                let operation = operation.to_owned();
                if request.method() != http::Method::POST {
                    return text_response(StatusCode::METHOD_NOT_ALLOWED, "use POST\n");
                }
                let body = match read_body(request.into_body()).await {
                    Ok(b) => b,
                    Err(message) => return text_response(StatusCode::PAYLOAD_TOO_LARGE, message),
                };
                let store = host.app_store();
                let request = trellis_control::wadm::AppRequest::parse(&operation, &body);
                let reply = host.app_request(&store, request).await;
                let mut response = Response::new(
                    http_body_util::Full::new(reply)
                        .map_err(|never| match never {})
                        .boxed_unsync(),
                );
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                return response;
            }
            let Some(operation) = request
                .uri()
                .path()
                .strip_prefix("/v1/ctl/")
                .map(str::to_owned)
            else {
                return text_response(
                    StatusCode::NOT_FOUND,
                    "use POST /v1/ctl/{operation} (for example /v1/ctl/host.ping), POST /v1/wadm/{operation} (the app API), GET /v1/events or GET /v1/logs\n",
                );
            };
            if request.method() != http::Method::POST {
                return text_response(StatusCode::METHOD_NOT_ALLOWED, "use POST\n");
            }
            let body = match read_body(request.into_body()).await {
                Ok(b) => b,
                Err(message) => return text_response(StatusCode::PAYLOAD_TOO_LARGE, message),
            };
            let reply = host.control_request(&operation, &body).await;
            let mut response = Response::new(
                http_body_util::Full::new(reply)
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            response
        })
    }
}

/// Every event published from now on, one JSON line each, until the host shuts down or the
/// client goes away (hyper drops the body then). Subscribed before the response is returned,
/// so an event published after the client has the response head is never missed. The body
/// holds no reference to the host: a waiting stream does not keep it alive, and it ends as
/// soon as shutdown begins, so it never holds up the server's drain.
fn events_response(host: &Host) -> Response<ResponseBody> {
    ndjson_response::<CloudEvent>(
        host.lattice().subscribe_events(),
        host.shutdown.subscribe(),
        "event",
    )
}

/// What `received` yields from now on as newline-delimited JSON, until `shutdown` or the
/// sender goes away; `what` names an item in the warning about a client that fell behind.
fn ndjson_response<T: serde::Serialize + Clone + Send + 'static>(
    received: broadcast::Receiver<T>,
    shutdown: watch::Receiver<bool>,
    what: &'static str,
) -> Response<ResponseBody> {
    struct Watch<T> {
        events: broadcast::Receiver<T>,
        shutdown: watch::Receiver<bool>,
    }
    let state = Watch {
        events: received,
        shutdown,
    };
    let lines = futures::stream::unfold(state, move |mut state| async move {
        loop {
            let received = tokio::select! {
                // Also when the host is gone (the sender dropped).
                _ = state.shutdown.wait_for(|stop| *stop) => return None,
                received = state.events.recv() => received,
            };
            match received {
                Ok(event) => match serde_json::to_vec(&event) {
                    Ok(mut line) => {
                        line.push(b'\n');
                        return Some((Ok::<_, BoxError>(Frame::data(Bytes::from(line))), state));
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot encode {what}"),
                },
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "a stream client fell behind; it misses {missed} of the {what}s"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let mut response = Response::new(StreamBody::new(lines).boxed_unsync());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-ndjson"),
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    response
}

/// The server already bounds bodies (`max_request_body_bytes`), so this only collects.
async fn read_body(body: RequestBody) -> Result<Bytes, String> {
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(format!("cannot read the request: {e}\n")),
    }
}

impl Host {
    /// Serves the control interface over HTTP on `listener` until shutdown, to requests
    /// that carry `token`; requests for paths outside `/v1/` go to `pages` when given (it
    /// checks whatever it needs itself).
    pub async fn serve_admin(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
        token: String,
        pages: Option<Arc<dyn IncomingHandler>>,
    ) {
        let handler: Arc<dyn IncomingHandler> = Arc::new(Admin {
            host: Arc::downgrade(self),
            token,
            pages,
        });
        let mut shutdown = self.shutdown.subscribe();
        self.servers.lock().await.spawn(trellis_http_server::serve(
            listener,
            "admin".into(),
            handler,
            ServerLimits {
                max_request_body_bytes: MAX_CONTROL_BODY,
                ..ServerLimits::default()
            },
            async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            },
        ));
    }
}
