//! Serving `wasi:http/incoming-handler`: a fresh store and instance per request, from an
//! [`HttpComponent`] prepared once ([`crate::Runtime::prepare_http`]).

use crate::invoke::{GuestFailure, InvokeError, spawn_with_deadline};
use crate::state::{InstanceBounds, InstanceContext, InstanceState};
use bytes::Bytes;
use trellis_control::ComponentId;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// The body of a response produced by a guest.
pub type OutgoingBody = wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// A component prepared once to serve HTTP; cheap to clone and share across tasks.
#[derive(Clone)]
pub struct HttpComponent {
    pre: ProxyPre<InstanceState>,
    context: InstanceContext,
    bounds: InstanceBounds,
}

impl HttpComponent {
    pub(crate) fn new(
        pre: ProxyPre<InstanceState>,
        context: InstanceContext,
        bounds: InstanceBounds,
    ) -> Self {
        Self {
            pre,
            context,
            bounds,
        }
    }

    /// The id of the component this serves.
    pub fn id(&self) -> &ComponentId {
        &self.context.component_id
    }

    /// Handles one request in a fresh instance.
    ///
    /// The instance runs on its own task so that the response can stream while the guest
    /// keeps writing the body; the task, and with it the instance, is stopped at the
    /// execution deadline whatever the guest is doing.
    pub async fn handle<B>(
        &self,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<OutgoingBody>, InvokeError>
    where
        B: http_body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
    {
        let id = self.context.component_id.clone();
        let limit = self.bounds.max_execution_time;
        let mut store = self
            .bounds
            .new_store(self.pre.engine(), self.context.clone());

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
        let pre = self.pre.clone();

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
