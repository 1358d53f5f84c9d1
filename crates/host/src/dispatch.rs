//! Routing an HTTP request from the HTTP server provider to a component instance.

use crate::limiter::ConcurrencyLimiter;
use crate::metrics::{Failure, Metrics};
use crate::sync;
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tracing::Instrument as _;
use trellis_http_server::{
    BodyTooLarge, BoxError, IncomingHandler, RequestBody, ResponseBody, text_response,
};
use trellis_runtime::{HttpComponent, InvokeError, WasiHttpError};

/// A component ready to take requests on this host.
pub(crate) struct Running {
    pub(crate) http: HttpComponent,
    pub(crate) limiter: Arc<ConcurrencyLimiter>,
    /// Where its requests are counted.
    pub(crate) metrics: Arc<Metrics>,
}

/// The host's [`IncomingHandler`]: finds the target component, waits for an instance slot,
/// runs the request and turns failures into HTTP statuses.
#[derive(Default)]
pub(crate) struct Dispatch {
    components: RwLock<HashMap<Arc<str>, Arc<Running>>>,
}

impl Dispatch {
    pub(crate) fn insert(&self, id: &str, running: Running) {
        sync::write(&self.components).insert(id.into(), Arc::new(running));
    }

    pub(crate) fn remove(&self, id: &str) -> bool {
        sync::write(&self.components).remove(id).is_some()
    }

    /// Removes `id` only if it still is `running` (not a newer version started since).
    pub(crate) fn remove_if_same(&self, id: &str, running: &Arc<Running>) {
        let mut components = sync::write(&self.components);
        if components.get(id).is_some_and(|r| Arc::ptr_eq(r, running)) {
            components.remove(id);
        }
    }

    /// What runs as `id` now.
    pub(crate) fn running(&self, id: &str) -> Option<Arc<Running>> {
        self.get(id)
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    fn get(&self, id: &str) -> Option<Arc<Running>> {
        sync::read(&self.components).get(id).cloned()
    }
}

impl IncomingHandler for Dispatch {
    fn handle(
        &self,
        target: Arc<str>,
        request: Request<RequestBody>,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        let running = self.get(&target);
        let span = tracing::info_span!(
            "http.request",
            otel.name = %format!("{} {}", request.method(), target),
            otel.kind = "server",
            component_id = %target,
            http.request.method = %request.method(),
            url.path = %request.uri().path(),
            http.response.status_code = tracing::field::Empty,
        );
        crate::trace::set_parent(
            &span,
            request
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok()),
        );
        let record = span.clone();
        let handled = async move {
            let Some(running) = running else {
                return text_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("component `{target}` is not running on this host\n"),
                );
            };
            let started = std::time::Instant::now();
            let _permit = match running.limiter.acquire().await {
                Ok(permit) => permit,
                Err(full) => {
                    tracing::warn!(component_id = %target, %full, "request refused: queue full");
                    let response = text_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("component `{target}` is busy: {full}; retry later\n"),
                    );
                    running
                        .metrics
                        .http_request(&target, response.status(), started.elapsed());
                    return response;
                }
            };
            let request = request.map(|body| body.map_err(to_wasi_error));
            let response = match running.http.handle(request).await {
                Ok(response) => {
                    response.map(|body| body.map_err(|e| Box::new(e) as BoxError).boxed_unsync())
                }
                Err(error) => {
                    running.metrics.failure(&target, Failure::of(&error));
                    error_response(&error)
                }
            };
            running
                .metrics
                .http_request(&target, response.status(), started.elapsed());
            response
        };
        Box::pin(async move {
            let response = handled.instrument(span).await;
            record.record("http.response.status_code", response.status().as_u16());
            response
        })
    }
}

fn to_wasi_error(error: BoxError) -> WasiHttpError {
    if let Some(too_large) = error.downcast_ref::<BodyTooLarge>() {
        return WasiHttpError::HttpRequestBodySize(Some(too_large.limit));
    }
    match error.downcast::<hyper::Error>() {
        Ok(hyper_error) => WasiHttpError::Hyper(*hyper_error),
        Err(other) => WasiHttpError::InternalError(Some(other.to_string())),
    }
}

/// The status for each way an invocation fails; the details go to the log, the client gets a
/// short reason.
fn error_response(error: &InvokeError) -> Response<ResponseBody> {
    let status = match error {
        InvokeError::Deadline { .. } => StatusCode::GATEWAY_TIMEOUT,
        InvokeError::Instantiate { .. } => StatusCode::SERVICE_UNAVAILABLE,
        InvokeError::BadRequest { .. } => StatusCode::BAD_REQUEST,
        InvokeError::Trap { .. }
        | InvokeError::NoResponse { .. }
        | InvokeError::ErrorCode { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::error!(error = %error, status = status.as_u16(), "request failed");
    let summary = match error {
        InvokeError::Trap { id, .. } => {
            format!("component `{id}` trapped while handling the request")
        }
        other => other.to_string(),
    };
    text_response(status, format!("{summary}\n"))
}
