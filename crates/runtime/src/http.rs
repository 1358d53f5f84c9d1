//! Serving HTTP from an [`HttpComponent`] prepared once ([`crate::Runtime::prepare_http`]):
//! a WASI 0.2 component (`wasi:http/incoming-handler@0.2`) in a fresh store and instance per
//! request, or in warm instances when its manifest opts in; a WASI 0.3 component
//! (`wasi:http/handler@0.3`) in instances that each serve several requests at once. Reused
//! instances live in a [`crate::reuse`] pool.

use crate::invoke::{GuestFailure, InvokeError, spawn_with_deadline};
use crate::limits::Reuse;
use crate::reuse::{self, NoSlot};
use crate::state::{InstanceBounds, InstanceContext, InstanceState};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::time::{Duration, Instant};
use trellis_control::ComponentId;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{ExpirationError, InstantiationError};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// The body of a response produced by a guest.
pub type OutgoingBody = wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// A component prepared once to serve HTTP; cheap to clone and share across tasks.
#[derive(Clone)]
pub struct HttpComponent {
    serving: Serving,
    context: InstanceContext,
    bounds: InstanceBounds,
}

#[derive(Clone)]
enum Serving {
    /// WASI 0.2, a fresh instance per request.
    Fresh(ProxyPre<InstanceState>),
    /// WASI 0.3, or WASI 0.2 with warm instances: a pool of reused instances.
    Reused(reuse::Handler),
}

impl HttpComponent {
    pub(crate) fn fresh(
        pre: ProxyPre<InstanceState>,
        context: InstanceContext,
        bounds: InstanceBounds,
    ) -> Self {
        Self {
            serving: Serving::Fresh(pre),
            context,
            bounds,
        }
    }

    pub(crate) fn reused(
        handler: reuse::Handler,
        context: InstanceContext,
        bounds: InstanceBounds,
    ) -> Self {
        Self {
            serving: Serving::Reused(handler),
            context,
            bounds,
        }
    }

    /// The id of the component this serves.
    pub fn id(&self) -> &ComponentId {
        &self.context.component_id
    }

    /// How its instances are reused; `None` for a fresh instance per request.
    pub fn reuse(&self) -> Option<Reuse> {
        match &self.serving {
            Serving::Fresh(_) => None,
            Serving::Reused(handler) => Some(handler.state().reuse()),
        }
    }

    /// How many requests may be in flight at once when at most `instances` instances exist:
    /// `instances` with one request per instance, more for WASI 0.3 instances that serve
    /// several at once.
    pub fn max_requests_in_flight(&self, instances: u32) -> u32 {
        let per_instance = self.reuse().map_or(1, |r| r.max_concurrent.max(1));
        instances.saturating_mul(u32::try_from(per_instance).unwrap_or(u32::MAX))
    }

    /// Handles one request: in a fresh instance, or in one of the pool's reused instances.
    pub async fn handle<B>(
        &self,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<OutgoingBody>, InvokeError>
    where
        B: http_body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
    {
        match &self.serving {
            Serving::Fresh(pre) => self.handle_fresh(pre, request).await,
            Serving::Reused(handler) => {
                self.handle_reused(handler, request.map(|b| b.boxed_unsync()))
                    .await
            }
        }
    }

    /// Hands the request to the pool, and again whenever the pool had no slot for a new
    /// instance (a worker or a slot frees up soon; the wait is bounded by the deadline).
    async fn handle_reused(
        &self,
        handler: &reuse::Handler,
        mut request: wasmtime_wasi_http::handler::Request,
    ) -> Result<hyper::Response<OutgoingBody>, InvokeError> {
        let id = &self.context.component_id;
        let limit = self.bounds.max_execution_time;
        let started = Instant::now();
        loop {
            let ticket = reuse::RequestTicket::new(tracing::Span::current());
            let error = match handler.handle(ticket.clone(), request).await {
                Ok(response) => return Ok(response),
                Err(error) => error,
            };
            let error = match error.downcast::<InstantiationError<reuse::Ticket>>() {
                Ok(failed) if failed.error.is::<NoSlot>() => {
                    request = failed
                        .request
                        .into_inner()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let Some(left) = limit.checked_sub(started.elapsed()) else {
                        return Err(InvokeError::Deadline {
                            id: id.clone(),
                            limit,
                        });
                    };
                    let waiting = handler.state().waiting();
                    let _waiting = waiting.enter();
                    let _ =
                        tokio::time::timeout(left.min(Duration::from_millis(2)), waiting.changed())
                            .await;
                    continue;
                }
                Ok(failed) => {
                    return Err(InvokeError::Instantiate {
                        id: id.clone(),
                        source: wasmtime::format_err!("{:#}", failed.error),
                    });
                }
                Err(error) => error,
            };
            let failure = reused_failure(id, limit, started, error);
            // A guest that answered with an error code is fine; one that trapped or ran out
            // of time is not used again.
            if !matches!(failure, InvokeError::ErrorCode { .. }) {
                reuse::retire(&ticket);
            }
            return Err(failure);
        }
    }

    /// Handles one request in a fresh instance.
    ///
    /// The instance runs on its own task so that the response can stream while the guest
    /// keeps writing the body; the task, and with it the instance, is stopped at the
    /// execution deadline whatever the guest is doing.
    async fn handle_fresh<B>(
        &self,
        pre: &ProxyPre<InstanceState>,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<OutgoingBody>, InvokeError>
    where
        B: http_body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
    {
        let id = self.context.component_id.clone();
        let limit = self.bounds.max_execution_time;
        let mut store = self.bounds.new_store(pre.engine(), self.context.clone());

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let bad_request = |source: wasmtime::Error| InvokeError::BadRequest {
            id: id.clone(),
            source,
        };
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(bad_request)?;
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(bad_request)?;
        let pre = pre.clone();

        let task = spawn_with_deadline(id.clone(), limit, async move {
            let proxy = pre
                .instantiate_async(&mut store)
                .await
                .map_err(GuestFailure::Instantiate)?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
                .map_err(GuestFailure::Call)
        });

        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(InvokeError::ErrorCode {
                id,
                code: format!("{code:?}"),
            }),
            // The guest dropped the outparam without setting it: the task tells why.
            Err(_) => match task.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(InvokeError::NoResponse { id }),
                Err(join) => Err(InvokeError::host_task_failed(id, join)),
            },
        }
    }
}

/// What a failed request in a reused instance tells its caller. The pool reports a request
/// whose instance was retired under it (a trap in another request of the same instance, or
/// the instance stopped at a deadline while the guest spun) as `TrapOrPanicError` or as a
/// response never set; past the deadline either is the deadline.
fn reused_failure(
    id: &ComponentId,
    limit: Duration,
    started: Instant,
    error: wasmtime::Error,
) -> InvokeError {
    let deadline = || InvokeError::Deadline {
        id: id.clone(),
        limit,
    };
    if error.is::<ExpirationError>() {
        return deadline();
    }
    // Past the deadline, whatever the pool says: an instance stopped at its deadline ends its
    // requests with `TrapOrPanicError`, or (WASI 0.2) with "never invoked
    // `response-outparam::set`".
    if started.elapsed() >= limit {
        return deadline();
    }
    if let Some(code) =
        error.downcast_ref::<wasmtime_wasi_http::p2::bindings::http::types::ErrorCode>()
    {
        return InvokeError::ErrorCode {
            id: id.clone(),
            code: format!("{code:?}"),
        };
    }
    if let Some(code) =
        error.downcast_ref::<wasmtime_wasi_http::p3::bindings::http::types::ErrorCode>()
    {
        return InvokeError::ErrorCode {
            id: id.clone(),
            code: format!("{code:?}"),
        };
    }
    GuestFailure::Call(error).into_invoke_error(id, limit)
}
